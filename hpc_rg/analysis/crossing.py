"""Where two measured curves on a common grid cross (the intersection of observables that
locates a fixed point: Bachtis et al., original vs renormalized system of one size).
"""

from __future__ import annotations

import numpy as np

__all__ = ["crossings"]


def _linear_crossings(x: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Zeros of the piecewise-linear interpolation of ``d(x)`` between sign changes."""
    i = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
    return x[i] + (x[i + 1] - x[i]) * d[i] / (d[i] - d[i + 1])


def crossings(x, a, a_err, b, b_err, resamples: int = 2000, seed: int = 0):
    """Crossings of curves ``a(x)`` and ``b(x)``, each with one-σ errors, on the grid ``x``.

    Linear interpolation of ``a − b`` between neighbouring grid points whose differences
    have opposite signs; the error of each crossing is the spread of the crossing nearest to
    it over ``resamples`` Gaussian resamplings of both curves (independent errors).

    Returns a list of ``(x_cross, error)``, in increasing ``x``; empty when the curves do
    not cross on the grid.
    """
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x)
    x = x[order]
    a, b = (np.asarray(v, dtype=np.float64)[order] for v in (a, b))
    s = np.hypot(np.asarray(a_err, dtype=np.float64), np.asarray(b_err, dtype=np.float64))[order]
    central = _linear_crossings(x, a - b)
    if len(central) == 0:
        return []
    rng = np.random.default_rng(seed)
    near = [[] for _ in central]
    for _ in range(resamples):
        c = _linear_crossings(x, a - b + rng.normal(0.0, 1.0, len(x)) * s)
        for k, x0 in enumerate(central):
            if len(c):
                near[k].append(c[np.argmin(np.abs(c - x0))])
    return [(float(x0), float(np.std(v)) if len(v) > 1 else float("nan"))
            for x0, v in zip(central, near)]
