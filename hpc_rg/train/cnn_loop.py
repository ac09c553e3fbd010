"""The optimizer loop of the CNN super-resolution (:class:`~hpc_rg.superres.network.NetworkBank`).

Each rank holds its own shard of the training pairs (target σ at L; the input is
``block(σ)`` at L/2, computed per batch). One optimizer step = ``batch_size`` sample
indices per rank, every temperature at once; DeepSpeed averages the gradients, so the
parameters stay identical on every rank. After every epoch the validation loss (summed
over the ranks' validation shards with MPI) decides early stopping; the best parameters
are kept. Every ``checkpoint_every`` steps, and when a stop signal arrives, a checkpoint
with the loop state is written (:mod:`.checkpoints`). Random numbers are keyed by (epoch,
step), and the running loss is part of the loop state, so a resumed run is bit-identical.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError, StoppedBySignal, collective
from ..rg.blocking import block
from ..rng import torch_generator
from ..io.ensemble import coarse_blocking
from ..superres.loss import loss_fn
from ..superres.network import NetworkBank
from .checkpoints import cpu_state, save_checkpoint

log = logging.getLogger("hpc_rg")


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
                state.best_state = cpu_state(engine.module)
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
        """Collective kill-safe checkpoint of the engine and ``state``."""
        save_checkpoint(engine, self.ckpt_dir, state, self.comm)

