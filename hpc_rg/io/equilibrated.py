"""Which disorder samples of a ``samples.h5`` size group the later stages use.

The sample stage certifies every Edwards–Anderson disorder sample (dataset ``equilibrated``,
:mod:`hpc_rg.analysis.equilibration`). ``train``, ``upscale`` and ``analyze`` (and the tools
that read Monte Carlo ensembles) use only the certified samples unless
``sample.equilibration.only_passed`` is false; :func:`usable_disorder_samples` is the one
place that decides, and :meth:`DisorderSelection.attrs` is what their outputs record.

The selected samples are renumbered 0 .. D_used - 1 in file order; :func:`file_runs` maps
flat index runs over them (``n = (d_used * S + k) * P + p``, hpc_rg.io.ensemble) back to
runs over the file's disorder axis.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, collective
from . import schema

__all__ = ["DisorderSelection", "usable_disorder_samples", "only_passed_of", "file_runs"]

log = logging.getLogger("hpc_rg")

KEY = "sample.equilibration.only_passed"
MAX_IDS = 16  #: excluded ids listed in the warning line


@dataclass(frozen=True)
class DisorderSelection:
    """The disorder samples of one size group that a stage reads.

    Attributes
    ----------
    ids : int64 (D_used,) or None
        File ids (index along the ``disorder`` axis) of the samples used, ascending;
        None for a group without disorder samples (clean models, super-resolved levels).
    total : int
        Disorder samples in the group (0 without disorder).
    equilibrated_only : bool
        The restriction to certified samples was applied.
    """

    ids: np.ndarray | None
    total: int = 0
    equilibrated_only: bool = False

    @property
    def excluded(self) -> np.ndarray:
        """File ids left out, ascending."""
        if self.ids is None:
            return np.zeros(0, dtype=np.int64)
        return np.setdiff1d(np.arange(self.total, dtype=np.int64), self.ids)

    def attrs(self) -> dict:
        """The attributes that record the selection in an output ({} without disorder)."""
        if self.ids is None:
            return {}
        return {schema.ATTR_DISORDER_SAMPLES_USED: np.asarray(self.ids, dtype=np.int64),
                schema.ATTR_EQUILIBRATED_ONLY: bool(self.equilibrated_only)}


def only_passed_of(deck: dict) -> bool:
    """``sample.equilibration.only_passed`` of a run's stored deck (a plain dict, e.g.
    :func:`hpc_rg.analysis.tables.run_config`); True when absent."""
    eq = ((deck or {}).get("sample") or {}).get("equilibration") or {}
    return bool(eq.get("only_passed", True)) if isinstance(eq, dict) else True


def _ids_text(ids) -> str:
    ids = [int(i) for i in ids]
    more = f", ... (+{len(ids) - MAX_IDS} more)" if len(ids) > MAX_IDS else ""
    return ", ".join(map(str, ids[:MAX_IDS])) + more


def usable_disorder_samples(group, only_passed: bool, warn: bool = True,
                            stage: str = "") -> DisorderSelection:
    """The disorder samples of a ``samples.h5`` size group that a later stage may use.

    Parameters
    ----------
    group : h5py.Group
        An ``/L<size>`` group of ``samples.h5``.
    only_passed : bool
        ``sample.equilibration.only_passed``: keep only the samples whose equilibration
        certificate passed (dataset ``equilibrated``).
    warn : bool
        Log the warning lines (pass ``comms.is_root``: one line per job, not per rank).
    stage : str
        Prefix of those lines, e.g. ``"train"``.

    Returns
    -------
    DisorderSelection
        ``ids`` None for a group without disorder samples; every sample when ``only_passed``
        is false or the group has no certificate (a file written before certificates: one
        warning); otherwise the certified ones (one warning naming those left out).

    Raises
    ------
    ConfigError (collective: every rank that reads the group raises it alike)
        When ``only_passed`` holds and no sample passed.
    """
    a = group.attrs
    if (str(a.get(schema.GROUP_ATTR_MODEL, "")) not in schema.DISORDERED_MODELS
            or str(a.get(schema.GROUP_ATTR_SOURCE, "monte_carlo")) != "monte_carlo"):
        return DisorderSelection(None)
    D = int(group[schema.CONFIGS].shape[0])
    every = np.arange(D, dtype=np.int64)
    if not only_passed:
        return DisorderSelection(every, D, False)
    path, L = group.file.filename, int(a.get(schema.GROUP_ATTR_L, 0))
    prefix = f"[{stage}] " if stage else ""
    if schema.EQUILIBRATED not in group:
        if warn:
            log.warning(f"{prefix}{path}: /L{L} has no equilibration certificate (written "
                        f"before certificates): using all {D} disorder samples uncertified")
        return DisorderSelection(every, D, False)
    eq = np.asarray(group[schema.EQUILIBRATED][()], dtype=bool).reshape(-1)
    if eq.shape != (D,):
        raise collective(ConfigError(f"{path}: /L{L}/{schema.EQUILIBRATED} has {eq.size} "
                                     f"values for {D} disorder samples; the file is damaged"))
    ids = np.flatnonzero(eq).astype(np.int64)
    if not len(ids):
        raise collective(ConfigError(
            f"{path}: no disorder sample passed the equilibration certificate at L={L} "
            f"(0/{D}; see `python -m hpc_rg.tools.h5info {path}`); sample longer "
            f"(sample.thermalize / sample.samples) or set {KEY}: false to use them anyway"))
    sel = DisorderSelection(ids, D, True)
    if warn and len(ids) < D:
        log.warning(f"{prefix}{path}: L={L}: using the {len(ids)}/{D} disorder samples "
                    f"certified as equilibrated; excluded ids {_ids_text(sel.excluded)} "
                    f"({KEY}: false uses them all)")
    return sel


def file_runs(runs, ids, per_d: int) -> list[tuple[int, int]]:
    """Flat index runs over the selected disorder samples -> runs over the file's samples.

    Parameters
    ----------
    runs : [(a, b), ...]
        Runs of flat indices ``n = d_used * per_d + j`` (``0 <= j < per_d``).
    ids : int array (D_used,) or None
        File id of each selected sample; None: every sample (runs returned unchanged).
    per_d : int
        Flat indices per disorder sample.
    """
    if ids is None:
        return [(int(a), int(b)) for a, b in runs]
    out: list[tuple[int, int]] = []
    for a, b in runs:
        a, b = int(a), int(b)
        while a < b:
            j, off = divmod(a, per_d)
            n = min(b - a, per_d - off)
            s = int(ids[j]) * per_d + off
            if out and out[-1][1] == s:
                out[-1] = (out[-1][0], s + n)
            else:
                out.append((s, s + n))
            a += n
    return out
