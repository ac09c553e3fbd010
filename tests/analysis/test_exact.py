"""Tests for hpc_rg.analysis.exact against brute-force enumeration and Onsager."""

import math

import numpy as np
import pytest

from hpc_rg.analysis import exact

from physics_helpers import all_configs, boltzmann_moments, brute_bond_energies


@pytest.fixture(scope="module")
def energies_4x4():
    conf = all_configs(16).reshape(-1, 4, 4)
    # vectorised brute force: bonds to the right and down, explicit index arithmetic
    s = conf.astype(np.int64)
    E = np.zeros(s.shape[0], dtype=np.int64)
    for i in range(4):
        for j in range(4):
            E -= s[:, i, j] * (s[:, (i + 1) % 4, j] + s[:, i, (j + 1) % 4])
    return E


@pytest.mark.parametrize("T", [0.5, 1.0, 2.0, 2.269185, exact.T_C_2D, 3.0, 5.0, 50.0])
def test_kaufman_matches_enumeration_4x4(energies_4x4, T):
    E = energies_4x4
    beta = 1.0 / T
    lnz = np.log(np.exp(-beta * (E - E.min())).sum()) - beta * E.min()
    e, c = boltzmann_moments(E.astype(float), beta, 16)
    assert exact.ising2d_log_z(4, T) == pytest.approx(lnz, rel=1e-12)
    assert exact.ising2d_energy(4, T) == pytest.approx(e, rel=1e-11, abs=1e-12)
    assert exact.ising2d_specific_heat(4, T) == pytest.approx(c, rel=1e-9, abs=1e-12)


def test_kaufman_matches_enumeration_2x2_and_coupling():
    conf = all_configs(4).reshape(-1, 2, 2)
    E = brute_bond_energies(conf)
    for T in [1.0, 2.5]:
        e, c = boltzmann_moments(E, 1 / T, 4)
        assert exact.ising2d_energy(2, T) == pytest.approx(e, rel=1e-12)
        assert exact.ising2d_specific_heat(2, T) == pytest.approx(c, rel=1e-10)
    # J scaling: u(T; J) = J u(T/J; 1), c(T; J) = c(T/J; 1)
    assert exact.ising2d_energy(6, 3.0, J=1.5) == pytest.approx(1.5 * exact.ising2d_energy(6, 2.0), rel=1e-12)
    assert exact.ising2d_specific_heat(6, 3.0, J=1.5) == pytest.approx(exact.ising2d_specific_heat(6, 2.0), rel=1e-12)


@pytest.mark.parametrize("N", [2, 3, 5, 8, 12])
@pytest.mark.parametrize("T", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("J", [1.0, -0.7])
def test_ring_matches_enumeration(N, T, J):
    conf = all_configs(N).astype(np.float64)
    E = -J * (conf * np.roll(conf, -1, axis=1)).sum(axis=1)
    e, c = boltzmann_moments(E, 1 / T, N)
    lnz = np.log(np.exp(-(E - E.min()) / T).sum()) - E.min() / T
    assert exact.ising1d_log_z(N, T, J) == pytest.approx(lnz, rel=1e-12)
    assert exact.ising1d_energy(N, T, J) == pytest.approx(e, rel=1e-10, abs=1e-13)
    assert exact.ising1d_specific_heat(N, T, J) == pytest.approx(c, rel=1e-9, abs=1e-13)


def test_ring_thermodynamic_limit():
    for T in [0.5, 1.0, 3.0]:
        assert exact.ising1d_energy(4000, T) == pytest.approx(-math.tanh(1 / T), rel=1e-12)


@pytest.mark.parametrize("T", [1.5, 2.0, 3.0, 4.0])
def test_kaufman_large_L_approaches_onsager(T):
    # away from T_c finite-size corrections are exponentially small in L
    assert exact.ising2d_energy(64, T) == pytest.approx(exact.onsager_energy(T), abs=1e-10)
    assert exact.ising2d_energy(128, T) == pytest.approx(exact.onsager_energy(T), abs=1e-12)


def test_onsager_known_values():
    # at T_c: u = -sqrt(2)
    assert exact.onsager_energy(exact.T_C_2D * (1 + 1e-12)) == pytest.approx(-math.sqrt(2), abs=1e-6)
    assert exact.onsager_energy(0.1) == pytest.approx(-2.0, abs=1e-12)


@pytest.mark.parametrize("L", [16, 64, 128])
def test_kaufman_stable_across_tc(L):
    Ts = np.linspace(2.0, 2.6, 61)
    c = np.array([exact.ising2d_specific_heat(L, T) for T in Ts])
    u = np.array([exact.ising2d_energy(L, T) for T in Ts])
    assert np.all(np.isfinite(c)) and np.all(np.isfinite(u))
    assert np.all(np.diff(u) > 0)  # energy increases with T
    assert np.all(c > 0)
    # the peak sits near T_c and the curve has a single maximum
    assert abs(Ts[np.argmax(c)] - exact.T_C_2D) < 0.1
    assert np.sum(np.diff(np.sign(np.diff(c))) != 0) == 1


def test_kaufman_critical_specific_heat_log_divergence():
    """c(T_c, L) = A0 ln L + const + o(1) with Onsager's amplitude A0 = (8/pi) K_c^2."""
    Kc = 1 / exact.T_C_2D
    A0 = 8 / math.pi * Kc**2
    slope = (exact.ising2d_specific_heat(128, exact.T_C_2D) - exact.ising2d_specific_heat(64, exact.T_C_2D)) / math.log(2)
    assert slope == pytest.approx(A0, rel=0.01)
    # and the energy at T_c tends to Onsager's -sqrt(2) with O(1/L) corrections
    assert exact.ising2d_energy(128, exact.T_C_2D) == pytest.approx(-math.sqrt(2), abs=0.02)


def test_free_field_phi2_matches_matrix_inverse():
    L, d, kappa = 4, 2, 0.2
    N = L**d
    A = np.eye(N)
    for x in range(L):
        for y in range(L):
            i = x * L + y
            for j in [((x + 1) % L) * L + y, x * L + (y + 1) % L]:
                A[i, j] -= kappa
                A[j, i] -= kappa
    cov = np.linalg.inv(2 * A)
    assert exact.free_field_phi2(L, d, kappa) == pytest.approx(np.trace(cov) / N, rel=1e-12)
    with pytest.raises(ValueError):
        exact.free_field_phi2(4, 2, 0.3)
