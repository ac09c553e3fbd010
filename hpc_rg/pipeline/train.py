"""The ``train`` stage: learn the L/2 -> L super-resolution from the Monte Carlo ensemble.

Reads ``/L<sample.L>`` of ``samples.h5`` (each rank its own contiguous share; the last
``validation_fraction`` of every chain is held out), fits the temperature flow from the
``/L<sample.L/2>`` reference ensemble when it exists, trains a :class:`NetworkBank` with
DeepSpeed, and writes ``model.pt`` (tensor-only, see :mod:`hpc_rg.superres.modelfile`).
"""

from __future__ import annotations

import gc
import logging

import numpy as np

from ..config import resolved_blocking
from ..errors import ConfigError, HpcRgError, InputFileError, OutputError, StoppedBySignal
from ..io import schema
from ..io.provenance import provenance
from .progress import Progress

log = logging.getLogger("hpc_rg")


def open_samples(cfg):
    """``samples.h5`` of this run, read-only; a clear error when missing or unfinished."""
    import h5py
    path = cfg.output_dir / schema.SAMPLES_FILE
    if not path.is_file():
        partial = path.with_name(path.name + schema.PARTIAL_SUFFIX)
        hint = "it is unfinished: rerun --stage sample --resume" if partial.exists() else \
            "run --stage sample first"
        raise InputFileError(f"{path}: no Monte Carlo ensemble ({hint})")
    return h5py.File(path, "r")


def size_group(f, L: int, path):
    g = schema.size_group(L)
    if g not in f:
        raise InputFileError(f"{path}: has no group /{g}; sizes present: "
                             f"{', '.join(sorted(f.keys()))}")
    return f[g]


def run_train(cfg, comms, stop, resume: bool, device) -> None:
    """Train the network (collective over ``comms.world``)."""
    if cfg.train.method != "cnn":  # flow super-resolution (hpc_rg.flows)
        from .flow_stages import run_train_flow
        return run_train_flow(cfg, comms, stop, resume, device)
    import torch

    from ..parallel.torch_dist import process_group
    from ..rng import derive_seed
    from ..superres.ensemble_io import grid, read_runs, split_runs, take_share, chain_length
    from ..superres.ensemble_io import ensemble_size
    from ..superres.modelfile import save_model
    from ..superres.network import NetworkBank, NetworkSpec
    from ..superres.rescaling import flow_to_meta, measure_flow
    from ..superres.trainer import (LoopState, Trainer, deepspeed_config, load_checkpoint,
                                    prepare_checkpoints)

    out = cfg.output_dir
    final = out / schema.MODEL_FILE
    t, L = cfg.train, cfg.sample.L
    blocking = resolved_blocking(cfg)
    field = "phi4" if cfg.model.name == "phi4" else "spin"
    rank, size = comms.rank, comms.size
    with open_samples(cfg) as f:
        g = size_group(f, L, f.filename)
        N, S = ensemble_size(g), chain_length(g)
        try:
            train_runs, val_runs = split_runs(N, S, t.validation_fraction)
        except ValueError as e:
            raise ConfigError(f"{cfg.source}: {e}") from None
        train_np = read_runs(g, take_share(train_runs, rank, size))
        val_np = read_runs(g, take_share(val_runs, rank, size))
        temps = grid(g)
        flow = measure_flow(cfg, f, L, field, blocking, comms, device)
    # φ⁴: bound of the field the network may predict (1.5 × the largest |φ| trained on), so
    # that an iterated chain cannot run away outside the training range
    from mpi4py import MPI
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
    log.info(f"[train] {N} samples x {len(temps)} temperatures at L={L} "
             f"({sum(b - a for a, b in train_runs)} train / {sum(b - a for a, b in val_runs)} "
             f"validation each), blocking {blocking}, "
             f"{len(spec.temperatures) if not spec.conditioned else 1} network(s), "
             f"{comms.size} data-parallel rank(s)")
    ckpt_dir = out / schema.CHECKPOINT_DIR / "train"
    resume_tag = prepare_checkpoints(ckpt_dir, comms.world, resume)
    ds_config = deepspeed_config(t, size)
    _quiet_deepspeed(device)
    with process_group(comms.world, "nccl" if device.type == "cuda" else "gloo",
                       comms.local_rank) as holder:
        import deepspeed
        holder["bank"] = NetworkBank(spec).to(device)
        try:
            engine, optimizer, _, _ = deepspeed.initialize(
                model=holder["bank"], model_parameters=holder["bank"].parameters(),
                config=ds_config)
        except (ValueError, AssertionError, KeyError, TypeError) as e:
            raise ConfigError(f"{cfg.source}: train.deepspeed: DeepSpeed rejected the "
                              f"configuration: {str(e).splitlines()[0][:200]}") from None
        holder.update(engine=engine, optimizer=optimizer)
        state = LoopState()
        stopped = trainer = None
        if resume_tag is not None:
            try:
                state = LoopState(**load_checkpoint(engine, ckpt_dir, resume_tag)["loop"])
                log.info(f"[train] resuming at step {state.steps} (epoch {state.epoch})")
            except HpcRgError as e:  # unreadable on every rank: clean teardown, then re-raise
                if not e.collective:
                    raise
                stopped = e.with_traceback(None)
        if stopped is None:
            try:
                trainer = Trainer(holder["bank"], train_x, val_x, cfg, blocking, comms, device,
                                  ckpt_dir, stop, progress=None)
                trainer.progress = Progress("train", trainer.steps_per_epoch * t.epochs,
                                            "steps", cfg.run.progress_seconds,
                                            active=comms.is_root, start=state.steps)
                state = trainer.run(engine, state)
            except StoppedBySignal as e:  # collective: tear the group down cleanly, re-raise
                stopped = e.with_traceback(None)  # its frames hold the engine and the tensors
            except HpcRgError as e:  # raised alike on every rank: the same clean teardown
                if not e.collective:
                    raise
                stopped = e.with_traceback(None)
        if stopped is None and not state.best_state:
            from ..superres.trainer import _cpu_state
            state.best_state = _cpu_state(engine.module)
        del engine, optimizer, trainer
        holder["train_x"], holder["val_x"] = train_x, val_x
        del train_x, val_x
    gc.collect()
    if stopped is not None:
        raise stopped
    bank = NetworkBank(spec)
    bank.load_state_dict(state.best_state)
    meta = {"model": cfg.model.name, "dims": cfg.model.dims, "blocking": blocking,
            "train_L": L, "field": field, "best_validation_loss": float(state.best_loss),
            "best_epoch": int(state.best_epoch), "epochs_run": int(state.epoch),
            "stopped_early": bool(state.stopped_early),
            "history": [[float(v) for v in h] for h in state.history],
            "flow": flow_to_meta(flow),
            "field_bound": field_bound if field == "phi4" else None,
            "exact_flow": _exact_flow(cfg, blocking),
            "provenance": _plain_provenance(cfg, comms)}
    problem = None
    if comms.is_root:
        try:
            out.mkdir(parents=True, exist_ok=True)
            save_model(final, bank, meta)  # model.pt.partial, fsync, rename
        except OSError as e:
            from ..io.writer import os_error_reason
            problem = f"{final}: cannot write the model: {os_error_reason(e)}"
        except OutputError as e:
            problem = str(e)
    problem = comms.bcast_root(problem)
    if problem:
        raise OutputError(problem)
    log.info(f"[train] wrote {final} (best validation loss {state.best_loss:.5f} at epoch "
             f"{state.best_epoch}, {state.epoch} epochs)")


def _exact_flow(cfg, blocking: str):
    """The 1D Ising decimation flow is known exactly (Efthymiou eq. 5)."""
    m = cfg.model
    if m.name == "ising" and m.dims == 1 and blocking == "decimation" and m.h == 0:
        return {"name": "ising1d_decimation", "J": float(m.J)}
    return None


def _plain_provenance(cfg, comms) -> dict:
    p = provenance(cfg, comms.size, "train", commit=None if comms.is_root else "")
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in p.items()}


def _quiet_deepspeed(device) -> None:
    """CPU accelerator unless on GPU; DeepSpeed's INFO chatter off (warnings stay)."""
    import os
    if device.type != "cuda":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from deepspeed.utils import logger as ds_logger
    ds_logger.setLevel(logging.WARNING)
