"""Langevin dynamics for lattice φ⁴: Euler–Maruyama, optionally Metropolis-adjusted (MALA).

Configurations have shape ``(B, L_1, ..., L_d)``; ``kappa``, ``lam`` and ``eps`` may be
floats or per-chain tensors of shape ``(B,)``. Randomness comes only from the
``generator`` passed in: one ``torch.Generator`` for the batch, or a sequence of B
per-chain generators (chain b then draws what a batch of one would draw from
``generator[b]``, so the batched step is bit-identical to stepping the chains one at a
time).
"""
from __future__ import annotations

from typing import NamedTuple, Union

import torch

from hpc_rg.models import phi4
from hpc_rg.mc.hmc import _per_chain  # the same (B,) -> (B, 1, ..., 1) broadcasting as HMC
from hpc_rg.rng import Generators, chain_rand, chain_randn

Scalar = Union[float, torch.Tensor]

__all__ = ["LangevinResult", "langevin_update"]


class LangevinResult(NamedTuple):
    """Outcome of one Langevin step per chain.

    Attributes
    ----------
    phi : torch.Tensor, shape (B, L_1, ..., L_d)
        New configuration.
    accepted : torch.Tensor, shape (B,), bool
        Always True without the Metropolis correction.
    """

    phi: torch.Tensor
    accepted: torch.Tensor




def _sumsq(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64).pow(2).flatten(1).sum(dim=1)


def langevin_update(
    phi: torch.Tensor,
    kappa: Scalar,
    lam: Scalar,
    eps: Scalar,
    generator: Generators,
    metropolize: bool = True,
) -> LangevinResult:
    """One Euler–Maruyama Langevin step, with optional Metropolis correction (MALA).

    Parameters
    ----------
    phi : torch.Tensor, shape (B, L_1, ..., L_d), float32 or float64
    kappa, lam : float or torch.Tensor of shape (B,)
        Couplings of ``S = Σ_x [(1-2λ)φ_x² + λφ_x⁴ - 2κ Σ_μ φ_x φ_{x+μ}]``.
    eps : float or torch.Tensor of shape (B,)
        Langevin time step ε > 0.
    generator : torch.Generator or sequence of B torch.Generator
        On ``phi.device`` (per chain when a sequence is given).
    metropolize : bool
        If True (default) accept/reject with the MALA ratio, which makes the chain exact
        for ``exp(-S)`` at any ε. If False, plain (unadjusted) Langevin: O(ε) bias.

    Returns
    -------
    LangevinResult
        ``(phi, accepted)``.

    Notes
    -----
    Proposal ``φ' = φ + ε F(φ) + sqrt(2ε) η`` with ``F = -∂S/∂φ``, ``η ~ N(0, 1)`` per site,
    i.e. ``q(φ'|φ) ∝ exp(-|φ' - φ - εF(φ)|² / (4ε))``. MALA accepts with probability
    ``min(1, exp(-S(φ') + S(φ)) q(φ|φ') / q(φ'|φ))`` (Roberts & Tweedie, Bernoulli 2, 341
    (1996)). For the free field (λ = 0) the unadjusted chain has the known stationary
    propagator ``1 / (a_k (1 - ε a_k / 2))`` where ``a_k = 2(1 - 2κ Σ_μ cos k_μ)``.
    """
    if not phi.is_floating_point():
        raise TypeError(f"phi must be a floating-point tensor, got {phi.dtype}")
    e = _per_chain(eps, phi)
    f0 = phi4.force(phi, kappa, lam)
    eta = chain_randn(phi.shape, generator, dtype=phi.dtype, device=phi.device)
    prop = phi + e * f0 + torch.sqrt(2.0 * e) * eta
    B = phi.shape[0]
    if not metropolize:
        return LangevinResult(prop, torch.ones(B, dtype=torch.bool, device=phi.device))
    f1 = phi4.force(prop, kappa, lam)
    e64 = torch.as_tensor(eps, dtype=torch.float64, device=phi.device)
    log_q_fwd = -0.5 * _sumsq(eta)  # |φ' - φ - εF(φ)|² / (4ε) = |η|² / 2
    log_q_bwd = -_sumsq(phi - prop - e * f1) / (4.0 * e64)
    log_alpha = phi4.action(phi, kappa, lam) - phi4.action(prop, kappa, lam) + log_q_bwd - log_q_fwd
    u = chain_rand((B,), generator, dtype=torch.float64, device=phi.device)
    accepted = torch.log(u) < log_alpha
    mask = accepted.reshape((-1,) + (1,) * (phi.ndim - 1))
    return LangevinResult(torch.where(mask, prop, phi), accepted)
