"""Reverse-KL training of flow super-resolution levels, data parallel with DeepSpeed.

Level ``k`` (``2^k L → 2^{k+1} L``) of every parameter point is trained at once on the
rank's own pool of coarse fields ``φ ~ p_{2^k L}`` (level 0: the Monte Carlo ensemble; level
k: the MH-corrected output of level k-1). The loss per parameter point is Bauer eq. (32) /
Shiina eq. (12),

    KL(q‖p) + const = E_{φ ~ p_L, fine ~ q(·|φ)} [ log_q(fine|φ) − log p~_2L(fine) ],

divided by the number of fine sites; ``log p_L(φ)`` does not depend on the flow parameters
(σ enters only ``log_q``), so it is left out of the gradient but kept in the importance
weights ``log w = log p~_2L(fine) − log p~_L(φ) − log_q`` whose ESS/N (eq. 12) the progress
line reports (over every rank's batch). Optional magnetization regulariser (Shiina, after
eq. 12): ``γ(step) · mean |m(fine) − m(φ)|`` with ``m`` the mean field (Ising: mean
``tanh x`` = E[s|x]; the block mean of the fine field has the same mean); ``γ`` constant for
``reg_steps`` steps then 0 (``step``) or decaying linearly to 0 (``linear``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import StoppedBySignal
from ..rng import torch_generator

log = logging.getLogger("hpc_rg")

__all__ = ["FlowLoopState", "LevelObjective", "reg_weight", "FlowTrainer", "save_checkpoint"]


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


def reg_weight(f, step: int) -> float:
    """Regulariser weight at optimizer step ``step`` of a level."""
    if f.reg_weight <= 0 or step >= f.reg_steps:
        return 0.0
    if f.reg_schedule == "linear":
        return f.reg_weight * (1.0 - step / f.reg_steps)
    return f.reg_weight


def _magnetization(x: torch.Tensor, model: str) -> torch.Tensor:
    axes = tuple(range(1, x.dim()))
    return (torch.tanh(x) if model == "ising" else x).mean(axes)


class LevelObjective(nn.Module):
    """Level ``k`` of every parameter point and its reverse-KL loss.

    ``forward(coarse (n_T, B, *L), log_p_coarse (n_T, B), reg, generator)`` returns
    ``(loss, log_w (n_T, B))``; the loss is the mean over parameter points. With ``coarse``
    couplings (IR matching, level 1 of φ⁴ only; :mod:`hpc_rg.flows.ir_matching`) the coarse
    fields are first moved to the learned κ_L by Langevin dynamics, the loss gains the coarse
    terms of D_KL^(I) and D_KL^(II), and ``log_p_coarse`` is recomputed at κ_L. With ``fine``
    couplings (UV matching, φ⁴; :mod:`hpc_rg.flows.uv_matching`) the fine target's κ is
    learned: the loss gains its terms and the weights use the current κ.
    """

    def __init__(self, levels, field_models, coarse=None, fine=None):
        super().__init__()
        self.levels = nn.ModuleList(levels)
        self.field_models = list(field_models)
        self.coarse = coarse
        self.fine = fine

    def forward(self, coarse, log_p_coarse, reg: float = 0.0, generator=None):
        losses, lws = [], []
        for t, (level, fm) in enumerate(zip(self.levels, self.field_models)):
            phi, lpc = coarse[t], log_p_coarse[t]
            if self.coarse is not None:
                from ..models.phi4 import action
                phi = self.coarse.move(t, phi, generator)
                lpc = -action(phi.detach(), float(self.coarse.kappa[t].detach()), fm.lam)
            fine, log_q = level.sample(phi, generator)
            log_p = fm.log_p(fine)
            n_sites = fine[0].numel()
            per = log_q.to(torch.float64) - log_p
            if self.coarse is not None:
                per = per + self.coarse.loss_terms(t, phi)
            if self.fine is not None:
                per = per + self.fine.loss_terms(t, fine)
                log_p = log_p + self.fine.log_p_shift(t, fine)
            loss = per.mean() / n_sites
            if reg > 0:
                m_out = _magnetization(fine, fm.model)
                m_in = _magnetization(phi, fm.model)
                loss = loss + reg * (m_out - m_in).abs().to(torch.float64).mean()
            losses.append(loss)
            lws.append((log_p - lpc.to(torch.float64) - log_q.to(torch.float64)).detach())
        return torch.stack(losses).mean().to(torch.float32), torch.stack(lws)


def save_checkpoint(engine, ckpt_dir, state: FlowLoopState, comm) -> None:
    """Collective DeepSpeed checkpoint of one level, committed by an atomic ``latest``
    (the CNN trainer's kill-safe protocol, :func:`hpc_rg.superres.trainer.save_checkpoint`)."""
    from ..superres.trainer import save_checkpoint as commit
    commit(engine, ckpt_dir, state, comm)


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
        from .mh import ess_per_n
        lw = torch.cat([torch.as_tensor(a) for a in self.comm.allgather(log_w.cpu().numpy())], 1)
        return float(sum(ess_per_n(lw[t]) for t in range(lw.shape[0])) / lw.shape[0])

    def run(self, engine, state: FlowLoopState) -> FlowLoopState:
        f, seed, rank = self.f, self.cfg.run.seed, self.comm.Get_rank()
        every = self.cfg.train.checkpoint_every
        t0, seen = time.monotonic(), 0
        engine.train()
        while state.steps < self.steps and not state.stopped_early:
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
