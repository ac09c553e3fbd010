"""Tests for hpc_rg.mc.langevin: MALA exactness, the known ULA bias, agreement with HMC.

Errors are jackknife errors over independent chains (one block per chain).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpc_rg.analysis.exact import free_field_phi2
from hpc_rg.analysis.stats import jackknife
from hpc_rg.mc.cluster import phi4_wolff_update
from hpc_rg.mc.hmc import hmc_update
from hpc_rg.mc.langevin import langevin_update
from hpc_rg.models import phi4


pytestmark = pytest.mark.usefixtures("one_thread")


def _a_k(L, d, kappa):
    """Eigenvalues ``a_k = 2(1 - 2κ Σ_μ cos k_μ)`` of the λ = 0 action ``S = ½ φ·Aφ``."""
    k = 2 * np.pi * np.arange(L) / L
    return 2.0 * (1.0 - 2.0 * kappa * sum(np.meshgrid(*([np.cos(k)] * d), indexing="ij")))


def free_phi2_ula(L, d, kappa, eps):
    """Stationary ⟨φ_x²⟩ of unadjusted Langevin for the free field.

    ``φ' = (1 - εA)φ + sqrt(2ε)η`` has stationary covariance ``c_k = 2ε / (1 - (1 - εa_k)²)
    = 1 / (a_k (1 - ε a_k / 2))``.
    """
    a = _a_k(L, d, kappa)
    return float(np.mean(1.0 / (a * (1.0 - 0.5 * eps * a))))


def jk_mean(x):
    return jackknife(lambda a: a, x, n_bins=len(x))


def run_langevin(L, d, kappa, lam, eps, n_chains, n_meas, n_therm, seed, metropolize=True, every=1, phi0=None):
    g = torch.Generator().manual_seed(seed)
    phi = torch.zeros((n_chains,) + (L,) * d, dtype=torch.float64) if phi0 is None else phi0.clone()
    absm, p2, acc = [], [], []
    for it in range(n_therm + n_meas):
        phi, a = langevin_update(phi, kappa, lam, eps, g, metropolize=metropolize)
        if it >= n_therm:
            acc.append(a.double())
            if (it - n_therm) % every == 0:
                absm.append(phi4.mean_field(phi).abs())
                p2.append(phi4.mean_phi2(phi))
    return dict(absm=_chain_mean(absm), phi2=_chain_mean(p2), acc=_chain_mean(acc))


def run_hmc_wolff(L, d, kappa, lam, n_chains, n_meas, n_therm, seed):
    """Reference: HMC (ε = 0.1, 10 steps) + one embedded Wolff update per trajectory."""
    g = torch.Generator().manual_seed(seed)
    phi = torch.zeros((n_chains,) + (L,) * d, dtype=torch.float64)
    absm, p2 = [], []
    for it in range(n_therm + n_meas):
        phi = hmc_update(phi, kappa, lam, 0.1, 10, g).phi
        phi, _ = phi4_wolff_update(phi, kappa, g)
        if it >= n_therm:
            absm.append(phi4.mean_field(phi).abs())
            p2.append(phi4.mean_phi2(phi))
    return dict(absm=_chain_mean(absm), phi2=_chain_mean(p2), final=phi)


def _chain_mean(xs):
    """List of (B,) tensors over time -> per-chain time averages, numpy (B,)."""
    return torch.stack(xs).mean(0).numpy()


# ------------------------------------------------------------------ basic behaviour
def test_unadjusted_always_accepts_and_is_reproducible():
    phi = torch.randn(5, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    r1 = langevin_update(phi, 0.2, 0.02, 0.05, torch.Generator().manual_seed(1), metropolize=False)
    r2 = langevin_update(phi, 0.2, 0.02, 0.05, torch.Generator().manual_seed(1), metropolize=False)
    assert r1.accepted.all() and torch.equal(r1.phi, r2.phi)


def test_mala_per_chain_step_and_acceptance_limit():
    """Acceptance -> 1 as ε -> 0 (MALA rejection rate is O(ε^{3/2}) per step)."""
    g = torch.Generator().manual_seed(2)
    B = 256
    phi = torch.randn(B, 8, 8, generator=g, dtype=torch.float64)
    eps = torch.cat([torch.full((B // 2,), 1e-4), torch.full((B // 2,), 0.5)]).double()
    r = langevin_update(phi, 0.2, 0.02, eps, g)
    small, large = r.accepted[: B // 2], r.accepted[B // 2:]
    assert small.all() and large.double().mean() < 0.5
    moved = (r.phi != phi).flatten(1).any(1)
    assert torch.equal(moved, r.accepted)


# ------------------------------------------------------------------ physics
def test_free_field_mala_exact_and_ula_bias():
    """λ = 0, κ = 0.2, 2D L = 8, ε = 0.1: MALA gives the exact propagator; ULA gives its
    own known stationary value 1/(a(1 - εa/2)) and is measurably biased."""
    L, d, kappa, eps = 8, 2, 0.2, 0.1
    exact, ula_exact = free_field_phi2(L, d, kappa), free_phi2_ula(L, d, kappa, eps)
    mala = run_langevin(L, d, kappa, 0.0, eps, 64, 2000, 300, seed=40)
    ula = run_langevin(L, d, kappa, 0.0, eps, 64, 2000, 300, seed=41, metropolize=False)
    vm, em = jk_mean(mala["phi2"])
    vu, eu = jk_mean(ula["phi2"])
    print(f"MALA ⟨φ²⟩={vm:.5f}±{em:.5f} exact {exact:.5f} (acc {mala['acc'].mean():.3f}); "
          f"ULA {vu:.5f}±{eu:.5f} predicted {ula_exact:.5f}")
    assert em < 0.005 * exact and eu < 0.005 * exact
    assert abs(vm - exact) < 4 * em
    assert abs(vu - ula_exact) < 4 * eu
    assert abs(vu - exact) > 8 * eu  # the ULA bias is resolved: the test has power


def _compare_mala_hmc(kappa, L, n_chains, n_meas_hmc, n_meas_mala, seed, eps=0.1):
    ref = run_hmc_wolff(L, 2, kappa, 0.02, n_chains, n_meas_hmc, n_meas_hmc // 4, seed)
    # MALA starts from the reference chains' final (equilibrium) configurations: from a cold
    # start, local dynamics coarsens domain walls too slowly in the broken phase at L = 16.
    mala = run_langevin(L, 2, kappa, 0.02, eps, n_chains, n_meas_mala, n_meas_mala // 6, seed + 1,
                        phi0=ref["final"])
    assert mala["acc"].mean() > 0.5
    for key in ("absm", "phi2"):
        va, ea = jk_mean(mala[key])
        vb, eb = jk_mean(ref[key])
        sig = math.hypot(ea, eb)
        msg = f"L={L} κ={kappa} {key}: MALA {va:.5f}±{ea:.5f} vs HMC+Wolff {vb:.5f}±{eb:.5f}"
        print(msg)
        assert sig < 0.02 * abs(vb), "errors too large to be meaningful: " + msg
        assert abs(va - vb) < 4 * sig, msg


def test_mala_vs_hmc_interacting():
    """2D λ = 0.02, κ = 0.2, L = 8: MALA agrees with HMC + embedded Wolff on ⟨|φ̄|⟩, ⟨φ²⟩."""
    _compare_mala_hmc(0.2, 8, 32, 400, 3000, seed=50)


@pytest.mark.slow
@pytest.mark.parametrize("kappa,L,eps", [(0.3, 8, 0.1), (0.25, 16, 0.06), (0.3, 16, 0.04)])
def test_mala_vs_hmc_interacting_slow(kappa, L, eps):
    """Broken phase (κ = 0.3) and near-critical κ = 0.25. MALA's acceptance falls with
    the volume (optimal ε ∝ N^{-1/3}) and with the curvature of S, hence smaller ε at L = 16."""
    _compare_mala_hmc(kappa, L, 64, 2000, 12000, seed=70, eps=eps)


@pytest.mark.slow
@pytest.mark.parametrize("L,d,kappa", [(16, 2, 0.22), (6, 3, 0.14)])
def test_free_field_mala_exact_slow(L, d, kappa):
    r = run_langevin(L, d, kappa, 0.0, 0.1, 64, 8000, 1000, seed=60)
    exact = free_field_phi2(L, d, kappa)
    v, e = jk_mean(r["phi2"])
    print(f"MALA L={L} d={d}: {v:.5f}±{e:.5f} exact {exact:.5f}")
    assert e < 0.003 * exact and abs(v - exact) < 4 * e
