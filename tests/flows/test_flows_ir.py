"""IR matching (Bauer et al. 2024 sec. VI): learnable coarse hopping parameter for φ⁴.

Unit checks of :mod:`hpc_rg.flows.ir_matching` (the path-wise κ derivative through the
Langevin steps, the eq. (34) surrogate, exact HMC resampling to κ_L), and the physics: a level
4 → 8 trained with IR matching, fed with coarse fields resampled exactly at its learned κ_L
and corrected by independence MH with the coarse density at κ_L, reproduces 8×8 Monte Carlo
at the fine κ (a wrong coarse density — the fine κ — would bias it).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from physics_helpers import (assert_agrees, mc_mean_err, mh_chains, phi4_obs,  # noqa: E402
                             run_phi4, train_objective)

from hpc_rg.flows.ir_matching import CoarseCouplings, dS_dkappa, resample_coarse
from hpc_rg.flows.modelfile import build_level
from hpc_rg.flows.sampler import FieldModel
from hpc_rg.flows.objective import LevelObjective
from hpc_rg.models import phi4

pytestmark = pytest.mark.usefixtures("one_thread")
LAM = 0.02


def test_dS_dkappa_is_the_derivative_of_the_action():
    phi = torch.randn(5, 4, 4, dtype=torch.float64)
    k = torch.tensor(0.27, dtype=torch.float64, requires_grad=True)
    g, = torch.autograd.grad(phi4.action(phi, k, LAM).sum(), k)
    torch.testing.assert_close(g, dS_dkappa(phi).sum())


def test_langevin_move_is_differentiable_in_kappa():
    """Autograd through every Langevin step equals a central finite difference with the same
    noise."""
    def moved(kappa_value, requires_grad=False):
        c = CoarseCouplings([0.0], [LAM], langevin_steps=6, grad_steps=6, tau=0.05).double()
        with torch.no_grad():
            c.kappa.fill_(kappa_value)  # exactly, in float64
        c.kappa.requires_grad_(requires_grad)
        phi0 = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        out = c.move(0, phi0, torch.Generator().manual_seed(1))
        return c, (out ** 3).sum()
    c, val = moved(0.25, True)
    grad, = torch.autograd.grad(val, c.kappa)
    h = 1e-6
    fd = (moved(0.25 + h)[1] - moved(0.25 - h)[1]) / (2 * h)
    torch.testing.assert_close(grad[0], fd, rtol=1e-5, atol=1e-7)


def test_surrogate_cancels_the_explicit_coarse_action_gradient():
    """At fixed fields, d/dκ [−S_L[κ](φ) + κ·mean ∂S/∂κ] averages to 0 (score identity):
    the κ_L gradient comes from the fields' dependence on κ_L alone."""
    c = CoarseCouplings([0.25], [LAM]).double()
    phi = torch.randn(16, 4, 4, dtype=torch.float64)
    g, = torch.autograd.grad(c.loss_terms(0, phi).mean(), c.kappa)
    assert abs(float(g)) < 1e-10


def test_hmc_resampling_reaches_the_new_coupling():
    """Fields from Monte Carlo at κ = 0.22, moved by HMC to κ_L = 0.28, have the observables
    of Monte Carlo at 0.28 (4×4, within 4σ)."""
    conf, _ = run_phi4((4, 4), 0.22, LAM, 1.5, B=64, n_therm=200, n_meas=64, seed=1,
                       obs=lambda p: p.clone())
    start = torch.as_tensor(conf[-1]).reshape(-1, 4, 4)  # 64 chains' last configurations
    g = torch.Generator().manual_seed(2)
    x = start.repeat(8, 1, 1)  # 512 chains
    vals = []
    x = resample_coarse(x, 0.28, LAM, 60, g)
    for _ in range(20):
        x = resample_coarse(x, 0.28, LAM, 2, g)
        vals.append(phi4_obs(x))
    per_chain = torch.stack(vals).mean(0).numpy()  # (512, 2)
    m, e = per_chain.mean(0), per_chain.std(0, ddof=1) / math.sqrt(len(per_chain))
    ref, _ = run_phi4((4, 4), 0.28, LAM, 1.5, B=64, n_therm=300, n_meas=600, seed=3,
                      obs=phi4_obs)
    rm, re = mc_mean_err(ref)
    for i, name in enumerate(("<|phi|>", "<phi^2>")):
        assert_agrees(m[i], math.hypot(e[i], re[i]), rm[i], what=f"HMC-resampled 4x4 {name}")


def test_ir_matched_level_is_exact_with_mh():
    """4 → 8 at κ = 0.2 (symmetric), λ = 0.02: κ_L is learned (it moves away from κ), coarse
    fields are resampled at κ_L, independence MH with log p~_L[κ_L] reproduces 8×8 MC."""
    kappa = 0.2
    conf, _ = run_phi4((4, 4), kappa, LAM, 1.5, B=64, n_therm=200, n_meas=320, seed=1,
                       obs=lambda p: p.clone())
    pool = torch.as_tensor(conf[::4]).reshape(-1, 4, 4).to(torch.float64)
    fm = FieldModel("phi4", 2, kappa, SimpleNamespace(parametrization="bauer", lam=LAM))
    torch.manual_seed(0)
    level = build_level(dict(method="flow_rg", dims=2, layers=4, width=8, depth=2, kernel=3,
                             sigma=0.5, learn_sigma=True, z2=True, conditional=False,
                             scale_bound=2.0, local_flow="coupling"))
    ir = CoarseCouplings([kappa], [LAM], langevin_steps=20, grad_steps=5, tau=0.05,
                         reference=pool[None], hmc_trajectories=20, seed=7)
    obj = LevelObjective([level], [fm], ir)
    g = torch.Generator().manual_seed(1)
    train_objective(obj, fm, pool, 300, g)
    kappa_L = ir.values()[0]
    print(f"learned kappa_L = {kappa_L:.4f} (fine kappa {kappa}), reference set resampled "
          f"{int(ir.refreshes[0])} times")
    assert kappa_L < kappa - 0.02  # the symmetric phase's coarse coupling moves further in
    fm.set_kappa(4, kappa_L)
    level = level.double().eval()
    coarse = resample_coarse(pool, kappa_L, LAM, 60, g)
    m, e, stats = mh_chains(level, fm, coarse, phi4_obs, g)
    ref, _ = run_phi4((8, 8), kappa, LAM, 1.5, B=64, n_therm=200, n_meas=800, seed=2,
                      obs=phi4_obs)
    rm, re = mc_mean_err(ref)
    print(f"acceptance {stats.acceptance:.3f}, ESS/N {stats.ess_per_n:.3f}")
    assert stats.acceptance > 0.05
    for i, name in enumerate(("<|phi|>", "<phi^2>")):
        assert_agrees(m[i], math.hypot(e[i], re[i]), rm[i], what=f"IR-matched 8x8 {name}")


def test_reweighted_log_z_gradient_matches_monte_carlo_at_the_new_coupling():
    """Eq. (36): E[∂S/∂κ] at κ' = 0.23 from 4×4 samples at κ = 0.22 reweighted equals Monte
    Carlo at 0.23 within 4σ; at a coupling far away the reweighting's ESS/N falls under R_W,
    the set is moved there by HMC (κ_ref follows) and again agrees with Monte Carlo."""
    conf, _ = run_phi4((4, 4), 0.22, LAM, 1.5, B=64, n_therm=200, n_meas=160, seed=4,
                       obs=lambda p: p.clone())
    ref_set = torch.as_tensor(conf[::4]).reshape(-1, 4, 4).to(torch.float64)  # 2560 fields
    c = CoarseCouplings([0.22], [LAM], reference=ref_set[None], reweight_ess=0.85,
                        hmc_trajectories=60, seed=3).double()
    for target, seed in ((0.23, 5), (0.30, 6)):
        with torch.no_grad():
            c.kappa.fill_(target)
        refreshed = c.refresh(0)
        est, ess = c.reweighting(0)
        assert refreshed == (target == 0.30), (target, ess)
        assert float(c.ref_kappa[0]) == pytest.approx(0.22 if target == 0.23 else target)
        d, _ = run_phi4((4, 4), target, LAM, 1.5, B=64, n_therm=300, n_meas=400, seed=seed,
                        obs=lambda p: dS_dkappa(p))
        per_chain = d.mean(0)  # (64,)
        rm, re = per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(len(per_chain))
        # the reference set's own error: jackknife-free estimate from 16 blocks of rows
        vals = dS_dkappa(c.ref_phi[0])
        w = torch.softmax(-(c.kappa[0].detach().double() - c.ref_kappa[0]) * vals, 0)
        blocks = [(w[i::16] * vals[i::16]).sum() / w[i::16].sum() for i in range(16)]
        be = float(torch.stack(blocks).std() / 4.0)
        assert_agrees(est, math.hypot(be, float(re)), float(rm),
                      what=f"reweighted dS/dkappa at {target} (ESS/N {ess:.2f})")


def test_reference_set_resampling_is_reproducible():
    """Two instances (two ranks) with the same seed and couplings resample identically, and
    the buffers travel in the state dict (DeepSpeed checkpoints restore them)."""
    ref_set = torch.randn(1, 64, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a, b = (CoarseCouplings([0.2], [LAM], reference=ref_set, hmc_trajectories=3, seed=9)
            for _ in range(2))
    for c in (a, b):
        with torch.no_grad():
            c.kappa.fill_(0.6)
        assert c.refresh(0)
    assert torch.equal(a.ref_phi, b.ref_phi) and int(a.refreshes[0]) == 1
    assert {"ref_phi", "ref_kappa", "refreshes"} <= set(a.state_dict())


def test_langevin_fields_start_near_the_learned_coupling():
    """The pathwise fields are drawn from the reference set (refreshed to κ_L) and moved by
    Langevin at κ_L: their mean ∂S/∂κ agrees with the reweighted E_{p[κ_L]}[∂S/∂κ] within 4σ
    even when κ_L is far from the fine κ (0.22 → 0.30), so the explicit and log Z terms of
    the κ_L gradient cancel in expectation as they must. (Chains started from the stored
    fields at 0.22 instead: −69(2) after 40 steps vs −311(3).)"""
    conf, _ = run_phi4((4, 4), 0.22, LAM, 1.5, B=64, n_therm=200, n_meas=160, seed=4,
                       obs=lambda p: p.clone())
    ref_set = torch.as_tensor(conf[::4]).reshape(-1, 4, 4).to(torch.float64)
    c = CoarseCouplings([0.22], [LAM], langevin_steps=40, grad_steps=5, tau=0.05,
                        reference=ref_set[None], hmc_trajectories=60, seed=3).double()
    with torch.no_grad():
        c.kappa.fill_(0.30)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        d = torch.cat([dS_dkappa(c.move(0, torch.zeros(256, 4, 4, dtype=torch.float64), g))
                       for _ in range(8)])
    assert int(c.refreshes[0]) == 1
    expected = c.reweighting(0)[0]
    vals = dS_dkappa(c.ref_phi[0])
    ref_err = float(vals.std() / math.sqrt(len(vals)))
    err = math.hypot(float(d.std() / math.sqrt(len(d))), ref_err)
    assert_agrees(float(d.mean()), err, expected, what="Langevin-field dS/dkappa at kappa_L")
