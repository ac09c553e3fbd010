"""Per-configuration observables of lattice configurations (torch, any device).

``x`` has shape (B, *lattice) with ``dims`` lattice axes; results have shape (B,), float64.
Spins (and EA overlaps ρ): ``abs_m`` = |Σ s|/N, ``m`` = Σ s/N, ``e_nn`` = −Σ_⟨ij⟩ s_i s_j / N
(J = 1, each bond once). φ⁴: ``abs_phi`` = |Σ φ|/N, ``phi2`` = Σ φ²/N. They measure the
temperature flow of the blocking (:mod:`hpc_rg.rg.rescaling`) and super-resolved outputs.
"""

from __future__ import annotations

import torch

from ..models.lattice import forward_bond_sum


def curve_names(field: str) -> tuple[str, ...]:
    """Observables used for the temperature flow (monotone in T or the coupling)."""
    return ("abs_m", "e_nn") if field == "spin" else ("abs_phi", "phi2")


def nn_energy(x: torch.Tensor, dims: int) -> torch.Tensor:
    """−(1/N) Σ_x Σ_μ x_x x_{x+μ} per configuration; x (B, *lattice) -> (B,) (J = 1)."""
    if x.dim() != dims + 1:
        raise ValueError(f"nn_energy: expected (B, *lattice) with {dims} lattice axes, "
                         f"got shape {tuple(x.shape)}")
    return -(x * forward_bond_sum(x)).flatten(1).mean(1)


def observables(x: torch.Tensor, field: str, dims: int) -> dict[str, torch.Tensor]:
    """The observables of ``x`` (B, *lattice) for ``field`` "spin" or "phi4", each (B,)."""
    x = x.to(torch.float64)
    mean = x.flatten(1).mean(1)
    if field == "spin":
        return {"m": mean, "abs_m": mean.abs(), "e_nn": nn_energy(x, dims)}
    return {"phi": mean, "abs_phi": mean.abs(), "phi2": x.pow(2).flatten(1).mean(1)}
