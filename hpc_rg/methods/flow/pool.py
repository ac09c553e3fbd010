"""The coarse fields each flow level works on, and how its output is made exact.

:func:`field_models` gives the target density of every grid point; :func:`advance_pool`
turns level k's coarse pool into level k+1's by level k's corrected output; the correction
(independence MH or latent HMC) is :func:`correction`, with ``upscale.hmc.trajectories:
auto`` decided by :func:`resolve_correction` from the proposals' ESS/N (measured in training,
:func:`training_ess`, or on a pilot of real proposals, :func:`pilot_ess`).
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("hpc_rg")


def field_models(cfg, grid) -> list:
    """The :class:`~hpc_rg.flows.sampler.FieldModel` of every grid point of the deck."""
    from ...flows.sampler import FieldModel
    return [FieldModel(cfg.model.name, cfg.model.dims, p, cfg.model, cfg.train.flow.alpha)
            for p in grid]


def correction(cfg) -> str:
    """How the flow levels are made exact: ``independence_mh``, ``latent_hmc`` or ``none``."""
    if not cfg.upscale.mh:
        return "none"
    return "latent_hmc" if cfg.upscale.hmc.trajectories else "independence_mh"


def resolve_correction(cfg, ess, what: str):
    """``cfg`` with ``upscale.hmc.trajectories: auto`` resolved, and a log line (or None).

    Latent HMC (``auto_trajectories``) when the smallest ESS/N in ``ess`` (of the flow's
    proposals, measured as ``what`` says) is below ``auto_below``, else independence MH:
    an independence sampler accepts roughly as often as its proposals' ESS/N allows, and
    below ~0.2 its chains do not mix (docs/validation.md measures both corrections).
    """
    import dataclasses
    h = cfg.upscale.hmc
    if h.trajectories != "auto":
        return cfg, None
    ess = [float(e) for e in ess if np.isfinite(e)]
    worst = min(ess) if ess else float("nan")
    if not cfg.upscale.mh or cfg.train.method == "cnn":
        traj, note = 0, None
    elif not worst >= h.auto_below:  # NaN (nothing measured) too: the safe choice
        traj = h.auto_trajectories
        note = (f"upscale.hmc.trajectories: auto -> latent HMC, {traj} trajectories x "
                f"{h.leapfrog_steps} leapfrog steps per configuration and level: ESS/N of the "
                f"flow's proposals {worst:.3f} < {h.auto_below} ({what}), too small for "
                f"independence MH to mix; slower than independence MH, exact")
    else:
        traj = 0
        note = (f"upscale.hmc.trajectories: auto -> independence MH: ESS/N of the flow's "
                f"proposals {worst:.3f} >= {h.auto_below} ({what})")
    u = dataclasses.replace(cfg.upscale, hmc=dataclasses.replace(h, trajectories=traj))
    return dataclasses.replace(cfg, upscale=u), note


def training_ess(history, level: int) -> float:
    """Mean batch ESS/N of the last 5 training steps of ``level`` (1-based)."""
    last = [row[3] for row in history if int(row[0]) == level - 1][-5:]
    return float(np.mean(last)) if last else float("nan")


def pilot_ess(bank, fms, g0, n_levels: int, seed: int, rows: int = 128) -> list:
    """ESS/N of the flow's proposals on the first ``rows`` Monte Carlo inputs of every grid
    point, level after level (each level proposing from the previous one's proposals)."""
    import torch

    from ...flows.mh import ess_per_n
    from ...flows.sampler import propose
    from ...rng import torch_generator
    from ...io.ensemble import read_runs
    out = []
    for t, fm in enumerate(fms):
        stored = torch.from_numpy(read_runs(g0, [(0, rows)], t=t))
        x = fm.to_flow(stored, torch_generator(seed, "flow-pilot-coarse", t))
        lp = fm.log_p(x)
        for k in range(n_levels):
            x, log_w, lp = propose(bank.chains[t].levels[k], x, lp, fm,
                                   torch_generator(seed, "flow-pilot", t, k))
            out.append(ess_per_n(log_w))
    return out


def advance_pool(bank, k, pool, pool_lp, fms, cfg, rank):
    """The next level's coarse pool: level k's corrected output on this rank's pool (by the
    upscale stage's correction: latent HMC if ``upscale.hmc.trajectories``, else
    independence MH)."""
    import torch

    from ...flows.sampler import ChainState, hmc_step, mh_step
    from ...rng import torch_generator
    B = max(cfg.train.flow.batch, 64)
    h = cfg.upscale.hmc
    outs, lps = [], []
    for t, fm in enumerate(fms):
        level = bank.chains[t].levels[k].eval()
        state, xs, ls = ChainState(), [], []
        for j, a in enumerate(range(0, pool.shape[1], B)):
            gen = torch_generator(cfg.run.seed, "flow-train-pool", k, t, rank, j,
                                  device=pool.device)
            if h.trajectories:  # (autograd.grad by the latent only: no .grad is written)
                x, lp, _ = hmc_step(level, pool[t, a:a + B], pool_lp[t, a:a + B], fm, state,
                                    h.trajectories, h.leapfrog_steps, h.step_size, gen)
            else:
                x, lp, _ = mh_step(level, pool[t, a:a + B], pool_lp[t, a:a + B], fm, state,
                                   gen, index_offset=a)
            xs.append(x.to(torch.float32))
            ls.append(lp)
        outs.append(torch.cat(xs))
        lps.append(torch.cat(ls))
        log.debug(f"[train] pool for level {k + 2}, point {t}: acceptance "
                  f"{state.stats.acceptance:.3f}, ESS/N {state.stats.ess_per_n:.3f}")
    return torch.stack(outs), torch.stack(lps)
