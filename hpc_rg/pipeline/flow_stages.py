"""The ``train`` and ``upscale`` stages of the flow methods (``train.method: flow_rg`` |
``flow_checkerboard``): exact-likelihood super-resolution corrected by Metropolis-Hastings.

train: one :class:`~hpc_rg.flows.levels.FlowChain` per parameter point (temperature or φ⁴
coupling of the deck's grid), levels trained one after the other by reverse KL
(:mod:`hpc_rg.flows.train`) with DeepSpeed over all ranks; level 1's coarse fields are this
rank's share of the ``/L<sample.L>`` Monte Carlo ensemble (Ising: relaxed ``x ~ p(x|s)``),
level k+1's the corrected output of level k, and level k+1 starts from level k's weights
(``train.flow.transfer``). Level k+1's pool is level k's corrected output (latent HMC when
``upscale.hmc`` is set). Writes ``model.pt`` (:mod:`hpc_rg.flows.modelfile`).

upscale: per parameter point ``upscale.mh_chains`` independent chains; chain c takes the rows
``[c·N/C, (c+1)·N/C)`` of the N outputs (inputs spread over the ensemble as for the CNN),
in batches of ``upscale.batch``; each level of each batch is an independence-MH step
continuing that chain's state (:mod:`hpc_rg.flows.sampler`). Random numbers are keyed by
(seed, level, parameter point, chain, batch), chains are dealt to ranks whole, so the file
content does not depend on the number of ranks. With ``upscale.hmc`` each level of each
batch is corrected by latent HMC instead (every row its own chain), and every batch is a unit
dealt to the ranks. Per level and parameter point the group attributes ``acceptance``,
``ess_per_n``, ``reverse_kl``, ``tau_int`` are written.
"""

from __future__ import annotations

import gc
import logging
import types

import numpy as np

from ..errors import ConfigError, HpcRgError, InputFileError, OutputError, StoppedBySignal
from ..io import schema
from ..io.provenance import provenance
from .progress import Progress
from .upscale import levels_of

log = logging.getLogger("hpc_rg")

CHECKPOINT_EVERY = 8  # upscale batch rounds between checkpoints
LEVELS_FILE = "flow_levels.pt"  # finished levels of an interrupted training


def _field_models(cfg, grid):
    from ..flows.sampler import FieldModel
    return [FieldModel(cfg.model.name, cfg.model.dims, p, cfg.model, cfg.train.flow.alpha)
            for p in grid]


def _plain(d: dict) -> dict:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in d.items()}


# ------------------------------------------------------------------------------ train
def run_train_flow(cfg, comms, stop, resume: bool, device) -> None:
    """Train the flow bank (collective over ``comms.world``); writes ``model.pt``."""
    import dataclasses
    import shutil

    import torch

    from ..flows.modelfile import FlowBank, flow_spec, save_flow_model
    from ..flows.train import FlowLoopState, FlowTrainer, LevelObjective
    from ..io.checkpoint import atomic_torch_save, load_plain
    from ..parallel.torch_dist import process_group
    from ..rng import derive_seed, torch_generator
    from ..superres.ensemble_io import ensemble_size, grid, read_runs, take_share
    from ..superres.trainer import deepspeed_config, load_checkpoint, prepare_checkpoints
    from .train import open_samples, size_group

    out, f = cfg.output_dir, cfg.train.flow
    final = out / schema.MODEL_FILE
    L0, sizes = cfg.sample.L, levels_of(cfg)
    K = len(sizes)
    rank, size, comm = comms.rank, comms.size, comms.world
    with open_samples(cfg) as h5:
        g = size_group(h5, L0, h5.filename)
        N, temps = ensemble_size(g), grid(g)
        share = take_share([(0, N)], rank, size)
        stored = torch.from_numpy(read_runs(g, share))
    n_local = stored.shape[1]
    smallest = comm.allreduce(n_local, op=_mpi_min())
    if smallest < 1:
        raise ConfigError(f"{cfg.source}: {N} Monte Carlo samples per parameter point cannot "
                          f"be shared by {size} ranks; use fewer ranks or more samples")
    fms = _field_models(cfg, temps)
    n_T = len(temps)
    # level-1 coarse pool: the Monte Carlo ensemble in flow variables
    xs, lps = [], []
    for t, fm in enumerate(fms):
        x = fm.to_flow(stored[t], torch_generator(cfg.run.seed, "flow-train-coarse", t, rank))
        xs.append(x)
        lps.append(fm.log_p(x))
    pool = torch.stack(xs).to(torch.float32).to(device)
    pool_lp = torch.stack(lps).to(device)
    del stored, xs, lps

    root = out / schema.CHECKPOINT_DIR / "train"
    if comms.is_root and not resume and root.exists():
        shutil.rmtree(root, ignore_errors=True)
    comm.Barrier()
    spec = flow_spec(cfg, n_T, K)
    torch.manual_seed(derive_seed(cfg.run.seed, "flow-init") >> 1)
    bank = FlowBank(spec).to(device)
    history, done, coarse_kappas, fine_kappas = [], 0, None, None
    levels_path = root / LEVELS_FILE
    if resume and comms.bcast_root(levels_path.is_file()):
        blob = load_plain(levels_path)
        bank.load_state_dict(blob["state_dict"])
        done, history = int(blob["done"]), [tuple(h) for h in blob["history"]]
        coarse_kappas = blob.get("coarse_couplings")
        fine_kappas = blob.get("fine_couplings")
        log.info(f"[train] resuming: {done}/{K} level(s) already trained")
    if f.uv_matching and fine_kappas is None:
        fine_kappas = []
    _set_kappas(fms, L0, coarse_kappas, fine_kappas)
    def level_lr(k):  # levels >= 2 may retrain with a smaller learning rate (Bauer app. A)
        return f.learning_rate * (f.retrain_lr_factor if k > 0 else 1.0)

    def ds_config(k):
        return deepspeed_config(types.SimpleNamespace(batch_size=f.batch, learning_rate=level_lr(k),
                                                      deepspeed=cfg.train.deepspeed), size)
    log.info(f"[train] {cfg.train.method}: {n_T} parameter point(s) x {K} level(s) "
             f"{L0} -> {sizes[-1]}, {N} coarse configurations each ({n_local}+ per rank), "
             f"{f.steps} steps at level 1, {f.retrain_steps or f.steps} at the others, "
             f"{size} data-parallel rank(s)")
    _quiet_deepspeed(device)
    stopped = None
    with process_group(comm, "nccl" if device.type == "cuda" else "gloo",
                       comms.local_rank) as holder:
        import deepspeed
        for k in range(K):
            if k >= done:
                if k > 0 and f.transfer:
                    bank.transfer(k - 1)
                ckpt_dir = root / f"level{k + 1}"
                tag = prepare_checkpoints(ckpt_dir, comm, resume)
                ir = None
                if k == 0 and f.ir_matching:  # learn κ_L together with level 1
                    from ..flows.ir_matching import CoarseCouplings
                    ir = CoarseCouplings([fm.kappa for fm in fms], [fm.lam for fm in fms],
                                         f.ir_langevin_steps, f.ir_grad_steps, f.ir_tau,
                                         reference=_reference_set(pool, comm),
                                         reweight_ess=f.reweight_ess,
                                         hmc_trajectories=f.ir_hmc_trajectories,
                                         seed=cfg.run.seed).to(device)
                uv = _fine_couplings(cfg, fms, pool, comm, k, sizes[k], device) \
                    if f.uv_matching else None
                obj = LevelObjective(bank.level_modules(k), fms, ir, uv)
                try:
                    engine, optimizer, _, _ = deepspeed.initialize(
                        model=obj, model_parameters=_param_groups(obj, level_lr(k), f.uv_lr_factor),
                        config=ds_config(k))
                except (ValueError, AssertionError, KeyError, TypeError) as e:
                    raise ConfigError(f"{cfg.source}: train.deepspeed: DeepSpeed rejected the "
                                      f"configuration: {str(e).splitlines()[0][:200]}") from None
                holder.update(engine=engine, optimizer=optimizer, obj=obj)
                state = FlowLoopState(level=k)
                if tag is not None:
                    try:
                        state = FlowLoopState(**load_checkpoint(engine, ckpt_dir, tag)["loop"])
                    except HpcRgError as e:  # unreadable on every rank: clean teardown
                        if not e.collective:
                            raise
                        stopped = e.with_traceback(None)
                        del ir, uv, engine, optimizer, obj
                        holder.clear()
                        break
                    log.info(f"[train] level {k + 1}: resuming at step {state.steps}")
                level_steps = f.retrain_steps if k > 0 and f.retrain_steps else f.steps
                progress = Progress("train", level_steps, "steps", cfg.run.progress_seconds,
                                    active=comms.is_root, start=state.steps)
                trainer = FlowTrainer(pool, pool_lp, cfg, comms, ckpt_dir, stop, progress,
                                      level_steps)
                try:
                    state = trainer.run(engine, state)
                except StoppedBySignal as e:  # collective: clean teardown, then re-raise
                    stopped = e.with_traceback(None)  # its frames hold engine and tensors
                    del ir, uv, engine, optimizer, obj, trainer
                    holder.clear()
                    break
                history += [tuple(h) for h in state.history]
                if ir is not None:
                    coarse_kappas = ir.values()
                    _set_kappas(fms, L0, coarse_kappas, None)
                    log.info(f"[train] IR matching: coarse hopping parameter kappa_L = "
                             f"{', '.join(f'{x:.5f}' for x in coarse_kappas)} (fine: "
                             f"{', '.join(f'{fm.kappa:.5f}' for fm in fms)}); log Z reference "
                             f"set resampled {', '.join(str(int(n)) for n in ir.refreshes)} "
                             f"time(s) (R_W = {f.reweight_ess})")
                if uv is not None:
                    fine_kappas.append(uv.values())
                    _set_kappas(fms, L0, None, fine_kappas)
                    log.info(f"[train] UV matching: level {k + 1} fine hopping parameter "
                             f"kappa_{sizes[k]} = {', '.join(f'{x:.5f}' for x in uv.values())} "
                             f"(coarse: {', '.join(f'{fm.kappa_at(sizes[k] // 2):.5f}' for fm in fms)}"
                             f"); log Z reference set resampled "
                             f"{', '.join(str(int(n)) for n in uv.refreshes)} time(s)")
                for cpl in (ir, uv):
                    if cpl is not None:
                        _warn_if_reference_lags(cpl, state.steps, k)
                del ir, uv
                del engine, optimizer, obj, trainer
                holder.clear()
                gc.collect()
                last = state.history[-1][3] if state.history else float("nan")
                log.info(f"[train] level {k + 1} ({sizes[k] // 2} -> {sizes[k]}) done: "
                         f"batch ESS/N {last:.3f}")
                problem = None
                if comms.is_root:
                    try:
                        atomic_torch_save({"done": k + 1, "history": [list(h) for h in history],
                                           "coarse_couplings": coarse_kappas,
                                           "fine_couplings": fine_kappas,
                                           "state_dict": {n: v.detach().cpu().clone() for n, v
                                                          in bank.state_dict().items()}},
                                          levels_path)
                    except OSError as e:
                        problem = f"{levels_path}: cannot write training checkpoint: {e}"
                problem = comms.bcast_root(problem)
                if problem:
                    raise OutputError(problem)
            if k + 1 < K:
                if k == 0 and coarse_kappas is not None:  # level 1 maps p_L[κ_L]
                    pool, pool_lp = _resample_pool(pool, fms, L0, cfg, rank)
                pool_cfg, note = resolve_correction(cfg, [training_ess(history, k + 1)],
                                                    f"batch ESS/N at the end of training level {k + 1}")
                if note:
                    log.info(f"[train] pool for level {k + 2}: {note}")
                pool, pool_lp = _advance_pool(bank, k, pool, pool_lp, fms, pool_cfg, rank)
        holder["pool"] = pool
        del pool, pool_lp
    gc.collect()
    if stopped is not None:
        raise stopped
    bank = bank.cpu()
    prov = provenance(cfg, comms.size, "train", commit=None if comms.is_root else "")
    meta = {"method": cfg.train.method, "model": cfg.model.name, "dims": cfg.model.dims,
            "field": "phi4" if cfg.model.name == "phi4" else "spin", "levels": K,
            "input_L": L0, "sizes": [L0] + sizes,
            "grid_name": schema.COUPLINGS if cfg.model.name == "phi4" else schema.TEMPERATURES,
            "grid": [float(p) for p in temps], "flow": dataclasses.asdict(f),
            "targets": [_target_meta(fm) for fm in fms],
            "coarse_couplings": coarse_kappas, "fine_couplings": fine_kappas,
            "history": [list(h) for h in history], "provenance": _plain(prov)}
    problem = None
    if comms.is_root:
        try:
            out.mkdir(parents=True, exist_ok=True)
            save_flow_model(final, bank, meta)
        except OutputError as e:
            problem = str(e)
    problem = comms.bcast_root(problem)
    if problem:
        raise OutputError(problem)
    log.info(f"[train] wrote {final}")


def _param_groups(obj, lr: float, uv_lr_factor: float) -> list[dict]:
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


def _reference_set(pool, comm, rows: int = REFERENCE_ROWS):
    """Every rank's coarse fields gathered in rank order (the first ``rows`` rows of the
    ensemble), identical on all ranks: the exact samples behind the log Z gradient of IR
    matching (UV matching: the start of its fine reference set), (n_T, M, *L), float64."""
    import torch
    parts = comm.allgather(pool[:, :rows].cpu().numpy())
    return torch.from_numpy(np.concatenate(parts, axis=1)[:, :rows]).to(torch.float64)


def _fine_couplings(cfg, fms, pool, comm, k: int, L_fine: int, device):
    """UV matching, level ``k``: learnable fine κ starting at the level's coarse κ (the
    previous level's learned value), and its reference set of exact fine samples."""
    from ..flows.uv_matching import FineCouplings, fine_reference
    f = cfg.train.flow
    kappa0 = [fm.kappa_at(L_fine // 2) for fm in fms]
    lams = [fm.lam for fm in fms]
    for fm, k0 in zip(fms, kappa0):
        fm.set_kappa(L_fine, k0)
    ref, steps, accs = fine_reference(_reference_set(pool, comm, f.uv_reference).to(device),
                                      kappa0, lams, f.uv_hmc_trajectories, cfg.run.seed, k)
    log.info(f"[train] UV matching: level {k + 1} log Z reference set ({ref.shape[1]} x "
             f"{L_fine}^{ref.dim() - 2} per point) thermalised by {f.uv_hmc_trajectories} HMC "
             f"trajectories: leapfrog step {', '.join(f'{e:.3f}' for e in steps)}, last "
             f"acceptance {', '.join(f'{a:.2f}' for a in accs)}")
    return FineCouplings(kappa0, lams, reference=ref, reweight_ess=f.reweight_ess,
                         hmc_trajectories=f.uv_refresh_trajectories, seed=cfg.run.seed,
                         stream=k, eps=steps).to(device)


def _warn_if_reference_lags(couplings, steps: int, k: int) -> None:
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


def _set_kappas(fms, L0: int, coarse_kappas, fine_kappas) -> None:
    """Learned φ⁴ couplings into the field models: IR matching's κ_L at the input size
    ``L0``, UV matching's fine κ of every trained level k at its size ``L0 · 2^(k+1)``."""
    for fm, kappa in zip(fms, coarse_kappas or []):
        fm.set_kappa(L0, kappa)
    for k, kappas in enumerate(fine_kappas or []):
        for fm, kappa in zip(fms, kappas):
            fm.set_kappa(L0 * 2 ** (k + 1), kappa)


def _resample_pool(pool, fms, L0: int, cfg, rank: int):
    """This rank's coarse pool moved exactly to the learned κ_L (IR matching) by HMC, and its
    log-densities there."""
    import torch

    from ..flows.ir_matching import resample_coarse
    from ..rng import torch_generator
    xs, lps = [], []
    for t, fm in enumerate(fms):
        gen = torch_generator(cfg.run.seed, "flow-ir-pool", t, rank, device=pool.device)
        x = resample_coarse(pool[t], fm.kappa_at(L0), fm.lam, cfg.train.flow.ir_hmc_trajectories,
                            gen)
        xs.append(x.to(torch.float32))
        lps.append(fm.log_p(x))
    return torch.stack(xs), torch.stack(lps)


def _target_meta(fm) -> dict:
    if fm.model == "phi4":
        return {"kappa": fm.kappa, "lam": fm.lam, "scale": fm.scale}
    return {"beta": fm.beta, "J": fm.J, "alpha": fm.alpha}


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

    from ..flows.mh import ess_per_n
    from ..flows.sampler import propose
    from ..rng import torch_generator
    from ..superres.ensemble_io import read_runs
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


def _advance_pool(bank, k, pool, pool_lp, fms, cfg, rank):
    """The next level's coarse pool: level k's corrected output on this rank's pool (by the
    upscale stage's correction: latent HMC if ``upscale.hmc.trajectories``, else
    independence MH)."""
    import torch

    from ..flows.sampler import ChainState, hmc_step, mh_step
    from ..rng import torch_generator
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


def _mpi_min():
    from mpi4py import MPI
    return MPI.MIN


# ---------------------------------------------------------------------------- upscale
def _chain_rows(N: int, C: int, c: int) -> tuple[int, int]:
    return c * N // C, (c + 1) * N // C


def run_upscale_flow(cfg, comms, stop, resume: bool, device) -> None:
    """MH-corrected flow upscaling of the Monte Carlo ensemble (collective)."""
    import torch
    from mpi4py import MPI

    from ..flows.modelfile import load_flow_model
    from ..flows.sampler import ChainState, LevelStats, hmc_step, mh_step
    from ..io.checkpoint import RankCheckpoints
    from ..io.writer import open_output, partial_is_usable
    from ..parallel.distribute import block_range
    from ..rng import torch_generator
    from ..superres.ensemble_io import ensemble_size, grid, read_runs
    from .train import open_samples, size_group
    from .upscale import input_runs

    out = cfg.output_dir
    final = out / schema.UPSCALED_FILE
    bank, meta = load_flow_model(out / schema.MODEL_FILE, device)
    u = cfg.upscale
    bank = bank.to(torch.float64)  # float32 below for latent HMC
    bank.requires_grad_(False)  # latent HMC differentiates by the latent variables only
    sizes = levels_of(cfg)
    L0 = cfg.sample.L
    if meta.get("input_L") != L0 or meta.get("levels", 0) < len(sizes) or \
            meta.get("method") != cfg.train.method or meta.get("model") != cfg.model.name:
        raise InputFileError(f"{out / schema.MODEL_FILE}: flow model of {meta.get('method')} "
                             f"{meta.get('model')} with {meta.get('levels')} level(s) from "
                             f"L={meta.get('input_L')} does not fit this deck ({cfg.train.method}, "
                             f"L={L0} -> {sizes[-1]}); retrain with --stage train")
    with open_samples(cfg) as f:
        g0 = size_group(f, L0, f.filename)
        N_all, temps = ensemble_size(g0), grid(g0)
    if len(temps) != len(meta["grid"]) or not np.allclose(temps, meta["grid"]):
        raise InputFileError(f"{out / schema.MODEL_FILE}: trained for {meta['grid_name']} "
                             f"{meta['grid']}, samples.h5 has {list(temps)}; retrain")
    fms = _field_models(cfg, temps)
    from ..flows.ir_matching import resample_coarse
    coarse_kappas = meta.get("coarse_couplings")  # IR matching: level 1 maps p_L[κ_L]
    _set_kappas(fms, L0, coarse_kappas, meta.get("fine_couplings"))
    if u.hmc.trajectories == "auto":  # decided on a pilot of real proposals (same on all ranks)
        with open_samples(cfg) as f:
            ess = pilot_ess(bank, fms, f[schema.size_group(L0)], len(sizes), cfg.run.seed,
                            min(128, N_all))
        cfg, note = resolve_correction(cfg, ess, f"pilot of {min(128, N_all)} configurations "
                                                 f"per grid point and level")
        if note:
            log.info(f"[upscale] {note}")
        u = cfg.upscale
    # float64: exact log-likelihoods for the independence-MH ratio of whole configurations;
    # latent HMC only needs a deterministic pullback (its accept/reject is exact for the
    # density it evaluates), so it runs the flow in float32, 4-5x faster on CPU
    bank = bank.to(torch.float32 if u.hmc.trajectories else torch.float64)
    hmc = u.hmc
    N = min(u.samples or N_all, N_all)
    n_T, B = len(temps), u.batch
    # the units dealt to ranks: MH chains (a chain's batches depend on each other); latent-HMC
    # rows are independent chains, so every batch is a unit and ranks get even shares
    C = -(-N // B) if hmc.trajectories else min(u.mh_chains, N)
    units = [(t, c) for t in range(n_T) for c in range(C)]
    mine = list(block_range(len(units), comms.size, comms.rank))
    work = []  # (unit index, batch index, a, b)
    for ui in mine:
        lo, hi = _chain_rows(N, C, units[ui][1])
        work += [(ui, j, a, min(a + B, hi)) for j, a in enumerate(range(lo, hi, B))]
    rounds = comms.world.allreduce(len(work), op=MPI.MAX)

    ckpts = RankCheckpoints(out / schema.CHECKPOINT_DIR, "upscale", comms.world)
    saved = ckpts.load_latest() if resume else None
    partial_path = final.with_name(final.name + schema.PARTIAL_SUFFIX)
    partial = comms.bcast_root(partial_path.exists())
    h5, done, seq = None, 0, -1
    states = {ui: [ChainState() for _ in sizes] for ui in mine}
    if saved is not None and partial and partial_is_usable(final, comms.world):
        h5 = open_output(final, comms.world, "r+")
        if comms.bcast_root(_structure_complete(h5, sizes)):
            seq, st = saved
            done = st["done"]
            states = {ui: [ChainState.from_dict(d) for d in v] for ui, v in st["chains"].items()}
            log.info(f"[upscale] resuming: {done}/{rounds} batch rounds done")
        else:
            h5.close(complete=False)
            h5 = None
    if h5 is None:
        if resume and partial:
            log.warning(f"[upscale] {partial_path}: no usable checkpoint; starting again")
        ckpts.clear()
        h5 = open_output(final, comms.world, "w")
        _create_file(h5, cfg, comms, meta, sizes, temps, N, N_all)
    phi4 = cfg.model.name == "phi4"
    conf_dtype = np.float32 if phi4 else np.int8
    seed = cfg.run.seed
    progress = Progress("upscale", rounds, "batches", cfg.run.progress_seconds,
                        active=comms.is_root, start=done)
    with open_samples(cfg) as f:
        g0 = f[schema.size_group(L0)]
        for r in range(done, rounds):
            if r < len(work):
                ui, j, a, b = work[r]
                t, c = units[ui]
                fm = fms[t]
                stored = torch.from_numpy(read_runs(g0, input_runs(a, b, N, N_all), t=t)).to(device)
                x = fm.to_flow(stored, torch_generator(seed, "flow-upscale-coarse", t, c, j,
                                                       device=device))
                if coarse_kappas is not None:  # stored fields (fine κ) moved exactly to κ_L
                    x = resample_coarse(x, fm.kappa_at(L0), fm.lam,
                                        cfg.train.flow.ir_hmc_trajectories,
                                        torch_generator(seed, "flow-upscale-ir", t, c, j,
                                                        device=device))
                lp = fm.log_p(x)
                for level, Lp in enumerate(sizes, start=1):
                    gen = torch_generator(seed, "flow-upscale", level, t, c, j, device=device)
                    flow_level, state = bank.chains[t].levels[level - 1], states[ui][level - 1]
                    if hmc.trajectories:
                        x, lp, acc = hmc_step(flow_level, x, lp, fm, state, hmc.trajectories,
                                              hmc.leapfrog_steps, hmc.step_size, gen)
                        acc = acc > 0  # the row left its proposal
                    else:
                        x, lp, acc = mh_step(flow_level, x, lp, fm, state, gen, index_offset=a,
                                             mh=u.mh)
                    y = fm.from_flow(x, torch_generator(seed, "flow-upscale-spins", level, t, c, j,
                                                        device=device))
                    grp = schema.size_group(Lp)
                    sel = (t, slice(a, b))
                    h5.put(f"{grp}/{schema.CONFIGS}", sel, y.cpu().numpy().astype(conf_dtype))
                    h5.put(f"{grp}/{schema.MH_ACCEPTED}", sel, acc.numpy().astype(np.int8))
                    for name, v in fm.scalars(y, x).items():
                        h5.put(f"{grp}/{name}", sel, v.cpu().numpy())
            stopping = stop.requested(comms)
            if (r + 1) % CHECKPOINT_EVERY == 0 or stopping:
                h5.flush()
                seq += 1
                ckpts.save(seq, {"done": r + 1, "chains": {ui: [s.to_dict() for s in v]
                                                           for ui, v in states.items()}})
                if stopping:
                    h5.close(complete=False)
                    raise StoppedBySignal(f"upscale stage stopped by signal after {r + 1}/"
                                          f"{rounds} batch rounds; rerun with --resume")
            progress.update(r + 1)
    # diagnostics per level and parameter point: merged over chains (and ranks)
    obs_name = "action" if phi4 else schema.ENERGY
    rows = []
    for ui in mine:
        t, c = units[ui]
        lo, hi = _chain_rows(N, C, c)
        for li, Lp in enumerate(sizes):
            series = h5.read(f"{schema.size_group(Lp)}/{obs_name}", (t, slice(lo, hi)))
            rows.append((li, t, ui, states[ui][li].stats.to_list(), _tau(series), hi - lo))
    rows = sorted(sum(comms.world.allgather(rows), []), key=lambda r: (r[0], r[1], r[2]))
    summary, all_acc, level_stats = [], [], []
    for li, Lp in enumerate(sizes):
        acc, ess, kl, tau, n_acc = (np.full(n_T, np.nan) for _ in range(5))
        for t in range(n_T):
            mine_t = [r for r in rows if r[0] == li and r[1] == t]
            tot = LevelStats()
            for r in mine_t:
                tot = tot.merge(LevelStats.from_list(r[3]))
            acc[t], ess[t], kl[t] = tot.acceptance, tot.ess_per_n, tot.reverse_kl
            n_acc[t] = tot.n_acc
            taus = [(r[4], r[5]) for r in mine_t if np.isfinite(r[4])]
            if taus:
                tau[t] = sum(a * n for a, n in taus) / sum(n for _, n in taus)
        all_acc += list(acc)
        level_stats.append((acc, ess, kl, tau, n_acc))
        h5.set_attrs(schema.size_group(Lp), {schema.MH_ACCEPTANCE: acc, schema.ESS_PER_N: ess,
                                             schema.REVERSE_KL: kl, schema.TAU_INT: tau})
    certs = comms.bcast_root(_certificates(cfg, h5, sizes, level_stats, N, C, meta)
                             if comms.is_root else None)
    for li, Lp in enumerate(sizes):
        attrs, c = certs[li]
        h5.set_attrs(schema.size_group(Lp), attrs)
        acc, ess, kl, tau, _ = level_stats[li]
        summary += [f"L={Lp:<5d} {meta['grid_name'][:-1]}={temps[t]:<9.5f} acceptance={acc[t]:.3f} "
                    f"ESS/N={ess[t]:.3f} KL={kl[t]:.4f} tau_int={tau[t]:.2f} "
                    f"N_eff={c.n_effective[t]:.0f} "
                    f"{'certified' if c.certified_points[t] else 'NOT certified'}"
                    + _z_text(attrs, t) for t in range(n_T)]
    h5.close(complete=True)
    ckpts.comm.Barrier()
    ckpts.clear()
    log.info(f"[upscale] wrote {final}")
    if comms.is_root:
        log.info(f"[upscale] levels ({correction(cfg)}; acceptance of "
                 f"{'HMC trajectories' if hmc.trajectories else 'MH proposals'}, ESS/N and KL "
                 f"of the flow's proposals):\n" + "\n".join(summary))
        from .certify import report
        report([(Lp, certs[li][1], temps) for li, Lp in enumerate(sizes)], meta['grid_name'][:-1])
        if hmc.trajectories and np.nanmin(all_acc) < 0.3:
            log.warning(f"[upscale] latent HMC accepts only {np.nanmin(all_acc):.0%} of the "
                        f"trajectories somewhere: lower upscale.hmc.step_size "
                        f"(now {hmc.step_size})")


def _certificates(cfg, h5, sizes, level_stats, N: int, C: int, meta) -> list:
    """(attrs, Certificate) per level (rank 0): see :mod:`hpc_rg.analysis.certificate`."""
    from ..analysis import certificate as cert
    from .certify import level_attrs
    hmc = cfg.upscale.hmc
    out = []
    for li, Lp in enumerate(sizes):
        g = schema.size_group(Lp)
        acc, _, _, tau, n_acc = level_stats[li]
        n_T = len(acc)
        if not cfg.upscale.mh:
            c = cert.approximate("flow", n_T, "uncorrected flow samples (upscale.mh: false) are "
                                 "approximate; set upscale.mh: true to make them exact")
        elif hmc.trajectories:
            moved = h5.read(f"{g}/{schema.MH_ACCEPTED}").sum(axis=1)
            c = cert.certify_hmc(acc, moved, N)
        else:
            c = cert.certify_mh(tau, n_acc.astype(np.int64), N // C, C,
                                cfg.upscale.min_effective)
        grid = h5.read(f"{g}/{meta['grid_name']}")
        # latent-HMC rows are independent (their tau ~ 1/2); MH rows are C chains per point
        attrs = level_attrs(cfg, h5, Lp, c, grid, meta["grid_name"][:-1],
                            1 if hmc.trajectories else C, interpolate=False)
        out.append((attrs, c))
    return out


def _z_text(attrs: dict, t: int) -> str:
    zs = [f"z({k[2:]})={attrs[k][t]:+.1f}" for k in sorted(attrs) if k.startswith("z_")
          and np.isfinite(attrs[k][t])]
    return (" vs MC: " + " ".join(zs)) if zs else ""


def _tau(series) -> float:
    from ..flows.mh import chain_autocorr_time
    s = np.asarray(series, dtype=np.float64)
    if s.size < 4 or not np.all(np.isfinite(s)) or np.ptp(s) == 0:
        return float("nan")
    try:
        return float(np.asarray(chain_autocorr_time(s)[0]).reshape(-1)[0])
    except (ValueError, FloatingPointError):
        return float("nan")


def _structure_complete(h5, sizes) -> bool:
    try:
        for Lp in sizes:
            g = schema.size_group(Lp)
            if not (h5.has(g) and h5.has(f"{g}/{schema.CONFIGS}")
                    and h5.has(f"{g}/{schema.MH_ACCEPTED}") and "level" in h5.attrs(g)):
                return False
    except (KeyError, OSError, ValueError):
        return False
    return True


def _create_file(h5, cfg, comms, meta, sizes, temps, N, N_all) -> None:
    """Collective: provenance, one group per level with datasets and the grid."""
    from .upscale import NOMINAL
    root = comms.bcast_root(provenance(cfg, comms.size, "upscale",
                                       commit=None if comms.is_root else ""))
    h5.set_attrs("/", root)
    phi4 = cfg.model.name == "phi4"
    dtype = np.float32 if phi4 else np.int8
    names = ([schema.PHI_MEAN, schema.PHI2_MEAN, schema.MAGNETIZATION, schema.ACTION] if phi4
             else [schema.MAGNETIZATION, schema.ENERGY])
    n_T = len(temps)
    axes = ",".join(schema.CLEAN_AXES)
    for level, Lp in enumerate(sizes, start=1):
        g = schema.size_group(Lp)
        lat = (Lp,) * cfg.model.dims
        h5.create_dataset(f"{g}/{schema.CONFIGS}", (n_T, N) + lat, dtype, chunks=(1, 1) + lat,
                          attrs={schema.DATASET_ATTR_AXES: axes + "," + ",".join("xyz"[:len(lat)])})
        for name in names:
            h5.create_dataset(f"{g}/{name}", (n_T, N), np.float64,
                              attrs={schema.DATASET_ATTR_AXES: axes})
        h5.create_dataset(f"{g}/{schema.MH_ACCEPTED}", (n_T, N), np.int8,
                          attrs={schema.DATASET_ATTR_AXES: axes})
        grid_name = schema.COUPLINGS if phi4 else schema.TEMPERATURES
        h5.create_dataset(f"{g}/{grid_name}", (n_T,), np.float64)
        h5.create_dataset(f"{g}/{NOMINAL}", (n_T,), np.float64)
        fine = meta.get("fine_couplings")
        effective = fine[level - 1] if fine else temps  # UV matching: the level's learned κ
        if comms.is_root:
            h5.put(f"{g}/{grid_name}", (), np.asarray(effective, dtype=np.float64))
            h5.put(f"{g}/{NOMINAL}", (), np.asarray(temps, dtype=np.float64))
        f = cfg.train.flow
        attrs = {schema.GROUP_ATTR_MODEL: cfg.model.name, schema.GROUP_ATTR_DIMS: cfg.model.dims,
                 schema.GROUP_ATTR_L: Lp,
                 schema.GROUP_ATTR_SOURCE: "superres_mh" if cfg.upscale.mh else "superres",
                 "level": level, "input_L": cfg.sample.L, "train_L": cfg.sample.L,
                 "input_count": N_all, "blocking": "", "rescaled": bool(fine),
                 "overlap_configs": False, "network_temperatures": np.asarray(temps, np.float64),
                 "method": meta["method"], "mh_chains": min(cfg.upscale.mh_chains, N),
                 "local_flow": f.local_flow, "correction": correction(cfg)}
        if cfg.upscale.hmc.trajectories:
            h = cfg.upscale.hmc
            attrs.update(hmc_trajectories=h.trajectories, hmc_leapfrog_steps=h.leapfrog_steps,
                         hmc_step_size=h.step_size)
        if not phi4:
            attrs["relaxation_alpha"] = np.asarray([t["alpha"] for t in meta["targets"]])
        if meta.get("coarse_couplings") is not None:  # IR matching: κ_L of the coarse action
            attrs["ir_coarse_kappa"] = np.asarray(meta["coarse_couplings"], dtype=np.float64)
        if fine:  # UV matching: the fine κ this level samples (= its effective couplings)
            attrs["uv_fine_kappa"] = np.asarray(fine[level - 1], dtype=np.float64)
        h5.set_attrs(g, attrs)


def correction(cfg) -> str:
    """How the flow levels are made exact: ``independence_mh``, ``latent_hmc`` or ``none``."""
    if not cfg.upscale.mh:
        return "none"
    return "latent_hmc" if cfg.upscale.hmc.trajectories else "independence_mh"


def _quiet_deepspeed(device) -> None:
    """CPU accelerator unless on GPU; DeepSpeed's INFO chatter off (warnings stay)."""
    import os
    if device.type != "cuda":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from deepspeed.utils import logger as ds_logger
    ds_logger.setLevel(logging.WARNING)
