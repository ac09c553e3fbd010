"""Tests for hpc_rg.mc.hmc: integrator invariants and φ⁴ physics.

Errors are jackknife errors over independent chains (one jackknife block per chain,
:func:`hpc_rg.analysis.stats.jackknife`), valid whatever the autocorrelation in a chain.
"""
from __future__ import annotations

import math

import pytest
import torch

from hpc_rg.analysis.exact import free_field_phi2
from hpc_rg.analysis.stats import jackknife
from hpc_rg.mc.cluster import phi4_wolff_update
from hpc_rg.mc.hmc import hamiltonian, hmc_update, leapfrog
from hpc_rg.models import phi4


pytestmark = pytest.mark.usefixtures("one_thread")


def chain_means(samples):
    """(n_meas, B) list of tensors -> per-chain means, numpy (B,)."""
    return torch.stack(samples).mean(0).numpy()


def run_phi4(L, d, kappa, lam, n_chains, n_meas, n_therm, seed, eps=0.1, n_steps=10, wolff=False):
    """HMC (optionally + one embedded Wolff update per trajectory) from φ = 0.

    Returns per-chain means of |φ̄|, φ̄², ⟨φ_x²⟩ (numpy (B,)) and all ΔH, acceptances.
    """
    g = torch.Generator().manual_seed(seed)
    phi = torch.zeros((n_chains,) + (L,) * d, dtype=torch.float64)
    absm, m2, p2, dh, acc = [], [], [], [], []
    for it in range(n_therm + n_meas):
        phi, a, delta_h = hmc_update(phi, kappa, lam, eps, n_steps, g)
        if wolff:
            phi, _ = phi4_wolff_update(phi, kappa, g)
        if it >= n_therm:
            m = phi4.mean_field(phi)
            absm.append(m.abs())
            m2.append(m * m)
            p2.append(phi4.mean_phi2(phi))
            dh.append(delta_h)
            acc.append(a.double())
    return dict(absm=chain_means(absm), m2=chain_means(m2), phi2=chain_means(p2),
                exp_mdh=chain_means([torch.exp(-x) for x in dh]), acc=chain_means(acc))


def jk_mean(x):
    return jackknife(lambda a: a, x, n_bins=len(x))


# ------------------------------------------------------------------ integrator
@pytest.mark.parametrize("shape", [(4, 8, 8), (3, 4, 4, 4)], ids=["2d", "3d"])
def test_leapfrog_reversible(shape):
    """Forward, flip momentum, forward again: back at the start to 1e-10 (float64)."""
    g = torch.Generator().manual_seed(1)
    phi0 = torch.randn(shape, generator=g, dtype=torch.float64)
    pi0 = torch.randn(shape, generator=g, dtype=torch.float64)
    B = shape[0]
    kappa = torch.linspace(0.1, 0.3, B, dtype=torch.float64)
    lam = torch.linspace(0.0, 0.5, B, dtype=torch.float64)
    eps = torch.linspace(0.02, 0.08, B, dtype=torch.float64)
    phi1, pi1 = leapfrog(phi0, pi0, kappa, lam, eps, 50)
    assert (phi1 - phi0).abs().max() > 0.1  # it moved
    phi2, pi2 = leapfrog(phi1, -pi1, kappa, lam, eps, 50)
    assert (phi2 - phi0).abs().max() < 1e-10
    assert (pi2 + pi0).abs().max() < 1e-10


def test_leapfrog_area_preserving():
    """det ∂(φ', π')/∂(φ, π) = 1 (symplectic) on a 2x2 lattice, via autograd."""
    kappa, lam, eps, n = 0.25, 0.5, 0.1, 10
    g = torch.Generator().manual_seed(2)
    z0 = torch.randn(8, generator=g, dtype=torch.float64)

    def flow(z):
        phi, pi = leapfrog(z[:4].view(1, 2, 2), z[4:].view(1, 2, 2), kappa, lam, eps, n)
        return torch.cat([phi.reshape(-1), pi.reshape(-1)])

    jac = torch.autograd.functional.jacobian(flow, z0)
    assert (jac - torch.eye(8, dtype=torch.float64)).abs().max() > 0.1  # non-trivial map
    assert abs(torch.linalg.det(jac).item() - 1.0) < 1e-10


def test_energy_violation_scales_as_eps_squared():
    """At fixed trajectory length τ = 1, ΔH = O(ε²): halving ε divides ΔH by 4."""
    g = torch.Generator().manual_seed(3)
    shape = (16, 8, 8)
    phi0 = 0.5 * torch.randn(shape, generator=g, dtype=torch.float64)
    pi0 = torch.randn(shape, generator=g, dtype=torch.float64)
    kappa, lam = 0.2, 0.02
    h0 = hamiltonian(phi0, pi0, kappa, lam)
    rms = []
    for n in (20, 40, 80):
        phi1, pi1 = leapfrog(phi0, pi0, kappa, lam, 1.0 / n, n)
        rms.append((hamiltonian(phi1, pi1, kappa, lam) - h0).pow(2).mean().sqrt().item())
    ratios = [rms[0] / rms[1], rms[1] / rms[2]]
    assert all(3.8 < r < 4.2 for r in ratios), ratios


def test_accepted_mask_and_reproducibility():
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    phi = torch.randn(8, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r1 = hmc_update(phi, 0.2, 0.02, 0.5, 4, g1)  # large step: some rejections
    r2 = hmc_update(phi, 0.2, 0.02, 0.5, 4, g2)
    assert torch.equal(r1.phi, r2.phi) and torch.equal(r1.accepted, r2.accepted)
    assert r1.accepted.dtype == torch.bool and r1.delta_h.dtype == torch.float64
    moved = (r1.phi != phi).flatten(1).any(1)
    assert torch.equal(moved, r1.accepted)


# ------------------------------------------------------------------ physics
def _check_free_field(L, d, kappa, n_chains, n_meas, seed, eps, n_steps):
    r = run_phi4(L, d, kappa, 0.0, n_chains, n_meas, n_therm=100, seed=seed, eps=eps, n_steps=n_steps)
    exact = free_field_phi2(L, d, kappa)
    val, err = jk_mean(r["phi2"])
    msg = f"HMC free field L={L} d={d} κ={kappa}: ⟨φ²⟩={val:.5f}±{err:.5f} exact {exact:.5f}"
    print(msg, "acc", r["acc"].mean())
    assert err < 0.005 * exact, msg
    assert abs(val - exact) < 4 * err, msg
    c, dc = jk_mean(r["exp_mdh"])
    assert abs(c - 1.0) < 4 * dc and dc < 0.02, f"Creutz ⟨exp(-ΔH)⟩ = {c}±{dc}"


def test_free_field_phi2_exact_2d():
    _check_free_field(8, 2, 0.2, n_chains=64, n_meas=500, seed=10, eps=0.2, n_steps=5)


@pytest.mark.slow
@pytest.mark.parametrize("L,d,kappa", [(16, 2, 0.22), (6, 3, 0.14)])
def test_free_field_phi2_exact_slow(L, d, kappa):
    _check_free_field(L, d, kappa, n_chains=64, n_meas=2000, seed=11, eps=0.1, n_steps=10)


def _compare(a, b, label):
    for key in ("absm", "phi2"):
        va, ea = jk_mean(a[key])
        vb, eb = jk_mean(b[key])
        sig = math.hypot(ea, eb)
        msg = f"{label} {key}: {va:.5f}±{ea:.5f} vs {vb:.5f}±{eb:.5f}"
        print(msg)
        assert sig < 0.02 * abs(va), "errors too large to be meaningful: " + msg
        assert abs(va - vb) < 4 * sig, msg


@pytest.mark.parametrize("kappa", [0.2, 0.3], ids=["symmetric", "broken"])
def test_hmc_vs_embedded_wolff_interacting(kappa):
    """2D λ = 0.02: pure HMC and HMC + embedded Wolff agree on ⟨|φ̄|⟩ and ⟨φ²⟩."""
    kw = dict(L=8, d=2, kappa=kappa, lam=0.02, n_chains=32, n_meas=400, n_therm=100)
    _compare(run_phi4(seed=20, **kw), run_phi4(seed=21, wolff=True, **kw), f"κ={kappa} HMC vs HMC+Wolff")


@pytest.mark.slow
@pytest.mark.parametrize("kappa", [0.2, 0.25, 0.3])
def test_hmc_vs_embedded_wolff_interacting_slow(kappa):
    kw = dict(L=16, d=2, kappa=kappa, lam=0.02, n_chains=64, n_meas=2000, n_therm=300)
    _compare(run_phi4(seed=30, **kw), run_phi4(seed=31, wolff=True, **kw), f"L=16 κ={kappa} HMC vs HMC+Wolff")
