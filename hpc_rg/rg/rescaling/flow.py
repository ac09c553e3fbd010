"""Numerical temperature flow of one blocking step, and its inverse for super-resolution.

A blocking step L -> L/2 applied to Monte Carlo configurations at temperature T gives
configurations whose observables match those of L/2 Monte Carlo at some other temperature
``T~ = f(T)``. ``f`` is the (one-parameter projection of the) RG flow: it pushes T away
from T_c (towards T = 0 or infinity). A network trained to invert the blocking, applied
to L/2 Monte Carlo input at temperature T, therefore produces L configurations at the
effective temperature ``f^{-1}(T)`` (towards T_c), and n super-resolution levels give
``f^{-n}(T)``. Efthymiou, Beach & Melko, PRB 99, 075113 (2019), Sec. IV (their
``f: T -> T~``); Bachtis et al. (inverse RG flows towards the fixed point).

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

__all__ = ["TemperatureFlow", "flow_to_meta", "flow_from_meta"]


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


def flow_to_meta(flow: TemperatureFlow | None):
    """Plain (JSON-like) form for the model file: :meth:`TemperatureFlow.to_attrs` with
    lists for arrays; None stays None."""
    if flow is None:
        return None
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in flow.to_attrs().items()}


def flow_from_meta(meta) -> TemperatureFlow | None:
    """Inverse of :func:`flow_to_meta` (None or empty gives None)."""
    if not meta:
        return None
    return TemperatureFlow.from_attrs({k: (np.asarray(v) if isinstance(v, list) else v)
                                       for k, v in meta.items()})
