"""Targets for flow super-resolution: phi^4 (Bauer/Bachtis) and the Ising continuous
relaxation (Shiina et al. 2021 eqs. 2-3), checked against dense matrices and enumeration."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hpc_rg.analysis.exact import ising2d_energy
from hpc_rg.flows.targets import IsingRelaxation, Phi4Target, Target
from hpc_rg.models import phi4
from hpc_rg.models.lattice import neighbour_sum

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------- phi^4

def test_phi4_target_is_minus_bauer_action():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, 6, generator=g, dtype=torch.float64)
    t = Phi4Target(0.3, 0.02, dims=2)
    assert isinstance(t, Target) and t.dims == 2
    torch.testing.assert_close(t.log_prob_unnormalised(x), -phi4.action(x, 0.3, 0.02))
    torch.testing.assert_close(t.action(x), phi4.action(x, 0.3, 0.02))
    with pytest.raises(ValueError):
        t.log_prob_unnormalised(torch.randn(2, 4, 4, 4))
    t8 = Phi4Target(0.3, 0.02, dims=2, L=8)
    with pytest.raises(ValueError):
        t8.log_prob_unnormalised(x)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_phi4_from_bachtis_lives_on_bauer_field(dims):
    kL, m2, lL = 1.0, -0.9, 0.7
    t = Phi4Target.from_bachtis(kL, m2, lL, dims=dims)
    kappa, lam, scale = phi4.bachtis_to_bauer(kL, m2, lL, dims)
    assert (t.kappa, t.lam, t.scale) == (kappa, lam, scale)
    g = torch.Generator().manual_seed(1)
    phi = torch.randn((3,) + (4,) * dims, generator=g, dtype=torch.float64)
    Phi = t.to_bachtis_field(phi)
    torch.testing.assert_close(Phi, scale * phi)
    torch.testing.assert_close(t.from_bachtis_field(Phi), phi)
    # -S_Bachtis(scale * phi) == log p~(phi)
    torch.testing.assert_close(t.log_prob_unnormalised(phi), -phi4.bachtis_action(Phi, kL, m2, lL))


def test_phi4_target_autograd_is_force():
    x = torch.randn(2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    t = Phi4Target(0.25, 0.1, dims=2)
    xr = x.clone().requires_grad_(True)
    g, = torch.autograd.grad(t.log_prob_unnormalised(xr).sum(), xr)
    torch.testing.assert_close(g, phi4.force(x, 0.25, 0.1))


# ---------------------------------------------------------------- relaxation: linear algebra

def _dense_m(t: IsingRelaxation) -> torch.Tensor:
    n = t.n_sites
    eye = torch.eye(n, dtype=torch.float64).reshape((n,) + t.shape)
    a = neighbour_sum(eye).reshape(n, n)  # column i = A e_i
    return t.beta * t.J * a + t.alpha * torch.eye(n, dtype=torch.float64)


@pytest.mark.parametrize("shape", [(4,), (5,), (4, 4), (3, 4), (2, 2, 2), (4, 4, 4)])
def test_fft_powers_match_dense(shape):
    t = IsingRelaxation(list(shape), beta=0.37, J=1.3)
    m = _dense_m(t)
    evals, evecs = torch.linalg.eigh(m)
    assert evals.min() > 0
    # the default alpha makes lambda_min(M) == margin
    assert abs(float(evals.min()) - 0.1) < 1e-10
    n = t.n_sites
    x = torch.randn((3,) + shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    xf = x.reshape(3, n)
    for power in (1.0, -1.0, 0.5, -0.5):
        dense = evecs @ torch.diag(evals.pow(power)) @ evecs.T
        want = (xf @ dense.T).reshape(x.shape)
        torch.testing.assert_close(t.apply_m(x, power), want, rtol=1e-10, atol=1e-10)
    assert t.log_det_m() == pytest.approx(float(torch.logdet(m)), rel=1e-10)


def test_default_alpha_and_validation():
    t = IsingRelaxation(4, dims=2, beta=0.5, J=1.0)
    assert t.alpha == pytest.approx(2 * 2 * 0.5 + 0.1)
    t1 = IsingRelaxation(5, dims=1, beta=1.0, J=1.0)  # odd ring: lambda_min = 2 cos(4 pi / 5)
    assert t1.alpha == pytest.approx(-2 * math.cos(4 * math.pi / 5) + 0.1)
    with pytest.raises(ValueError):
        IsingRelaxation(4, dims=2, beta=0.5, alpha=1.9)  # 2 d beta J = 2
    with pytest.raises(ValueError):
        IsingRelaxation(1, dims=2, beta=0.5)


# ---------------------------------------------------------------- relaxation: exactness

def _all_spins(shape):
    n = math.prod(shape)
    s = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=n)), dtype=torch.float64)
    return s.reshape((-1,) + tuple(shape))


@pytest.mark.parametrize("shape,beta,J", [((6,), 0.8, 1.0), ((2, 2), 0.4, 1.0), ((3, 3), 0.45, -0.7)])
def test_relaxed_density_is_the_spin_mixture(shape, beta, J):
    """pi~_x(x) * exp(-offset) == sum_s N(x; M s, M) exp(-beta E(s)), pointwise."""
    t = IsingRelaxation(list(shape), beta=beta, J=J)
    s = _all_spins(shape)
    n = t.n_sites
    m = _dense_m(t)
    minv = torch.linalg.inv(m)
    logdet = torch.logdet(m)
    ms = s.reshape(-1, n) @ m.T
    x = t.x_from_spins(s[torch.randint(len(s), (6,), generator=torch.Generator().manual_seed(4))],
                       torch.Generator().manual_seed(5)).reshape(6, n)
    diff = x[:, None, :] - ms[None, :, :]
    log_gauss = -0.5 * torch.einsum("ksi,ij,ksj->ks", diff, minv, diff) - 0.5 * n * math.log(2 * math.pi) \
        - 0.5 * logdet
    mix = torch.logsumexp(log_gauss + t.spin_log_weight(s)[None, :], dim=1)
    got = t.log_prob_unnormalised(x.reshape((6,) + tuple(shape))) - t.log_z_offset()
    torch.testing.assert_close(got, mix, rtol=1e-10, atol=1e-9)
    # the posterior marginal P(s_i = +1 | x) from the mixture equals sigmoid(2 x_i) (eq. 3)
    post = torch.softmax(log_gauss + t.spin_log_weight(s)[None, :], dim=1)  # (6, 2^n)
    p_up = post @ (s.reshape(-1, n) > 0).to(torch.float64)
    torch.testing.assert_close(p_up, t.prob_up(x), rtol=1e-9, atol=1e-12)
    # spin energy matches -beta E
    e = t.energy(s)
    torch.testing.assert_close(-beta * e * n, t.spin_log_weight(s))


def test_spin_x_spin_round_trip_preserves_ising_distribution():
    """s ~ exact 4x4 Ising; x | s; s' | x: the energy distribution of s' is still Ising."""
    L, T = 4, 2.5
    beta = 1.0 / T
    t = IsingRelaxation(L, dims=2, beta=beta)
    s_all = _all_spins((L, L))  # 65536 configurations
    e_all = t.energy(s_all)
    lw = -beta * e_all * L * L
    prob = torch.softmax(lw, 0)
    e_exact = float((prob * e_all).sum())
    assert e_exact == pytest.approx(ising2d_energy(L, T), rel=1e-10)
    g = torch.Generator().manual_seed(6)
    n = 20000
    pick = torch.multinomial(prob, n, replacement=True, generator=g)
    s = s_all[pick]
    x = t.x_from_spins(s, g)
    s2 = t.spins_from_x(x, g)
    assert set(torch.unique(s2).tolist()) <= {-1.0, 1.0}
    e2 = t.energy(s2).numpy()
    # energy histogram of s' vs the exact one (4 sigma per level)
    levels, inv = torch.unique(e_all, return_inverse=True)
    p_level = torch.zeros(len(levels), dtype=torch.float64).index_add_(0, inv, prob).numpy()
    counts = np.array([(np.abs(e2 - float(v)) < 1e-9).sum() for v in levels])
    assert counts.sum() == n
    sig = np.sqrt(n * p_level * (1 - p_level))
    assert np.all(np.abs(counts - n * p_level) <= 4 * sig + 1.0), (counts, n * p_level)
    # mean energy of s' and the improved estimator E[E | x]
    for est in (e2, t.energy_given_x(x).numpy()):
        err = est.std(ddof=1) / math.sqrt(n)
        assert abs(est.mean() - e_exact) < 4 * err
    # a wrong conditional (sigmoid(x) instead of sigmoid(2x)) is detected by the same test
    wrong = torch.where(torch.rand(x.shape, generator=g, dtype=torch.float64) < torch.sigmoid(x), 1.0, -1.0)
    ew = t.energy(wrong).numpy()
    assert abs(ew.mean() - e_exact) > 10 * ew.std(ddof=1) / math.sqrt(n)


def test_x_from_spins_moments():
    t = IsingRelaxation([4, 4], beta=0.44)
    s = torch.where(torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(7)) < 0.5, -1.0, 1.0)
    s = s.expand(20000, 4, 4).to(torch.float64)
    x = t.x_from_spins(s, torch.Generator().manual_seed(8)).reshape(20000, 16)
    mean = t.apply_m(s[:1], 1.0).reshape(16)
    cov = _dense_m(t)
    torch.testing.assert_close(x.mean(0), mean, atol=4 * math.sqrt(float(cov.diag().max()) / 20000), rtol=0)
    xc = x - mean
    emp = xc.T @ xc / 20000
    assert float((emp - cov).abs().max()) < 0.08 * float(cov.diag().max())


def test_relaxation_autograd_and_dtype():
    t = IsingRelaxation(4, dims=2, beta=0.3)
    x = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(9)).requires_grad_(True)
    lp = t.log_prob_unnormalised(x)
    assert lp.shape == (3,) and lp.dtype == torch.float64
    g, = torch.autograd.grad(lp.sum(), x)
    x64 = x.detach().to(torch.float64)
    want = -t.apply_m(x64, -1.0) + torch.tanh(x64)
    torch.testing.assert_close(g.to(torch.float64), want, rtol=1e-5, atol=1e-6)
    s = t.spins_from_x(x.detach(), torch.Generator().manual_seed(1))
    assert s.dtype == torch.float32 and s.shape == x.shape
