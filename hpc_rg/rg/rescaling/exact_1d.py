"""Exact temperature flow of the 1D Ising chain under decimation (b = 2).

``K' = 1/2 ln cosh 2K`` (Efthymiou, Beach & Melko, PRB 99, 075113 (2019), eq. 5), its
inverse, the temperatures they give (units of J, ``K = J/T``, k_B = 1), and the flow as a
:class:`~hpc_rg.rg.rescaling.flow.TemperatureFlow` on a grid. Vectorised NumPy.
"""

from __future__ import annotations

import math

import numpy as np

from .flow import TemperatureFlow

__all__ = ["decimation_coupling", "inverse_decimation_coupling", "decimated_temperature",
           "superresolved_temperature", "ising1d_flow"]


def _ln2cosh(x):
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2.0 * ax))


def decimation_coupling(K):
    """Coupling after one decimation (b = 2) of the 1D Ising chain: ``K' = 1/2 ln cosh 2K``.

    Equivalently ``tanh K' = tanh^2 K``. Vectorised; computed as
    ``1/2 ln(1 + 2 sinh^2 K)`` for |K| < 20 (accurate as K -> 0, where K' ~ K^2) and as
    ``(ln(2 cosh 2K) - ln 2) / 2`` beyond (no overflow). ``K' <= |K|``: the RG flows to
    K = 0 (T = infinity). Efthymiou et al. 2019, eq. 5.
    """
    K = np.asarray(K, dtype=np.float64)
    small = np.abs(K) < 20.0
    Ks = np.where(small, K, 0.0)
    out = np.where(small, 0.5 * np.log1p(2.0 * np.sinh(Ks) ** 2),
                   0.5 * (_ln2cosh(2.0 * K) - math.log(2.0)))
    return out[()] if out.ndim == 0 else out


def inverse_decimation_coupling(Kp):
    """Inverse of :func:`decimation_coupling`: ``K = 1/2 arccosh(exp(2 K'))``, ``K' >= 0``.

    Returns the ferromagnetic branch ``K >= 0`` (the map is even in K). Computed as
    ``K' + 1/2 ln(1 + sqrt(1 - exp(-4 K')))``, exact for small and large K'. The inverse
    RG (super-resolution) flows to K = infinity (T = 0).
    """
    Kp = np.asarray(Kp, dtype=np.float64)
    if np.any(Kp < 0):
        raise ValueError("inverse_decimation_coupling: K' = 1/2 ln cosh 2K is >= 0; got a negative K'")
    with np.errstate(over="ignore", invalid="ignore"):
        out = Kp + 0.5 * np.log1p(np.sqrt(-np.expm1(-4.0 * Kp)))
    out = np.where(np.isinf(Kp), np.inf, out)
    return out[()] if out.ndim == 0 else out


def _temperature_map(T, J, coupling_map):
    T = np.asarray(T, dtype=np.float64)
    if np.any(T <= 0) or J <= 0:
        raise ValueError("1D decimation temperatures: need T > 0 and J > 0")
    with np.errstate(divide="ignore"):
        out = J / coupling_map(J / T)
    out = np.asarray(out, dtype=np.float64)
    return out[()] if out.ndim == 0 else out


def decimated_temperature(T, J: float = 1.0):
    """Temperature of the 1D ring after one decimation step: ``T' = J / K'(J/T)``.

    ``T' > T`` (flow towards T = infinity); ``T = inf`` maps to ``inf``. Vectorised.
    """
    return _temperature_map(T, J, decimation_coupling)


def superresolved_temperature(T, J: float = 1.0):
    """Temperature of a 1D configuration super-resolved from one at temperature T.

    ``T_SR = J / K(J/T)`` with ``K`` = :func:`inverse_decimation_coupling`; ``T_SR < T``
    (the inverse RG flows towards T = 0). Inverse of :func:`decimated_temperature`.
    """
    return _temperature_map(T, J, inverse_decimation_coupling)


def ising1d_flow(T_grid, J: float = 1.0) -> TemperatureFlow:
    """Exact flow of one 1D decimation step, ``f(T) = J / K'(J/T)`` with ``K' = 1/2 ln cosh 2K``.

    ``f(T) > T`` everywhere (the only finite fixed point is T = 0), so ``iterate_inverse``
    flows towards T = 0 and eventually leaves the grid. For tests and 1D runs.
    """
    T = np.sort(np.asarray(T_grid, dtype=np.float64).ravel())
    f = np.asarray(decimated_temperature(T, J), dtype=np.float64)
    return TemperatureFlow(T=T, f=f, f_err=np.zeros_like(T), valid=np.ones(T.size, dtype=bool),
                           observables=("exact_1d_decimation",))
