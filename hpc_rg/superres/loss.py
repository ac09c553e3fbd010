"""Training losses: cross-entropy (+ γ energy term) for spins, Gaussian NLL for φ⁴.

Shapes: ``out`` (B, C, *lattice) network output; ``target`` (B, *lattice) ±1 spins or φ.
All losses are means over sites and configurations (per-site units).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.lattice import forward_bond_sum


def nn_energy(m: torch.Tensor, dims: int) -> torch.Tensor:
    """−(1/N) Σ_x Σ_μ m_x m_{x+μ} per configuration; m (B, *lattice) -> (B,) (J = 1).

    ``dims`` must equal ``m.dim() - 1`` (one batch axis); differentiable in ``m``."""
    assert m.dim() == dims + 1, (m.shape, dims)
    return -(m * forward_bond_sum(m)).flatten(1).mean(1)


def spin_loss(out: torch.Tensor, target: torch.Tensor, dims: int,
              energy_weight: float = 0.0) -> torch.Tensor:
    """Binary cross-entropy of P(+1) = sigmoid(logit) against (target + 1)/2, plus
    ``energy_weight`` · mean_B (e(σ) − e(⟨s⟩_p))² with ⟨s⟩_p = 2p − 1 (Efthymiou eq. 4)."""
    logit = out[:, 0]
    loss = F.binary_cross_entropy_with_logits(logit, (target + 1) * 0.5)
    if energy_weight > 0:
        m = torch.tanh(0.5 * logit)
        loss = loss + energy_weight * (nn_energy(target, dims) - nn_energy(m, dims)).pow(2).mean()
    return loss


def gaussian_loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-site Gaussian negative log-likelihood (without the constant ½ ln 2π)."""
    mean, log_scale = out[:, 0], out[:, 1]
    return (0.5 * ((target - mean) * torch.exp(-log_scale)).pow(2) + log_scale).mean()


def loss_fn(field: str, out, target, dims: int, energy_weight: float = 0.0) -> torch.Tensor:
    if field == "spin":
        return spin_loss(out, target, dims, energy_weight)
    return gaussian_loss(out, target)
