"""Thermodynamic observables with jackknife errors from per-sample series.

Conventions (k_B = 1, energies in units of J):

* ``e``: energy per site ``E/N`` of each sample; ``m``: magnetization per site
  ``M/N`` (signed); ``q``: spin overlap ``(1/N) sum_x s1_x s2_x`` of two replicas.
* Samples run along axis 0; trailing axes are carried along (e.g. one column per
  temperature, with ``beta`` an array broadcasting against them).
* Independent chains may be concatenated chain after chain along axis 0; choose
  ``n_bins`` as a multiple of the number of chains (see :mod:`hpc_rg.analysis.stats`).
* Finite-lattice susceptibility uses ``|m|`` (the ``Z_2`` symmetric ``<m>`` vanishes
  on a finite lattice): ``chi = beta N (<m^2> - <|m|>^2)``. ``chi_full = beta N <m^2>``
  is :func:`susceptibility` with ``connected=False``.

Every function returns ``(value, error)`` with jackknife errors.
"""

from __future__ import annotations

import numpy as np

from hpc_rg.analysis.stats import jackknife

__all__ = ["mean", "specific_heat", "susceptibility", "binder_cumulant",
           "spin_glass_susceptibility", "spin_glass_binder"]


def mean(x, n_bins: int = 32):
    """Mean of a per-sample series with jackknife (= binning) error."""
    return jackknife(lambda a: a, np.asarray(x, dtype=np.float64), n_bins=n_bins)


def specific_heat(e, beta, N: int, n_bins: int = 32):
    """Specific heat per site ``C = beta^2 N (<e^2> - <e>^2)``.

    Parameters
    ----------
    e : array_like, shape (n_samples, ...)
        Energy per site of each sample.
    beta : float or array broadcasting against ``e.shape[1:]``
    N : int
        Number of sites.
    """
    e = np.asarray(e, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    return jackknife(lambda e1, e2: b * b * N * (e2 - e1 * e1), e, e * e, n_bins=n_bins)


def susceptibility(m, beta, N: int, n_bins: int = 32, connected: bool = True):
    """Magnetic susceptibility per site.

    ``chi = beta N (<m^2> - <|m|>^2)`` (``connected=True``, the finite-lattice estimator of
    the connected susceptibility) or ``chi = beta N <m^2>`` (``connected=False``).

    Parameters
    ----------
    m : array_like, shape (n_samples, ...), magnetization per site (signed)
    beta : float or array broadcasting against ``m.shape[1:]``
    N : int, number of sites
    """
    m = np.asarray(m, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    if connected:
        return jackknife(lambda a1, a2: b * N * (a2 - a1 * a1), np.abs(m), m * m, n_bins=n_bins)
    return jackknife(lambda a2: b * N * a2, m * m, n_bins=n_bins)


def binder_cumulant(m, n_bins: int = 32):
    """Binder cumulant ``U4 = 1 - <m^4> / (3 <m^2>^2)`` (2/3 ordered, 0 Gaussian disorder)."""
    m = np.asarray(m, dtype=np.float64)
    m2 = m * m
    return jackknife(lambda a2, a4: 1.0 - a4 / (3.0 * a2 * a2), m2, m2 * m2, n_bins=n_bins)


def _disorder_moments(q):
    """Thermal averages <q^2>, <q^4> per disorder sample: shape (n_disorder, ...)."""
    q = np.asarray(q, dtype=np.float64)
    if q.ndim < 2:
        raise ValueError("q must have shape (n_samples, n_disorder, ...)")
    q2 = q * q
    return q2.mean(axis=0), (q2 * q2).mean(axis=0)


def spin_glass_susceptibility(q, N: int, n_bins: int | None = None):
    """Spin-glass susceptibility ``chi_SG = N [<q^2>]`` (``[.]`` = disorder average).

    Parameters
    ----------
    q : array_like, shape (n_samples, n_disorder, ...)
        Overlap per sample (thermal axis 0) for each disorder sample (axis 1).
    N : int, number of sites
    n_bins : int, optional
        Jackknife blocks over disorder samples (default: one per sample).

    Notes
    -----
    Thermal averages are taken per disorder sample first; the error comes from the
    sample-to-sample spread (jackknife over disorder samples), which dominates in practice.
    """
    q2, _ = _disorder_moments(q)
    nb = q2.shape[0] if n_bins is None else n_bins
    return jackknife(lambda a2: N * a2, q2, n_bins=nb)


def spin_glass_binder(q, n_bins: int | None = None):
    """Binder ratio of the overlap ``g = (3 - [<q^4>] / [<q^2>]^2) / 2`` (1 ordered, 0 paramagnet).

    Same input and error treatment as :func:`spin_glass_susceptibility` (disorder averages
    of the moments are taken before the ratio, as is standard, e.g. Katzgraber et al.,
    PRB 73, 224432 (2006)).
    """
    q2, q4 = _disorder_moments(q)
    nb = q2.shape[0] if n_bins is None else n_bins
    return jackknife(lambda a2, a4: 0.5 * (3.0 - a4 / (a2 * a2)), q2, q4, n_bins=nb)
