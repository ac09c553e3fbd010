"""Reading hpc_rg output files: opening one read-only, its ``/L<size>`` groups, datasets.

Every helper reports bad input (missing file, not an hpc_rg output, missing group or
dataset) as :class:`~hpc_rg.errors.InputFileError` with a one-line message.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from . import schema

SIZE_GROUP = re.compile(r"^L(\d+)$")


def open_output(path, kinds: tuple[str, ...] | None = None, driver_kwargs: dict | None = None):
    """Open an hpc_rg HDF5 output read-only (h5py.File), or raise InputFileError.

    ``kinds``: accepted values of the root attribute ``stage`` (e.g. ``("sample", "upscale")``);
    None accepts any stage. ``driver_kwargs``: e.g. ``dict(driver="mpio", comm=comm)``.
    """
    import h5py

    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory, expected an HDF5 file written by hpc_rg")
    try:
        ok = h5py.is_hdf5(str(p))
    except OSError as e:
        raise InputFileError(f"{p}: cannot be read ({e.strerror or e})") from None
    if not ok:
        raise InputFileError(f"{p}: not an HDF5 file (expected an hpc_rg output such as "
                             f"{schema.SAMPLES_FILE} or {schema.UPSCALED_FILE})")
    try:
        f = h5py.File(str(p), "r", **(driver_kwargs or {}))
    except OSError as e:
        raise InputFileError(f"{p}: cannot be opened ({e})") from None
    if schema.ATTR_SCHEMA not in f.attrs or schema.ATTR_VERSION not in f.attrs:
        f.close()
        raise InputFileError(f"{p}: not an hpc_rg output (no '{schema.ATTR_SCHEMA}' root attribute)")
    stage = str(f.attrs.get(schema.ATTR_STAGE, ""))
    if kinds is not None and stage not in kinds:
        f.close()
        raise InputFileError(f"{p}: written by stage '{stage}', this tool reads "
                             f"{' or '.join(repr(k) for k in kinds)} outputs")
    return f


def size_groups(f) -> list[tuple[int, object]]:
    """The ``/L<size>`` groups of an open file as ``[(L, group), ...]``, smallest first."""
    out = []
    for name in f:
        m = SIZE_GROUP.match(name)
        if m and hasattr(f[name], "keys"):
            out.append((int(m.group(1)), f[name]))
    return sorted(out, key=lambda t: t[0])


def select_sizes(f, sizes=None) -> list[tuple[int, object]]:
    """Size groups restricted to ``sizes`` (list of int, None = all); a missing one is an error."""
    groups = size_groups(f)
    if not groups:
        raise InputFileError(f"{f.filename}: has no lattice-size groups (/L16, /L32, ...)")
    if sizes is None:
        return groups
    have = {L: g for L, g in groups}
    missing = [L for L in sizes if L not in have]
    if missing:
        raise InputFileError(f"{f.filename}: no group /L{missing[0]} (has "
                             f"{', '.join('/L%d' % L for L in have)})")
    return [(L, have[L]) for L in sizes]


def require_dataset(group, name: str):
    """``group[name]`` or InputFileError naming file, group and dataset."""
    if name not in group:
        raise InputFileError(f"{group.file.filename}: group {group.name} has no dataset '{name}'")
    return group[name]


def temperature_grid(group):
    """(name, values) of the group's scan axis: ``temperatures`` or φ⁴ ``couplings``."""
    for name in (schema.TEMPERATURES, schema.COUPLINGS):
        if name in group:
            return name, group[name][...]
    raise InputFileError(f"{group.file.filename}: group {group.name} has neither "
                         f"'{schema.TEMPERATURES}' nor '{schema.COUPLINGS}'")


def read(group, name):
    """Dataset ``name`` of ``group`` as float64, or InputFileError naming file and group."""
    return np.asarray(require_dataset(group, name)[()], dtype=np.float64)


def grid(group):
    """Temperatures (spin models) or couplings (phi4) of a group."""
    return np.asarray(temperature_grid(group)[1], dtype=np.float64)


def nominal(group, fallback):
    """Nominal temperatures/couplings of a super-resolved level (``fallback`` if absent)."""
    return read(group, schema.NOMINAL) if schema.NOMINAL in group else fallback


def ensemble_size(group, disorder=None) -> int:
    """Configurations per temperature of a size group (EA Monte Carlo: overlap configurations
    ρ of disjoint replica pairs, D × S × ⌊R/2⌋, D counting the disorder samples ``disorder``
    (file ids; None: all))."""
    ds = require_dataset(group, schema.CONFIGS)
    if is_ea_monte_carlo(group):
        D, _, S, R = ds.shape[:4]
        return (D if disorder is None else len(disorder)) * S * (R // 2)
    return ds.shape[1]


def is_ea_monte_carlo(group) -> bool:
    """A Monte Carlo group of a disordered model: configurations (D, T, S, R, *lattice) of
    replicas, read as overlaps ρ."""
    return (str(group.attrs.get(schema.GROUP_ATTR_MODEL, "")) in schema.DISORDERED_MODELS
            and str(group.attrs.get(schema.GROUP_ATTR_SOURCE, "monte_carlo")) == "monte_carlo")


def read_configs(group, t: int, a: int, b: int, step: int = 1, disorder=None) -> np.ndarray:
    """Configurations ``a, a+step, … < b`` of temperature index ``t``: (n, L, …, L), stored dtype.

    EA Monte Carlo groups give the overlap configurations ρ = s·s' of the disjoint replica
    pairs (0, 1), (2, 3), … with flat index ``n = (d·S + k)·⌊R/2⌋ + p`` (disorder slowest),
    the ensemble the super-resolution starts from (hpc_rg.io.ensemble); ``d`` counts the
    disorder samples ``disorder`` (file ids; None: all).
    """
    ds = require_dataset(group, schema.CONFIGS)
    if not is_ea_monte_carlo(group):
        return np.asarray(ds[t, a:b:step])
    D, _, S, R = ds.shape[:4]
    P = R // 2
    per_d = S * P
    parts = []
    for d in range(a // per_d, (max(b, a + 1) - 1) // per_d + 1):
        lo, hi = max(a, d * per_d) - d * per_d, min(b, (d + 1) * per_d) - d * per_d
        if hi <= lo:
            continue
        k0, k1 = lo // P, (hi - 1) // P + 1
        x = np.asarray(ds[d if disorder is None else int(disorder[d]), t, k0:k1, : 2 * P])
        rho = x[:, 0::2] * x[:, 1::2]
        rho = rho.reshape(((k1 - k0) * P,) + rho.shape[2:])
        parts.append(rho[lo - k0 * P: hi - k0 * P])
    out = np.concatenate(parts, axis=0) if parts else np.zeros((0,) + ds.shape[4:], ds.dtype)
    return out[::step]
