"""Tests for hpc_rg.analysis.stats and hpc_rg.analysis.observables on synthetic data."""

import numpy as np
import pytest

from hpc_rg.analysis import observables as obs
from hpc_rg.analysis.stats import (autocorrelation, bin_means, binning_analysis, binning_error,
                                   integrated_autocorr_time, jackknife)


def ar1(n, rho, n_series=1, seed=0):
    """AR(1) series x_t = rho x_{t-1} + sqrt(1-rho^2) eps_t (unit variance), shape (n, n_series)."""
    rng = np.random.default_rng(seed)
    eps = rng.standard_normal((n, n_series))
    x = np.empty_like(eps)
    x[0] = eps[0]
    a = np.sqrt(1 - rho * rho)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + a * eps[t]
    return x


def tau_ar1(rho):
    return 0.5 * (1 + rho) / (1 - rho)


def test_bin_means_and_binning_error_iid():
    x = np.arange(10.0)
    np.testing.assert_allclose(bin_means(x, 3), [1.0, 4.0, 7.0])
    rng = np.random.default_rng(1)
    y = rng.standard_normal((40000, 3))
    m, e = binning_error(y, n_bins=50)
    assert m.shape == (3,) and e.shape == (3,)
    np.testing.assert_allclose(e, 1 / np.sqrt(40000), rtol=0.3)
    with pytest.raises(ValueError):
        bin_means(x, 11)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_integrated_autocorr_time_ar1(rho):
    x = ar1(100_000, rho, n_series=2, seed=2)
    tau, err, w = integrated_autocorr_time(x)
    exact = tau_ar1(rho)
    assert tau.shape == (2,)
    for t, e in zip(tau, err):
        assert abs(t - exact) < 4 * e + 0.02 * exact, (t, e, exact)
        assert e < 0.1 * exact
    ta, ea, wa = integrated_autocorr_time(x, average=True)
    assert np.ndim(ta) == 0 and abs(ta - exact) < 4 * ea + 0.02 * exact
    rho_t = autocorrelation(x[:, 0])
    assert rho_t[0] == 1.0 and abs(rho_t[1] - rho) < 0.02


def test_binning_error_matches_tau():
    rho = 0.8
    x = ar1(200_000, rho, seed=3)[:, 0]
    sizes, errs = binning_analysis(x)
    naive = x.std() / np.sqrt(x.size)
    assert errs[0] == pytest.approx(naive, rel=1e-2)
    expect = naive * np.sqrt(2 * tau_ar1(rho))
    assert errs[-3] == pytest.approx(expect, rel=0.25)  # plateau (bins >> tau)
    m, e = binning_error(x, n_bins=64)
    assert e == pytest.approx(expect, rel=0.3)


def test_jackknife_linear_equals_standard_error():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(6400) + 3.0
    v, e = jackknife(lambda a: a, x, n_bins=64)
    m, be = binning_error(x, n_bins=64)
    assert v == pytest.approx(m) and e == pytest.approx(be, rel=1e-10)


def test_jackknife_nonlinear_ratio_vs_delta_method():
    rng = np.random.default_rng(5)
    n = 20000
    a = 2.0 + 0.1 * rng.standard_normal(n)
    b = 4.0 + 0.2 * rng.standard_normal(n)
    v, e = jackknife(lambda x, y: x / y, a, b, n_bins=100)
    # delta method for independent a, b: var(a/b) ~ (sa^2/b^2 + a^2 sb^2/b^4)/n
    delta = np.sqrt((0.1**2 / 16 + 4 * 0.2**2 / 256) / n)
    assert v == pytest.approx(0.5, abs=5 * delta)
    assert e == pytest.approx(delta, rel=0.25)


def test_jackknife_carries_extra_axes():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((5000, 3)) * np.array([1.0, 2.0, 3.0])
    v, e = jackknife(lambda a, a2: a2 - a * a, x, x * x, n_bins=50)
    assert v.shape == (3,) and e.shape == (3,)
    np.testing.assert_allclose(v, [1.0, 4.0, 9.0], rtol=0.1)
    # var of the sample variance of a Gaussian: 2 sigma^4 / n
    np.testing.assert_allclose(e, np.sqrt(2 / 5000) * np.array([1.0, 4.0, 9.0]), rtol=0.3)


def test_observables_on_gaussian_and_ordered_data():
    rng = np.random.default_rng(7)
    n, N, beta = 20000, 100, 0.5
    sigma = 0.1
    m = sigma * rng.standard_normal(n)
    U, Ue = obs.binder_cumulant(m)
    assert abs(U) < 5 * Ue + 0.01  # Gaussian: U4 = 0
    chi_full, ce = obs.susceptibility(m, beta, N, connected=False)
    assert chi_full == pytest.approx(beta * N * sigma**2, abs=5 * ce)
    chi, ce2 = obs.susceptibility(m, beta, N)
    assert chi == pytest.approx(beta * N * sigma**2 * (1 - 2 / np.pi), abs=5 * ce2)
    # ordered: m = +-m0  ->  U4 = 2/3, connected chi = 0
    m0 = 0.8 * rng.choice([-1.0, 1.0], size=n)
    assert obs.binder_cumulant(m0)[0] == pytest.approx(2 / 3)
    assert obs.susceptibility(m0, beta, N)[0] == pytest.approx(0.0, abs=1e-12)
    # specific heat: C = beta^2 N var(e), per temperature columns
    e = rng.standard_normal((n, 2)) * np.array([0.01, 0.02])
    betas = np.array([0.4, 0.5])
    C, Ce = obs.specific_heat(e, betas, N)
    np.testing.assert_allclose(C, betas**2 * N * np.array([1e-4, 4e-4]), atol=5 * Ce.max() + 1e-12, rtol=0.05)
    mv, me = obs.mean(e[:, 0])
    assert abs(mv) < 5 * me


def test_spin_glass_observables():
    rng = np.random.default_rng(8)
    n, n_dis, N = 4000, 40, 64
    # paramagnet-like: q Gaussian with per-sample width
    widths = 0.1 + 0.05 * rng.random(n_dis)
    q = rng.standard_normal((n, n_dis)) * widths
    chi, ce = obs.spin_glass_susceptibility(q, N)
    assert chi == pytest.approx(N * np.mean(widths**2), rel=0.05)
    assert ce > 0 and ce < 0.2 * chi
    g, ge = obs.spin_glass_binder(q)
    # [<q^4>]/[<q^2>]^2 = 3 [w^4]/[w^2]^2 for Gaussian q
    expect = 0.5 * (3 - 3 * np.mean(widths**4) / np.mean(widths**2) ** 2)
    assert g == pytest.approx(expect, abs=0.05)
    # ordered: q = +-q0 in every sample -> g = 1
    q0 = 0.7 * rng.choice([-1.0, 1.0], size=(n, n_dis))
    assert obs.spin_glass_binder(q0)[0] == pytest.approx(1.0)
    # temperatures as a trailing axis
    q3 = np.stack([q, 2 * q], axis=-1)
    chi3, _ = obs.spin_glass_susceptibility(q3, N)
    assert chi3.shape == (2,) and chi3[1] == pytest.approx(4 * chi3[0])
