"""Ising model on the periodic hypercubic lattice.

``H = -J sum_<ij> s_i s_j - h sum_i s_i`` with ``s_i = +-1`` and each nearest-neighbour
bond counted once (``sum_<ij> = sum_x sum_mu s_x s_{x+e_mu}``). Energies are in units of
J (k_B = 1); per-chain J and h may be floats or tensors of shape (B,).
"""

from __future__ import annotations

import torch

from hpc_rg.models.lattice import forward_bond_sum, lattice_dims, neighbour_sum, per_chain

__all__ = ["energy", "energy_density", "magnetization", "local_field", "bond_sum", "work_dtype"]


def work_dtype(spins: torch.Tensor) -> torch.dtype:
    """Floating dtype used for arithmetic on ``spins`` (float32 for integer spins)."""
    return spins.dtype if spins.is_floating_point() else torch.float32


def _lattice_axes(x: torch.Tensor) -> tuple:
    return tuple(range(1, x.dim()))


def bond_sum(spins: torch.Tensor) -> torch.Tensor:
    """``sum_x sum_mu s_x s_{x+e_mu}`` per configuration, shape (B,), float64.

    Exact for +-1 spins (integer-valued partial sums are exact in the work dtype for any
    lattice below 2**24 sites per chain; the final reduction is float64).
    """
    s = spins.to(work_dtype(spins))
    return (s * forward_bond_sum(s)).sum(dim=_lattice_axes(s), dtype=torch.float64)


def magnetization(spins: torch.Tensor) -> torch.Tensor:
    """Total magnetization ``M = sum_i s_i`` per configuration, shape (B,), float64."""
    return spins.sum(dim=_lattice_axes(spins), dtype=torch.float64)


def energy(spins: torch.Tensor, J=1.0, h=0.0) -> torch.Tensor:
    """Total energy ``H = -J sum_<ij> s_i s_j - h sum_i s_i``.

    Parameters
    ----------
    spins : Tensor, shape (B, L, ..., L), values +-1 (int8 or floating)
    J, h : float or Tensor of shape (B,)
        Coupling and field (per chain), energy units.

    Returns
    -------
    Tensor, shape (B,), float64
    """
    lattice_dims(spins)
    J, h = _param64(J, spins), _param64(h, spins)
    e = -J * bond_sum(spins)
    if torch.is_tensor(h) or h != 0.0:
        e = e - h * magnetization(spins)
    return e


def energy_density(s: torch.Tensor, bonds: list, J: float = 1.0, h: float = 0.0) -> torch.Tensor:
    """Per-site energy ``-J sum_mu s_x s_{x+e_mu} - h s_x`` (each bond counted at its
    lower end).

    Parameters
    ----------
    s : Tensor, shape (B, *local), float64
        Spins.
    bonds : list of d Tensors like ``s``
        Forward bond products :func:`~hpc_rg.models.lattice.forward_bond_products`.
    J, h : float
        Coupling and field (energy units).

    Returns
    -------
    Tensor like ``s``
    """
    dens = -J * sum(bonds[1:], bonds[0])
    if h != 0:
        dens = dens - h * s
    return dens


def _param64(p, ref):
    """float, or a float64 tensor on ``ref``'s device (for per-chain arrays)."""
    if isinstance(p, (int, float)):
        return float(p)
    return torch.as_tensor(p).to(device=ref.device, dtype=torch.float64)


def local_field(spins: torch.Tensor, J=1.0, h=0.0, halo: bool = False) -> torch.Tensor:
    """Local field ``f_x = J sum_{y nn x} s_y + h`` (``dH/ds_x = -f_x``).

    Flipping ``s_x`` changes the energy by ``Delta E = 2 s_x f_x``.

    Parameters
    ----------
    spins : Tensor, shape (B, L_1, ..., L_d), or (B, L_1 + 2, L_2, ..., L_d) if ``halo``
        +-1 spins, int8 or floating. In halo mode axis 1 carries one ghost layer on each
        side (neighbouring slabs' boundary planes); other axes are periodic.
    J, h : float or Tensor of shape (B,)
    halo : bool

    Returns
    -------
    Tensor, shape (B, L_1, ..., L_d) (interior only), dtype float32 for int8 input,
    else the input dtype.
    """
    if spins.is_floating_point():
        f = neighbour_sum(spins, halo=halo)
    elif spins.dtype == torch.int8 and spins.dim() - 1 <= 63:
        # integer neighbour sum (|sum| <= 2d fits int8): 4x less memory traffic than float
        f = neighbour_sum(spins, halo=halo).to(torch.float32)
    else:
        f = neighbour_sum(spins.to(torch.float32), halo=halo)
    if not isinstance(J, (int, float)) or J != 1.0:
        f = f * per_chain(J, f)
    if not isinstance(h, (int, float)) or h != 0.0:
        f = f + per_chain(h, f)
    return f
