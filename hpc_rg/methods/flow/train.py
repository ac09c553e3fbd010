"""Training the flows: one :class:`~hpc_rg.flows.levels.FlowChain` per parameter point.

Levels are trained one after the other by reverse KL (:mod:`hpc_rg.flows.objective`,
:mod:`hpc_rg.train.flow_loop`) with DeepSpeed over all ranks. Level 1's coarse fields are this
rank's share of the ``/L<sample.L>`` Monte Carlo ensemble (Ising: relaxed ``x ~ p(x|s)``);
level k+1's are level k's corrected output (:mod:`.pool`), and level k+1 starts from level
k's weights (``train.flow.transfer``). With ``train.flow.reuse_first_level`` only level 1 is
trained and every later level gets its weights unchanged (model meta ``trained_levels`` =
[1]): a local, size-agnostic level is as good at every size. φ⁴ may learn its couplings as
it goes (IR / UV matching, :mod:`.couplings`). Finished levels are kept in
``flow_levels.pt`` so that an interrupted training resumes at the level it was in. Writes
``model.pt`` (:mod:`hpc_rg.flows.modelfile`).
"""

from __future__ import annotations

import gc
import logging
from functools import partial

from ...errors import ConfigError, OutputError
from ...io import schema
from ...io.ensemble import open_samples, size_group
from ..base import levels_of
from .couplings import (coarse_couplings, fine_couplings, log_coarse_couplings,
                        log_fine_couplings, param_groups, resample_pool, set_kappas,
                        warn_if_reference_lags)
from .pool import advance_pool, field_models, resolve_correction, training_ess

log = logging.getLogger("hpc_rg")

LEVELS_FILE = "flow_levels.pt"  # finished levels of an interrupted training


def train_flows(cfg, comms, stop, resume: bool, device) -> None:
    """Train the flow bank (collective over ``comms.world``); writes ``model.pt``."""
    import shutil

    import torch
    from mpi4py import MPI

    from ...flows.modelfile import FlowBank, flow_spec
    from ...flows.objective import LevelObjective
    from ...io.checkpoint import load_plain
    from ...io.ensemble import ensemble_size, grid, read_runs, take_share
    from ...rng import derive_seed, torch_generator
    from ...train.checkpoints import prepare_checkpoints
    from ...train.engine import deepspeed_config, run_engine, training_group
    from ...train.flow_loop import FlowLoopState

    out, f = cfg.output_dir, cfg.train.flow
    L0, sizes = cfg.sample.L, levels_of(cfg)
    K = len(sizes)
    rank, size, comm = comms.rank, comms.size, comms.world
    with open_samples(cfg) as h5:
        g = size_group(h5, L0, h5.filename)
        N, temps = ensemble_size(g), grid(g)
        share = take_share([(0, N)], rank, size)
        stored = torch.from_numpy(read_runs(g, share))
    n_local = stored.shape[1]
    if comm.allreduce(n_local, op=MPI.MIN) < 1:
        raise ConfigError(f"{cfg.source}: {N} Monte Carlo samples per parameter point cannot "
                          f"be shared by {size} ranks; use fewer ranks or more samples")
    fms = field_models(cfg, temps)
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
    torch.manual_seed(derive_seed(cfg.run.seed, "flow-init") >> 1)
    bank = FlowBank(flow_spec(cfg, n_T, K)).to(device)
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
    set_kappas(fms, L0, coarse_kappas, fine_kappas)

    def level_lr(k):  # levels >= 2 may retrain with a smaller learning rate (Bauer app. A)
        return f.learning_rate * (f.retrain_lr_factor if k > 0 else 1.0)

    later = "level 1's weights reused unchanged at the others (train.flow.reuse_first_level)" \
        if f.reuse_first_level else f"{f.retrain_steps or f.steps} at the others"
    log.info(f"[train] {cfg.train.method}: {n_T} parameter point(s) x {K} level(s) "
             f"{L0} -> {sizes[-1]}, {N} coarse configurations each ({n_local}+ per rank), "
             f"{f.steps} steps at level 1, {later}, {size} data-parallel rank(s)")
    stopped = None
    with training_group(comms, device) as holder:
        for k in range(K):
            if k > 0 and f.reuse_first_level:
                bank.transfer(k - 1)  # level 1's weights, copied down the chain
                log.info(f"[train] level {k + 1} ({sizes[k] // 2} -> {sizes[k]}): level 1's "
                         f"weights, unchanged (not trained)")
                continue
            if k >= done:
                if k > 0 and f.transfer:
                    bank.transfer(k - 1)
                ckpt_dir = root / f"level{k + 1}"
                tag = prepare_checkpoints(ckpt_dir, comm, resume)
                ir = coarse_couplings(cfg, fms, pool, comm, device) \
                    if k == 0 and f.ir_matching else None  # learn κ_L together with level 1
                uv = fine_couplings(cfg, fms, pool, comm, k, sizes[k], device) \
                    if f.uv_matching else None
                obj = LevelObjective(bank.level_modules(k), fms, ir, uv)
                holder["obj"] = obj
                level_steps = f.retrain_steps if k > 0 and f.retrain_steps else f.steps

                state, stopped = run_engine(
                    holder, obj, param_groups(obj, level_lr(k), f.uv_lr_factor),
                    deepspeed_config(f.batch, level_lr(k), cfg.train.deepspeed, size),
                    cfg.source, ckpt_dir, tag, FlowLoopState(level=k),
                    partial(_loop, pool, pool_lp, cfg, comms, ckpt_dir, stop, level_steps),
                    partial(_resumed, k))
                if stopped is not None:
                    del ir, uv, obj
                    holder.clear()
                    break
                history += [tuple(h) for h in state.history]
                if ir is not None:
                    coarse_kappas = ir.values()
                    set_kappas(fms, L0, coarse_kappas, None)
                    log_coarse_couplings(ir, fms, f)
                if uv is not None:
                    fine_kappas.append(uv.values())
                    set_kappas(fms, L0, None, fine_kappas)
                    log_fine_couplings(uv, fms, k, sizes[k])
                for cpl in (ir, uv):
                    if cpl is not None:
                        warn_if_reference_lags(cpl, state.steps, k)
                del ir, uv, obj
                holder.clear()
                gc.collect()
                last = state.history[-1][3] if state.history else float("nan")
                log.info(f"[train] level {k + 1} ({sizes[k] // 2} -> {sizes[k]}) done: "
                         f"batch ESS/N {last:.3f}")
                _save_levels(comms, levels_path, bank, k + 1, history, coarse_kappas,
                             fine_kappas)
            if k + 1 < K and not f.reuse_first_level:  # the pool level k + 1 trains on
                if k == 0 and coarse_kappas is not None:  # level 1 maps p_L[κ_L]
                    pool, pool_lp = resample_pool(pool, fms, L0, cfg, rank)
                pool_cfg, note = resolve_correction(cfg, [training_ess(history, k + 1)],
                                                    f"batch ESS/N at the end of training level "
                                                    f"{k + 1}")
                if note:
                    log.info(f"[train] pool for level {k + 2}: {note}")
                pool, pool_lp = advance_pool(bank, k, pool, pool_lp, fms, pool_cfg, rank)
        holder["pool"] = pool
        del pool, pool_lp
    gc.collect()
    if stopped is not None:
        raise stopped
    _write_model(cfg, comms, bank.cpu(), fms, temps, sizes, history, coarse_kappas, fine_kappas)


def _loop(pool, pool_lp, cfg, comms, ckpt_dir, stop, steps: int, engine, state):
    """Run one level's optimizer loop from ``state`` for at most ``steps`` steps."""
    from ...progress import Progress
    from ...train.flow_loop import FlowTrainer
    progress = Progress("train", steps, "steps", cfg.run.progress_seconds,
                        active=comms.is_root, start=state.steps)
    return FlowTrainer(pool, pool_lp, cfg, comms, ckpt_dir, stop, progress, steps).run(engine,
                                                                                       state)


def _resumed(k: int, state) -> None:
    log.info(f"[train] level {k + 1}: resuming at step {state.steps}")


def _save_levels(comms, path, bank, done: int, history, coarse_kappas, fine_kappas) -> None:
    """Collective: the finished levels (rank 0 writes, atomically) for a resumed training."""
    from ...io.checkpoint import atomic_torch_save
    problem = None
    if comms.is_root:
        try:
            atomic_torch_save({"done": done, "history": [list(h) for h in history],
                               "coarse_couplings": coarse_kappas,
                               "fine_couplings": fine_kappas,
                               "state_dict": {n: v.detach().cpu().clone() for n, v
                                              in bank.state_dict().items()}}, path)
        except OSError as e:
            problem = f"{path}: cannot write training checkpoint: {e}"
    problem = comms.bcast_root(problem)
    if problem:
        raise OutputError(problem)


def _write_model(cfg, comms, bank, fms, temps, sizes, history, coarse_kappas,
                 fine_kappas) -> None:
    """Collective: ``model.pt`` with the flow bank and what the upscale stage needs."""
    import dataclasses

    from ...flows.modelfile import save_flow_model
    from ...io.provenance import plain_provenance
    from ...models.spec import spec_for
    from ...train.model_output import write_on_root
    spec = spec_for(cfg.model.name)
    final = cfg.output_dir / schema.MODEL_FILE
    meta = {"method": cfg.train.method, "model": cfg.model.name, "dims": cfg.model.dims,
            "field": spec.field, "levels": len(sizes),
            "input_L": cfg.sample.L, "sizes": [cfg.sample.L] + sizes,
            "grid_name": spec.grid,
            "grid": [float(p) for p in temps], "flow": dataclasses.asdict(cfg.train.flow),
            "targets": [_target_meta(fm) for fm in fms],
            "coarse_couplings": coarse_kappas, "fine_couplings": fine_kappas,
            "history": [list(h) for h in history],
            "trained_levels": [1] if cfg.train.flow.reuse_first_level else
            list(range(1, len(sizes) + 1)),
            "provenance": plain_provenance(cfg, comms, "train")}
    write_on_root(comms, final, lambda path: save_flow_model(path, bank, meta))
    log.info(f"[train] wrote {final}")


def _target_meta(fm) -> dict:
    """The target density's couplings of one parameter point, for the model file."""
    from ...models.spec import spec_for
    if spec_for(fm.model).continuous:
        return {"kappa": fm.kappa, "lam": fm.lam, "scale": fm.scale}
    return {"beta": fm.beta, "J": fm.J, "alpha": fm.alpha}
