"""φ⁴ couplings learned while the flows train: IR matching (the coarse κ_L of level 1,
:mod:`hpc_rg.flows.ir_matching`) and UV matching (the fine κ of every level,
:mod:`hpc_rg.flows.uv_matching`), their reference sets, optimizer groups and log lines."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger("hpc_rg")


def coarse_couplings(cfg, fms, pool, comm, device):
    """IR matching, level 1: learnable κ_L starting at the deck's κ, and its reference set
    (every rank's coarse Monte Carlo fields)."""
    from ...flows.ir_matching import CoarseCouplings
    f = cfg.train.flow
    return CoarseCouplings([fm.kappa for fm in fms], [fm.lam for fm in fms],
                           f.ir_langevin_steps, f.ir_grad_steps, f.ir_tau,
                           reference=reference_set(pool, comm), reweight_ess=f.reweight_ess,
                           hmc_trajectories=f.ir_hmc_trajectories,
                           seed=cfg.run.seed).to(device)


def log_coarse_couplings(ir, fms, f) -> None:
    """The learned κ_L against the fine κ, and how often the reference set was resampled."""
    log.info(f"[train] IR matching: coarse hopping parameter kappa_L = "
             f"{', '.join(f'{x:.5f}' for x in ir.values())} (fine: "
             f"{', '.join(f'{fm.kappa:.5f}' for fm in fms)}); log Z reference "
             f"set resampled {', '.join(str(int(n)) for n in ir.refreshes)} "
             f"time(s) (R_W = {f.reweight_ess})")


def log_fine_couplings(uv, fms, k: int, L_fine: int) -> None:
    """Level ``k``'s learned fine κ against its coarse κ."""
    log.info(f"[train] UV matching: level {k + 1} fine hopping parameter "
             f"kappa_{L_fine} = {', '.join(f'{x:.5f}' for x in uv.values())} "
             f"(coarse: {', '.join(f'{fm.kappa_at(L_fine // 2):.5f}' for fm in fms)}"
             f"); log Z reference set resampled "
             f"{', '.join(str(int(n)) for n in uv.refreshes)} time(s)")


def param_groups(obj, lr: float, uv_lr_factor: float) -> list[dict]:
    """Optimizer parameter groups of a level: the flow weights (the configured optimizer's
    settings), and the learned couplings (IR / UV matching) without weight decay — a coupling
    has no reason to shrink towards 0 — the UV ones at ``lr × uv_lr_factor``: on large fine
    lattices the log Z reweighting window of κ is narrower than an Adam step at the flow's
    learning rate (docs/validation.md, κ 0.26 → 0.62 at 64²)."""
    couplings = [({"params": [c.kappa], "weight_decay": 0.0} | extra)
                 for c, extra in ((obj.coarse, {}), (obj.fine, {"lr": lr * uv_lr_factor}))
                 if c is not None]
    ids = {id(g["params"][0]) for g in couplings}
    return [{"params": [p for p in obj.parameters() if p.requires_grad and id(p) not in ids]}] \
        + couplings


REFERENCE_ROWS = 4096  #: cap on the IR-matching reference set per grid point


def reference_set(pool, comm, rows: int = REFERENCE_ROWS):
    """Every rank's coarse fields gathered in rank order (the first ``rows`` rows of the
    ensemble), identical on all ranks: the exact samples behind the log Z gradient of IR
    matching (UV matching: the start of its fine reference set), (n_T, M, *L), float64."""
    import torch
    parts = comm.allgather(pool[:, :rows].cpu().numpy())
    return torch.from_numpy(np.concatenate(parts, axis=1)[:, :rows]).to(torch.float64)


def fine_couplings(cfg, fms, pool, comm, k: int, L_fine: int, device):
    """UV matching, level ``k``: learnable fine κ starting at the level's coarse κ (the
    previous level's learned value), and its reference set of exact fine samples."""
    from ...flows.uv_matching import FineCouplings, fine_reference
    f = cfg.train.flow
    kappa0 = [fm.kappa_at(L_fine // 2) for fm in fms]
    lams = [fm.lam for fm in fms]
    for fm, k0 in zip(fms, kappa0):
        fm.set_kappa(L_fine, k0)
    ref, steps, accs = fine_reference(reference_set(pool, comm, f.uv_reference).to(device),
                                      kappa0, lams, f.uv_hmc_trajectories, cfg.run.seed, k)
    log.info(f"[train] UV matching: level {k + 1} log Z reference set ({ref.shape[1]} x "
             f"{L_fine}^{ref.dim() - 2} per point) thermalised by {f.uv_hmc_trajectories} HMC "
             f"trajectories: leapfrog step {', '.join(f'{e:.3f}' for e in steps)}, last "
             f"acceptance {', '.join(f'{a:.2f}' for a in accs)}")
    return FineCouplings(kappa0, lams, reference=ref, reweight_ess=f.reweight_ess,
                         hmc_trajectories=f.uv_refresh_trajectories, seed=cfg.run.seed,
                         stream=k, eps=steps).to(device)


def warn_if_reference_lags(couplings, steps: int, k: int) -> None:
    """Warn when the log Z reference set was resampled in more than half of the steps: κ then
    moves faster than the reweighting window, the few HMC trajectories of each resampling
    may leave the set behind κ, and κ's gradient is biased the way κ moves (seen at 64² in
    the broken phase: κ ran from 0.26 to 0.62; docs/validation.md)."""
    busy = [t for t, n in enumerate(couplings.refreshes) if int(n) > 0.5 * max(steps, 1)]
    if busy:
        log.warning(f"[train] level {k + 1}: the log Z reference set was resampled in more "
                    f"than half of the {steps} steps for grid point(s) {busy}: the learned "
                    f"couplings may be biased; use a smaller learning_rate / "
                    f"retrain_lr_factor / uv_lr_factor, or more refresh trajectories")


def set_kappas(fms, L0: int, coarse_kappas, fine_kappas) -> None:
    """Learned φ⁴ couplings into the field models: IR matching's κ_L at the input size
    ``L0``, UV matching's fine κ of every trained level k at its size ``L0 · 2^(k+1)``."""
    for fm, kappa in zip(fms, coarse_kappas or []):
        fm.set_kappa(L0, kappa)
    for k, kappas in enumerate(fine_kappas or []):
        for fm, kappa in zip(fms, kappas):
            fm.set_kappa(L0 * 2 ** (k + 1), kappa)


def resample_pool(pool, fms, L0: int, cfg, rank: int):
    """This rank's coarse pool moved exactly to the learned κ_L (IR matching) by HMC, and its
    log-densities there."""
    import torch

    from ...flows.ir_matching import resample_coarse
    from ...rng import torch_generator
    xs, lps = [], []
    for t, fm in enumerate(fms):
        gen = torch_generator(cfg.run.seed, "flow-ir-pool", t, rank, device=pool.device)
        x = resample_coarse(pool[t], fm.kappa_at(L0), fm.lam, cfg.train.flow.ir_hmc_trajectories,
                            gen)
        xs.append(x.to(torch.float32))
        lps.append(fm.log_p(x))
    return torch.stack(xs), torch.stack(lps)


