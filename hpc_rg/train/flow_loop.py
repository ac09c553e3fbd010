"""The optimizer loop of one flow super-resolution level (data parallel with DeepSpeed).

Every parameter point's level is trained at once on the rank's own pool of coarse fields
(:class:`~hpc_rg.flows.objective.LevelObjective`); the progress line reports the batch ESS/N
over every rank. Checkpoints (:mod:`.checkpoints`) every ``train.checkpoint_every`` steps
and on a stop signal; batches, noise and the learning rate (``train.flow.lr_schedule``) are
keyed by (level, step, rank): resumable.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import torch

from ..errors import StoppedBySignal
from ..flows.objective import reg_weight
from ..rng import torch_generator
from .checkpoints import save_checkpoint

log = logging.getLogger("hpc_rg")

__all__ = ["FlowLoopState", "FlowTrainer", "lr_factor", "set_lr"]


@dataclass
class FlowLoopState:
    """Where flow training stands within one level (client state of the checkpoints)."""

    level: int = 0
    steps: int = 0
    running: float = 0.0
    n_run: int = 0
    history: list = field(default_factory=list)  # (level, step, loss, ess_per_n)
    ess_avg: float = 0.0  # exponential average (weight 0.1) of the batch ESS/N
    best_ess: float = -1.0  # its best value so far, and the step it was reached
    best_step: int = 0
    stopped_early: bool = False

    @property
    def tag(self) -> str:  # same pattern as the CNN trainer's tags (step<N>e<M>)
        return f"step{self.steps}e{self.level}"


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """Learning-rate multiplier of optimizer step ``step`` (0-based) of a level's ``steps``.

    ``constant``: 1. ``cosine``: ``(1 + cos(pi step / steps)) / 2``, from 1 at the first step
    towards 0 at the last. A function of the level's step count, not of the steps since a
    restart, so a resumed level continues the schedule.
    """
    if schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * step / steps))


def set_lr(optimizer, factor: float) -> None:
    """Every parameter group's learning rate = its initial one x ``factor``; the initial rate
    is kept in the group (``initial_lr``, as torch's schedulers do), so it is checkpointed and
    restored with the optimizer state."""
    for g in optimizer.param_groups:
        g.setdefault("initial_lr", g["lr"])
        g["lr"] = g["initial_lr"] * factor


def _couplings_note(objective) -> str:
    """`` kappa_L 0.2512 …`` (IR) / `` kappa_2L …`` (UV) for the progress line, else ''."""
    for cpl, name in ((getattr(objective, "coarse", None), "kappa_L"),
                      (getattr(objective, "fine", None), "kappa_2L")):
        if cpl is not None:
            return f" {name} " + " ".join(f"{k:.4f}" for k in cpl.values())
    return ""


class FlowTrainer:
    """The optimizer loop of one level.

    Parameters
    ----------
    pool, pool_logp : Tensor (n_T, n_local, *L), (n_T, n_local)
        This rank's coarse fields and their ``log p~``.
    cfg : Config (``train.flow``, ``train.checkpoint_every``, ``run.seed``)
    """

    def __init__(self, pool, pool_logp, cfg, comms, ckpt_dir, stop, progress, steps=None):
        self.pool, self.pool_logp = pool, pool_logp
        self.cfg, self.f = cfg, cfg.train.flow
        self.steps = int(steps or self.f.steps)  # this level's optimizer-step budget
        self.comms, self.comm = comms, comms.world
        self.ckpt_dir, self.stop, self.progress = ckpt_dir, stop, progress

    def batch(self, state: FlowLoopState):
        """This rank's coarse batch of step ``state.steps`` (keyed: resumable)."""
        n = self.pool.shape[1]
        gen = torch_generator(self.cfg.run.seed, "flow-train-batch", state.level, state.steps,
                              self.comm.Get_rank())
        idx = torch.randint(0, n, (self.f.batch,), generator=gen).to(self.pool.device)
        return self.pool[:, idx], self.pool_logp[:, idx]

    def ess(self, log_w: torch.Tensor) -> float:
        """Mean over parameter points of ESS/N of every rank's batch weights (collective)."""
        from ..flows.mh import ess_per_n
        lw = torch.cat([torch.as_tensor(a) for a in self.comm.allgather(log_w.cpu().numpy())], 1)
        return float(sum(ess_per_n(lw[t]) for t in range(lw.shape[0])) / lw.shape[0])

    def run(self, engine, state: FlowLoopState) -> FlowLoopState:
        f, seed, rank = self.f, self.cfg.run.seed, self.comm.Get_rank()
        every = self.cfg.train.checkpoint_every
        t0, seen = time.monotonic(), 0
        engine.train()
        while state.steps < self.steps and not state.stopped_early:
            if f.lr_schedule != "constant":
                set_lr(engine.optimizer, lr_factor(f.lr_schedule, state.steps, self.steps))
            coarse, lpc = self.batch(state)
            gen = torch_generator(seed, "flow-train-noise", state.level, state.steps, rank,
                                  device=coarse.device)
            loss, log_w = engine(coarse, lpc, reg_weight(f, state.steps), gen)
            engine.backward(loss)
            engine.step()
            ess = self.ess(log_w)
            state.running += float(loss.detach())
            state.n_run += 1
            state.steps += 1
            state.history.append((state.level, state.steps, float(loss.detach()), ess))
            self._track_ess(state, ess)
            seen += coarse.shape[0] * coarse.shape[1] * self.comm.Get_size()
            if state.steps % every == 0:
                save_checkpoint(engine, self.ckpt_dir, state, self.comm)
            if self.stop.requested(self.comms):
                save_checkpoint(engine, self.ckpt_dir, state, self.comm)
                raise StoppedBySignal(f"train stage stopped by signal at level {state.level + 1} "
                                      f"step {state.steps}; checkpoint in {self.ckpt_dir}; "
                                      f"rerun with --resume")
            rate = seen / max(time.monotonic() - t0, 1e-9)
            self.progress.update(state.steps, f"level {state.level + 1} loss {float(loss.detach()):.5f} "
                                 f"ESS/N {ess:.3f}{_couplings_note(engine.module)} "
                                 f"({rate:.0f} samples/s)")
        engine.eval()
        save_checkpoint(engine, self.ckpt_dir, state, self.comm)
        return state

    def _track_ess(self, state: FlowLoopState, ess: float) -> None:
        """Early stopping on ESS (``train.flow.ess_patience``): stop the level once the
        exponentially averaged batch ESS/N (the same on every rank) has not improved for
        ``ess_patience`` steps."""
        state.ess_avg = ess if state.steps == 1 else 0.9 * state.ess_avg + 0.1 * ess
        if state.ess_avg > state.best_ess:
            state.best_ess, state.best_step = state.ess_avg, state.steps
        patience = self.f.ess_patience
        if patience and state.steps - state.best_step >= patience:
            state.stopped_early = True
            log.info(f"[train] level {state.level + 1}: early stop at step {state.steps}, "
                     f"averaged ESS/N {state.ess_avg:.3f} (best {state.best_ess:.3f} at step "
                     f"{state.best_step})")
