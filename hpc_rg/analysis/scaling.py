"""Finite-size scaling at criticality across the levels of the inverse RG.

At the critical temperature (Efthymiou, Beach & Melko, PRB 99, 075113 (2019), Sec. IV.A)::

    <|m|> ~ L^(-beta/nu),   chi ~ L^(gamma/nu),   G(r = L/4), G(r = L/2) ~ L^(-(d-2+eta)),

so each exponent is the slope of a straight line in ``(ln L, ln y)``. The workflow for
super-resolved ensembles (one per size, 16 .. 512) is::

    levels = [level_observables(f[f"L{L}"], dims=2, T=T_C_2D) for L in sizes]  # streams
    exps = critical_exponents(levels)          # one training
    combine_repeats([e.as_dict() for e in exps_over_trainings])  # mean, standard error

Definitions (k_B = 1, energies in units of J, ``N = L^d``):

* ``m = (1/N) sum_x s_x`` per configuration; ``<|m|>`` (the Z_2-symmetric ``<m>``
  vanishes on a finite lattice).
* ``chi = N (<m^2> - <|m|>^2) / T`` (connected finite-lattice estimator, the convention
  of :mod:`hpc_rg.analysis.observables`); ``chi_full = N <m^2> / T``. Both scale as
  ``L^(gamma/nu)`` at T_c; :func:`critical_exponents` uses ``chi`` unless told otherwise.
* ``G(r)`` is the full spatially averaged correlator of
  :func:`hpc_rg.analysis.correlation.two_point`.
* Errors: jackknife over configurations (``n_bins`` blocks of consecutive
  configurations, so autocorrelated MC input is handled if blocks are long enough).

Not accounted for: configurations at different levels descend from the same MC input
and are correlated, so the points of a fit across L are not independent; the fit errors
treat them as independent. The spread over independent trainings
(:func:`combine_repeats`, as in Efthymiou's Table I) captures both effects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from hpc_rg.analysis import observables as obs
from hpc_rg.analysis.correlation import as_numpy, magnetization, two_point

__all__ = ["PowerLawFit", "fit_power_law", "LevelObservables", "config_series",
           "level_observables", "levels_observables", "CriticalExponents",
           "critical_exponents", "combine_repeats", "ISING2D_EXPONENTS"]

#: Exact 2D Ising ratios (nu = 1, so gamma/nu = gamma and beta/nu = beta).
ISING2D_EXPONENTS = {"gamma_nu": 7.0 / 4.0, "beta_nu": 1.0 / 8.0, "eta": 1.0 / 4.0}


# ----------------------------------------------------------------------------------------
# power-law fit
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PowerLawFit:
    """Result of ``ln y = intercept + slope * ln L``, i.e. ``y = exp(intercept) L^slope``.

    ``chi2_dof`` is NaN without ``yerr`` or with fewer than 3 points; ``r`` is the Pearson
    correlation coefficient of ``(ln L, ln y)`` (unweighted, as quoted by Efthymiou).
    """

    slope: float
    slope_err: float
    intercept: float
    intercept_err: float
    chi2_dof: float
    r: float
    n_points: int

    def __call__(self, L):
        """The fitted power law ``exp(intercept) * L**slope``."""
        return np.exp(self.intercept) * np.asarray(L, dtype=np.float64) ** self.slope


def fit_power_law(L, y, yerr=None, rescale: bool = False) -> PowerLawFit:
    """Weighted least-squares straight line in log-log.

    Parameters
    ----------
    L : array_like, shape (n,), positive sizes (or distances)
    y : array_like, shape (n,), positive values
    yerr : array_like, shape (n,), optional
        Standard errors of ``y``; propagated to ``sigma(ln y) = yerr / y`` and used as
        weights ``1 / sigma^2``. Without them: ordinary least squares, parameter errors
        from the residual scatter ``s^2 = RSS / (n - 2)`` (NaN for n = 2).
    rescale : bool
        With ``yerr``: multiply parameter errors by ``sqrt(chi2_dof)`` when it exceeds 1
        (PDG convention). Default: pure propagated errors.

    Returns
    -------
    PowerLawFit

    Notes
    -----
    With ``w_i = 1/sigma_i^2``, ``S = sum w``, ``Sx = sum w x``, ``Sxx = sum w x^2`` and
    ``D = S Sxx - Sx^2``: ``var(slope) = S / D``, ``var(intercept) = Sxx / D``.
    """
    L = np.asarray(L, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if L.shape != y.shape or L.size < 2:
        raise ValueError(f"fit_power_law: need >= 2 points and matching shapes, got {L.shape} and {y.shape}")
    if np.any(L <= 0) or np.any(y <= 0) or not (np.all(np.isfinite(L)) and np.all(np.isfinite(y))):
        raise ValueError("fit_power_law: L and y must be finite and positive (log-log fit)")
    x, Y = np.log(L), np.log(y)
    n = x.size
    if yerr is None:
        w = np.ones(n)
    else:
        yerr = np.asarray(yerr, dtype=np.float64).ravel()
        if yerr.shape != y.shape or np.any(~np.isfinite(yerr)) or np.any(yerr <= 0):
            raise ValueError("fit_power_law: yerr must be finite, positive and match y")
        w = (y / yerr) ** 2
    S, Sx, Sxx = w.sum(), (w * x).sum(), (w * x * x).sum()
    Sy, Sxy = (w * Y).sum(), (w * x * Y).sum()
    D = S * Sxx - Sx * Sx
    if D <= 0:
        raise ValueError("fit_power_law: all L are equal; the slope is undetermined")
    slope = (S * Sxy - Sx * Sy) / D
    intercept = (Sxx * Sy - Sx * Sxy) / D
    chi2 = float((w * (Y - intercept - slope * x) ** 2).sum())
    dof = n - 2
    var_s, var_i = S / D, Sxx / D
    if yerr is None:
        scale = chi2 / dof if dof > 0 else np.nan
        var_s, var_i = var_s * scale, var_i * scale
        chi2_dof = np.nan
    else:
        chi2_dof = chi2 / dof if dof > 0 else np.nan
        if rescale and dof > 0 and chi2_dof > 1:
            var_s, var_i = var_s * chi2_dof, var_i * chi2_dof
    with np.errstate(invalid="ignore", divide="ignore"):
        r = float(np.corrcoef(x, Y)[0, 1]) if np.ptp(Y) > 0 else np.nan
    return PowerLawFit(float(slope), float(np.sqrt(var_s)), float(intercept), float(np.sqrt(var_i)),
                       float(chi2_dof), r, n)


# ----------------------------------------------------------------------------------------
# observables of one level (one lattice size), streamed
# ----------------------------------------------------------------------------------------

def _lattice_size(shape: tuple[int, ...], dims: int) -> int:
    if len(shape) != dims + 1:
        raise ValueError(f"configurations must have shape (n_configs, L{', L' * (dims - 1)}), got {shape}")
    sizes = set(shape[1:])
    if len(sizes) != 1:
        raise ValueError(f"finite-size scaling needs a hypercubic lattice, got lattice shape {shape[1:]}")
    return int(shape[1])


def config_series(configs, dims: int, batch_size: int = 256) -> dict[str, np.ndarray]:
    """Per-configuration ``m``, ``G(L/4)``, ``G(L/2)``, read ``batch_size`` configurations at a time.

    Parameters
    ----------
    configs : array, h5py.Dataset, torch.Tensor, or anything with ``.shape`` and slicing
        Shape (n_configs, L, ..., L) (``dims`` lattice axes), spins +-1 (int8 typical).
        Only ``configs[i:i + batch_size]`` is in memory at a time, so a 10^4 x 512^2 int8
        dataset (2.6 GB) can be passed straight from an HDF5 file.
    dims : int
    batch_size : int

    Returns
    -------
    dict of float64 arrays, shape (n_configs,): ``"m"`` (magnetization per site, signed),
    ``"g_quarter"`` (G at r = L//4), ``"g_half"`` (G at r = L//2).
    """
    shape = tuple(int(s) for s in configs.shape)
    L = _lattice_size(shape, dims)
    n = shape[0]
    batch_size = max(1, int(batch_size))
    out = {k: np.empty(n) for k in ("m", "g_quarter", "g_half")}
    for i in range(0, n, batch_size):
        a = as_numpy(configs[i:i + batch_size])
        j = i + a.shape[0]
        out["m"][i:j] = magnetization(a, dims)
        out["g_quarter"][i:j] = two_point(a, dims, L // 4)
        out["g_half"][i:j] = two_point(a, dims, L // 2)
    return out


@dataclass(frozen=True)
class LevelObservables:
    """Observables of one lattice size with jackknife errors (see the module docstring)."""

    L: int
    dims: int
    T: float
    n_configs: int
    abs_m: float
    abs_m_err: float
    m2: float
    m2_err: float
    chi: float
    chi_err: float
    chi_full: float
    chi_full_err: float
    binder: float
    binder_err: float
    g_quarter: float
    g_quarter_err: float
    g_half: float
    g_half_err: float

    def as_dict(self) -> dict[str, float]:
        """Flat ``{name: value}`` (for HDF5 attributes or tables)."""
        return dataclasses.asdict(self)


def level_observables(configs, dims: int, T: float, n_bins: int = 32,
                      batch_size: int = 256) -> LevelObservables:
    """Observables of one ensemble of size L at temperature T, streamed in batches.

    Parameters
    ----------
    configs : (n_configs, L, ..., L), see :func:`config_series`
    dims : int, lattice dimension d
    T : float, temperature (units of J); enters chi only
    n_bins : int, jackknife blocks (reduced to ``n_configs`` if fewer)
    batch_size : int, configurations per read

    Returns
    -------
    LevelObservables
        ``<|m|>``, ``<m^2>``, ``chi = N (<m^2> - <|m|>^2)/T``, ``chi_full = N <m^2>/T``,
        Binder ``U4 = 1 - <m^4>/(3 <m^2>^2)``, ``G(L//4)``, ``G(L//2)``.
    """
    s = config_series(configs, dims, batch_size)
    n = s["m"].size
    L = _lattice_size(tuple(int(v) for v in configs.shape), dims)
    N = L**dims
    nb = min(int(n_bins), n)
    if nb < 2:
        raise ValueError(f"level_observables: need at least 2 configurations, got {n}")
    beta = 1.0 / float(T)
    m = s["m"]
    vals = {
        "abs_m": obs.mean(np.abs(m), nb),
        "m2": obs.mean(m * m, nb),
        "chi": obs.susceptibility(m, beta, N, nb, connected=True),
        "chi_full": obs.susceptibility(m, beta, N, nb, connected=False),
        "binder": obs.binder_cumulant(m, nb),
        "g_quarter": obs.mean(s["g_quarter"], nb),
        "g_half": obs.mean(s["g_half"], nb),
    }
    flat: dict[str, Any] = {}
    for k, (v, e) in vals.items():
        flat[k], flat[k + "_err"] = float(v), float(e)
    return LevelObservables(L=L, dims=int(dims), T=float(T), n_configs=n, **flat)


def levels_observables(configs_by_L: Mapping[Any, Any], dims: int, T, n_bins: int = 32,
                       batch_size: int = 256) -> list[LevelObservables]:
    """:func:`level_observables` for several sizes, sorted by L.

    ``configs_by_L`` maps a label (typically L) to each size's configurations; ``T`` is
    one temperature or a mapping with the same keys (e.g. effective temperatures from
    :class:`hpc_rg.rg.rescaling.TemperatureFlow`). Integer keys must equal the lattice size.
    """
    out = []
    for key, conf in configs_by_L.items():
        t = T[key] if isinstance(T, Mapping) else T
        lev = level_observables(conf, dims, t, n_bins=n_bins, batch_size=batch_size)
        if isinstance(key, (int, np.integer)) and int(key) != lev.L:
            raise ValueError(f"levels_observables: key {key} does not match lattice size L={lev.L}")
        out.append(lev)
    return sorted(out, key=lambda lv: lv.L)


# ----------------------------------------------------------------------------------------
# exponents
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CriticalExponents:
    """Exponent ratios from log-log fits over sizes, each with its fit error.

    ``eta_quarter``/``eta_half`` come from G(L/4)/G(L/2) (Efthymiou's eta_1/eta_2).
    ``fits`` holds the underlying :class:`PowerLawFit` per observable.
    """

    gamma_nu: float
    gamma_nu_err: float
    beta_nu: float
    beta_nu_err: float
    eta_quarter: float
    eta_quarter_err: float
    eta_half: float
    eta_half_err: float
    sizes: tuple[int, ...]
    fits: dict[str, PowerLawFit] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, float]:
        """The eight numbers (no sizes, no fits), e.g. for :func:`combine_repeats`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("sizes", "fits")}


def critical_exponents(levels: Sequence[LevelObservables], chi: str = "connected",
                       L_min: int | None = None, weighted: bool = True) -> CriticalExponents:
    """gamma/nu, beta/nu and eta from power-law fits over the levels.

    Parameters
    ----------
    levels : sequence of LevelObservables (>= 2 sizes after ``L_min``; all the same ``dims``)
    chi : ``"connected"`` (``chi``) or ``"full"`` (``chi_full``)
    L_min : int, optional, drop sizes below it (corrections to scaling)
    weighted : bool, use the jackknife errors as fit weights (else unweighted fits)

    Returns
    -------
    CriticalExponents
        ``gamma_nu`` = slope of chi; ``beta_nu`` = -slope of <|m|>;
        ``eta = -slope - (d - 2)`` for G(L/4) and G(L/2).
    """
    if chi not in ("connected", "full"):
        raise ValueError(f"critical_exponents: chi must be 'connected' or 'full', got {chi!r}")
    levs = sorted((lv for lv in levels if L_min is None or lv.L >= L_min), key=lambda lv: lv.L)
    if len(levs) < 2 or len({lv.L for lv in levs}) < 2:
        raise ValueError("critical_exponents: need at least two different lattice sizes")
    dims = {lv.dims for lv in levs}
    if len(dims) != 1:
        raise ValueError(f"critical_exponents: levels mix lattice dimensions {sorted(dims)}")
    d = dims.pop()
    L = np.array([lv.L for lv in levs], dtype=np.float64)
    chi_key = "chi" if chi == "connected" else "chi_full"

    def fit(key):
        y = [getattr(lv, key) for lv in levs]
        e = [getattr(lv, key + "_err") for lv in levs] if weighted else None
        return fit_power_law(L, y, e)

    fits = {k: fit(k) for k in (chi_key, "abs_m", "g_quarter", "g_half")}
    fq, fh = fits["g_quarter"], fits["g_half"]
    return CriticalExponents(
        gamma_nu=fits[chi_key].slope, gamma_nu_err=fits[chi_key].slope_err,
        beta_nu=-fits["abs_m"].slope, beta_nu_err=fits["abs_m"].slope_err,
        eta_quarter=-fq.slope - (d - 2), eta_quarter_err=fq.slope_err,
        eta_half=-fh.slope - (d - 2), eta_half_err=fh.slope_err,
        sizes=tuple(int(v) for v in L), fits=fits)


def combine_repeats(values, axis: int = 0):
    """Mean and standard error over independent repetitions (e.g. trainings).

    Parameters
    ----------
    values : array_like with repetitions along ``axis``, or a sequence of mappings
        (e.g. ``[e.as_dict() for e in exponents]``) with the same numeric keys.

    Returns
    -------
    (mean, stderr) with ``stderr = std(ddof=1) / sqrt(n)``; for mappings a dict
    ``{key: (mean, stderr)}``. Needs at least 2 repetitions.
    """
    if isinstance(values, Sequence) and values and all(isinstance(v, Mapping) for v in values):
        keys = list(values[0])
        return {k: combine_repeats([float(v[k]) for v in values]) for k in keys}
    x = np.asarray(values, dtype=np.float64)
    x = np.moveaxis(x, axis, 0)
    n = x.shape[0]
    if n < 2:
        raise ValueError("combine_repeats: need at least 2 repetitions for a standard error")
    mean = x.mean(axis=0)
    se = x.std(axis=0, ddof=1) / np.sqrt(n)
    if mean.ndim == 0:
        return float(mean), float(se)
    return mean, se
