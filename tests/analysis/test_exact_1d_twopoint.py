"""Tests for the 1D two-point function and decimation RG in hpc_rg.analysis.exact,
against exact enumeration (and exact sampling) of a 12-site ring."""

import math

import numpy as np
import pytest

from hpc_rg.analysis import exact
from hpc_rg.analysis.correlation import two_point
from hpc_rg.analysis.observables import mean

from physics_helpers import all_configs

N_RING = 12


@pytest.fixture(scope="module")
def ring():
    conf = all_configs(N_RING)
    bonds = (conf.astype(np.int64) * np.roll(conf, -1, axis=1)).sum(axis=1)  # sum_i s_i s_{i+1}
    return conf, bonds


def boltzmann(bonds, K):
    w = np.exp(K * (bonds - bonds.max()))
    return w / w.sum()


@pytest.mark.parametrize("T", [0.3, 1.0, 2.5, 10.0])
def test_two_point_enumeration(ring, T):
    conf, bonds = ring
    p = boltzmann(bonds, 1.0 / T)
    for j in range(N_RING + 1):
        G = p @ two_point(conf, 1, j)
        assert exact.ising1d_two_point(N_RING, j, 1.0 / T) == pytest.approx(G, abs=1e-13)


def test_two_point_exact_sampling_within_4_sigma(ring):
    conf, bonds = ring
    K = 1.0 / 1.5
    rng = np.random.default_rng(11)
    sample = conf[rng.choice(conf.shape[0], size=20000, p=boltzmann(bonds, K))]
    for j in range(1, N_RING // 2 + 1):
        g, err = mean(two_point(sample, 1, j))
        assert abs(g - exact.ising1d_two_point(N_RING, j, K)) < 4 * err


@pytest.mark.parametrize("T", [0.5, 1.0, 3.0])
def test_decimated_ring_is_a_ring_at_the_decimated_coupling(ring, T):
    """Keeping every other spin of the N ring at K gives the N/2 ring at K' (eq. 5)."""
    conf, bonds = ring
    K = 1.0 / T
    p = boltzmann(bonds, K)
    Kp = exact.decimation_coupling(K)
    dec = conf[:, ::2]
    for j in range(N_RING // 2 + 1):
        G = p @ two_point(dec, 1, j)
        assert exact.ising1d_two_point(N_RING // 2, j, Kp) == pytest.approx(G, abs=1e-13)
        assert exact.ising1d_two_point(N_RING, 2 * j, K) == pytest.approx(G, abs=1e-13)


def test_two_point_known_values_and_vectorisation():
    assert exact.ising1d_two_point(10, 0, 0.7) == 1.0
    assert exact.ising1d_two_point(10, 10, 0.7) == 1.0
    assert exact.ising1d_two_point(10, 3, 0.0) == 0.0
    t = math.tanh(0.4)
    assert exact.ising1d_two_point(8, 3, 0.4) == pytest.approx((t**3 + t**5) / (1 + t**8), rel=1e-15)
    # infinite ring limit: tanh^j K
    assert exact.ising1d_two_point(4000, 5, 0.4) == pytest.approx(t**5, rel=1e-14)
    G = exact.ising1d_two_point(32, np.arange(5)[:, None], np.array([0.2, 1.0]))
    assert G.shape == (5, 2)
    with pytest.raises(ValueError):
        exact.ising1d_two_point(8, 9, 0.4)


def test_decimation_coupling_known_values_and_inverse():
    assert exact.decimation_coupling(0.0) == 0.0
    assert exact.decimation_coupling(0.5) == pytest.approx(0.5 * math.log(math.cosh(1.0)), rel=1e-15)
    assert exact.decimation_coupling(1e-6) == pytest.approx(1e-12, rel=1e-9)  # K' ~ K^2
    assert exact.decimation_coupling(300.0) == pytest.approx(300.0 - 0.5 * math.log(2.0), rel=1e-15)
    K = np.concatenate([np.geomspace(1e-6, 500.0, 200), [19.999, 20.0, 20.001]])
    Kp = exact.decimation_coupling(K)
    np.testing.assert_allclose(np.tanh(Kp), np.tanh(K) ** 2, rtol=1e-13)
    np.testing.assert_allclose(exact.inverse_decimation_coupling(Kp), K, rtol=1e-9)
    np.testing.assert_allclose(exact.decimation_coupling(exact.inverse_decimation_coupling(K)), K, rtol=1e-12)
    assert np.all(Kp < K)
    assert exact.decimation_coupling(-0.5) == exact.decimation_coupling(0.5)
    with pytest.raises(ValueError):
        exact.inverse_decimation_coupling(-0.1)


def test_decimated_and_superresolved_temperatures():
    T = np.geomspace(0.05, 50.0, 50)
    Td = exact.decimated_temperature(T)
    Ts = exact.superresolved_temperature(T)
    assert np.all(Td > T) and np.all(Ts < T)  # RG to T = inf, inverse RG to T = 0
    np.testing.assert_allclose(exact.superresolved_temperature(Td), T, rtol=1e-10)
    np.testing.assert_allclose(exact.decimated_temperature(Ts), T, rtol=1e-10)
    assert exact.decimated_temperature(1.0) == pytest.approx(1.0 / (0.5 * math.log(math.cosh(2.0))))
    assert exact.decimated_temperature(2.0, J=2.0) == pytest.approx(exact.decimated_temperature(1.0) * 2.0)
    assert exact.decimated_temperature(np.inf) == np.inf
    assert isinstance(exact.superresolved_temperature(1.0), float)
    with pytest.raises(ValueError):
        exact.decimated_temperature(0.0)
