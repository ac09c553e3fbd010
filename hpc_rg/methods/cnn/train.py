"""Training the CNN: learn the L/2 -> L super-resolution from the Monte Carlo ensemble.

Reads ``/L<sample.L>`` of ``samples.h5`` (each rank its own contiguous share; the last
``validation_fraction`` of every chain is held out), fits the temperature flow from the
``/L<sample.L/2>`` reference ensemble when it exists, trains a :class:`NetworkBank` with
DeepSpeed, and writes ``model.pt`` (tensor-only, see :mod:`hpc_rg.superres.modelfile`).
"""

from __future__ import annotations

import gc
import logging
from functools import partial

import numpy as np

from ...config import resolved_blocking
from ...errors import ConfigError
from ...io import schema
from ...io.ensemble import open_samples, size_group
from ...io.provenance import plain_provenance
from ...models.spec import spec_for

log = logging.getLogger("hpc_rg")


def train_cnn(cfg, comms, stop, resume: bool, device) -> None:
    """Train the network (collective over ``comms.world``); writes ``model.pt``."""
    import torch
    from mpi4py import MPI

    from ...io.ensemble import chain_length, ensemble_size, grid, read_runs, split_runs
    from ...io.ensemble import take_share
    from ...io.equilibrated import usable_disorder_samples
    from ...rng import derive_seed
    from ...superres.modelfile import save_model
    from ...superres.network import NetworkBank, NetworkSpec
    from ...superres.rescaling import flow_to_meta, measure_flow
    from ...train.checkpoints import prepare_checkpoints
    from ...train.cnn_loop import LoopState
    from ...train.engine import deepspeed_config, run_engine, training_group
    from ...train.model_output import write_on_root

    out = cfg.output_dir
    final = out / schema.MODEL_FILE
    t, L = cfg.train, cfg.sample.L
    blocking = resolved_blocking(cfg)
    field = spec_for(cfg.model.name).field
    rank, size = comms.rank, comms.size
    with open_samples(cfg) as f:
        g = size_group(f, L, f.filename)
        used = usable_disorder_samples(g, cfg.sample.equilibration.only_passed,
                                       warn=comms.is_root, stage="train")
        N, S = ensemble_size(g, used.ids), chain_length(g)
        try:
            train_runs, val_runs = split_runs(N, S, t.validation_fraction)
        except ValueError as e:
            raise ConfigError(f"{cfg.source}: {e}") from None
        train_np = read_runs(g, take_share(train_runs, rank, size), disorder=used.ids)
        val_np = read_runs(g, take_share(val_runs, rank, size), disorder=used.ids)
        temps = grid(g)
        k = t.target_blockings
        if k:
            flow = None
            if comms.is_root:
                log.info(f"[train] fixed-point mode (train.target_blockings={k}): targets are "
                         f"the L={L} configurations blocked {k} time(s) ({blocking}), "
                         f"L={L >> k}, inputs L={L >> (k + 1)}; no temperature flow (a "
                         f"blocked ensemble has no nearest-neighbour temperature), levels "
                         f"keep their nominal temperature")
            train_np = block_times(train_np, k, blocking, cfg.model.dims, cfg.run.seed,
                                   "train-target-blocking", rank)
            val_np = block_times(val_np, k, blocking, cfg.model.dims, cfg.run.seed,
                                 "validation-target-blocking", rank)
        else:
            flow = measure_flow(cfg, f, L, field, blocking, comms, device, disorder=used.ids)
    # φ⁴: bound of the field the network may predict (1.5 × the largest |φ| trained on), so
    # that an iterated chain cannot run away outside the training range
    field_bound = 1.5 * comms.world.allreduce(float(np.abs(train_np).max()) if train_np.size
                                              else 0.0, op=MPI.MAX)
    train_x = torch.from_numpy(train_np).to(device)
    val_x = torch.from_numpy(val_np).to(device)
    del train_np, val_np
    n = cfg.train.network
    spec = NetworkSpec(dims=cfg.model.dims, depth=n.depth, width=n.width, kernel=n.kernel,
                       field=field, conditioned=n.conditioned, two_pass=n.two_pass,
                       temperatures=tuple(float(x) for x in temps))
    torch.manual_seed(derive_seed(cfg.run.seed, "network-init") >> 1)
    log.info(f"[train] {N} samples x {len(temps)} temperatures at L={L >> t.target_blockings} "
             f"({sum(b - a for a, b in train_runs)} train / {sum(b - a for a, b in val_runs)} "
             f"validation each), blocking {blocking}, "
             f"{len(spec.temperatures) if not spec.conditioned else 1} network(s), "
             f"{comms.size} data-parallel rank(s)")
    ckpt_dir = out / schema.CHECKPOINT_DIR / "train"
    resume_tag = prepare_checkpoints(ckpt_dir, comms.world, resume)
    ds_config = deepspeed_config(t.batch_size, t.learning_rate, t.deepspeed, size)
    with training_group(comms, device) as holder:
        holder["bank"] = NetworkBank(spec).to(device)

        state, stopped = run_engine(
            holder, holder["bank"], holder["bank"].parameters(), ds_config, cfg.source, ckpt_dir,
            resume_tag, LoopState(),
            partial(_loop, holder["bank"], train_x, val_x, cfg, blocking, comms, device,
                    ckpt_dir, stop), _resumed)
        holder["train_x"], holder["val_x"] = train_x, val_x
        del train_x, val_x
    gc.collect()
    if stopped is not None:
        raise stopped
    bank = NetworkBank(spec)
    bank.load_state_dict(state.best_state)
    meta = {"model": cfg.model.name, "dims": cfg.model.dims, "blocking": blocking,
            "train_L": L >> t.target_blockings, "mc_L": L,
            "target_blockings": int(t.target_blockings), "field": field,
            "best_validation_loss": float(state.best_loss),
            "best_epoch": int(state.best_epoch), "epochs_run": int(state.epoch),
            "stopped_early": bool(state.stopped_early),
            "history": [[float(v) for v in h] for h in state.history],
            "flow": flow_to_meta(flow),
            "field_bound": field_bound if field == "phi4" else None,
            "exact_flow": _exact_flow(cfg, blocking),
            "provenance": plain_provenance(cfg, comms, "train")}
    if used.ids is not None:  # EA: the disorder samples trained on
        meta[schema.ATTR_DISORDER_SAMPLES_USED] = [int(i) for i in used.ids]
        meta[schema.ATTR_EQUILIBRATED_ONLY] = bool(used.equilibrated_only)
    write_on_root(comms, final, lambda path: save_model(path, bank, meta))
    log.info(f"[train] wrote {final} (best validation loss {state.best_loss:.5f} at epoch "
             f"{state.best_epoch}, {state.epoch} epochs)")


def _loop(bank, train_x, val_x, cfg, blocking, comms, device, ckpt_dir, stop, engine, state):
    """Run the CNN's optimizer loop from ``state``; the best weights (or the last) kept."""
    from ...progress import Progress
    from ...train.checkpoints import cpu_state
    from ...train.cnn_loop import Trainer
    trainer = Trainer(bank, train_x, val_x, cfg, blocking, comms, device, ckpt_dir, stop,
                      progress=None)
    trainer.progress = Progress("train", trainer.steps_per_epoch * cfg.train.epochs, "steps",
                                cfg.run.progress_seconds, active=comms.is_root,
                                start=state.steps)
    state = trainer.run(engine, state)
    if not state.best_state:
        state.best_state = cpu_state(engine.module)
    return state


def _resumed(state) -> None:
    log.info(f"[train] resuming at step {state.steps} (epoch {state.epoch})")


def block_times(x: np.ndarray, k: int, blocking: str, dims: int, seed: int, purpose: str,
                rank: int) -> np.ndarray:
    """``x`` (n_T, n, *lattice) blocked ``k`` times with ``blocking`` (EA overlaps: majority
    on the overlap); shape (n_T, n, *lattice / 2**k). Random ties are keyed by (seed,
    purpose, rank, round)."""
    import torch

    from ...io.ensemble import coarse_blocking
    from ...rg.blocking import block_repeatedly
    from ...rng import torch_generator
    y = block_repeatedly(torch.from_numpy(x), coarse_blocking(blocking), dims, k,
                         lambda j: torch_generator(seed, purpose, rank, j))
    return y.numpy().astype(x.dtype, copy=False)


def _exact_flow(cfg, blocking: str):
    """The 1D Ising decimation flow is known exactly (Efthymiou eq. 5)."""
    m = cfg.model
    if m.name == "ising" and m.dims == 1 and blocking == "decimation" and m.h == 0:
        return {"name": "ising1d_decimation", "J": float(m.J)}
    return None
