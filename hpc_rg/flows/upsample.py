"""Naive ×2 upsampling, its block-mean left inverse and the zero-sum noise embedding.

Conventions
-----------
A batch of fields is ``(B, L_1, ..., L_d)`` (lattice axes after the batch axis, d = 1, 2, 3,
periodic). The fine lattice ``(B, 2 L_1, ..., 2 L_d)`` is tiled by blocks of ``n = 2^d``
sites: coarse site ``(i, j, ...)`` owns fine sites ``(2i + o_1, 2j + o_2, ...)`` with
offsets ``o_k ∈ {0, 1}``. Inside a block the sites are numbered row-major by offset,
``c = o_1 2^{d-1} + ... + o_d``: component 0 is the block's first site (smallest
coordinates), component ``n - 1`` its last. :func:`to_blocks` exposes the blocks as a
trailing axis, ``(B, L_1, ..., L_d, n)``; :func:`from_blocks` undoes it.

Free noise components ``ζ'`` are stored per block as ``(B, L_1, ..., L_d, n - 1)``
(components 0 .. n-2 of each block; flatten with ``reshape(B, -1)`` for the
``L^d (2^d - 1)``-vector of Bauer et al.).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "block_size",
    "to_blocks",
    "from_blocks",
    "upsample",
    "block_mean",
    "complete_zero_sum",
    "ZeroSumEmbedding",
]


def block_size(dims: int) -> int:
    """Number of fine sites per block, ``n = 2^dims``."""
    return 2 ** int(dims)


def to_blocks(fine: torch.Tensor) -> torch.Tensor:
    """``(B, 2L_1, ..., 2L_d) -> (B, L_1, ..., L_d, 2^d)``, block components row-major."""
    b, lat = fine.shape[0], tuple(fine.shape[1:])
    d = len(lat)
    if d < 1 or any(n % 2 for n in lat):
        raise ValueError(f"fine field of shape {tuple(fine.shape)}: need (B, L_1, ..., L_d) with "
                         f"every L_k even (blocks of 2^d sites)")
    shape = [b]
    for n in lat:
        shape += [n // 2, 2]
    perm = [0] + [1 + 2 * k for k in range(d)] + [2 + 2 * k for k in range(d)]
    return fine.reshape(shape).permute(perm).reshape((b,) + tuple(n // 2 for n in lat) + (2 ** d,))


def from_blocks(blocks: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_blocks`: ``(B, L_1, ..., L_d, 2^d) -> (B, 2L_1, ..., 2L_d)``."""
    b, coarse = blocks.shape[0], tuple(blocks.shape[1:-1])
    d = len(coarse)
    if d < 1 or blocks.shape[-1] != 2 ** d:
        raise ValueError(f"blocks of shape {tuple(blocks.shape)}: the last axis must have "
                         f"2^d = {2 ** max(d, 0)} components for d = {d} lattice axes")
    x = blocks.reshape((b,) + coarse + (2,) * d)
    perm = [0]
    for k in range(d):
        perm += [1 + k, 1 + d + k]
    return x.permute(perm).reshape((b,) + tuple(2 * n for n in coarse))


def upsample(coarse: torch.Tensor) -> torch.Tensor:
    """Naive upsampling ``U``: every coarse site copied to its 2^d block, ``(B, 2L, ...)``."""
    n = 2 ** (coarse.dim() - 1)
    return from_blocks(coarse.unsqueeze(-1).expand(coarse.shape + (n,)))


def block_mean(fine: torch.Tensor) -> torch.Tensor:
    """Left inverse ``U†`` of :func:`upsample` (mean over each block): ``U† U = id``."""
    return to_blocks(fine).mean(dim=-1)


def complete_zero_sum(zeta_free: torch.Tensor) -> torch.Tensor:
    """Append the last component ``-sum(free)`` (Bauer et al. eq. 20).

    ``(..., n - 1) -> (..., n)``.
    """
    return torch.cat([zeta_free, -zeta_free.sum(dim=-1, keepdim=True)], dim=-1)


class ZeroSumEmbedding(nn.Module):
    """The linear bijection ``(φ, ζ') ↔ Ψ = U(φ) + ζ`` with ζ zero-sum per block.

    ``forward(coarse (B, *L), zeta_free (B, *L, n-1)) -> (fine (B, *2L), logdet (B,))``;
    ``inverse(fine) -> ((coarse, zeta_free), logdet_inv)`` with ``coarse = U†(fine)`` and
    ``ζ' = `` the first ``n - 1`` components of ``fine - U(coarse)`` per block.

    Notes
    -----
    Per block the map is ``Ψ_i = φ + ζ'_i`` (i < n), ``Ψ_n = φ - Σ_i ζ'_i``: an n×n matrix
    ``M = [1 | e_i - e_n]``. Replacing its last row by the sum of all rows gives
    ``(n, 0, ..., 0)`` (the columns ``e_i - e_n`` sum to 0), and the remaining minor is the
    identity, so ``|det M| = n``. With ``N_c`` blocks,
    ``log|det| = N_c log n = N_c d log 2`` — constant, independent of the field. (Bauer's
    ``½ L^d log b^d`` of eq. 18 is the volume factor of ``U`` alone, ``½ log det UᵀU``; the
    square map including the zero-sum directions ``V`` of eq. B7 has ``N_c log n``.)
    """

    def __init__(self, dims: int):
        super().__init__()
        self.dims = int(dims)
        self.n = block_size(dims)

    def log_abs_det(self, coarse_shape, dtype, device) -> torch.Tensor:
        """The constant ``N_c log 2^d`` per sample, shape (B,)."""
        b = int(coarse_shape[0])
        n_c = math.prod(int(s) for s in coarse_shape[1:])
        return torch.full((b,), n_c * math.log(self.n), dtype=dtype, device=device)

    def forward(self, coarse: torch.Tensor, zeta_free: torch.Tensor):
        zeta = complete_zero_sum(zeta_free)
        fine = from_blocks(coarse.unsqueeze(-1) + zeta)
        return fine, self.log_abs_det(coarse.shape, fine.dtype, fine.device)

    def inverse(self, fine: torch.Tensor):
        blocks = to_blocks(fine)
        coarse = blocks.mean(dim=-1)
        zeta_free = (blocks - coarse.unsqueeze(-1))[..., :-1]
        return (coarse, zeta_free), -self.log_abs_det(coarse.shape, fine.dtype, fine.device)
