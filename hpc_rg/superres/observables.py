"""Per-configuration observables of super-resolution inputs and outputs (torch, any device).

``x`` has shape (B, *lattice) with ``dims`` lattice axes; results have shape (B,), float64.
Spins (and EA overlaps ρ): ``abs_m`` = |Σ s|/N, ``m`` = Σ s/N, ``e_nn`` = −Σ_⟨ij⟩ s_i s_j / N
(J = 1, each bond once). φ⁴: ``abs_phi`` = |Σ φ|/N, ``phi2`` = Σ φ²/N.
"""

from __future__ import annotations

import torch

from .loss import nn_energy


def curve_names(field: str) -> tuple[str, ...]:
    """Observables used for the temperature flow (monotone in T or the coupling)."""
    return ("abs_m", "e_nn") if field == "spin" else ("abs_phi", "phi2")


def observables(x: torch.Tensor, field: str, dims: int) -> dict[str, torch.Tensor]:
    x = x.to(torch.float64)
    mean = x.flatten(1).mean(1)
    if field == "spin":
        return {"m": mean, "abs_m": mean.abs(), "e_nn": nn_energy(x, dims)}
    return {"phi": mean, "abs_phi": mean.abs(), "phi2": x.pow(2).flatten(1).mean(1)}
