"""Data-parallel training of a :class:`NetworkBank` with DeepSpeed (gloo on CPU, NCCL on GPU).

Each rank holds its own shard of the training pairs (target σ at L; the input is
``block(σ)`` at L/2, computed per batch). One optimizer step = ``batch_size`` sample
indices per rank, every temperature at once; DeepSpeed averages the gradients, so the
parameters stay identical on every rank. After every epoch the validation loss (summed
over the ranks' validation shards with MPI) decides early stopping; the best parameters
are kept. Every ``checkpoint_every`` steps, and when a stop signal arrives, a DeepSpeed
checkpoint with the loop state is written so ``--resume`` continues where it stopped.

Kill safety: a checkpoint goes to a fresh tag directory ``step<N>e<epoch>``; only when every
rank has written it (barrier) and its files are fsync'ed does rank 0 point ``latest`` at it,
atomically (temporary file + ``os.replace``). A job killed at any moment therefore leaves
``latest`` naming a complete checkpoint (or no ``latest`` at all); half-written tag
directories are never loaded and are removed. Random numbers are keyed by (epoch, step), and
the running loss is part of the loop state, so a resumed run is bit-identical.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import time
from pathlib import Path
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError, InputFileError, OutputError, StoppedBySignal, collective
from ..rg.blocking import block
from ..rng import torch_generator
from .ensemble_io import coarse_blocking
from .loss import loss_fn
from .network import NetworkBank

log = logging.getLogger("hpc_rg")


def deepspeed_config(train_cfg, world_size: int) -> dict:
    """Built-in DeepSpeed defaults with ``train.deepspeed`` merged over them (deep merge)."""
    t = train_cfg
    base = {
        "train_micro_batch_size_per_gpu": t.batch_size,
        "gradient_accumulation_steps": 1,
        "train_batch_size": t.batch_size * world_size,
        "optimizer": {"type": "Adam", "params": {"lr": t.learning_rate, "torch_adam": True}},
        "zero_optimization": {"stage": 0},
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    return _merge(base, dict(t.deepspeed))


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@dataclass
class LoopState:
    """Where training stands (saved in checkpoints)."""

    epoch: int = 0
    step_in_epoch: int = 0
    steps: int = 0
    best_loss: float = float("inf")
    best_epoch: int = -1
    bad_epochs: int = 0
    best_state: dict = field(default_factory=dict)
    history: list = field(default_factory=list)  # (epoch, train loss, validation loss)
    stopped_early: bool = False
    running: float = 0.0  # sum of the training losses of this epoch so far
    n_run: int = 0  # steps summed in ``running``

    @property
    def tag(self) -> str:
        """Checkpoint tag: unique for a loop state (the epoch-end save shares the step count
        with the save at that step, not the epoch)."""
        return f"step{self.steps}e{self.epoch}"


LATEST = "latest"
_TAG = re.compile(r"^step(\d+)(?:e(\d+))?$")


def latest_tag(ckpt_dir) -> str | None:
    """The tag named by ``ckpt_dir/latest`` when that checkpoint directory exists."""
    try:
        tag = (Path(ckpt_dir) / LATEST).read_text().strip()
    except OSError:
        return None
    return tag if tag and _TAG.match(tag) and (Path(ckpt_dir) / tag).is_dir() else None


def prepare_checkpoints(ckpt_dir, comm, resume: bool) -> str | None:
    """Collective: the tag to resume from (``None``: start afresh, stale checkpoints of an
    earlier or killed run removed)."""
    ckpt_dir = Path(ckpt_dir)
    tag = None
    if comm.Get_rank() == 0:
        tag = latest_tag(ckpt_dir) if resume else None
        if tag is None and ckpt_dir.exists():
            if resume and any(ckpt_dir.iterdir()):
                log.warning(f"[train] {ckpt_dir}: no complete checkpoint (killed before the "
                            f"first one was committed); training from the start")
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    return comm.bcast(tag, root=0)


class Trainer:
    """Training loop over pre-loaded shards.

    Parameters
    ----------
    bank : NetworkBank
    train_x, val_x : Tensor (n_T, n_local, *lattice)
        This rank's targets (±1 spins or φ), on ``device``.
    cfg : Config  (uses ``train``, ``run.seed``)
    blocking : str  resolved blocking name
    comms : Comms (data parallel over ``comms.world``)
    """

    def __init__(self, bank: NetworkBank, train_x, val_x, cfg, blocking: str, comms, device,
                 ckpt_dir, stop, progress):
        self.bank, self.train_x, self.val_x = bank, train_x, val_x
        self.cfg, self.t, self.blocking = cfg, cfg.train, blocking
        self.comms, self.comm = comms, comms.world
        self.device, self.ckpt_dir = device, ckpt_dir
        comm = self.comm
        self.stop, self.progress = stop, progress
        self.dims = bank.spec.dims
        self.field = bank.spec.field
        self.two_pass = bank.spec.two_pass
        self.rank = comm.Get_rank()
        n_local = train_x.shape[1]
        from mpi4py import MPI
        self.steps_per_epoch = comm.allreduce(n_local // self.t.batch_size, op=MPI.MIN)
        if self.steps_per_epoch < 1:
            smallest = comm.allreduce(n_local, op=MPI.MIN)
            raise collective(ConfigError(
                f"{cfg.source}: train.batch_size={self.t.batch_size}: a rank holds only "
                f"{smallest} training samples per temperature; lower train.batch_size, use "
                f"fewer ranks or more sample.samples/chains"))

    # ------------------------------------------------------------------ pieces
    def _inputs(self, target: torch.Tensor, gen) -> torch.Tensor:
        return block(target, coarse_blocking(self.blocking), self.dims, generator=gen)

    def _loss(self, engine, target, gen) -> torch.Tensor:
        x = self._inputs(target, gen)
        out = engine(x, None, target) if self.two_pass else engine(x)  # (n_T, b, C, *L)
        n_T = target.shape[0]
        return sum(loss_fn(self.field, out[k], target[k], self.dims, self.t.energy_weight)
                   for k in range(n_T)) / n_T

    def validation_loss(self, module) -> float:
        """Mean validation loss over every rank's validation shard (collective)."""
        from mpi4py import MPI
        gen = torch_generator(self.cfg.run.seed, "validation-blocking", self.rank,
                              device=self.device)
        total, count = 0.0, 0
        with torch.no_grad():
            n = self.val_x.shape[1]
            for a in range(0, n, self.t.batch_size):
                target = self.val_x[:, a:a + self.t.batch_size]
                total += float(self._loss(module, target, gen)) * target.shape[1]
                count += target.shape[1]
        total = self.comm.allreduce(total, op=MPI.SUM)
        count = self.comm.allreduce(count, op=MPI.SUM)
        return total / max(count, 1)

    # ------------------------------------------------------------------ loop
    def run(self, engine, state: LoopState) -> LoopState:
        t, b = self.t, self.t.batch_size
        seen, t0 = 0, time.monotonic()
        while state.epoch < t.epochs and not state.stopped_early:
            gen = torch_generator(self.cfg.run.seed, "train-epoch", state.epoch, self.rank)
            perm = torch.randperm(self.train_x.shape[1], generator=gen).to(self.device)
            if state.step_in_epoch == 0:
                state.running, state.n_run = 0.0, 0
            engine.train()
            while state.step_in_epoch < self.steps_per_epoch:
                idx = perm[state.step_in_epoch * b:(state.step_in_epoch + 1) * b]
                # keyed by step, so a run resumed mid-epoch draws the same tie-breaking coins
                block_gen = torch_generator(self.cfg.run.seed, "train-blocking", state.epoch,
                                            state.step_in_epoch, self.rank, device=self.device)
                loss = self._loss(engine, self.train_x[:, idx], block_gen)
                engine.backward(loss)
                engine.step()
                state.running += float(loss.detach())
                state.n_run += 1
                state.step_in_epoch += 1
                state.steps += 1
                seen += b * self.train_x.shape[0] * self.comm.Get_size()
                if state.steps % t.checkpoint_every == 0:
                    self.save(engine, state)
                if self.stop.requested(self.comms):
                    self.save(engine, state)
                    raise StoppedBySignal(f"train stage stopped by signal at step {state.steps} "
                                          f"(epoch {state.epoch}); checkpoint in "
                                          f"{self.ckpt_dir}; rerun with --resume")
                rate = seen / max(time.monotonic() - t0, 1e-9)
                self.progress.update(state.steps, f"epoch {state.epoch} loss "
                                     f"{state.running / state.n_run:.5f} ({rate:.0f} samples/s)")
            engine.eval()
            val = self.validation_loss(engine)
            train_loss = state.running / max(state.n_run, 1)
            state.history.append((state.epoch, train_loss, val))
            improved = val < state.best_loss
            if improved:
                state.best_loss, state.best_epoch, state.bad_epochs = val, state.epoch, 0
                state.best_state = _cpu_state(engine.module)
            else:
                state.bad_epochs += 1
            log.info(f"[train] epoch {state.epoch}: train loss {train_loss:.5f}, validation "
                     f"{val:.5f}{' (best)' if improved else ''}")
            state.epoch += 1
            state.step_in_epoch = 0
            if state.bad_epochs >= t.patience:
                state.stopped_early = True
                log.info(f"[train] early stop: no validation improvement for {t.patience} "
                         f"epochs (best {state.best_loss:.5f} at epoch {state.best_epoch})")
        self.save(engine, state)
        return state

    def save(self, engine, state: LoopState) -> None:
        """Collective DeepSpeed checkpoint with the loop state as client state, committed
        by an atomic ``latest`` (see the module docstring)."""
        save_checkpoint(engine, self.ckpt_dir, state, self.comm)


def save_checkpoint(engine, ckpt_dir, state, comm) -> None:
    """Collective DeepSpeed checkpoint of ``state`` (a loop-state dataclass with ``tag``)
    as client state, committed by an atomic ``latest``; the committed tag and the one
    before it are kept (kill-safety protocol of the module docstring; also used by the
    flow trainer)."""
    from ..io.writer import fsync_path, os_error_reason
    ckpt_dir, tag = Path(ckpt_dir), state.tag
    rank = comm.Get_rank()
    problem = previous = None
    if rank == 0:
        previous = latest_tag(ckpt_dir)
        if previous == tag:  # same loop state already committed (e.g. resumed at the end)
            problem = "skip"
        else:
            shutil.rmtree(ckpt_dir / tag, ignore_errors=True)  # debris of a killed run
    if comm.bcast(problem, root=0) == "skip":
        return
    try:
        engine.save_checkpoint(str(ckpt_dir), tag=tag, save_latest=False,
                               client_state={"loop": copy.deepcopy(vars(state))})
    except OSError as e:
        raise OutputError(f"{ckpt_dir / tag}: cannot write training checkpoint: "
                          f"{os_error_reason(e)}") from None
    comm.Barrier()  # every rank's files of this tag are written
    if rank == 0:
        try:
            for root, _, files in os.walk(ckpt_dir / tag):
                for name in files:
                    fsync_path(os.path.join(root, name))
            fsync_path(ckpt_dir / tag, directory=True)
            tmp = ckpt_dir / (LATEST + ".tmp")
            with open(tmp, "w") as fd:
                fd.write(tag)
                fd.flush()
                os.fsync(fd.fileno())
            os.replace(tmp, ckpt_dir / LATEST)
            fsync_path(ckpt_dir, directory=True)
        except OSError as e:
            problem = f"{ckpt_dir}: cannot write training checkpoint: {os_error_reason(e)}"
        else:  # keep the committed tag and the one before it; drop everything else
            keep = {tag, previous}
            for p in ckpt_dir.iterdir():
                if p.is_dir() and _TAG.match(p.name) and p.name not in keep:
                    shutil.rmtree(p, ignore_errors=True)
    problem = comm.bcast(problem, root=0)
    if problem:
        raise OutputError(problem)


def _load_weights_only(engine) -> None:
    """Make DeepSpeed read this engine's checkpoint files with ``weights_only=True`` (its
    own engine passes False): a copied run directory cannot run code on ``--resume``.
    Our checkpoints hold tensors, plain data and the loop state only."""
    import torch

    def load(path, map_location=None):
        return torch.load(path, map_location=map_location, weights_only=True)
    engine.checkpoint_engine.load = load


def load_checkpoint(engine, ckpt_dir, tag: str) -> dict:
    """Collective: load DeepSpeed checkpoint ``tag``; its client state (a clear error if the
    committed checkpoint cannot be read)."""
    from ..io.checkpoint import unreadable_reason
    _load_weights_only(engine)
    try:
        path, client = engine.load_checkpoint(str(ckpt_dir), tag=tag)
    except Exception as e:
        path, client = None, unreadable_reason(e)
    bad = path is None or not isinstance(client, dict) or "loop" not in client
    if _any_rank(bad):
        detail = client if isinstance(client, str) else "incomplete" if bad else "on another rank"
        raise collective(InputFileError(
            f"{Path(ckpt_dir) / tag}: training checkpoint is unreadable ({detail}); delete "
            f"{ckpt_dir} and rerun without --resume"))
    return client


def _any_rank(flag: bool) -> bool:
    """``flag`` OR-reduced over the training process group (itself when there is none)."""
    import torch
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return bool(flag)
    t = torch.tensor([int(bool(flag))])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _cpu_state(module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
