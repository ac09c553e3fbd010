"""Reading Monte Carlo ensembles from ``samples.h5`` as super-resolution inputs.

Every model is seen as a "clean" ensemble ``(n_T, N, *lattice)``:

* ising / phi4: ``configs[t, n]`` as stored (``n = chain * samples + k``);
* edwards_anderson: overlap configurations ρ = s·t of disjoint replica pairs
  (0, 1), (2, 3), ...; ``n = (d * samples + k) * pairs + p``.

Index runs are read as contiguous slices (no fancy indexing), so a rank reads only
the configurations it owns. For edwards_anderson the readers take ``disorder``, the file ids
of the samples a stage uses (:func:`hpc_rg.io.equilibrated.usable_disorder_samples`); ``d``
above then counts those samples only.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputFileError
from . import schema
from .equilibrated import file_runs


def open_samples(cfg):
    """``samples.h5`` of the run ``cfg``, read-only; a clear error when missing or unfinished."""
    import h5py
    path = cfg.output_dir / schema.SAMPLES_FILE
    if not path.is_file():
        partial = path.with_name(path.name + schema.PARTIAL_SUFFIX)
        hint = "it is unfinished: rerun --stage sample --resume" if partial.exists() else \
            "run --stage sample first"
        raise InputFileError(f"{path}: no Monte Carlo ensemble ({hint})")
    return h5py.File(path, "r")


def size_group(f, L: int, path):
    """Group ``/L<L>`` of the open file ``f`` (named ``path`` in the error when missing)."""
    g = schema.size_group(L)
    if g not in f:
        raise InputFileError(f"{path}: has no group /{g}; sizes present: "
                             f"{', '.join(sorted(f.keys()))}")
    return f[g]


def coarse_blocking(blocking: str) -> str:
    """Blocking applied to the configurations read here: EA overlaps ρ are already formed,
    so ``overlap`` blocking is the majority rule on ρ; other names are unchanged."""
    return "majority" if blocking == "overlap" else blocking


def ensemble_size(group, disorder=None) -> int:
    """N: configurations per temperature of a size group (an open h5py group); EA: of the
    disorder samples ``disorder`` (file ids; None: all)."""
    ds = group[schema.CONFIGS]
    if group.attrs[schema.GROUP_ATTR_MODEL] in schema.DISORDERED_MODELS:
        D, _, S, R = ds.shape[:4]
        return (D if disorder is None else len(disorder)) * S * (R // 2)
    return ds.shape[1]


def read_runs(group, runs, t: int | None = None, disorder=None) -> np.ndarray:
    """Configurations ``(n_T, sum of run lengths, *lattice)`` for flat index runs [(a, b), ...];
    with ``t``, only temperature index ``t``: ``(sum of run lengths, *lattice)``. EA: the
    runs count the disorder samples ``disorder`` only (file ids; None: all).

    Spins come back as float32 ±1, φ⁴ fields as float32.
    """
    ts = slice(None) if t is None else slice(t, t + 1)
    if disorder is not None and group.attrs[schema.GROUP_ATTR_MODEL] in schema.DISORDERED_MODELS:
        runs = file_runs(runs, disorder, chain_length(group))
    out = _read_runs(group, runs, ts)
    return out if t is None else out[0]


def _read_runs(group, runs, ts: slice) -> np.ndarray:
    ds = group[schema.CONFIGS]
    ea = group.attrs[schema.GROUP_ATTR_MODEL] in schema.DISORDERED_MODELS
    parts = []
    for a, b in runs:
        if b <= a:
            continue
        if not ea:
            parts.append(np.asarray(ds[ts, a:b], dtype=np.float32))
            continue
        D, T, S, R = ds.shape[:4]
        P = R // 2
        per_d = S * P
        for d in range(a // per_d, (b - 1) // per_d + 1):
            lo, hi = max(a, d * per_d) - d * per_d, min(b, (d + 1) * per_d) - d * per_d
            k0, k1 = lo // P, (hi - 1) // P + 1
            x = np.asarray(ds[d, ts, k0:k1, : 2 * P], dtype=np.float32)  # (T, k, 2P, *lat)
            rho = x[:, :, 0::2] * x[:, :, 1::2]  # (T, k, P, *lat)
            rho = rho.reshape((rho.shape[0], (k1 - k0) * P) + rho.shape[3:])
            parts.append(rho[:, lo - k0 * P: hi - k0 * P])
    lat = group.attrs[schema.GROUP_ATTR_DIMS]
    if not parts:
        L = int(group.attrs[schema.GROUP_ATTR_L])
        n_T = len(range(*ts.indices(ds.shape[1] if ea else ds.shape[0])))
        return np.zeros((n_T, 0) + (L,) * int(lat), np.float32)
    return np.concatenate(parts, axis=1)


def split_runs(N: int, samples_per_chain: int, validation_fraction: float):
    """Per-chain time split: the last ``ceil(f * samples)`` of every chain are validation.

    Returns (train_runs, val_runs) as lists of flat index runs (a, b) over ``N``.
    For EA the "chain" is one disorder sample's (sample, pair) block.
    """
    S = samples_per_chain
    n_val = max(1, int(np.ceil(validation_fraction * S)))
    if n_val >= S:
        raise ValueError(f"train.validation_fraction={validation_fraction} leaves no training "
                         f"samples out of {S} per chain")
    train, val = [], []
    for c in range(N // S):
        train.append((c * S, (c + 1) * S - n_val))
        val.append(((c + 1) * S - n_val, (c + 1) * S))
    return train, val


def take_share(runs, rank: int, size: int):
    """This rank's contiguous share (block distribution) of the concatenated runs."""
    total = sum(b - a for a, b in runs)
    lo, hi = rank * total // size, (rank + 1) * total // size
    out, pos = [], 0
    for a, b in runs:
        n = b - a
        s, e = max(lo, pos), min(hi, pos + n)
        if e > s:
            out.append((a + s - pos, a + e - pos))
        pos += n
    return out


def chain_length(group) -> int:
    """Samples per "chain" for the time split (EA: samples × pairs of one disorder sample)."""
    ds = group[schema.CONFIGS]
    if group.attrs[schema.GROUP_ATTR_MODEL] in schema.DISORDERED_MODELS:
        return ds.shape[2] * (ds.shape[3] // 2)
    return int(group.attrs[schema.GROUP_ATTR_SAMPLES_PER_CHAIN])


def grid(group) -> np.ndarray:
    """Temperatures (spin models) or couplings (φ⁴) of a size group."""
    name = schema.COUPLINGS if schema.COUPLINGS in group else schema.TEMPERATURES
    return np.asarray(group[name][()], dtype=np.float64)
