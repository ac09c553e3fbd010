"""UV matching (Bauer et al. 2024, appendix A): learnable fine hopping parameter for φ⁴.

The κ-gradient of the level's loss is the reverse-KL gradient E_q[∂S/∂κ] − E_p[∂S/∂κ]; the
fine reference set is exact (HMC from the upsampled coarse fields); and a level 4 → 8 trained
with UV matching, corrected by independence MH at its learned κ_8, reproduces 8×8 Monte Carlo
at κ_8 — the coupling the training chose, not the coarse one.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from physics_helpers import (assert_agrees, mc_mean_err, mh_chains, phi4_obs,  # noqa: E402
                             run_phi4, train_objective)

from hpc_rg.flows.couplings import dS_dkappa
from hpc_rg.flows.modelfile import build_level
from hpc_rg.flows.sampler import FieldModel
from hpc_rg.flows.objective import LevelObjective
from hpc_rg.flows.uv_matching import FineCouplings, fine_reference

pytestmark = pytest.mark.usefixtures("one_thread")
LAM = 0.02
LEVEL = dict(method="flow_rg", dims=2, layers=4, width=8, depth=2, kernel=3, sigma=0.5,
             learn_sigma=True, z2=True, conditional=False, scale_bound=2.0,
             local_flow="coupling")


def _coarse_pool(kappa, n_meas=320, seed=1):
    conf, _ = run_phi4((4, 4), kappa, LAM, 1.5, B=64, n_therm=200, n_meas=n_meas, seed=seed,
                       obs=lambda p: p.clone())
    return torch.as_tensor(conf[::4]).reshape(-1, 4, 4).to(torch.float64)


def test_kappa_gradient_is_the_reverse_kl_gradient():
    """d/dκ of the level loss = mean_q ∂S/∂κ − E_p[∂S/∂κ] (per site), κ away from κ₀."""
    torch.manual_seed(0)
    level = build_level(LEVEL).double()
    ref = torch.randn(1, 32, 8, 8, dtype=torch.float64)
    uv = FineCouplings([0.2], [LAM], reference=ref, reweight_ess=0.0).double()
    with torch.no_grad():
        uv.kappa.fill_(0.23)
    fm = FieldModel("phi4", 2, 0.2, SimpleNamespace(parametrization="bauer", lam=LAM))
    fm.set_kappa(8, 0.2)
    obj = LevelObjective([level], [fm], None, uv)
    coarse = torch.randn(1, 16, 4, 4, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    loss, log_w = obj(coarse, fm.log_p(coarse[0])[None], 0.0, g)
    grad, = torch.autograd.grad(loss, uv.kappa)
    fine, _ = level.sample(coarse[0], torch.Generator().manual_seed(3))
    expected = (dS_dkappa(fine.detach()).mean() - uv.reweighting(0)[0]) / 64
    torch.testing.assert_close(grad[0].double(), expected, rtol=1e-4, atol=1e-6)


def test_fine_reference_is_exact():
    """The fine reference set (4×4 Monte Carlo upsampled, 100 HMC trajectories at 8×8) has
    the ⟨|φ|⟩, ⟨φ²⟩ of 8×8 Monte Carlo within 4σ."""
    kappa = 0.25
    pool = _coarse_pool(kappa, n_meas=160)[None, :512]
    ref = fine_reference(pool, [kappa], [LAM], 100, seed=2, level=0)[0][0]
    v = phi4_obs(ref).numpy()
    m, e = v.mean(0), v.std(0, ddof=1) / math.sqrt(len(v))  # 512 independent HMC chains
    r, _ = run_phi4((8, 8), kappa, LAM, 1.5, B=64, n_therm=300, n_meas=800, seed=5,
                    obs=phi4_obs)
    rm, re = mc_mean_err(r)
    for i, name in enumerate(("<|phi|>", "<phi^2>")):
        assert_agrees(m[i], math.hypot(e[i], re[i]), rm[i], what=f"UV reference 8x8 {name}")


def test_fine_reference_thermalises_upsampled_fields_at_64():
    """From 32×32 Monte Carlo upsampled to 64² (λ = 0.01, κ = 0.25, near the transition) the
    100 HMC trajectories of the reference set reach 64×64 Monte Carlo's E[∂S/∂κ]/V and ⟨φ²⟩
    within 4σ with the adapted leapfrog step; with the fixed step 0.1 (accepted in < 1 % of
    the trajectories from upsampled fields) E[∂S/∂κ]/V stays > 8σ off (session 5's bias that
    drove the UV-matched κ_64 down by 0.05)."""
    from hpc_rg.flows.couplings import hmc_resample
    from hpc_rg.flows.upsample import upsample
    lam, kappa = 0.01, 0.25
    conf, _ = run_phi4((32, 32), kappa, lam, 1.5, B=64, n_therm=300, n_meas=20, seed=1,
                       obs=lambda p: p.clone())
    src = torch.as_tensor(conf[::10]).reshape(-1, 32, 32).to(torch.float64)  # 128 fields

    def obs(p):
        return torch.stack([dS_dkappa(p) / p[0].numel(), (p * p).mean((1, 2))], -1)
    r, _ = run_phi4((64, 64), kappa, lam, 1.5, B=64, n_therm=300, n_meas=400, seed=5, obs=obs)
    rm, re = mc_mean_err(r)
    ref, steps, accs = fine_reference(src[None], [kappa], [lam], 100, seed=2, level=3)
    fixed = hmc_resample(upsample(src), kappa, lam, 100, torch.Generator().manual_seed(2))
    print(f"adapted leapfrog step {steps[0]:.3f}, last acceptance {accs[0]:.2f}")
    for name, x in (("adapted", ref[0]), ("fixed 0.1", fixed)):
        v = obs(x).numpy()
        m, e = v.mean(0), v.std(0, ddof=1) / math.sqrt(len(v))
        z = (m - rm) / np.hypot(e, re)
        print(f"{name}: E[dS/dk]/V {m[0]:.4f}({e[0]:.4f}) <phi^2> {m[1]:.4f}({e[1]:.4f}) vs MC "
              f"{rm[0]:.4f}({re[0]:.4f}) {rm[1]:.4f}({re[1]:.4f}), z = {z.round(1)}")
        if name == "adapted":
            for i, what in enumerate(("E[dS/dkappa]/V", "<phi^2>")):
                assert_agrees(m[i], math.hypot(e[i], re[i]), rm[i], what=f"64x64 reference {what}")
        else:
            assert abs(z[0]) > 8


def test_uv_matched_level_is_exact_at_its_learned_coupling():
    """4 → 8 from κ = 0.25 with a learnable fine κ_8: κ_8 moves; independence MH with the
    fine target at κ_8 reproduces 8×8 Monte Carlo at κ_8."""
    kappa = 0.25
    pool = _coarse_pool(kappa)
    fm = FieldModel("phi4", 2, kappa, SimpleNamespace(parametrization="bauer", lam=LAM))
    fm.set_kappa(8, kappa)
    torch.manual_seed(0)
    level = build_level(LEVEL)
    ref, eps, _ = fine_reference(pool[None, :256], [kappa], [LAM], 100, seed=2, level=0)
    uv = FineCouplings([kappa], [LAM], reference=ref, hmc_trajectories=30, seed=7, eps=eps)
    obj = LevelObjective([level], [fm], None, uv)
    g = torch.Generator().manual_seed(1)
    train_objective(obj, fm, pool, 300, g)
    kappa_8 = uv.values()[0]
    print(f"learned kappa_8 = {kappa_8:.4f} (coarse kappa {kappa}), reference set resampled "
          f"{int(uv.refreshes[0])} times")
    assert abs(kappa_8 - kappa) > 0.005
    fm.set_kappa(8, kappa_8)
    level = level.double().eval()
    m, e, stats = mh_chains(level, fm, pool, phi4_obs, g)
    print(f"acceptance {stats.acceptance:.3f}, ESS/N {stats.ess_per_n:.3f}")
    assert stats.acceptance > 0.05
    for k_ref, seed in ((kappa_8, 2), (kappa, 3)):
        r, _ = run_phi4((8, 8), k_ref, LAM, 1.5, B=64, n_therm=300, n_meas=800, seed=seed,
                        obs=phi4_obs)
        rm, re = mc_mean_err(r)
        for i, name in enumerate(("<|phi|>", "<phi^2>")):
            z = (m[i] - rm[i]) / math.hypot(e[i], re[i])
            print(f"vs 8x8 MC at kappa {k_ref:.4f}: {name} {m[i]:.4f}({e[i]:.4f}) vs "
                  f"{rm[i]:.4f}({re[i]:.4f}), z = {z:+.1f}")
            if k_ref == kappa_8:
                assert_agrees(m[i], math.hypot(e[i], re[i]), rm[i],
                              what=f"UV-matched 8x8 {name} at kappa_8")


def test_warning_when_the_reference_set_is_resampled_most_steps(caplog):
    """More resamplings than half the steps (κ outruns the reweighting window) is flagged."""
    import logging

    from hpc_rg.methods.flow.couplings import warn_if_reference_lags as _warn_if_reference_lags
    uv = FineCouplings([0.2, 0.3], [LAM, LAM], reference=torch.zeros(2, 2, 8, 8))
    uv.refreshes[1] = 60
    with caplog.at_level(logging.WARNING, logger="hpc_rg"):
        _warn_if_reference_lags(uv, 100, 3)
    assert "level 4: the log Z reference set was resampled in more than half of the 100 " \
           "steps for grid point(s) [1]" in caplog.text
    caplog.clear()
    uv.refreshes[1] = 50
    with caplog.at_level(logging.WARNING, logger="hpc_rg"):
        _warn_if_reference_lags(uv, 100, 3)
    assert caplog.text == ""


def test_couplings_get_their_own_optimizer_group():
    """The learned couplings are optimised without weight decay, the UV κ at lr × uv_lr_factor:
    under AdamW (DeepSpeed's Adam) a κ pushed hard moves at most ~lr·factor per step, the
    flow weights at the full rate."""
    from hpc_rg.methods.flow.couplings import param_groups as _param_groups
    fm = FieldModel("phi4", 2, 0.25, SimpleNamespace(parametrization="bauer", lam=LAM))
    torch.manual_seed(0)
    level = build_level(LEVEL)
    uv = FineCouplings([0.25], [LAM], reference=torch.zeros(1, 2, 8, 8))
    obj = LevelObjective([level], [fm], None, uv)
    lr, factor, steps = 1e-2, 0.1, 20
    groups = _param_groups(obj, lr, factor)
    flat = [p for g in groups for p in g["params"]]
    assert len(flat) == len({id(p) for p in flat}) == len(list(obj.parameters()))
    assert groups[-1]["params"] == [uv.kappa] and groups[-1]["weight_decay"] == 0.0
    assert groups[-1]["lr"] == pytest.approx(lr * factor)
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.01)
    w0 = [p.detach().clone() for p in groups[0]["params"]]
    for _ in range(steps):  # a loss that pulls κ and every weight far away
        loss = -100 * uv.kappa.sum() - sum(p.sum() for p in groups[0]["params"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    moved = float(uv.kappa.detach()[0]) - 0.25
    assert 0.9 * steps * lr * factor < moved <= 1.001 * steps * lr * factor
    step_w = max(float((p.detach() - q).abs().max()) for p, q in zip(groups[0]["params"], w0))
    assert step_w > 0.9 * steps * lr
