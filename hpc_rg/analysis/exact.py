"""Exact results used to validate the samplers.

* 1D Ising ring (transfer matrix), N sites, periodic, zero field.
* 2D Ising on a finite L x L torus: Kaufman's exact partition function in the form of
  Ferdinand & Fisher, with analytic first and second derivatives (energy, specific heat).
* 2D Ising infinite volume: Onsager's energy per site.
* Free lattice scalar field (phi^4 at lambda = 0, Bauer parametrisation): <phi_x^2>.
* 1D Ising ring two-point function, used to test super-resolution (Efthymiou, Beach &
  Melko, PRB 99, 075113 (2019), eq. 6); the exact decimation flow (eq. 5) lives in
  :mod:`hpc_rg.rg.rescaling.exact_1d` and is re-exported here.

Units: k_B = 1, energies in units of J; ``K = J / T``.
"""

from __future__ import annotations

import math

import numpy as np

from ..rg.rescaling.exact_1d import (decimated_temperature, decimation_coupling,
                                     inverse_decimation_coupling, superresolved_temperature)

__all__ = ["ising1d_energy", "ising1d_specific_heat", "ising1d_log_z",
           "ising2d_kaufman", "ising2d_log_z", "ising2d_energy", "ising2d_specific_heat",
           "onsager_energy", "T_C_2D", "free_field_phi2",
           "ising1d_two_point", "decimation_coupling", "inverse_decimation_coupling",
           "decimated_temperature", "superresolved_temperature"]

T_C_2D = 2.0 / math.log(1.0 + math.sqrt(2.0))  #: critical temperature of the square lattice, 2.269185...


# ----------------------------------------------------------------------------------------
# 1D ring
# ----------------------------------------------------------------------------------------

def _ring(N: int, T: float, J: float):
    if N < 2:
        raise ValueError("the ring needs N >= 2 sites")
    K = J / T
    t = math.tanh(K)
    tN = t**N
    dlnz = N * t + N * t ** (N - 1) * (1 - t * t) / (1 + tN)
    dg = (((N - 1) * t ** (N - 2) * (1 - t * t) - 2 * tN) * (1 + tN)
          - t ** (N - 1) * (1 - t * t) * N * t ** (N - 1)) / (1 + tN) ** 2
    d2lnz = N * (1 - t * t) * (1 + dg)
    lnz = N * math.log(2 * math.cosh(K)) + math.log1p(tN)
    return K, lnz, dlnz, d2lnz


def ising1d_log_z(N: int, T: float, J: float = 1.0) -> float:
    """``ln Z`` of the periodic Ising ring, ``Z = (2 cosh K)^N + (2 sinh K)^N``."""
    return _ring(N, T, J)[1]


def ising1d_energy(N: int, T: float, J: float = 1.0) -> float:
    """Energy per site of the periodic N-site Ising ring at temperature T (h = 0).

    Notes
    -----
    Transfer matrix eigenvalues ``2 cosh K``, ``2 sinh K``; with ``t = tanh K``,
    ``u = -J [t + t^(N-1) (1 - t^2) / (1 + t^N)]``.
    """
    K, _, dlnz, _ = _ring(N, T, J)
    return -J * dlnz / N


def ising1d_specific_heat(N: int, T: float, J: float = 1.0) -> float:
    """Specific heat per site ``c = K^2 (1/N) d^2 ln Z / dK^2`` of the periodic ring."""
    K, _, _, d2 = _ring(N, T, J)
    return K * K * d2 / N


# ----------------------------------------------------------------------------------------
# 2D torus: Kaufman (1949), Ferdinand & Fisher, Phys. Rev. 185, 832 (1969)
# ----------------------------------------------------------------------------------------

def _ln2cosh(x):
    ax = np.abs(x)
    return ax + np.log1p(np.exp(-2.0 * ax))


def _ln2sinh(x):
    """ln(2 sinh x) for x > 0 (accurate for small and large x)."""
    with np.errstate(divide="ignore"):
        return x + np.log(-np.expm1(-2.0 * x))


def ising2d_kaufman(L: int, T: float, J: float = 1.0):
    """Exact ``(ln Z, d ln Z/dK, d^2 ln Z/dK^2)`` of the L x L periodic Ising model.

    Parameters
    ----------
    L : int
        Linear size (L x L torus, ``N = L^2`` spins), tested up to L = 64 and beyond.
    T : float
        Temperature (units of J, k_B = 1).
    J : float
        Ferromagnetic coupling (> 0).

    Returns
    -------
    (lnZ, dlnZ, d2lnZ) : floats, derivatives w.r.t. ``K = J/T``.

    Notes
    -----
    With ``n = m = L``::

        Z = 1/2 (2 sinh 2K)^(mn/2) sum_{i=1}^4 Z_i,
        Z_1 = prod_{r=0}^{n-1} 2 cosh(m g_{2r+1}/2),  Z_2 = prod 2 sinh(m g_{2r+1}/2),
        Z_3 = prod_{r=0}^{n-1} 2 cosh(m g_{2r}/2),    Z_4 = prod 2 sinh(m g_{2r}/2),
        cosh g_l = cosh 2K coth 2K - cos(pi l / n)   (l >= 1),
        g_0 = 2K + ln tanh K,

    where ``g_0`` changes sign at T_c, so Z_4 < 0 above T_c (Ferdinand & Fisher 1969,
    eqs. 2.1-2.5). Everything is done in logarithms, scaled by the largest term; the
    ``r = 0`` factor of Z_4 is kept explicit so the derivatives are finite at g_0 = 0.
    """
    if J <= 0:
        raise ValueError("ising2d_kaufman: J must be positive (ferromagnet)")
    n = m = int(L)
    K = J / float(T)
    s = math.sinh(2 * K)
    ch = math.cosh(2 * K)
    # c(K) = cosh 2K coth 2K and its K-derivatives
    cp = 2 * ch * (1 - 1 / (s * s))
    cpp = 4 * s - 4 / s + 8 * ch * ch / s**3
    l = np.arange(1, 2 * n)
    theta = np.pi * l / n
    gm1 = (s - 1) ** 2 / s + 2 * np.sin(theta / 2) ** 2  # cosh(g_l) - 1 >= 0
    sh = np.sqrt(gm1 * (gm1 + 2))  # sinh(g_l)
    g = np.log1p(gm1 + sh)
    g1 = cp / sh
    g2 = (cpp - (gm1 + 1) * g1 * g1) / sh
    # l = 0
    g0 = 2 * K + math.log(math.tanh(K))
    g0_1 = 2 + 2 / s
    g0_2 = -4 * ch / (s * s)
    x = np.concatenate([[g0], g]) * (m / 2)
    x1 = np.concatenate([[g0_1], g1]) * (m / 2)
    x2 = np.concatenate([[g0_2], g2]) * (m / 2)
    odd = slice(1, 2 * n, 2)
    even_rest = slice(2, 2 * n, 2)

    def cosh_term(xs, d1, d2):
        th = np.tanh(xs)
        return (_ln2cosh(xs).sum(), (th * d1).sum(), ((1 - th * th) * d1 * d1 + th * d2).sum())

    def sinh_term(xs, d1, d2):  # xs > 0
        ct = 1 / np.tanh(xs)
        return (_ln2sinh(xs).sum(), (ct * d1).sum(), ((1 - ct * ct) * d1 * d1 + ct * d2).sum())

    t1 = cosh_term(x[odd], x1[odd], x2[odd])
    t2 = sinh_term(x[odd], x1[odd], x2[odd])
    t3 = cosh_term(x[0::2], x1[0::2], x2[0::2])
    q = sinh_term(x[even_rest], x1[even_rest], x2[even_rest])  # Z_4 without r = 0
    ln_a4 = _ln2cosh(x[0]) + q[0]  # |2 cosh x0| * Q bounds |Z_4|
    shift = max(t1[0], t2[0], t3[0], ln_a4)
    Z = Z1 = Z2 = 0.0
    for lnt, a, b in (t1, t2, t3):
        w = math.exp(lnt - shift)
        Z += w
        Z1 += w * a
        Z2 += w * (a * a + b)
    A = math.exp(ln_a4 - shift)  # 2 cosh(x0) Q
    S = 0.0 if x[0] == 0 else math.copysign(math.exp(float(_ln2sinh(abs(x[0]))) + q[0] - shift), x[0])
    aq, bq = q[1], q[2]
    Z += S
    Z1 += A * x1[0] + S * aq
    Z2 += S * x1[0] ** 2 + A * x2[0] + 2 * A * x1[0] * aq + S * (aq * aq + bq)
    N = m * n
    lnz = math.log(0.5) + 0.5 * N * math.log(2 * s) + shift + math.log(Z)
    d1 = N * ch / s + Z1 / Z
    d2 = -2 * N / (s * s) + Z2 / Z - (Z1 / Z) ** 2
    return lnz, d1, d2


def ising2d_log_z(L: int, T: float, J: float = 1.0) -> float:
    """``ln Z`` of the L x L periodic Ising model (Kaufman)."""
    return ising2d_kaufman(L, T, J)[0]


def ising2d_energy(L: int, T: float, J: float = 1.0) -> float:
    """Exact energy per site ``u = -J (1/N) d ln Z / dK`` of the L x L torus."""
    _, d1, _ = ising2d_kaufman(L, T, J)
    return -J * d1 / (L * L)


def ising2d_specific_heat(L: int, T: float, J: float = 1.0) -> float:
    """Exact specific heat per site ``c = K^2 (1/N) d^2 ln Z / dK^2`` of the L x L torus."""
    _, _, d2 = ising2d_kaufman(L, T, J)
    K = J / T
    return K * K * d2 / (L * L)


def _ellipk_from_complement(kp: float) -> float:
    """Complete elliptic integral of the first kind K(k) from ``k' = sqrt(1 - k^2)`` (AGM)."""
    a, b = 1.0, float(kp)
    if b == 0.0:
        return math.inf
    for _ in range(64):
        a, b = 0.5 * (a + b), math.sqrt(a * b)
        if abs(a - b) < 1e-16 * a:
            break
    return math.pi / (2.0 * a)


def onsager_energy(T: float, J: float = 1.0) -> float:
    """Onsager's infinite-volume energy per site of the square-lattice Ising model.

    ``u = -J coth 2K [1 + (2/pi) (2 tanh^2 2K - 1) K(k)]``, ``k = 2 sinh 2K / cosh^2 2K``,
    with ``k' = |1 - sinh^2 2K| / cosh^2 2K`` computed directly (accurate near T_c, where
    ``u -> -sqrt(2) J``).
    """
    K = J / T
    sh = math.sinh(2 * K)
    ch2 = 1.0 + sh * sh
    kp = abs(1.0 - sh * sh) / ch2
    pref = 2 * math.tanh(2 * K) ** 2 - 1
    ek = 0.0 if pref == 0.0 else pref * _ellipk_from_complement(kp)
    return -J / math.tanh(2 * K) * (1 + 2 / math.pi * ek)


# ----------------------------------------------------------------------------------------
# Free field
# ----------------------------------------------------------------------------------------

def free_field_phi2(L: int, dims: int, kappa: float) -> float:
    """Exact ``<phi_x^2>`` of the free lattice field (Bauer action with lambda = 0).

    ``S = phi^T A phi`` with ``A = 1 - kappa * adjacency``, so the covariance is
    ``(2A)^{-1}`` and ``<phi_x^2> = (1/N) sum_k 1 / (2 (1 - 2 kappa sum_mu cos k_mu))``,
    ``k_mu = 2 pi n_mu / L``. Requires ``2 d kappa < 1``.
    """
    if not 2 * dims * abs(kappa) < 1:
        raise ValueError(f"free field unstable: need 2*d*|kappa| < 1, got d={dims}, kappa={kappa}")
    c = np.cos(2 * np.pi * np.arange(L) / L)
    tot = np.zeros((L,) * dims)
    for mu in range(dims):
        shape = [1] * dims
        shape[mu] = L
        tot = tot + c.reshape(shape)
    return float(np.mean(1.0 / (2.0 * (1.0 - 2.0 * kappa * tot))))


# ----------------------------------------------------------------------------------------
# 1D ring: two-point function (Efthymiou et al. 2019)
# ----------------------------------------------------------------------------------------

def ising1d_two_point(N, j, K):
    """Exact ``G_N(j) = <s_1 s_{1+j}>`` of the periodic N-site Ising ring at coupling K.

    ``G_N(j; K) = (tanh^j K + tanh^(N-j) K) / (1 + tanh^N K)`` (Efthymiou et al. 2019,
    eq. 6; Baxter, *Exactly Solved Models*, ch. 2).

    Parameters
    ----------
    N : int or int array, number of sites (>= 1)
    j : int or int array, distance, ``0 <= j <= N``
    K : float or array, ``K = J/T`` (dimensionless)

    Returns
    -------
    float or ndarray (broadcast of the inputs)
    """
    N = np.asarray(N)
    j = np.asarray(j)
    if np.any(N < 1) or np.any(j < 0) or np.any(j > N):
        raise ValueError("ising1d_two_point: need N >= 1 and 0 <= j <= N")
    t = np.tanh(np.asarray(K, dtype=np.float64))
    out = (t**j + t ** (N - j)) / (1.0 + t**N)
    return out[()] if out.ndim == 0 else out
