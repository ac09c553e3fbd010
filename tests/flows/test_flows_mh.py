"""Independence Metropolis-Hastings, importance-weight diagnostics and latent-space HMC
(hpc_rg.flows.mh) on distributions with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpc_rg.analysis.stats import binning_error
from hpc_rg.flows.mh import (chain_autocorr_time, ess_per_n, independence_mh, latent_hmc, log_z_estimate,
                             make_pullback, reverse_kl_estimate)

pytestmark = pytest.mark.usefixtures("one_thread")


def _log_normal(x, mu=0.0, sigma=1.0):
    return -0.5 * ((x - mu) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def _gauss_proposals(n, s, seed):
    g = torch.Generator().manual_seed(seed)
    x = s * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return x, _log_normal(x[:, 0], 0.0, s), g


def _acceptance_quadrature(s):
    """Stationary acceptance of the independence sampler, x ~ p = N(0,1), x' ~ q = N(0, s^2)."""
    grid = np.linspace(-9, 9, 3001)
    dx = grid[1] - grid[0]
    lp = -0.5 * grid ** 2 - 0.5 * math.log(2 * math.pi)
    lq = -0.5 * (grid / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)
    lw = lp - lq
    a = np.minimum(1.0, np.exp(lw[None, :] - lw[:, None]))  # [x, x']
    return float(np.exp(lp) @ a @ np.exp(lq) * dx * dx)


# ---------------------------------------------------------------- independence MH

def test_independence_mh_gaussian_moments_and_acceptance():
    s = 1.5
    x, log_q, g = _gauss_proposals(100_000, s, 0)
    log_p = -0.5 * x[:, 0] ** 2  # unnormalised target N(0, 1)
    r = independence_mh(x, log_q, log_p, g)
    chain = r.samples[:, 0].numpy()
    assert r.samples.shape == x.shape
    torch.testing.assert_close(r.samples, x[r.index])
    for obs, exact in ((chain, 0.0), (chain ** 2, 1.0)):
        m, err = binning_error(obs, n_bins=50)
        assert abs(m - exact) < 4 * err, (m, err, exact)
    a_exact = _acceptance_quadrature(s)
    assert 0.6 < a_exact < 0.95
    assert abs(r.acceptance_rate - a_exact) < 0.01
    assert r.n_proposed == len(x) - 1 and r.n_accepted == int(r.accepted[1:].sum())
    # the chain index only moves at accepted steps
    moved = torch.cat([torch.tensor([True]), r.index[1:] != r.index[:-1]])
    assert torch.equal(moved, r.accepted)
    # integrated autocorrelation time: consistent with the binning estimate
    tau, tau_err, _ = chain_autocorr_time(chain ** 2)
    _, err_bin = binning_error(chain ** 2, n_bins=50)
    tau_bin = 0.5 * (err_bin / (chain ** 2).std(ddof=1) * math.sqrt(len(chain))) ** 2
    assert tau > 0.6 and abs(tau - tau_bin) < 0.35 * tau


def test_independence_mh_exact_proposal_accepts_everything():
    x, log_q, g = _gauss_proposals(5000, 1.0, 1)
    r = independence_mh(x, log_q, log_q.clone(), g)
    assert r.acceptance_rate == 1.0 and bool(r.accepted.all())
    assert torch.equal(r.index, torch.arange(5000))
    assert ess_per_n(log_q - log_q) == pytest.approx(1.0, abs=1e-12)
    assert ess_per_n(log_q - log_q + 1e4) == pytest.approx(1.0, abs=1e-12)  # no overflow
    tau, _, _ = chain_autocorr_time(r.samples[:, 0])
    assert abs(tau - 0.5) < 0.1


def test_independence_mh_continuation_is_bit_identical():
    x, log_q, _ = _gauss_proposals(3000, 1.8, 2)
    log_p = -0.5 * x[:, 0] ** 2 - 0.1 * x[:, 0] ** 4
    g_long = torch.Generator().manual_seed(11)
    long = independence_mh(x, log_q, log_p, g_long)
    g = torch.Generator().manual_seed(11)
    parts, kw = [], {}
    for lo, hi in ((0, 1000), (1000, 1700), (1700, 3000)):
        r = independence_mh(x[lo:hi], log_q[lo:hi], log_p[lo:hi], g, index_offset=lo, **kw)
        parts.append(r)
        kw = r.continue_kwargs()
    assert torch.equal(torch.cat([p.index for p in parts]), long.index)
    assert torch.equal(torch.cat([p.accepted for p in parts]), long.accepted)
    assert torch.equal(torch.cat([p.log_w for p in parts]), long.log_w)
    assert torch.equal(torch.cat([p.samples for p in parts]), long.samples)
    assert sum(p.n_accepted for p in parts) == long.n_accepted
    assert sum(p.n_proposed for p in parts) == long.n_proposed
    assert torch.equal(g.get_state(), g_long.get_state())
    # index-only mode (no configurations) gives the same chain
    r2 = independence_mh(None, log_q, log_p, torch.Generator().manual_seed(11))
    assert r2.samples is None and torch.equal(r2.index, long.index)


def test_independence_mh_rejects_nan_and_handles_dead_start():
    lq = torch.zeros(4, dtype=torch.float64)
    lp = torch.tensor([-math.inf, float("nan"), 0.0, -1e9], dtype=torch.float64)
    r = independence_mh(None, lq, lp, torch.Generator().manual_seed(0))
    assert r.index.tolist() == [0, 0, 2, 2]  # NaN rejected, -inf start left at once


# ---------------------------------------------------------------- weight diagnostics

@pytest.mark.parametrize("s", [0.9, 1.5, 2.5])
def test_ess_and_log_z_for_gaussian_mismatch(s):
    n = 200_000
    x, log_q, _ = _gauss_proposals(n, s, 3)
    log_z_true = 0.5 * math.log(2 * math.pi) + math.log(3.0)
    log_p = -0.5 * x[:, 0] ** 2 + math.log(3.0)  # Z = 3 sqrt(2 pi)
    lw = log_p - log_q
    ess_exact = math.sqrt(2 * s * s - 1) / (s * s)  # (E_q w)^2 / E_q w^2 for N(0,1) vs N(0,s^2)
    assert ess_per_n(lw) == pytest.approx(ess_exact, rel=0.01)
    assert ess_per_n(lw.numpy()) == ess_per_n(lw)
    w = torch.exp(lw - log_z_true).numpy()
    assert abs(log_z_estimate(lw) - log_z_true) < 5 * w.std() / math.sqrt(n)
    # reverse KL: E_q[log q - log p~] = KL(q||p) - log Z, KL of two centred Gaussians
    kl = math.log(1.0 / s) + 0.5 * s * s - 0.5
    d = (log_q - log_p).numpy()
    assert abs(reverse_kl_estimate(log_q, log_p) - (kl - log_z_true)) < 5 * d.std() / math.sqrt(n)


def test_ess_extreme_weights():
    assert ess_per_n(torch.tensor([0.0, -1e6, -1e6, -1e6])) == pytest.approx(0.25)
    assert ess_per_n(torch.tensor([700.0, 700.0])) == pytest.approx(1.0)
    assert log_z_estimate(torch.tensor([1000.0, 1000.0])) == pytest.approx(1000.0)


# ---------------------------------------------------------------- latent HMC

def _series_mean_err(obs):
    """obs (T, n_series) of independent series: mean and error from the series means."""
    m = obs.mean(axis=0)
    return m.mean(), m.std(ddof=1) / math.sqrt(m.size)


def test_latent_hmc_standard_normal():
    g = torch.Generator().manual_seed(4)
    z0 = 3.0 + torch.randn(64, 4, generator=g, dtype=torch.float64)  # out of equilibrium
    r = latent_hmc(lambda z: -0.5 * (z * z).sum(1), z0, 300, 0.4, 4, g)
    assert r.samples.shape == (300, 64, 4) and r.accepted.shape == (300, 64)
    assert 0.8 < r.acceptance_rate <= 1.0
    z = r.samples[50:].reshape(250, -1).numpy()
    for obs, exact in ((z, 0.0), (z ** 2, 1.0)):
        m, err = _series_mean_err(obs)
        assert abs(m - exact) < 4 * err, (m, err, exact)
    # tiny steps conserve H: everything accepted
    r2 = latent_hmc(lambda z: -0.5 * (z * z).sum(1), z0, 5, 0.01, 3, g)
    assert r2.acceptance_rate == 1.0


def test_latent_hmc_through_affine_flow():
    """Target N(2, 0.5^2) in x; flow x = 0.7 z + 1: HMC in z, moments checked in x."""
    a, b, mu, sig = 0.7, 1.0, 2.0, 0.5

    def flow(z):
        return a * z + b, torch.full((z.shape[0],), z[0].numel() * math.log(a), dtype=z.dtype)

    def log_p(x):
        return (-0.5 * ((x - mu) / sig) ** 2).sum(1)

    pull = make_pullback(log_p, flow)
    g = torch.Generator().manual_seed(5)
    z0 = torch.randn(64, 3, generator=g, dtype=torch.float64)
    step = torch.full((64,), 0.3, dtype=torch.float64)
    r = latent_hmc(pull, z0, 200, step, 5, g, observable=lambda z: flow(z)[0], keep_samples=False)
    assert r.samples is None and r.observables.shape == (200, 64, 3)
    x = r.observables[30:].reshape(170, -1).numpy()
    for obs, exact in ((x, mu), ((x - mu) ** 2, sig * sig)):
        m, err = _series_mean_err(obs)
        assert abs(m - exact) < 4 * err, (m, err, exact)


def test_latent_hmc_double_well_through_nonlinear_flow():
    """Target exp(-(x^2 - 1)^2) in x; nonlinear flow x = z + 0.8 tanh(z)
    (log det = sum log(1 + 0.8 / cosh^2 z))."""

    def flow(z):
        t = torch.tanh(z)
        return z + 0.8 * t, torch.log1p(0.8 * (1 - t * t)).sum(1)

    def log_p(x):
        return -((x * x - 1.0) ** 2).sum(1)

    xs = np.linspace(-4, 4, 40001)
    wq = np.exp(-(xs ** 2 - 1) ** 2)
    x2_exact = float((xs ** 2 * wq).sum() / wq.sum())
    g = torch.Generator().manual_seed(6)
    z0 = 0.5 * torch.randn(128, 2, generator=g, dtype=torch.float64)  # HMC gets stuck deep in the
    # stiff x^4 tails (|x| > 3) with this step size, so start near the wells
    r = latent_hmc(make_pullback(log_p, flow), z0, 300, 0.2, 6, g, observable=lambda z: flow(z)[0])
    assert r.acceptance_rate > 0.6
    x = r.observables[50:].reshape(250, -1).numpy()
    m, err = _series_mean_err(x ** 2)
    assert abs(m - x2_exact) < 4 * err, (m, err, x2_exact)
    m, err = _series_mean_err(x)
    assert abs(m) < 4 * err
    # the chains tunnel between the wells
    signs = np.sign(x)
    assert (signs[1:] != signs[:-1]).mean() > 0.02
