"""The equilibration certificate of disorder samples on synthetic series: stationary series
pass at the stated false-alarm rate, relaxing ones fail, and the identity and round-trip
tests decide as documented."""

import math

import numpy as np
import pytest

from hpc_rg.analysis.equilibration import (MIN_SAMPLES, certify, drift_test,
                                           sample_diagnostics, t_limit)


def ar1(rng, shape, S, phi):
    """Stationary AR(1) series x_s = phi x_{s-1} + eps_s, unit innovations, time last."""
    x = np.empty(shape + (S,))
    x[..., 0] = rng.standard_normal(shape) / math.sqrt(1 - phi ** 2)
    eps = rng.standard_normal(shape + (S,))
    for s in range(1, S):
        x[..., s] = phi * x[..., s - 1] + eps[..., s]
    return x


@pytest.mark.parametrize("nu, sigma, expected", [(1, 1.959963985, 12.7062047),
                                                 (10, 1.959963985, 2.2281389),
                                                 (math.inf, 4.0, 4.0)])
def test_t_limit_matches_student_t_tables(nu, sigma, expected):
    assert t_limit(sigma, nu) == pytest.approx(expected, rel=1e-6)
    assert t_limit(sigma, 0) == math.inf


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_stationary_ar1_passes_at_the_stated_false_alarm_rate(sigma):
    """Blocks (64 samples) much longer than tau_int (1.5): the fraction of false alarms is
    at most erfc(sigma/sqrt 2), and not far below it (the test is not blunt)."""
    rng = np.random.default_rng(11)
    n = 6000
    _, z, limit = drift_test(ar1(rng, (n,), 2048, 0.5), sigma)
    rate = np.mean(np.abs(z) > limit)
    nominal = math.erfc(sigma / math.sqrt(2))
    slack = 4 * math.sqrt(nominal / n)
    assert rate <= nominal + slack
    assert rate >= 0.3 * nominal - slack


def test_relaxing_series_fails():
    """An exponential relaxation over half the run, amplitude 4 on unit-innovation noise."""
    rng = np.random.default_rng(3)
    S = 4096
    x = ar1(rng, (200,), S, 0.5) + 4.0 * np.exp(-np.arange(S) / (S / 2))
    _, z, limit = drift_test(x, 4.0)
    assert np.mean(np.abs(z) > limit) > 0.9


def test_too_short_or_constant_series():
    d, z, _ = drift_test(np.zeros((3, MIN_SAMPLES - 1)), 4.0)
    assert np.isnan(z).all()
    _, z, _ = drift_test(np.ones((2, 64)), 4.0)  # frozen (e.g. a ground state): passes
    assert (z == 0).all()
    x = np.ones(64)
    x[32:] = 2.0  # constant within each bin, different between them
    _, z, _ = drift_test(x, 4.0)
    assert z == np.inf


def _ensemble(rng, D=6, T=3, S=512, R=4, gaussian_bias=0.0):
    """Energies, overlaps and link overlaps satisfying e = -(d/T)(1 - q_l) on average."""
    P = R * (R - 1) // 2
    temps = np.array([0.8, 1.2, 1.6])[:T]
    ql = 0.6 + 0.01 * rng.standard_normal((D, T, S, P))
    q = 0.3 + 0.01 * rng.standard_normal((D, T, S, P))
    mean_ql = ql.mean(axis=(2, 3))
    e = (-(3 / temps) * (1 - mean_ql))[:, :, None, None] + gaussian_bias \
        + 0.01 * rng.standard_normal((D, T, S, R))
    return temps, e, q, ql


def test_certify_counts_and_explains():
    rng = np.random.default_rng(5)
    temps, e, q, ql = _ensemble(rng)
    e[2, 1] += 0.5 * np.exp(-np.arange(e.shape[2]) / 100.0)[:, None]  # sample 2 relaxes at T=1.2
    dg = sample_diagnostics(np.arange(6), e, q, ql, temps, 3, 4.0)
    rt = np.array([3, 3, 3, 0, 3, 3])
    cert = certify(dg, temps, rt, gaussian=True, sigma=4.0, min_round_trips=1)
    assert cert.equilibrated.tolist() == [True, True, False, False, True, True]
    assert not cert.passed[2, 1] and cert.passed[2, 0]
    assert "energy drift at T=1.2" in cert.reason(2)
    assert cert.reason(3) == "0 round trips < 1"
    line = cert.summary(16)
    assert line.startswith("L=16: 4/6 disorder samples equilibrated at all temperatures; "
                           "2 not: ids 2, 3 (id 2: energy drift at T=1.2")
    assert certify(dg, temps, rt, True, 4.0, 0).equilibrated.sum() == 5
    assert not certify(dg, temps, -np.ones(6, int), True, 4.0, 1).equilibrated.any()


def test_gaussian_identity_fails_an_unrelaxed_ensemble():
    rng = np.random.default_rng(8)
    temps, e, q, ql = _ensemble(rng, gaussian_bias=0.05)  # e above its equilibrium value
    dg = sample_diagnostics(np.arange(6), e, q, ql, temps, 3, 4.0)
    cert = certify(dg, temps, np.full(6, 5), gaussian=True, sigma=4.0, min_round_trips=1)
    assert not cert.equilibrated.any()
    assert "ensemble fails e = -(d/T)(1-q_l)" in cert.reason(0)
    assert certify(dg, temps, np.full(6, 5), gaussian=False, sigma=4.0,
                   min_round_trips=1).equilibrated.all()


def test_diagnostics_concatenate_in_sample_order():
    from hpc_rg.analysis.equilibration import SampleDiagnostics
    rng = np.random.default_rng(1)
    temps, e, q, ql = _ensemble(rng, D=4)
    whole = sample_diagnostics(np.arange(4), e, q, ql, temps, 3, 4.0)
    parts = [sample_diagnostics(np.arange(2, 4), e[2:], q[2:], ql[2:], temps, 3, 4.0),
             sample_diagnostics(np.arange(2), e[:2], q[:2], ql[:2], temps, 3, 4.0)]
    joined = SampleDiagnostics.concatenate(parts)
    assert joined.d_indices.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(joined.z["energy"], whole.z["energy"])
    np.testing.assert_array_equal(joined.identity_residual, whole.identity_residual)


def _growing_overlaps(rng, ramp, D=16, S=50, P=6, T=(0.8, 1.2, 1.6)):
    """Overlaps whose q² grows by ~``ramp`` (relative) over the run at the colder temperatures,
    hidden in per-configuration noise that the per-sample binning test cannot see through."""
    temps = np.array(T)
    grow = np.where(temps <= np.median(temps), ramp, 0.0)[None, :, None, None]
    t = np.linspace(-0.5, 0.5, S)[None, None, :, None]
    q = 0.3 * np.sqrt(1 + grow * t) * np.sign(rng.standard_normal((D, len(T), S, P)))
    q = q + 0.15 * rng.standard_normal((D, len(T), S, P))
    e = -1.5 + 0.01 * rng.standard_normal((D, len(T), S, 4))
    ql = 0.6 + 0.01 * rng.standard_normal((D, len(T), S, P))
    return temps, e, q, ql


def test_ensemble_half_split_warns_where_the_samples_each_pass():
    """[q²] growing by ~12 % between the halves: every sample passes its own test, the disorder
    average of the half-split drift does not (the 32³ Monte Carlo of docs/validation.md)."""
    rng = np.random.default_rng(3)
    temps, e, q, ql = _growing_overlaps(rng, ramp=0.3)
    dg = sample_diagnostics(np.arange(16), e, q, ql, temps, 3, 4.0)
    cert = certify(dg, temps, np.full(16, 5), gaussian=False, sigma=4.0, min_round_trips=1)
    assert cert.equilibrated.all()
    assert 0.06 < cert.ensemble_drift < 0.2
    assert cert.ensemble_drift_limit == pytest.approx(t_limit(3.0, 15))
    assert cert.ensemble_drifting


def test_ensemble_half_split_is_quiet_on_a_stationary_ensemble():
    alarms = 0
    for seed in range(20):
        rng = np.random.default_rng(100 + seed)
        temps, e, q, ql = _growing_overlaps(rng, ramp=0.0)
        dg = sample_diagnostics(np.arange(16), e, q, ql, temps, 3, 4.0)
        cert = certify(dg, temps, np.full(16, 5), gaussian=False, sigma=4.0, min_round_trips=1)
        assert abs(cert.ensemble_drift) < 0.05
        alarms += cert.ensemble_drifting
    assert alarms <= 1  # false-alarm rate 0.3 % per ensemble at the 3-sigma-equivalent limit


def test_half_drift_is_relative_and_uses_the_colder_half():
    from hpc_rg.analysis.equilibration import half_drift
    q2 = np.ones((2, 4, 8))
    q2[0, :2, 4:] = 1.5  # colder half of sample 0: 1 -> 1.5, relative change 0.4
    q2[1, 2:, 4:] = 3.0  # hotter half of sample 1 only: ignored
    np.testing.assert_allclose(half_drift(q2, [1.0, 1.1, 1.2, 1.3]), [0.4, 0.0])
    assert np.isnan(half_drift(np.ones((1, 2, 3)), [1.0, 2.0])).all()
