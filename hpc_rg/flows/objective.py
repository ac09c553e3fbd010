"""The reverse-KL objective of flow super-resolution levels.

Level ``k`` (``2^k L → 2^{k+1} L``) of every parameter point is trained on coarse fields
``φ ~ p_{2^k L}``. The loss per parameter point is Bauer eq. (32) / Shiina eq. (12),

    KL(q‖p) + const = E_{φ ~ p_L, fine ~ q(·|φ)} [ log_q(fine|φ) − log p~_2L(fine) ],

divided by the number of fine sites; ``log p_L(φ)`` does not depend on the flow parameters
(σ enters only ``log_q``), so it is left out of the gradient but kept in the importance
weights ``log w = log p~_2L(fine) − log p~_L(φ) − log_q`` whose ESS/N (eq. 12) measures the
proposals. Optional magnetization regulariser (Shiina, after eq. 12):
``γ(step) · mean |m(fine) − m(φ)|`` with ``m`` the mean field (Ising: mean ``tanh x`` =
E[s|x]; the block mean of the fine field has the same mean); ``γ`` constant for
``reg_steps`` steps then 0 (``step``) or decaying linearly to 0 (``linear``).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.spec import spec_for

__all__ = ["LevelObjective", "reg_weight"]


def reg_weight(f, step: int) -> float:
    """Regulariser weight at optimizer step ``step`` of a level (``f`` = ``train.flow``)."""
    if f.reg_weight <= 0 or step >= f.reg_steps:
        return 0.0
    if f.reg_schedule == "linear":
        return f.reg_weight * (1.0 - step / f.reg_steps)
    return f.reg_weight


def _magnetization(x: torch.Tensor, model: str) -> torch.Tensor:
    """Mean field per configuration: ``x`` of a real field, ``tanh x`` of relaxed spins."""
    axes = tuple(range(1, x.dim()))
    return (x if spec_for(model).continuous else torch.tanh(x)).mean(axes)


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

