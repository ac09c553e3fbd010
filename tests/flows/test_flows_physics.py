"""Exactness of MH-corrected flow super-resolution at small size (in process, no MPI).

A level 4 → 8 is trained briefly by reverse KL (:class:`hpc_rg.flows.objective.LevelObjective`
with plain Adam), then independence Metropolis-Hastings chains (:func:`hpc_rg.flows.sampler.
mh_step`) with coarse inputs from 4×4 Monte Carlo must reproduce the 8×8 answer: φ⁴ ⟨|φ|⟩
and ⟨φ²⟩ from a long 8×8 Metropolis run. For the relaxed Ising model independence MH is not
enough after short training (heavy-tailed weights; docs/validation.md); there the levels are
corrected by HMC in the flow's latent space (:func:`hpc_rg.flows.sampler.hmc_step`, as the
upscale stage does with ``upscale.hmc``), and the chain 4 → 8 → 16 must reproduce Kaufman's
exact finite-lattice energy at both sizes. MH makes the result exact
whatever the training quality; a poor flow only widens the error bar. The error is the spread
of independent chains (each with fresh coarse inputs), which includes autocorrelation and
sticking of the chains. Note: reverse-KL flows are mode-seeking; with very heavy-tailed
weights (ESS/N ≪ 0.01, seen for the conditional checkerboard level on the Ising relaxation)
short chains can be biased far beyond their apparent error — the decks below use settings
where the weights are well behaved.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from physics_helpers import assert_agrees, mh_chains, run_phi4, train_objective  # noqa: E402

from hpc_rg.flows.modelfile import build_level
from hpc_rg.flows.sampler import ChainState, FieldModel, hmc_step
from hpc_rg.flows.objective import LevelObjective

pytestmark = pytest.mark.usefixtures("one_thread")


def _spec(method, width=8, layers=4, sigma=1.0, conditional=False):
    return dict(method=method, dims=2, layers=layers, width=width, depth=2, kernel=3,
                sigma=sigma, learn_sigma=True, z2=True, conditional=conditional,
                scale_bound=2.0, local_flow="coupling")


def _train(level, fm, x, steps, batch=64, lr=3e-3, seed=0):
    torch.manual_seed(seed)
    train_objective(LevelObjective([level], [fm]), fm, x, steps,
                    torch.Generator().manual_seed(seed + 1), batch, lr)
    return level.double().eval()


def _mh_chains(level, fm, x, observable, n_chains=16, length=512, batch=256, seed=7):
    """Mean over independent MH chains and the error from their spread; (mean, err, stats)."""
    return mh_chains(level, fm, x, observable, torch.Generator().manual_seed(seed), n_chains,
                     length, batch)


def test_phi4_mh_8x8_from_4x4_matches_monte_carlo():
    kappa, lam = 0.2, 0.05
    conf, _ = run_phi4((4, 4), kappa, lam, 1.5, B=64, n_therm=200, n_meas=320, seed=1,
                       obs=lambda p: p.clone())
    coarse = torch.as_tensor(conf[::4]).reshape(-1, 4, 4)
    obs = lambda p: torch.stack([p.mean((1, 2)).abs(), (p * p).mean((1, 2))], -1)  # noqa: E731
    ref, _ = run_phi4((8, 8), kappa, lam, 1.5, B=64, n_therm=200, n_meas=800, seed=2, obs=obs)
    ref_chain = ref.mean(0)  # (64 chains, 2): independent chain means
    ref_m, ref_e = ref_chain.mean(0), ref_chain.std(0, ddof=1) / math.sqrt(ref_chain.shape[0])
    fm = FieldModel("phi4", 2, kappa, SimpleNamespace(parametrization="bauer", lam=lam))
    level = _train(build_level(_spec("flow_rg", sigma=0.5)), fm, coarse.to(torch.float64), 150)
    m, e, st = _mh_chains(level, fm, coarse.to(torch.float64), obs)
    print(f"phi4 kappa={kappa} lam={lam}: acceptance {st.acceptance:.3f}, ESS/N "
          f"{st.ess_per_n:.3f}, KL {st.reverse_kl:.3f}")
    assert st.acceptance > 0.05
    for i, name in enumerate(("<|phi|>", "<phi^2>")):
        assert_agrees(m[i], math.hypot(e[i], ref_e[i]), ref_m[i], what=f"phi4 8x8 {name}")



def _ising_coarse(T, L=4, n=2048, seed=1):
    """``n`` configurations of L×L Ising at T (64 heat-bath chains, every 4th sweep)."""
    from hpc_rg.mc.checkerboard import sweep
    from hpc_rg.models import ising
    from hpc_rg.models.lattice import global_site_ids
    from hpc_rg.rng import CounterRNG, derive_seed
    B = 64
    spins = torch.ones(B, L, L)
    rng = CounterRNG(derive_seed(seed, "mc"), torch.arange(B), global_site_ids((L, L)))
    out, t = [], 0
    while len(out) * B < n:
        sweep(spins, ising.local_field, 1.0 / T, rng, t, "heatbath")
        if t >= 200 and t % 4 == 0:
            out.append(spins.clone())
        t += 1
    return torch.cat(out)[:n]


def _latent_hmc_chain(T, levels, rows=256, hmc=None, width=16, layers=6):
    """Relaxed 2D Ising flow_rg chain 4 → 8 (→ 16): each level trained briefly by reverse KL
    (level 2 starts from level 1's weights and trains on level 1's output), then corrected by
    latent HMC on ``rows`` independent chains (float32 flow, as the upscale stage runs it).
    Returns [(L, energies (rows,), ChainState)] per level."""
    fm = FieldModel("ising", 2, T, SimpleNamespace(J=1.0))
    g = torch.Generator().manual_seed(3)
    x = fm.to_flow(_ising_coarse(T), g)
    hmc = hmc or dict(trajectories=30, leapfrog_steps=8, step_size=0.3)
    pool, coarse = x, x[torch.randperm(len(x), generator=g)[:rows]]
    weights, out = None, []
    for k in range(levels):
        level = build_level(_spec("flow_rg", width=width, layers=layers))
        if weights is not None:
            level.load_state_dict(weights)  # transfer learning
        level = _train(level, fm, pool, 400 if k == 0 else 200, seed=5 * k)
        weights = {n: v.float() for n, v in level.state_dict().items()}
        level = level.float().requires_grad_(False)
        st = ChainState()
        coarse, _, _ = hmc_step(level, coarse, fm.log_p(coarse), fm, st, generator=g, **hmc)
        coarse = coarse.to(torch.float64)
        pool = coarse
        L = coarse.shape[-1]
        out.append((L, fm.target(L).energy_given_x(coarse), st))
    return out


def _check_exact_energies(T, results, rows):
    from hpc_rg.analysis.exact import ising2d_energy
    for L, e, st in results:
        print(f"ising T={T} L={L}: HMC acceptance {st.stats.acceptance:.3f}, proposals' ESS/N "
              f"{st.stats.ess_per_n:.4f}")
        assert 0.5 < st.stats.acceptance < 1
        assert_agrees(float(e.mean()), float(e.std() / math.sqrt(rows)), ising2d_energy(L, T),
                      max_rel_err=0.01, what=f"relaxed ising {L}x{L} e(T={T}), latent HMC")


@pytest.mark.parametrize("T", [2.269185, 3.0])
def test_ising_relaxation_latent_hmc_4_to_8_is_exact(T):
    """Every output row is an independent chain, so the error is the standard error over
    rows; Kaufman's exact 8×8 energy within 4σ."""
    _check_exact_energies(T, _latent_hmc_chain(T, levels=1, rows=768, width=8, layers=4), 768)


@pytest.mark.slow
@pytest.mark.parametrize("T", [2.269185, 3.0])
def test_ising_relaxation_latent_hmc_chain_4_8_16_is_exact(T):
    """As above through two levels (the 16×16 level starts from the 8×8 HMC output)."""
    _check_exact_energies(T, _latent_hmc_chain(T, levels=2, rows=768), 768)
