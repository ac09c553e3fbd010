"""Fitting the temperature flow ``f`` of one blocking step (:func:`fit_flow`).

Inputs are observable means on temperature grids: ``O_MC(T_j)`` of L/2 Monte Carlo and
``O_DS(T_i)`` of blocked L Monte Carlo. For each observable and grid point i,
``T~_i`` solves ``O_MC(T~) = O_DS(T_i)`` by piecewise-linear interpolation of the
MC curve after a weighted isotonic regression (pool-adjacent-violators; each pooled block
becomes one point at its mean temperature), so that noisy plateaus, e.g. <|m|> near 1 at
low T, are averaged into a strictly monotone curve instead of making the inversion
ambiguous. The direction (increasing or decreasing) is the sign of a straight-line fit.
Values of ``O_DS`` outside the range of the MC curve (shrunk by ``edge_sigma`` errors)
give no estimate (NaN) for that observable.

Several observables are combined by linearised least squares in ``T~``, i.e. the
inverse-variance weighted mean of the per-observable ``T~`` with the linearly propagated

    var(T~) = (sigma_DS^2 + (1-u)^2 sigma_MC,k^2 + u^2 sigma_MC,k+1^2) / (dO_MC/dT)^2

(T~ in the segment ``[T_k, T_k+1]`` of the monotone curve at fraction u; MC points at
different temperatures taken as independent; ``dO_MC/dT`` is the secant over the three
segments around the match, so that a steep step made by noise does not claim a small
error), and ``sigma_f = (sum_o 1/var_o)^(-1/2)``. Observables with a flat MC curve are
thereby down-weighted automatically (the "fall back to the steeper observable" rule).
Without errors the weights are ``(dO_MC/dT)^2`` (equal absolute errors assumed) and
``f_err`` is NaN. Correlations between observables measured on the same configurations
are ignored (``f_err`` is then somewhat optimistic); the interpolation error of the MC
curve is not included (keep the grid fine where the curve bends).

Finally ``f`` must increase with T. Grid points without an estimate, and those outside
the strictly increasing subsequence of ``f(T_i)`` with the largest total weight
``sum 1/f_err^2`` (without errors: the longest one), and, with ``max_err``, those with
``f_err > max_err`` are marked invalid and not used for interpolation (they stay stored,
with ``valid = False``). Note that only grid points whose blocked observables fall inside
the small-lattice curves get an estimate, so the image of ``f`` (where the inverse is
defined) lies just inside the small-lattice grid: to super-resolve from temperatures at
the edge of that grid, extend the grid beyond them.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .flow import TemperatureFlow, _segment

__all__ = ["fit_flow"]


def _longest_increasing(x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of the strictly increasing subsequence of ``x`` with the largest total
    ``weight`` (default 1 each: a longest one); NaNs are excluded.

    With ``weight = 1/err^2`` a precise point outweighs several imprecise ones, so noisy
    estimates are dropped rather than precise neighbours. Ties go to the longer one.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    w = np.ones(n) if weight is None else np.nan_to_num(np.asarray(weight, dtype=np.float64),
                                                         nan=0.0, posinf=1e300)
    ok = np.isfinite(x)
    length = np.zeros(n, dtype=np.int64)
    total = np.zeros(n)
    prev = np.full(n, -1, dtype=np.int64)
    for i in range(n):
        if not ok[i]:
            continue
        cand = np.flatnonzero(ok[:i] & (x[:i] < x[i]))
        length[i], total[i] = 1, w[i]
        if cand.size:
            j = cand[np.lexsort((length[cand], total[cand]))[-1]]
            length[i], total[i], prev[i] = length[j] + 1, total[j] + w[i], j
    mask = np.zeros(n, dtype=bool)
    if n == 0 or length.max() == 0:
        return mask
    i = int(np.lexsort((length, total))[-1])
    while i >= 0:
        mask[i] = True
        i = int(prev[i])
    return mask


def _isotonic(T: np.ndarray, y: np.ndarray, E: np.ndarray):
    """Weighted isotonic (increasing) regression of ``y(T)`` by pool-adjacent-violators.

    Each pooled block becomes one point at its weighted-mean temperature, so the result
    ``(T_b, y_b, E_b)`` is strictly increasing in both T and y. Weights ``1/E^2`` if all
    errors are positive, else equal; ``E_b`` is the propagated error of the block mean.
    """
    w = 1.0 / E**2 if np.all(E > 0) else np.ones_like(y)
    blocks: list[list[float]] = []  # [sum w, sum w y, sum w T, sum w^2 E^2]
    for wi, yi, ti, ei in zip(w, y, T, E):
        blocks.append([wi, wi * yi, wi * ti, wi * wi * ei * ei])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][0] >= blocks[-1][1] / blocks[-1][0]:
            last = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], last)]
    b = np.array(blocks)
    return b[:, 2] / b[:, 0], b[:, 1] / b[:, 0], np.sqrt(b[:, 3]) / b[:, 0]


def _invert_curve(T, O, E, target, target_err, edge_sigma: float):
    """Solve ``O(T~) = target`` on the monotone (isotonic) fit of the curve ``(T, O)``.

    Returns ``(T~, var(T~), (dO/dT)^2)`` arrays like ``target``; NaN where ``target``
    is outside the curve's range shrunk by ``edge_sigma`` combined errors at each end.
    """
    ok = np.isfinite(T) & np.isfinite(O) & np.isfinite(E)
    T, O, E = T[ok], O[ok], E[ok]
    nan = np.full(target.shape, np.nan)
    if T.size < 2:
        return nan, nan, nan
    order = np.argsort(T)
    T, O, E = T[order], O[order], E[order]
    sgn = 1.0 if np.polyfit(T, O, 1)[0] >= 0 else -1.0
    T, x, E = _isotonic(T, sgn * O, E)
    if T.size < 2:
        return nan, nan, nan
    y = sgn * target
    lo = x[0] + edge_sigma * np.sqrt(target_err**2 + E[0] ** 2)
    hi = x[-1] - edge_sigma * np.sqrt(target_err**2 + E[-1] ** 2)
    inside = np.isfinite(y) & (y >= lo) & (y <= hi)
    k, frac = _segment(x, np.where(inside, y, x[0]))
    Tt = T[k] + frac * (T[k + 1] - T[k])
    # slope for the error: secant over three segments around the match (k-1 .. k+2), equal
    # to the local slope up to O(h^2) where the curve is resolved, but not inflated by
    # noise where it is not (a steep noisy step would claim a too small error)
    a, b = np.maximum(k - 1, 0), np.minimum(k + 2, x.size - 1)
    slope = (x[b] - x[a]) / (T[b] - T[a])  # > 0, in units of sgn*O per T
    # linear propagation through T~ = T_k + h (y - x_k) / (x_{k+1} - x_k)
    var = (target_err**2 + ((1 - frac) * E[k]) ** 2 + (frac * E[k + 1]) ** 2) / slope**2
    return (np.where(inside, Tt, np.nan), np.where(inside, var, np.nan),
            np.where(inside, slope**2, np.nan))


def fit_flow(T_grid, mc_small: Mapping[str, object], blocked: Mapping[str, object],
             mc_errors: Mapping[str, object] | None = None,
             blocked_errors: Mapping[str, object] | None = None,
             T_small=None, observables=None, max_err: float | None = None,
             edge_sigma: float = 2.0) -> TemperatureFlow:
    """Fit the flow ``f(T_i)`` by matching blocked observables to the small-lattice MC curves.

    Parameters
    ----------
    T_grid : array_like, shape (n,)
        Temperatures ``T_i`` of the size-L Monte Carlo that was blocked (strictly increasing
        after sorting; the result is on the sorted grid).
    mc_small : {name: array (m,)}
        Means of each observable from size-L/2 Monte Carlo, on ``T_small`` (default
        ``T_grid``), e.g. ``{"abs_m": ..., "energy": ...}``. Use monotone observables
        (<|m|>, energy per site, G(r)); chi or C peak and are rejected only partly by the
        monotone restriction.
    blocked : {name: array (n,)}
        Means of the same observables on the blocked (L -> L/2) configurations at ``T_i``.
    mc_errors, blocked_errors : same keys, optional
        Standard errors, used for weights and ``f_err``. A key missing from one mapping
        counts as zero error; an observable missing from both (while the other
        observables have errors) is treated as exact and overrides them.
    T_small : array_like, shape (m,), optional
        Temperature grid of ``mc_small`` if it differs from ``T_grid``.
    observables : sequence of str, optional
        Names to use (default: the keys of ``blocked`` also in ``mc_small``).
    max_err : float, optional
        Discard grid points with ``f_err > max_err`` (units of T), e.g. where only a flat
        observable is left near the ends of the grid.
    edge_sigma : float
        With errors, a blocked value is only matched if it lies at least ``edge_sigma``
        combined standard errors inside the range of the small-lattice curve: a value
        whose true match lies just beyond the grid would otherwise be pulled onto the
        grid's end with an error bar that does not cover the truth.

    Returns
    -------
    TemperatureFlow
        See the module docstring for the matching, the combination of observables, the
        error propagation and how non-monotone data are handled.
    """
    T = np.asarray(T_grid, dtype=np.float64).ravel()
    order = np.argsort(T)
    T = T[order]
    Ts = T if T_small is None else np.asarray(T_small, dtype=np.float64).ravel()
    names = [k for k in blocked if k in mc_small] if observables is None else [str(o) for o in observables]
    if not names:
        raise ValueError("fit_flow: no observable is present in both mc_small and blocked")
    has_err = mc_errors is not None or blocked_errors is not None
    est, var, w0 = [], [], []
    for name in names:
        if name not in mc_small or name not in blocked:
            raise ValueError(f"fit_flow: observable {name!r} is missing from mc_small or blocked")
        O = np.asarray(mc_small[name], dtype=np.float64).ravel()
        B = np.asarray(blocked[name], dtype=np.float64).ravel()
        if O.shape != Ts.shape or B.shape != (T.size,):
            raise ValueError(f"fit_flow: {name!r}: mc_small needs {Ts.size} values (T_small), "
                             f"blocked {T.size} (T_grid); got {O.size} and {B.size}")
        E = np.zeros_like(O) if mc_errors is None or name not in mc_errors else \
            np.asarray(mc_errors[name], dtype=np.float64).ravel()
        BE = np.zeros_like(B) if blocked_errors is None or name not in blocked_errors else \
            np.asarray(blocked_errors[name], dtype=np.float64).ravel()
        if E.shape != O.shape or BE.shape != B.shape:
            raise ValueError(f"fit_flow: {name!r}: error arrays must match the means' shapes")
        t, v, w = _invert_curve(Ts, O, E, B[order], BE[order], float(edge_sigma))
        est.append(t)
        var.append(v)
        w0.append(w)
    est, var, w0 = np.array(est), np.array(var), np.array(w0)
    f, f_err = _combine(est, var, w0, has_err)
    valid = np.isfinite(f)
    if max_err is not None:
        valid &= f_err <= max_err
    with np.errstate(divide="ignore"):
        weight = None if not has_err else 1.0 / f_err**2
    valid &= _longest_increasing(np.where(valid, f, np.nan), weight)
    if valid.sum() < 2:
        raise ValueError("fit_flow: fewer than two grid points have a flow estimate; the blocked "
                         "observables lie outside the range of the small-lattice curves — widen "
                         "the temperature grid of the small-lattice Monte Carlo")
    return TemperatureFlow(T=T, f=f, f_err=f_err, valid=valid, observables=tuple(names))


def _combine(est: np.ndarray, var: np.ndarray, w0: np.ndarray, has_err: bool):
    """Weighted mean over observables (axis 0) of the T~ estimates, and its error."""
    n = est.shape[1]
    f, f_err = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        ok = np.isfinite(est[:, i])
        if not ok.any():
            continue
        t = est[ok, i]
        if not has_err:
            w = w0[ok, i]
            f[i] = (w * t).sum() / w.sum()
            continue
        v = var[ok, i]
        exact = v == 0
        if exact.any():  # error-free observables dominate
            f[i], f_err[i] = t[exact].mean(), 0.0
        else:
            w = 1.0 / v
            f[i], f_err[i] = (w * t).sum() / w.sum(), 1.0 / np.sqrt(w.sum())
    return f, f_err
