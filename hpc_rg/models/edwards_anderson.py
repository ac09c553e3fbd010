"""Edwards-Anderson spin glass on the periodic hypercubic lattice.

``H = - sum_x sum_mu J_mu(x) s_x s_{x+e_mu}`` with quenched couplings ``J_mu(x)`` drawn
either +-1 with equal probability (``"pm1"``) or standard normal (``"gaussian"``)
(Edwards & Anderson, J. Phys. F 5, 965 (1975)). Couplings are stored as a tensor
``J`` of shape ``(d, L_1, ..., L_d)`` (one disorder sample, shared by the batch, e.g. by
replicas and temperatures) or ``(B, d, L_1, ..., L_d)`` (one per chain); ``J[mu, x]``
couples ``x`` and ``x + e_mu``.
"""

from __future__ import annotations

import torch

from hpc_rg.models.lattice import forward_bond_sum, lattice_dims
from hpc_rg.rng import torch_generator

__all__ = ["couplings", "energy", "energy_density", "local_field", "overlap", "link_overlap",
           "DISORDER_KINDS"]

DISORDER_KINDS = ("pm1", "gaussian")


def couplings(L: int, dims: int, disorder: str, seed: int, sample_index: int,
              dtype=torch.float32, device="cpu") -> torch.Tensor:
    """Draw the couplings of one disorder sample.

    Parameters
    ----------
    L, dims : int
        Linear size and dimension of the lattice.
    disorder : {"pm1", "gaussian"}
        Bimodal +-1 or Gaussian N(0, 1) couplings.
    seed, sample_index : int
        Drawn on the CPU from ``torch_generator(seed, "disorder", sample_index)``, so the
        same sample index gives the same couplings on any device and for any rank count.
    dtype, device
        Of the returned tensor.

    Returns
    -------
    Tensor, shape (dims, L, ..., L)
        ``J[mu, x]`` couples site ``x`` and ``x + e_mu``.
    """
    if disorder not in DISORDER_KINDS:
        raise ValueError(f"disorder must be one of {DISORDER_KINDS}, got {disorder!r}")
    gen = torch_generator(seed, "disorder", sample_index)
    shape = (int(dims),) + (int(L),) * int(dims)
    if disorder == "pm1":
        J = torch.randint(0, 2, shape, generator=gen, dtype=torch.int64).mul_(2).sub_(1).to(torch.float64)
    else:
        J = torch.randn(shape, generator=gen, dtype=torch.float64)
    return J.to(device=device, dtype=dtype)


def _batched(J: torch.Tensor, spins: torch.Tensor) -> torch.Tensor:
    """Couplings as (1 or B, d, *L)."""
    if J.dim() == spins.dim():
        return J.unsqueeze(0)
    if J.dim() == spins.dim() + 1:
        return J
    raise ValueError(f"couplings of shape {tuple(J.shape)} do not fit spins of shape {tuple(spins.shape)}")


def energy(spins: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """Total energy ``H = - sum_x sum_mu J_mu(x) s_x s_{x+e_mu}``.

    Parameters
    ----------
    spins : Tensor, shape (B, L_1, ..., L_d), values +-1
    J : Tensor, shape (d, L_1, ..., L_d) or (B, d, L_1, ..., L_d)

    Returns
    -------
    Tensor, shape (B,), float64
    """
    d = lattice_dims(spins)
    s = spins.to(torch.float64)
    Jb = _batched(J, spins).to(device=spins.device, dtype=torch.float64)
    acc = Jb[:, 0] * torch.roll(s, -1, 1)
    for mu in range(1, d):
        acc = acc + Jb[:, mu] * torch.roll(s, -1, mu + 1)
    return -(s * acc).sum(dim=tuple(range(1, d + 1)))


def energy_density(s: torch.Tensor, bonds: list, J: torch.Tensor) -> torch.Tensor:
    """Per-site energy ``-sum_mu J_mu(x) s_x s_{x+e_mu}`` (each bond at its lower end).

    Parameters
    ----------
    s : Tensor, shape (B, *local), float64
        Spins (only the shape is used).
    bonds : list of d Tensors like ``s``
        Forward bond products :func:`~hpc_rg.models.lattice.forward_bond_products`.
    J : Tensor, shape (B, d, *local)
        Each chain's couplings at the sites of ``s``.

    Returns
    -------
    Tensor like ``s``, float64
    """
    Jc = J.to(torch.float64)
    dens = -Jc[:, 0] * bonds[0]
    for mu in range(1, len(bonds)):
        dens = dens - Jc[:, mu] * bonds[mu]
    return dens


def local_field(spins: torch.Tensor, J: torch.Tensor, halo: bool = False) -> torch.Tensor:
    """Local field ``f_x = sum_mu [J_mu(x) s_{x+e_mu} + J_mu(x-e_mu) s_{x-e_mu}]``.

    Flipping ``s_x`` changes the energy by ``Delta E = 2 s_x f_x``.

    Parameters
    ----------
    spins : Tensor, shape (B, L_1, ..., L_d), or (B, L_1 + 2, ..., L_d) if ``halo``
    J : Tensor, shape (d, L_1, ..., L_d) or (B, d, L_1, ..., L_d); in halo mode the
        first lattice axis also carries the ghost layers: (..., d, L_1 + 2, ..., L_d)
        (only the lower ghost layer of ``J[0]`` is used).
    halo : bool

    Returns
    -------
    Tensor, shape (B, L_1, ..., L_d), dtype of ``J`` (float32 for the usual case)

    Notes
    -----
    Terms are added in the fixed order ``+e_0, -e_0, +e_1, -e_1, ...`` in both modes, so
    a slab's result is bit-identical to the corresponding part of the full lattice.
    """
    d = lattice_dims(spins)
    Jb = _batched(J, spins)
    s = spins.to(Jb.dtype)
    if halo:
        out = Jb[:, 0, 1:-1] * s[:, 2:]
        out += Jb[:, 0, :-2] * s[:, :-2]
        si, Ji = s[:, 1:-1], Jb[:, :, 1:-1]
    else:
        out = Jb[:, 0] * torch.roll(s, -1, 1)
        out += torch.roll(Jb[:, 0], 1, 1) * torch.roll(s, 1, 1)
        si, Ji = s, Jb
    for mu in range(1, d):
        out += Ji[:, mu] * torch.roll(si, -1, mu + 1)
        out += torch.roll(Ji[:, mu], 1, mu + 1) * torch.roll(si, 1, mu + 1)
    return out


def overlap(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """Spin overlap ``q = (1/N) sum_x s1_x s2_x`` of two replicas, shape (B,), float64."""
    q = s1.to(torch.float64) * s2.to(torch.float64)
    return q.mean(dim=tuple(range(1, q.dim())))


def link_overlap(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """Link overlap ``q_l = (1/(d N)) sum_x sum_mu s1_x s1_{x+mu} s2_x s2_{x+mu}``, (B,) float64."""
    d = lattice_dims(s1)
    q = s1.to(torch.float64) * s2.to(torch.float64)
    return (q * forward_bond_sum(q)).mean(dim=tuple(range(1, q.dim()))) / d
