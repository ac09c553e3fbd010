"""Block-consistent sampling of the factorised spin output (exact inverse of the blocking).

The network gives independent per-site probabilities p_i of +1. A fine configuration that
is a *pre-image* of the coarse one under majority rule (ties: the block's first site) or
decimation must satisfy block(σ) = c exactly; independent Bernoulli draws violate this in a
few per cent of the blocks (the ``consistency`` dataset), and every violated block is
re-drawn from the wrong coarse value — biased towards disorder. Here each 2^d block is
drawn from the factorised distribution *restricted* to its pre-images,

    P(σ_b | c_b) ∝ Π_i p_i^{(1+σ_i)/2} (1 − p_i)^{(1−σ_i)/2} · 1[block(σ_b) = c_b],

by enumerating the 2^(2^d) block patterns (16 in 2D, 256 in 3D, 4 in 1D) and inverting the
CDF with one uniform number per block. Shapes: logits (B, *2L), coarse (B, *L).
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import torch
import torch.nn.functional as F

_CHUNK = 1 << 14  # blocks per step (bounds the (blocks, patterns) work array)


@lru_cache(maxsize=None)
def _patterns(dims: int, rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(P, n) ±1 patterns of one block (row-major offsets, site 0 = first) and the coarse
    value (P,) each blocks to."""
    n = 2**dims
    pats = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=n)))
    if rule == "decimation":
        value = pats[:, 0]
    else:  # majority, ties -> the first site
        s = pats.sum(1)
        value = torch.where(s == 0, pats[:, 0], torch.sign(s))
    return pats, value


def _to_blocks(x: torch.Tensor, dims: int) -> torch.Tensor:
    """(B, *2L) -> (B, L^d, 2^d) with block sites in row-major offset order."""
    B = x.shape[0]
    shape = [B]
    for n in x.shape[1:]:
        shape += [n // 2, 2]
    x = x.reshape(shape)
    perm = [0] + [1 + 2 * k for k in range(dims)] + [2 + 2 * k for k in range(dims)]
    return x.permute(perm).reshape(B, -1, 2**dims)


def _from_blocks(b: torch.Tensor, fine_shape) -> torch.Tensor:
    dims = len(fine_shape)
    B = b.shape[0]
    half = [n // 2 for n in fine_shape]
    x = b.reshape([B] + half + [2] * dims)
    perm = [0]
    for k in range(dims):
        perm += [1 + k, 1 + dims + k]
    return x.permute(perm).reshape((B,) + tuple(fine_shape))


def sample_consistent(logits: torch.Tensor, coarse: torch.Tensor, uniform: torch.Tensor,
                      dims: int, rule: str = "majority") -> torch.Tensor:
    """Fine spins (B, *2L) with block(σ) = coarse exactly; ``uniform`` (B, *2L) in [0, 1)
    (the value at each block's first site is used); ``rule``: majority | decimation."""
    fine_shape = logits.shape[1:]
    lp = _to_blocks(F.logsigmoid(logits.double()), dims)  # log p(+1)
    lm = _to_blocks(F.logsigmoid(-logits.double()), dims)  # log p(-1)
    u = _to_blocks(uniform.double(), dims)[..., 0]  # (B, nb)
    c = coarse.reshape(coarse.shape[0], -1).double()  # (B, nb)
    pats, value = _patterns(dims, rule)
    pats, value = pats.to(lp.device, lp.dtype), value.to(lp.device, lp.dtype)
    plus = (pats > 0).to(lp.dtype)  # (P, n)
    out = torch.empty_like(lp)
    nb = lp.shape[1]
    for a in range(0, nb, _CHUNK):
        sl = slice(a, a + _CHUNK)
        logw = lp[:, sl] @ plus.T + lm[:, sl] @ (1 - plus).T  # (B, nb', P)
        allowed = value[None, None, :] == c[:, sl, None]
        logw = logw.masked_fill(~allowed, float("-inf"))
        w = torch.softmax(logw, dim=-1)
        cdf = w.cumsum(-1)
        k = torch.searchsorted(cdf, (u[:, sl] * cdf[..., -1]).unsqueeze(-1), right=True)
        k = k.clamp_max(pats.shape[0] - 1).squeeze(-1)
        out[:, sl] = pats[k]
    return _from_blocks(out, fine_shape).to(logits.dtype)
