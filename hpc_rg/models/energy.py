"""Per-site energy densities of every model, by ``model.name``.

The densities take forward bond products (:func:`~hpc_rg.models.lattice.forward_bond_products`)
so a caller that already holds them (the Monte Carlo ensemble, which also needs them for
link overlaps) computes them once; each model's couplings are keyword arguments.
"""

from __future__ import annotations

import torch

from . import edwards_anderson, ising, phi4

_DENSITIES = {
    "ising": ising.energy_density,  # J, h
    "edwards_anderson": edwards_anderson.energy_density,  # J (B, d, *local)
    "phi4": phi4.action_density,  # kappa, lam (B,)
}


def energy_density(model: str, s: torch.Tensor, bonds: list, **couplings) -> torch.Tensor:
    """Per-site energy (φ⁴: action) density of ``model``, shape of ``s``, float64.

    ``s`` (B, *local) is the field, ``bonds`` its forward bond products; summed over the
    lattice the density gives the total energy ``H`` (units of J) or the action ``S``.
    """
    return _DENSITIES[model](s, bonds, **couplings)
