"""A linear, translation-equivariant bijection of the fine lattice with an exact log-det.

:class:`BlockConv` treats the fine field ``(B, 2L_1, ..., 2L_d)`` as ``n = 2^d`` channels on
the coarse lattice (:func:`hpc_rg.flows.upsample.to_blocks`) and applies a periodic
``n × n``-channel convolution with a ``k^d`` kernel,

``y_c(x) = Σ_{c', r} K_{c c'}(r) x_{c'}(x - r)``   (``r`` over the kernel's offsets),

which commutes with translations by whole blocks and is odd in the field (Z₂-equivariant).
In Fourier space it is a matrix per coarse momentum, ``ŷ(p) = K̂(p) x̂(p)``, so

``log|det ∂y/∂x| = Σ_p log|det K̂(p)|``  (exact; ``L^d`` determinants of ``n × n``),

and the inverse solves ``K̂(p) x̂ = ŷ`` per momentum. The weights are the kernel only: one
layer applies to every lattice size (the FFTs are taken at the input's size).

Notes
-----
Why: a free (Gaussian) level ``(φ ~ p_L, ζ) → p_2L`` is linear and block-translation
invariant, ``K̂(p) = C_2L(p)^{1/2} C_in(p)^{-1/2}``; for a massive theory these are smooth in
``p`` and a small kernel approximates them. For φ⁴ at λ = 0.01 the target is close to
Gaussian in the symmetric phase, and the couplings that follow only correct the rest.
Started at the identity (``K = δ``).
"""

from __future__ import annotations

import torch
from torch import nn

from .upsample import from_blocks, to_blocks

__all__ = ["BlockConv"]


def _wrap_add(full: torch.Tensor, grids, weight: torch.Tensor) -> torch.Tensor:
    """``full[:, :, grids] += weight`` with repeated (wrapped) indices accumulated."""
    n = full.shape[0]
    shape = full.shape[2:]
    lin = torch.zeros_like(grids[0])
    for g, s in zip(grids, shape):
        lin = lin * s + g
    flat = full.reshape(n, n, -1).index_add(2, lin.reshape(-1), weight.reshape(n, n, -1))
    return flat.reshape(full.shape)


class BlockConv(nn.Module):
    """``forward(x, cond=None) -> (y, logdet)``, ``inverse(y, cond=None) -> (x, logdet_inv)``.

    Parameters
    ----------
    dims : 1, 2, 3
    kernel : odd int, kernel size per axis on the coarse lattice
    """

    def __init__(self, dims: int, kernel: int = 3):
        super().__init__()
        if dims not in (1, 2, 3) or kernel < 1 or kernel % 2 != 1:
            raise ValueError(f"need dims in (1, 2, 3) and an odd kernel >= 1, got {dims}, {kernel}")
        self.dims, self.kernel, self.n = int(dims), int(kernel), 2 ** int(dims)
        w = torch.zeros((self.n, self.n) + (self.kernel,) * self.dims)
        centre = (slice(None), slice(None)) + (self.kernel // 2,) * self.dims
        w[centre] = torch.eye(self.n)
        self.weight = nn.Parameter(w)

    def _khat(self, shape, dtype, device) -> torch.Tensor:
        """``K̂(p)`` of shape ``(*L, n, n)`` complex for a coarse lattice ``shape`` (offsets
        wrap periodically, so a kernel larger than the lattice is still a valid circulant)."""
        full = torch.zeros((self.n, self.n) + tuple(shape), dtype=dtype, device=device)
        idx = [torch.remainder(torch.arange(self.kernel, device=device) - self.kernel // 2, s)
               for s in shape]
        grids = torch.meshgrid(*idx, indexing="ij")
        full = _wrap_add(full, grids, self.weight.to(dtype))
        kh = torch.fft.fftn(full, dim=tuple(range(2, 2 + self.dims)))
        perm = tuple(range(2, 2 + self.dims)) + (0, 1)
        return kh.permute(perm)

    def _map(self, x: torch.Tensor, inverse: bool):
        blocks = to_blocks(x)                                   # (B, *L, n)
        shape = blocks.shape[1:-1]
        axes = tuple(range(1, 1 + self.dims))
        xh = torch.fft.fftn(blocks, dim=axes)                   # (B, *L, n) complex
        kh = self._khat(shape, x.dtype, x.device)               # (*L, n, n)
        if inverse:
            yh = torch.linalg.solve(kh.unsqueeze(0), xh.unsqueeze(-1)).squeeze(-1)
        else:
            yh = (kh.unsqueeze(0) @ xh.unsqueeze(-1)).squeeze(-1)
        y = from_blocks(torch.fft.ifftn(yh, dim=axes).real)
        logdet = torch.linalg.slogdet(kh)[1].sum()
        ld = (-logdet if inverse else logdet).to(x.dtype).expand(x.shape[0])
        return y, ld

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        return self._map(x, inverse=False)

    def inverse(self, y: torch.Tensor, cond: torch.Tensor | None = None):
        return self._map(y, inverse=True)
