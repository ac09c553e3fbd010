"""The sample stage's check across sizes: no size may be less correlated than a smaller one.

After every size of a run with ``sample.reference_sizes`` is written, rank 0 compares each
pair of neighbouring sizes (:mod:`hpc_rg.analysis.size_consistency`: chi_SG for the
Edwards-Anderson model, N<m^2> for clean models, over the certified disorder samples),
logs one line per pair (a warning with what to do when a larger size falls below a smaller
one) and stores the verdict as attributes of the larger size's group (names in
:mod:`hpc_rg.io.schema`, layout in docs/hdf5-layout.md).

The file is complete when this runs; so that a job killed while the attributes are written
never leaves a damaged file under the complete name, it is renamed back to its ``.partial``
name for the write (a resumed run finds every size complete and only redoes this).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np

from ..analysis.size_consistency import SizePair, check_sizes, size_curve
from ..errors import ConfigError
from ..io import schema
from ..io.equilibrated import usable_disorder_samples
from ..io.outputs import size_groups
from ..io.writer import fsync_path
from .loop import partial_path

log = logging.getLogger("hpc_rg")

ADVICE = ("sample the larger size longer or with more tempering temperatures "
          "(sample.thermalize, sample.samples x sample.thin, sample.temperatures) and do not "
          "use it as a reference until this check passes")


def size_check_attrs(pair: SizePair) -> dict:
    """The attributes stored on the larger size's group."""
    return {schema.GROUP_ATTR_SIZE_CHECK: pair.summary(),
            schema.GROUP_ATTR_SIZE_CHECK_PASSED: bool(pair.passed),
            schema.GROUP_ATTR_SIZE_CHECK_AGAINST: int(pair.small.L),
            schema.GROUP_ATTR_SIZE_CHECK_MIN_Z: float(pair.min_z),
            schema.GROUP_ATTR_SIZE_CHECK_LOG_RATIO: float(pair.log_ratio),
            schema.GROUP_ATTR_SIZE_CHECK_LOG_RATIO_ERR: float(pair.log_ratio_err),
            schema.GROUP_ATTR_SIZE_CHECK_LOG_RATIO_Z: float(pair.log_ratio_z),
            schema.GROUP_ATTR_SIZE_CHECK_LIMITS: np.array([pair.limit, pair.combined_limit])}


def file_size_curves(f, only_passed: bool, path: str = "") -> list:
    """:func:`~hpc_rg.analysis.size_consistency.size_curve` of every Monte Carlo size group
    of an open file (EA: the disorder samples ``only_passed`` admits; a size with none
    certified is left out, the sample stage has said so)."""
    curves = []
    for _, g in size_groups(f):
        if str(g.attrs.get(schema.GROUP_ATTR_SOURCE, "monte_carlo")) != "monte_carlo":
            continue
        try:
            ids = usable_disorder_samples(g, only_passed, warn=False).ids
        except ConfigError:
            continue
        curves.append(size_curve(g, ids, path or f.filename))
    return curves


def record_size_check(path, only_passed: bool = True) -> list[SizePair]:
    """Rank 0 only: check the sizes of the complete ``samples.h5`` at ``path``, log, store.

    Returns the pairs compared (none for a run with one size)."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        pairs = check_sizes(file_size_curves(f, only_passed, str(path)))
    if not pairs:
        return pairs
    for p in pairs:
        if p.passed:
            log.info(f"[sample] sizes: {p.summary()}")
        else:
            log.warning(f"[sample] sizes: {p.summary()}. To fix: {ADVICE}")
    partial = partial_path(path)
    os.replace(path, partial)
    try:
        with h5py.File(partial, "r+") as f:
            for p in pairs:
                f[schema.size_group(p.large.L)].attrs.update(size_check_attrs(p))
        fsync_path(partial)
    finally:
        os.replace(partial, path)
        fsync_path(path.parent, directory=True)
    return pairs
