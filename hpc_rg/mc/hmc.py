"""Hybrid (Hamiltonian) Monte Carlo for the lattice φ⁴ theory, batched over chains.

Configurations have shape ``(B, L_1, ..., L_d)`` (periodic lattice, any d); every chain
has its own momentum, trajectory and accept/reject decision. ``kappa``, ``lam`` and
``eps`` may be floats or per-chain tensors of shape ``(B,)``. Use float64 fields when
exact reversibility matters (float32 works but ΔH is then limited by round-off).
Randomness comes only from the ``generator`` passed in: one ``torch.Generator`` for the
batch, or a sequence of B per-chain generators (chain b then draws what a batch of one
would draw from ``generator[b]``, so the batched update is bit-identical to updating the
chains one at a time).

The arithmetic is elementwise except the per-chain sums of the action and kinetic energy.
On CPU these run serially per chain, and hence identically for any batch size, unless a
single chain's lattice is reduced over several threads: a batch of one with at least
32768 sites (torch's parallel grain) and more than one torch thread, or on CUDA, where
the reduction layout depends on the batch. There ΔH (and the MALA log-ratio in
:mod:`hpc_rg.mc.langevin`) of the batched and the one-at-a-time call agree to rounding
(~1e-16 relative), so a decision differs only if its uniform falls within that rounding
of the threshold; the cluster updates have no floating-point reductions.
"""
from __future__ import annotations

from typing import NamedTuple, Tuple, Union

import torch

from hpc_rg.models import phi4
from hpc_rg.rng import Generators, chain_rand, chain_randn

Scalar = Union[float, torch.Tensor]

__all__ = ["HMCResult", "hamiltonian", "leapfrog", "hmc_update"]


class HMCResult(NamedTuple):
    """Outcome of one HMC trajectory per chain.

    Attributes
    ----------
    phi : torch.Tensor, shape (B, L_1, ..., L_d)
        New configuration (proposal where accepted, old configuration elsewhere).
    accepted : torch.Tensor, shape (B,), bool
    delta_h : torch.Tensor, shape (B,), float64
        ``H(end) - H(start)`` of the proposal; ⟨exp(-ΔH)⟩ = 1 in equilibrium (Creutz).
    """

    phi: torch.Tensor
    accepted: torch.Tensor
    delta_h: torch.Tensor


def _per_chain(x: Scalar, ref: torch.Tensor) -> torch.Tensor:
    """Float or (B,) tensor -> shape (B, 1, ..., 1) in ref's dtype/device."""
    t = torch.as_tensor(x, dtype=ref.dtype, device=ref.device)
    if t.ndim == 0:
        return t
    if t.shape != ref.shape[:1]:
        raise ValueError(f"per-chain parameter must have shape ({ref.shape[0]},), got {tuple(t.shape)}")
    return t.reshape((-1,) + (1,) * (ref.ndim - 1))


def hamiltonian(phi: torch.Tensor, pi: torch.Tensor, kappa: Scalar, lam: Scalar) -> torch.Tensor:
    """Molecular-dynamics Hamiltonian ``H = ½ Σ_x π_x² + S[φ]``.

    Parameters
    ----------
    phi, pi : torch.Tensor, shape (B, L_1, ..., L_d)
        Field and conjugate momentum.
    kappa, lam : float or torch.Tensor of shape (B,)
        Hopping parameter κ and quartic coupling λ of :func:`hpc_rg.models.phi4.action`.

    Returns
    -------
    torch.Tensor, shape (B,), float64
    """
    kin = 0.5 * pi.to(torch.float64).pow(2).flatten(1).sum(dim=1)
    return kin + phi4.action(phi, kappa, lam)


def leapfrog(
    phi: torch.Tensor, pi: torch.Tensor, kappa: Scalar, lam: Scalar, eps: Scalar, n_steps: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Integrate Hamilton's equations with the leapfrog (Störmer–Verlet) scheme.

    Parameters
    ----------
    phi, pi : torch.Tensor, shape (B, L_1, ..., L_d)
        Initial field and momentum (not modified).
    kappa, lam : float or torch.Tensor of shape (B,)
    eps : float or torch.Tensor of shape (B,)
        Step size (molecular-dynamics time units); trajectory length ``τ = eps · n_steps``.
    n_steps : int
        Number of leapfrog steps (``n_steps + 1`` force evaluations).

    Returns
    -------
    phi, pi : torch.Tensor
        Field and momentum at the end of the trajectory.

    Notes
    -----
    ``π ← π + (ε/2) F(φ); [φ ← φ + ε π; π ← π + ε F(φ)]×n`` with the last momentum kick
    halved, ``F = -∂S/∂φ``. The map is symplectic (phase-space volume preserving) and
    time-reversible (flipping π and integrating again returns to the start), and its energy
    error over a fixed trajectory length is O(ε²) — the conditions for HMC to be exact
    (Duane, Kennedy, Pendleton & Roweth, PLB 195, 216 (1987)).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    e = _per_chain(eps, phi)
    pi = pi + 0.5 * e * phi4.force(phi, kappa, lam)
    for i in range(n_steps):
        phi = phi + e * pi
        kick = e if i < n_steps - 1 else 0.5 * e
        pi = pi + kick * phi4.force(phi, kappa, lam)
    return phi, pi


def hmc_update(
    phi: torch.Tensor,
    kappa: Scalar,
    lam: Scalar,
    eps: Scalar,
    n_steps: int,
    generator: Generators,
) -> HMCResult:
    """One HMC trajectory with Metropolis accept/reject for every chain.

    Parameters
    ----------
    phi : torch.Tensor, shape (B, L_1, ..., L_d), float32 or float64
    kappa, lam : float or torch.Tensor of shape (B,)
        Couplings of ``S = Σ_x [(1-2λ)φ_x² + λφ_x⁴ - 2κ Σ_μ φ_x φ_{x+μ}]``.
    eps : float or torch.Tensor of shape (B,)
        Leapfrog step size per chain.
    n_steps : int
        Leapfrog steps per trajectory.
    generator : torch.Generator or sequence of B torch.Generator
        On ``phi.device``; draws the Gaussian momenta and the accept uniforms (per chain
        when a sequence is given).

    Returns
    -------
    HMCResult
        ``(phi, accepted, delta_h)``; ``accepted.float().mean()`` is the acceptance rate.

    Notes
    -----
    Momenta π ~ N(0, 1) per site; the proposal (leapfrog endpoint) is accepted with
    probability ``min(1, exp(-ΔH))``. Because leapfrog is reversible and volume preserving
    this leaves ``exp(-S[φ])`` invariant for any ε.
    """
    if not phi.is_floating_point():
        raise TypeError(f"phi must be a floating-point tensor, got {phi.dtype}")
    pi0 = chain_randn(phi.shape, generator, dtype=phi.dtype, device=phi.device)
    h0 = hamiltonian(phi, pi0, kappa, lam)
    phi1, pi1 = leapfrog(phi, pi0, kappa, lam, eps, n_steps)
    h1 = hamiltonian(phi1, pi1, kappa, lam)
    delta_h = h1 - h0
    u = chain_rand(phi.shape[:1], generator, dtype=torch.float64, device=phi.device)
    # NaN/inf ΔH (diverged trajectory) is rejected.
    accepted = torch.log(u) < -delta_h
    mask = accepted.reshape((-1,) + (1,) * (phi.ndim - 1))
    return HMCResult(torch.where(mask, phi1, phi), accepted, delta_h)
