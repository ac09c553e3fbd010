"""Numerical temperature flow of one blocking step, and its inverse for super-resolution.

A blocking step L -> L/2 applied to Monte Carlo configurations at temperature T gives
configurations whose observables match those of L/2 Monte Carlo at some other temperature
``T~ = f(T)``. ``f`` is the (one-parameter projection of the) RG flow: it pushes T away
from T_c (towards T = 0 or infinity). A network trained to invert the blocking, applied
to L/2 Monte Carlo input at temperature T, therefore produces L configurations at the
effective temperature ``f^{-1}(T)`` (towards T_c), and n super-resolution levels give
``f^{-n}(T)``. Efthymiou, Beach & Melko, PRB 99, 075113 (2019), Sec. IV (their
``f: T -> T~``); Bachtis et al. (inverse RG flows towards the fixed point).

Fitting ``f`` (:func:`fit_flow`)
--------------------------------
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

Domain of the maps
------------------
``forward`` is defined on ``[T_0, T_n]`` (first and last valid grid points), ``inverse`` on
``[f(T_0), f(T_n)]``. Outside, they raise ``ValueError`` by default, or return NaN with
``out_of_range="nan"``; there is no extrapolation, because the flow beyond the grid is
not measured and a silently extrapolated temperature would be mislabelled data. If the
grid brackets the fixed point (``f(T_0) < T_0``, ``f(T_n) > T_n``), ``inverse`` maps
``[T_0, T_n]`` into itself, so :meth:`TemperatureFlow.iterate_inverse` of any grid
temperature stays defined for any number of levels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from hpc_rg.analysis.exact import decimated_temperature

__all__ = ["TemperatureFlow", "fit_flow", "ising1d_flow"]


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


def _check_range(x: np.ndarray, lo: float, hi: float, out_of_range: str, what: str) -> np.ndarray:
    """Mask of ``x`` inside ``[lo, hi]``; raises for points outside unless ``out_of_range='nan'``."""
    if out_of_range not in ("raise", "nan"):
        raise ValueError(f"out_of_range must be 'raise' or 'nan', got {out_of_range!r}")
    # a tolerance of a few ulps so that round trips at the ends stay inside
    tol = 1e-12 * max(abs(lo), abs(hi), 1.0)
    inside = (x >= lo - tol) & (x <= hi + tol)
    if out_of_range == "raise" and not np.all(inside):
        bad = x[~inside]
        raise ValueError(f"TemperatureFlow.{what}: T = {bad.ravel()[:5]} is outside [{lo:.6g}, {hi:.6g}], "
                         f"where the measured flow defines it; extend the temperature grid of the flow "
                         f"fit or pass out_of_range='nan'")
    return inside


def _segment(xp: np.ndarray, x: np.ndarray):
    """Segment index k (xp[k] <= x <= xp[k+1]) and fraction, for x inside [xp[0], xp[-1]]."""
    k = np.clip(np.searchsorted(xp, x, side="right") - 1, 0, xp.size - 2)
    frac = (x - xp[k]) / (xp[k + 1] - xp[k])
    return k, frac


@dataclass(frozen=True, eq=False)
class TemperatureFlow:
    """Measured map ``T -> f(T)`` of one blocking step on a temperature grid.

    Attributes
    ----------
    T : ndarray, shape (n,), strictly increasing grid temperatures (units of J)
    f : ndarray, shape (n,), ``f(T_i)``; strictly increasing over the valid points
    f_err : ndarray, shape (n,), standard error of ``f(T_i)`` (NaN if unknown)
    valid : ndarray of bool, shape (n,), points used for interpolation (>= 2)
    observables : tuple of str, observables the map was fitted from (no commas)
    """

    T: np.ndarray
    f: np.ndarray
    f_err: np.ndarray
    valid: np.ndarray
    observables: tuple[str, ...]

    def __post_init__(self):
        T = np.array(self.T, dtype=np.float64).ravel()
        f = np.array(self.f, dtype=np.float64).ravel()
        fe = np.array(self.f_err, dtype=np.float64).ravel()
        v = np.array(self.valid, dtype=bool).ravel()
        if not (T.shape == f.shape == fe.shape == v.shape):
            raise ValueError("TemperatureFlow: T, f, f_err and valid must have the same length")
        if T.size < 2 or np.any(np.diff(T) <= 0) or not np.all(np.isfinite(T)):
            raise ValueError("TemperatureFlow: T must be finite and strictly increasing")
        if v.sum() < 2:
            raise ValueError("TemperatureFlow: need at least two valid points")
        if not np.all(np.isfinite(f[v])) or np.any(np.diff(f[v]) <= 0):
            raise ValueError("TemperatureFlow: f must be finite and strictly increasing "
                             "over the valid points")
        obs = tuple(str(o) for o in self.observables)
        if any("," in o for o in obs):
            raise ValueError("TemperatureFlow: observable names must not contain commas")
        for name, arr in (("T", T), ("f", f), ("f_err", fe), ("valid", v)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "observables", obs)

    # -- the map and its inverse ----------------------------------------------------------

    @property
    def domain(self) -> tuple[float, float]:
        """Interval where :meth:`forward` is defined (first and last valid T)."""
        Tv = self.T[self.valid]
        return float(Tv[0]), float(Tv[-1])

    @property
    def image(self) -> tuple[float, float]:
        """Interval where :meth:`inverse` is defined (``f`` of the domain)."""
        fv = self.f[self.valid]
        return float(fv[0]), float(fv[-1])

    def forward(self, T, out_of_range: str = "raise"):
        """``f(T)``: temperature after one blocking step (piecewise linear). Vectorised."""
        x = np.asarray(T, dtype=np.float64)
        lo, hi = self.domain
        inside = _check_range(x, lo, hi, out_of_range, "forward")
        out = np.where(inside, np.interp(x, self.T[self.valid], self.f[self.valid]), np.nan)
        return out[()] if out.ndim == 0 else out

    def inverse(self, T, out_of_range: str = "raise", return_err: bool = False):
        """``f^{-1}(T)``: effective temperature of one super-resolution level from input at T.

        With ``return_err``, also the propagated error ``sigma_f(T') / f'(T')`` at
        ``T' = f^{-1}(T)`` (``sigma_f`` and ``f'`` piecewise linear / per segment).
        """
        x = np.asarray(T, dtype=np.float64)
        lo, hi = self.image
        inside = _check_range(x, lo, hi, out_of_range, "inverse")
        Tv, fv, ev = self.T[self.valid], self.f[self.valid], self.f_err[self.valid]
        xs = np.clip(np.where(inside, x, lo), lo, hi)
        k, frac = _segment(fv, xs)
        out = np.where(inside, Tv[k] + frac * (Tv[k + 1] - Tv[k]), np.nan)
        out = out[()] if out.ndim == 0 else out
        if not return_err:
            return out
        slope = (fv[k + 1] - fv[k]) / (Tv[k + 1] - Tv[k])
        sig_f = ev[k] + frac * (ev[k + 1] - ev[k])
        err = np.where(inside, sig_f / slope, np.nan)
        return out, (err[()] if err.ndim == 0 else err)

    def iterate_inverse(self, T, n: int, out_of_range: str = "raise", return_err: bool = False):
        """``f^{-n}(T)``: effective temperature after n super-resolution levels (n >= 0).

        With ``return_err``: errors propagated step by step,
        ``sigma_{k+1}^2 = (sigma_k / f'(T_{k+1}))^2 + sigma_inv(T_k)^2``, treating the
        steps as independent (an approximation: every step uses the same measured f).
        """
        n = int(n)
        if n < 0:
            raise ValueError(f"iterate_inverse: n must be >= 0, got {n}")
        x = np.asarray(T, dtype=np.float64)
        err = np.zeros_like(x)
        for _ in range(n):
            y, e_step = self.inverse(x, out_of_range=out_of_range, return_err=True)
            if return_err:
                lo, hi = self.domain
                Tv, fv = self.T[self.valid], self.f[self.valid]
                k, _ = _segment(Tv, np.clip(np.nan_to_num(y, nan=lo), lo, hi))
                slope = (fv[k + 1] - fv[k]) / (Tv[k + 1] - Tv[k])
                err = np.sqrt((err / slope) ** 2 + e_step**2)
            x = np.asarray(y, dtype=np.float64)
        out = x[()] if x.ndim == 0 else x
        if not return_err:
            return out
        err = np.where(np.isfinite(x), err, np.nan)
        return out, (err[()] if err.ndim == 0 else err)

    def fixed_point(self) -> float:
        """Temperature where ``f(T) = T`` (the finite-size estimate of T_c), by linear
        interpolation of ``f(T_i) - T_i`` between the valid points where it first changes
        sign from - to +. Raises ValueError if the grid does not bracket it."""
        Tv, fv = self.T[self.valid], self.f[self.valid]
        d = fv - Tv
        idx = np.flatnonzero((d[:-1] <= 0) & (d[1:] > 0))
        if idx.size == 0:
            raise ValueError("TemperatureFlow.fixed_point: f(T) - T does not change sign "
                             "from - to + on the grid")
        k = int(idx[0])
        if d[k] == 0:
            return float(Tv[k])
        return float(Tv[k] - d[k] * (Tv[k + 1] - Tv[k]) / (d[k + 1] - d[k]))

    # -- HDF5 attributes ----------------------------------------------------------------

    def to_attrs(self, prefix: str = "flow_") -> dict:
        """Flat dict for HDF5 attributes: float64 arrays ``T, f, f_err``, int8 ``valid``
        and ``observables`` as one comma-separated string, keys prefixed by ``prefix``."""
        return {prefix + "T": self.T.copy(), prefix + "f": self.f.copy(),
                prefix + "f_err": self.f_err.copy(), prefix + "valid": self.valid.astype(np.int8),
                prefix + "observables": ",".join(self.observables)}

    @classmethod
    def from_attrs(cls, attrs: Mapping, prefix: str = "flow_") -> "TemperatureFlow":
        """Inverse of :meth:`to_attrs` (a dict or an ``h5py`` AttributeManager)."""
        obs = attrs[prefix + "observables"]
        if isinstance(obs, (bytes, np.bytes_)):
            obs = obs.decode()
        obs = str(obs)
        return cls(T=np.asarray(attrs[prefix + "T"]), f=np.asarray(attrs[prefix + "f"]),
                   f_err=np.asarray(attrs[prefix + "f_err"]),
                   valid=np.asarray(attrs[prefix + "valid"]).astype(bool),
                   observables=tuple(o for o in obs.split(",") if o))


# ----------------------------------------------------------------------------------------
# fitting
# ----------------------------------------------------------------------------------------

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


def ising1d_flow(T_grid, J: float = 1.0) -> TemperatureFlow:
    """Exact flow of one 1D decimation step, ``f(T) = J / K'(J/T)`` with ``K' = 1/2 ln cosh 2K``.

    ``f(T) > T`` everywhere (the only finite fixed point is T = 0), so ``iterate_inverse``
    flows towards T = 0 and eventually leaves the grid. For tests and 1D runs.
    """
    T = np.sort(np.asarray(T_grid, dtype=np.float64).ravel())
    f = np.asarray(decimated_temperature(T, J), dtype=np.float64)
    return TemperatureFlow(T=T, f=f, f_err=np.zeros_like(T), valid=np.ones(T.size, dtype=bool),
                           observables=("exact_1d_decimation",))
