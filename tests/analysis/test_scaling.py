"""Tests for hpc_rg.analysis.scaling: log-log fits, streamed level observables, exponents."""

import dataclasses

import h5py
import numpy as np
import pytest
import torch

from hpc_rg.analysis import exact
from hpc_rg.analysis.correlation import two_point
from hpc_rg.analysis.scaling import (ISING2D_EXPONENTS, LevelObservables, combine_repeats,
                                     critical_exponents, fit_power_law, level_observables,
                                     levels_observables)

from physics_helpers import all_configs

L_SIZES = np.array([16, 32, 64, 128, 256, 512])


# -- fit_power_law --------------------------------------------------------------------------

def test_fit_power_law_exact():
    fit = fit_power_law(L_SIZES, 3.0 * L_SIZES**1.75)
    assert fit.slope == pytest.approx(1.75, abs=1e-12)
    assert fit.intercept == pytest.approx(np.log(3.0), abs=1e-11)
    assert fit.r == pytest.approx(1.0, abs=1e-14)
    assert fit.slope_err == pytest.approx(0.0, abs=1e-6) and np.isnan(fit.chi2_dof)
    np.testing.assert_allclose(fit(L_SIZES), 3.0 * L_SIZES**1.75, rtol=1e-10)


def test_fit_power_law_matches_polyfit():
    rng = np.random.default_rng(0)
    y = 2.0 * L_SIZES ** -0.25 * (1 + 0.01 * rng.standard_normal(L_SIZES.size))
    yerr = 0.01 * y * rng.uniform(0.5, 2.0, L_SIZES.size)
    fit = fit_power_law(L_SIZES, y, yerr)
    p, cov = np.polyfit(np.log(L_SIZES), np.log(y), 1, w=y / yerr, cov="unscaled")
    assert fit.slope == pytest.approx(p[0], rel=1e-10)
    assert fit.intercept == pytest.approx(p[1], rel=1e-10)
    assert fit.slope_err == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-10)
    assert fit.intercept_err == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-10)
    resid = (np.log(y) - np.polyval(p, np.log(L_SIZES))) * y / yerr
    assert fit.chi2_dof == pytest.approx((resid**2).sum() / (L_SIZES.size - 2), rel=1e-8)
    # unweighted: errors from the residual scatter, as numpy's scaled covariance
    fit_u = fit_power_law(L_SIZES, y)
    p, cov = np.polyfit(np.log(L_SIZES), np.log(y), 1, cov=True)
    assert fit_u.slope == pytest.approx(p[0], rel=1e-10)
    assert fit_u.slope_err == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-8)
    # rescaling only inflates
    fit_r = fit_power_law(L_SIZES, y, yerr, rescale=True)
    assert fit_r.slope_err == pytest.approx(fit.slope_err * max(1.0, np.sqrt(fit.chi2_dof)))


def test_fit_power_law_errors_are_calibrated():
    rng = np.random.default_rng(1)
    rel = np.array([0.002, 0.003, 0.005, 0.01, 0.02, 0.03])
    pulls = []
    for _ in range(400):
        y = L_SIZES**1.75 * (1 + rel * rng.standard_normal(rel.size))
        fit = fit_power_law(L_SIZES, y, rel * L_SIZES**1.75)
        pulls.append((fit.slope - 1.75) / fit.slope_err)
    assert np.std(pulls) == pytest.approx(1.0, abs=0.12)
    assert abs(np.mean(pulls)) < 0.2


def test_fit_power_law_validation():
    with pytest.raises(ValueError):
        fit_power_law([16, 32], [1.0, -1.0])
    with pytest.raises(ValueError):
        fit_power_law([16], [1.0])
    with pytest.raises(ValueError):
        fit_power_law([16, 16], [1.0, 2.0])
    with pytest.raises(ValueError):
        fit_power_law([16, 32], [1.0, 2.0], [0.1, 0.0])
    two = fit_power_law([16, 32], [1.0, 2.0], [0.1, 0.1])
    assert two.slope == pytest.approx(1.0) and np.isnan(two.chi2_dof) and np.isfinite(two.slope_err)


# -- level observables -------------------------------------------------------------------------

class SlicedOnly:
    """Stands in for an h5py dataset: .shape, slicing, records the largest read."""

    def __init__(self, a):
        self.a, self.shape, self.max_read = a, a.shape, 0

    def __getitem__(self, idx):
        out = self.a[idx]
        self.max_read = max(self.max_read, out.shape[0])
        return out


def test_level_observables_direct_streamed_and_h5py(tmp_path):
    rng = np.random.default_rng(2)
    L, n, T = 8, 300, 2.0
    # correlated-ish configurations: random sign times a noisy background
    base = np.where(rng.random((n, L, L)) < 0.8, 1, -1) * rng.choice([-1, 1], size=(n, 1, 1))
    conf = base.astype(np.int8)
    m = conf.reshape(n, -1).mean(axis=1)
    lev = level_observables(conf, 2, T, n_bins=n, batch_size=1000)
    assert lev.L == L and lev.n_configs == n and lev.dims == 2
    N = L * L
    assert lev.abs_m == pytest.approx(np.abs(m).mean(), rel=1e-12)
    assert lev.chi == pytest.approx(N * ((m * m).mean() - np.abs(m).mean() ** 2) / T, rel=1e-10)
    assert lev.chi_full == pytest.approx(N * (m * m).mean() / T, rel=1e-12)
    assert lev.g_quarter == pytest.approx(two_point(conf, 2, 2).mean(), rel=1e-12)
    assert lev.g_half == pytest.approx(two_point(conf, 2, 4).mean(), rel=1e-12)
    assert lev.abs_m_err == pytest.approx(np.abs(m).std(ddof=1) / np.sqrt(n), rel=1e-8)
    # streamed reads give identical numbers and never read more than batch_size
    src = SlicedOnly(conf)
    lev_s = level_observables(src, 2, T, n_bins=n, batch_size=7)
    assert src.max_read == 7
    assert dataclasses.asdict(lev_s) == dataclasses.asdict(lev)
    assert dataclasses.asdict(level_observables(torch.from_numpy(conf), 2, T, n_bins=n)) == lev.as_dict()
    with h5py.File(tmp_path / "c.h5", "w") as f:
        f["L8"] = conf
    with h5py.File(tmp_path / "c.h5", "r") as f:
        assert level_observables(f["L8"], 2, T, n_bins=n, batch_size=64).as_dict() == lev.as_dict()


def test_level_observables_exact_4x4_at_tc():
    """Exactly sampled 4x4 Ising configurations at T_c: estimates within 4 sigma of enumeration."""
    conf = all_configs(16).reshape(-1, 4, 4)
    s = conf.astype(np.int64)
    bonds = (s * np.roll(s, 1, axis=1) + s * np.roll(s, 1, axis=2)).sum(axis=(1, 2))
    T = exact.T_C_2D
    p = np.exp((bonds - bonds.max()) / T)
    p /= p.sum()
    m = s.reshape(-1, 16).mean(axis=1)
    ex_abs_m, ex_m2 = p @ np.abs(m), p @ (m * m)
    ex_chi = 16 * (ex_m2 - ex_abs_m**2) / T
    ex_g1, ex_g2 = p @ two_point(conf, 2, 1), p @ two_point(conf, 2, 2)
    rng = np.random.default_rng(3)
    sample = conf[rng.choice(conf.shape[0], size=20000, p=p)]
    lev = level_observables(sample, 2, T, batch_size=4096)
    for val, ref, err in [(lev.abs_m, ex_abs_m, lev.abs_m_err), (lev.m2, ex_m2, lev.m2_err),
                          (lev.chi, ex_chi, lev.chi_err), (lev.g_quarter, ex_g1, lev.g_quarter_err),
                          (lev.g_half, ex_g2, lev.g_half_err)]:
        assert abs(val - ref) < 4 * err, (val, ref, err)


def test_level_observables_validation():
    with pytest.raises(ValueError):
        level_observables(np.ones((4, 8, 6), dtype=np.int8), 2, 2.0)
    with pytest.raises(ValueError):
        level_observables(np.ones((4, 1, 8, 8), dtype=np.int8), 2, 2.0)
    conf = np.ones((4, 8, 8), dtype=np.int8)
    with pytest.raises(ValueError):
        levels_observables({16: conf}, 2, 2.0)


# -- exponents ---------------------------------------------------------------------------------

def synthetic_levels(d=2, noise=0.0, seed=0, sizes=L_SIZES):
    rng = np.random.default_rng(seed)
    ex = ISING2D_EXPONENTS
    out = []
    for L in sizes:
        vals = {"abs_m": 1.1 * L ** -ex["beta_nu"], "m2": 1.2 * L ** (-2 * ex["beta_nu"]),
                "chi": 0.04 * L ** ex["gamma_nu"], "chi_full": 0.9 * L ** ex["gamma_nu"], "binder": 0.61,
                "g_quarter": 0.8 * L ** -(d - 2 + ex["eta"]), "g_half": 0.7 * L ** -(d - 2 + ex["eta"])}
        kw = {}
        for k, v in vals.items():
            kw[k] = v * (1 + noise * rng.standard_normal())
            kw[k + "_err"] = max(noise, 1e-3) * v
        out.append(LevelObservables(L=int(L), dims=d, T=exact.T_C_2D, n_configs=1000, **kw))
    return out


def test_critical_exponents_synthetic():
    e = critical_exponents(synthetic_levels())
    assert e.gamma_nu == pytest.approx(1.75, abs=1e-12)
    assert e.beta_nu == pytest.approx(0.125, abs=1e-12)
    assert e.eta_quarter == pytest.approx(0.25, abs=1e-12)
    assert e.eta_half == pytest.approx(0.25, abs=1e-12)
    assert e.sizes == tuple(L_SIZES) and e.gamma_nu_err > 0
    assert e.fits["chi"].r == pytest.approx(1.0)
    full = critical_exponents(synthetic_levels(), chi="full", L_min=64)
    assert full.gamma_nu == pytest.approx(1.75, abs=1e-12) and full.sizes == (64, 128, 256, 512)
    e3 = critical_exponents(synthetic_levels(d=3))
    assert e3.eta_half == pytest.approx(0.25, abs=1e-12)
    assert set(e.as_dict()) == {"gamma_nu", "gamma_nu_err", "beta_nu", "beta_nu_err", "eta_quarter",
                                "eta_quarter_err", "eta_half", "eta_half_err"}
    with pytest.raises(ValueError):
        critical_exponents(synthetic_levels()[:1])
    with pytest.raises(ValueError):
        critical_exponents(synthetic_levels(), chi="bogus")


def test_combine_repeats():
    m, se = combine_repeats([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    m, se = combine_repeats(np.arange(12.0).reshape(4, 3))
    np.testing.assert_allclose(m, [4.5, 5.5, 6.5])
    reps = [critical_exponents(synthetic_levels(noise=0.005, seed=s)).as_dict() for s in range(30)]
    comb = combine_repeats(reps)
    mean, se = comb["gamma_nu"]
    assert abs(mean - 1.75) < 4 * se
    # the spread over repeats agrees with the per-fit error (independent noise)
    assert se * np.sqrt(30) == pytest.approx(np.mean([r["gamma_nu_err"] for r in reps]), rel=0.5)
    with pytest.raises(ValueError):
        combine_repeats([1.0])
