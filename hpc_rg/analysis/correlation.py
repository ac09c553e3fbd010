"""Spatial two-point functions of lattice configurations, per configuration.

Configurations are arrays of shape ``(..., L_1, ..., L_d)``: the last ``dims`` axes are the
periodic lattice, any leading axes (samples, temperatures, replicas) are carried along.
Spins may be int8 (+-1, the storage format of ``samples.h5``/``upscaled.h5``), any other
integer type, or floating point (spins or continuous fields such as phi^4); torch tensors
are accepted and copied to NumPy.

Memory: the products are formed on views (no ``np.roll`` copy); per axis the largest
temporary is one config-sized product array in a small dtype (int16 for int8 input, the
input's own float type for floats), reduced in int64/float64. A batch of 256 x 512^2 int8
configurations (67 MB) needs about 140 MB on top of the input.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..io import schema
from ..io.outputs import ensemble_size, read_configs, require_dataset

__all__ = ["as_numpy", "lattice_axes", "two_point", "two_point_profile", "magnetization",
           "fourier_moments"]


def as_numpy(configs) -> np.ndarray:
    """NumPy view of ``configs`` (torch tensors are detached and copied to host memory)."""
    if hasattr(configs, "detach") and hasattr(configs, "cpu"):
        configs = configs.detach().cpu().numpy()
    a = np.asarray(configs)
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TypeError(f"configurations must be integer or real arrays, got dtype {a.dtype}")
    return a


def lattice_axes(a: np.ndarray, dims: int) -> tuple[int, ...]:
    """The last ``dims`` axes of ``a`` (validated)."""
    dims = int(dims)
    if dims < 1 or a.ndim < dims:
        raise ValueError(f"need an array with at least dims={dims} lattice axes, got shape {a.shape}")
    return tuple(range(a.ndim - dims, a.ndim))


def _dtypes(dtype: np.dtype):
    """(product dtype, accumulator dtype) that cannot overflow or lose +-1 exactness."""
    if np.issubdtype(dtype, np.integer):
        work = {1: np.int16, 2: np.int32}.get(np.dtype(dtype).itemsize, np.int64)
        return work, np.int64
    return np.result_type(dtype, np.float32), np.float64


def _shifted_sum(a: np.ndarray, axis: int, r: int, axes: tuple[int, ...]) -> np.ndarray:
    """``sum_x a_x a_{x + r e_axis}`` over the lattice axes (periodic), leading shape."""
    work, acc = _dtypes(a.dtype)
    L = a.shape[axis]
    r %= L

    def sl(start, stop):
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(start, stop)
        return tuple(idx)

    if r == 0:
        return np.multiply(a, a, dtype=work).sum(axis=axes, dtype=acc)
    # bulk: x in [0, L-r) pairs with x + r; wrap: x in [L-r, L) pairs with x + r - L
    total = np.multiply(a[sl(0, L - r)], a[sl(r, L)], dtype=work).sum(axis=axes, dtype=acc)
    total = total + np.multiply(a[sl(L - r, L)], a[sl(0, r)], dtype=work).sum(axis=axes, dtype=acc)
    return total


def two_point(configs, dims: int, r: int) -> np.ndarray:
    """Spatially averaged two-point function of each configuration at distance ``r``.

    ``G(r) = 1/(N d) sum_x sum_{mu=1}^{d} s_x s_{x + r e_mu}`` with periodic boundaries.

    Parameters
    ----------
    configs : array_like or torch.Tensor, shape (..., L_1, ..., L_d)
        Spins (int8 +-1 or any integer/real type); the last ``dims`` axes are the lattice.
    dims : int
        Number of lattice axes d.
    r : int
        Distance in lattice units along the axes (``r mod L_mu`` on each axis; r >= 0).

    Returns
    -------
    ndarray, float64, shape ``configs.shape[:-dims]``
        One value per configuration; the ensemble average and its (jackknife) error are
        taken by the caller, e.g. :func:`hpc_rg.analysis.observables.mean`.

    Notes
    -----
    This is the *full* correlator ``<s_0 s_r>``, not the connected one
    ``<s_0 s_r> - <s>^2``: on a finite periodic lattice ``<s> = 0`` by Z_2 symmetry, and
    at T_c it decays as ``G(r) ~ r^{-(d-2+eta)}``. Efthymiou, Beach & Melko, PRB 99,
    075113 (2019), Sec. IV.A evaluate it at ``r = L/4`` and ``r = L/2`` on each
    super-resolved size and read off eta from the slope of ``ln G`` versus ``ln L``. In 1D
    it is the estimator of ``G_N(j)`` of their eq. (6)
    (:func:`hpc_rg.analysis.exact.ising1d_two_point`). Averaging over all sites and all
    d directions reduces the variance; the estimator stays unbiased by translation and
    lattice symmetry.
    """
    a = as_numpy(configs)
    axes = lattice_axes(a, dims)
    r = int(r)
    if r < 0:
        raise ValueError(f"two_point: distance r must be >= 0, got {r}")
    n_sites = int(np.prod([a.shape[ax] for ax in axes]))
    total = sum(_shifted_sum(a, ax, r, axes) for ax in axes)
    return np.asarray(total, dtype=np.float64) / (n_sites * len(axes))


def two_point_profile(configs, dims: int, rs: Sequence[int]) -> np.ndarray:
    """:func:`two_point` at several distances.

    Returns
    -------
    ndarray, float64, shape ``configs.shape[:-dims] + (len(rs),)``
    """
    a = as_numpy(configs)
    rs = [int(r) for r in np.atleast_1d(rs)]
    lead = a.shape[: a.ndim - len(lattice_axes(a, dims))]
    if not rs:
        return np.zeros(lead + (0,))
    return np.stack([two_point(a, dims, r) for r in rs], axis=-1)


def magnetization(configs, dims: int) -> np.ndarray:
    """Magnetization per site ``m = (1/N) sum_x s_x`` of each configuration.

    Returns
    -------
    ndarray, float64, shape ``configs.shape[:-dims]`` (signed)
    """
    a = as_numpy(configs)
    axes = lattice_axes(a, dims)
    acc = np.int64 if np.issubdtype(a.dtype, np.integer) else np.float64
    n_sites = int(np.prod([a.shape[ax] for ax in axes]))
    return np.asarray(a.sum(axis=axes, dtype=acc), dtype=np.float64) / n_sites


def fourier_moments(configs, dims: int, rs: Sequence[int]) -> dict[str, np.ndarray]:
    """Two-point function at the distances ``rs`` and the structure factor at k = 0 and at
    the smallest non-zero momentum, per configuration, from one FFT per lattice axis.

    Parameters
    ----------
    configs : array_like, shape (..., L_1, ..., L_d)
        Spins, overlaps or fields (integer or real); the last ``dims`` axes are the lattice.
    dims : int
    rs : sequence of int, distances (``r mod L_mu`` on each axis)

    Returns
    -------
    dict of float64 arrays
        ``"two_point"``: shape ``lead + (len(rs),)``, equal to :func:`two_point_profile`
        (bit-identical for integer input, whose sums are rounded to the exact integers);
        ``"s0"``: ``|sum_x s_x|^2 / N``; ``"s_kmin"``: ``|sum_x s_x e^{i k x}|^2 / N`` at
        ``k = 2 pi / L_mu`` along each axis, averaged over the d axes.

    Notes
    -----
    Along axis mu, ``sum_x s_x s_{x + r e_mu}`` is the inverse real FFT of the power
    spectrum ``|F_line(k)|^2`` of the 1D FFTs along mu, summed over the lines; the
    k = 2 pi / L component of the full transform is the sum over lines of ``F_line(k)``.
    Cost O(N log L) per axis, for all distances at once; the largest temporary is one
    complex half-spectrum (8 bytes per site) per configuration.
    """
    a = as_numpy(configs)
    axes = lattice_axes(a, dims)
    rs = [int(r) for r in np.atleast_1d(rs)]
    if any(r < 0 for r in rs):
        raise ValueError(f"fourier_moments: distances must be >= 0, got {rs}")
    integer = np.issubdtype(a.dtype, np.integer)
    x = np.asarray(a, dtype=np.float64)
    n_sites = int(np.prod([a.shape[ax] for ax in axes]))
    lead = a.shape[: a.ndim - len(axes)]
    g = np.zeros(lead + (len(rs),))
    s0 = np.zeros(lead)
    sk = np.zeros(lead)
    for ax in axes:
        L = a.shape[ax]
        F = np.moveaxis(np.fft.rfft(x, axis=ax), ax, -1)  # lead + other lattice axes + (k,)
        lines = tuple(range(len(lead), F.ndim - 1))
        power = (F.real ** 2 + F.imag ** 2).sum(axis=lines)
        corr = np.fft.irfft(power, n=L, axis=-1)  # sum_x s_x s_{x + r e_ax}, r = 0 .. L-1
        if rs:
            g += corr[..., [r % L for r in rs]]
        Fk = F[..., : min(2, F.shape[-1])].sum(axis=lines)  # k = 0 and 2 pi / L
        if ax == axes[0]:
            M = np.rint(Fk[..., 0].real) if integer else Fk[..., 0].real
            s0 = M * M / n_sites
        if Fk.shape[-1] > 1:
            sk += (Fk[..., 1].real ** 2 + Fk[..., 1].imag ** 2) / n_sites
        del F, power, corr, Fk
    if integer:
        g = np.rint(g)
    return {"two_point": g / (n_sites * len(axes)), "s0": s0, "s_kmin": sk / len(axes)}


def distances(L: int, n_max: int = 16) -> np.ndarray:
    """Distances 1 … L/2 for G(r): all of them up to ``n_max``, else ~``n_max`` log-spaced."""
    half = max(int(L) // 2, 1)
    if half <= n_max:
        return np.arange(1, half + 1)
    return np.unique(np.round(np.geomspace(1, half, n_max)).astype(int))


def correlation_series(group, t: int, rs, dims: int, max_configs: int = 2000,
                       batch_elements: int = 1 << 22, disorder=None) -> np.ndarray:
    """Per-configuration G(r) (n, len(rs)) of temperature index ``t`` of a size group.

    At most ``max_configs`` configurations, every ``step``-th of the ensemble (spread over
    all chains / disorder samples), read in batches of about ``batch_elements`` sites.
    EA Monte Carlo: of the disorder samples ``disorder`` (file ids; None: all).
    """
    N = ensemble_size(group, disorder)
    step = max(1, math.ceil(N / max(int(max_configs), 1)))
    sites = int(np.prod(require_dataset(group, schema.CONFIGS).shape[-dims:]))
    per_batch = max(1, batch_elements // sites) * step
    out = []
    for a in range(0, N, per_batch):
        x = read_configs(group, t, a, min(a + per_batch, N), step, disorder)
        out.append(two_point_profile(x, dims, rs))
    return np.concatenate(out, axis=0)[:max_configs]
