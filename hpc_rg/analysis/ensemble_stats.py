"""Statistics of stored ensembles drawn by the plots: thermodynamic curves, Binder ratios,
φ⁴ ⟨|φ̄|⟩, histogram bins, jackknife means. NumPy; errors are jackknife errors over blocks
that respect independent chains (or disorder samples).
"""

from __future__ import annotations

import numpy as np

from ..io import schema
from . import observables as obs
from ..io.outputs import read
from .stats import jackknife


def n_bins(n, chains=1):
    """Jackknife blocks: a multiple of ``chains`` leaving >= 8 samples per block (<= 32)."""
    chains = max(int(chains), 1)
    per_chain = max(1, min(32 // chains, n // chains // 8))
    return max(2, min(chains * per_chain, n // 2))


def thermo(e, m, temps, N, chains=1):
    """<|m|>, <e>, chi and C per temperature with jackknife errors.

    Parameters
    ----------
    e, m : array (T, S), energy and signed magnetization per site
    temps : array (T,), temperatures
    N : int, number of sites L^d
    chains : int, independent chains concatenated along S (for the blocking)

    Returns
    -------
    dict name -> (value (T,), err (T,)) for ``abs_m``, ``e``, ``chi``, ``C``; with
    ``chi = N (<m^2> - <|m|>^2) / T`` and ``C = N (<e^2> - <e>^2) / T^2``.
    """
    e, m = np.asarray(e, dtype=np.float64).T, np.asarray(m, dtype=np.float64).T
    beta = 1.0 / np.asarray(temps, dtype=np.float64)
    nb = n_bins(e.shape[0], chains)
    return {"abs_m": obs.mean(np.abs(m), nb), "e": obs.mean(e, nb),
            "chi": obs.susceptibility(m, beta, N, nb), "C": obs.specific_heat(e, beta, N, nb)}


def binder_ratio(q):
    """Binder ratio g = (3 - [<q^4>]/[<q^2>]^2)/2 of overlaps ``q`` (S, D) with jackknife error.

    Thermal averages over axis 0 per disorder sample (axis 1) first, then the disorder
    average; the error is the jackknife over disorder samples. With one disorder sample,
    the jackknife runs over blocks of the thermal series instead.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape[1] >= 2:
        return tuple(float(v) for v in obs.spin_glass_binder(q))
    q2 = q[:, 0] ** 2
    if q2.size < 4:
        return 0.5 * (3.0 - (q2 * q2).mean() / q2.mean() ** 2), float("nan")
    v, err = jackknife(lambda a2, a4: 0.5 * (3.0 - a4 / (a2 * a2)), q2, q2 * q2,
                       n_bins=n_bins(q2.size))
    return float(v), float(err)


def lattice_step(x):
    """Spacing of the value grid of a discrete series (smallest gap of its distinct values;
    0 for a constant series)."""
    u = np.unique(np.round(np.asarray(x, dtype=np.float64), 9))
    return float(np.diff(u).min()) if u.size > 1 else 0.0


def hist_edges(series, bins=20):
    """Common bin edges for several series: ``bins`` equal bins over their range, widened
    to a whole number of steps of the coarsest value grid (|m| and e of a small lattice
    take few values; bins narrower than a few steps would alias into empty bins)."""
    x = np.concatenate([np.ravel(s) for s in series])
    lo, hi = float(x.min()), float(x.max())
    step = max(lattice_step(s) for s in series)
    width = (hi - lo) / bins
    if step <= 0 or width <= 0 or width >= 10 * step:
        return np.histogram_bin_edges(x, bins=bins)
    width = np.ceil(width / step - 1e-9) * step
    n = int(np.ceil((hi - lo + step) / width - 1e-9))
    return lo - step / 2 + width * np.arange(n + 1)


def mc_overlaps(q, t):
    """Monte Carlo overlaps (D, T, S, P) at temperature index t as (S*P, D)."""
    q = np.asarray(q[:, t])
    return q.reshape(q.shape[0], -1).T


def sr_overlaps(q, t, block):
    """Super-resolved overlaps (T, N) at index t as (block, D'): disorder is the slowest
    index of N with ``block`` inputs per disorder sample; a trailing partial disorder
    sample (``upscale.samples`` < all) is dropped unless it is the only one."""
    row = np.asarray(q[t])
    d = max(row.size // block, 1)
    size = block if row.size >= block else row.size
    return row[: d * size].reshape(d, size).T


def disorder_block(samples_group):
    """Super-resolution inputs per disorder sample: S * (R // 2) overlaps of disjoint
    replica pairs (0,1), (2,3), ... (see hpc_rg.io.ensemble)."""
    if schema.CONFIGS in samples_group:
        _, _, S, R = samples_group[schema.CONFIGS].shape[:4]
    else:
        S, R = read(samples_group, "overlap").shape[2], int(samples_group.attrs["replicas"])
    return int(S) * (int(R) // 2)


def jackknife_mean(x, chains=1):
    """Column means of ``x`` (n, k) with jackknife errors."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 4:
        return x.mean(axis=0), np.full(x.shape[1:], np.nan)
    return jackknife(lambda a: a, x, n_bins=n_bins(x.shape[0], chains))


def abs_phi(g, chains: int):
    """Jackknife ⟨|φ̄|⟩ and its error per grid point of a size group."""
    phi = np.abs(read(g, "phi_mean")).T
    return obs.mean(phi, n_bins(phi.shape[0], chains))
