"""Checkerboard affine coupling layers with periodic CNN conditioners.

A layer splits the fine lattice into *updated* sites (mask ``upd``) and *frozen* sites,

``y = x``                        on frozen sites,
``y = x · exp(s) + t``           on updated sites,  ``(s, t) = NN(x ⊙ (1 - upd), cond)``,

so the Jacobian is triangular and ``log|det ∂y/∂x| = Σ_{upd} s`` exactly. ``s`` is bounded,
``s = b · tanh(raw / b)``. Only convolution kernels (circular padding) carry weights and the
masks are computed from the input's shape, so one layer applies to any lattice size.

Masks (``mask=``): ``"site"`` — fine-lattice parity ``(Σ_k x_k) mod 2 == colour``
(:func:`hpc_rg.models.lattice.checkerboard_mask`); ``"block"`` — parity of the 2^d block
that holds the site. ``exclude="first"`` / ``"last"`` keeps the first / last site of every
block always frozen (used by the coarse-conditional levels, whose coarse information sits
there and must survive unchanged so that the inverse can read it back).

``cond`` (optional, ``(B, *L)`` or ``(B, C, *L)``) enters the conditioner as extra input
channels and is treated as a constant of the bijection (e.g. the upsampled coarse field).
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.lattice import checkerboard_mask, parity
from .upsample import block_size, from_blocks

__all__ = ["conditioner_cnn", "update_mask", "AffineCoupling", "CouplingStack"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def conditioner_cnn(dims: int, c_in: int, c_out: int, width: int = 16, depth: int = 2,
                    kernel: int = 3) -> nn.Sequential:
    """``depth`` periodic convolutions (SiLU between), last layer zero-initialised.

    A zero last layer makes every coupling start as the identity (Bauer et al. start the
    flow at the identity, too).
    """
    if dims not in _CONV:
        raise ValueError(f"dims must be 1, 2 or 3, got {dims}")
    if depth < 1 or kernel % 2 != 1:
        raise ValueError(f"need depth >= 1 and an odd kernel, got depth={depth}, kernel={kernel}")
    conv = _CONV[dims]
    layers: list[nn.Module] = []
    for i in range(depth):
        last = i == depth - 1
        layers.append(conv(c_in if i == 0 else width, c_out if last else width, kernel,
                           padding=kernel // 2, padding_mode="circular"))
        if not last:
            layers.append(nn.SiLU())
    nn.init.zeros_(layers[-1].weight)
    nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)


def update_mask(shape, colour: int, mask: str = "site", exclude: str | None = None,
                device="cpu") -> torch.Tensor:
    """Boolean mask (lattice ``shape``) of the sites a coupling layer updates."""
    shape = tuple(int(n) for n in shape)
    if mask == "site":
        upd = checkerboard_mask(shape, colour, device=device)
    elif mask == "block":
        if any(n % 2 for n in shape):
            raise ValueError(f"block masks need even lattice sizes, got {shape}")
        p = parity(tuple(n // 2 for n in shape), device=device) == int(colour)
        n = 2 ** len(shape)
        upd = from_blocks(p.unsqueeze(0).unsqueeze(-1).expand((1,) + p.shape + (n,)))[0]
    else:
        raise ValueError(f"mask must be 'site' or 'block', got {mask!r}")
    if exclude is not None:
        n = block_size(len(shape))
        pos = {"first": 0, "last": n - 1}[exclude]
        keep = torch.ones((1,) + tuple(s // 2 for s in shape) + (n,), dtype=torch.bool,
                          device=device)
        keep[..., pos] = False
        upd = upd & from_blocks(keep)[0]
    return upd


class AffineCoupling(nn.Module):
    """One checkerboard affine coupling: ``forward(x, cond) -> (y, logdet)``, ``inverse``.

    Parameters
    ----------
    dims : int
        Lattice dimension d (1, 2, 3); ``x`` has shape ``(B, L_1, ..., L_d)``.
    colour : 0 or 1
        Which parity class is updated.
    mask, exclude : see the module docstring.
    width, depth, kernel : conditioner CNN size.
    cond_channels : int
        Number of extra conditioning channels (0: unconditional).
    z2 : bool
        Make the layer Z₂-equivariant, ``f(-x; -cond) = -f(x; cond)``.
    scale_bound : float
        ``|s| <= scale_bound``.

    Notes
    -----
    Z₂ construction: with ``h = (x_frozen, cond)`` and one network ``N = (N_s, N_t)`` we
    use the even part for the scale and the odd part for the shift,
    ``s(h) = b tanh([N_s(h) + N_s(-h)] / 2b)``, ``t(h) = [N_t(h) - N_t(-h)] / 2``
    (one batched pass over ``h`` and ``-h``). Then ``s(-h) = s(h)``, ``t(-h) = -t(h)`` and
    ``(-x) e^s + t(-h) = -(x e^s + t(h))``; the log-det is even. Any even/odd pair can be
    written this way, unlike feeding ``|x|``, which forgets relative signs of neighbours.
    """

    def __init__(self, dims: int, colour: int, *, mask: str = "site", exclude: str | None = None,
                 width: int = 16, depth: int = 2, kernel: int = 3, cond_channels: int = 0,
                 z2: bool = False, scale_bound: float = 2.0):
        super().__init__()
        self.dims, self.colour, self.mask, self.exclude = int(dims), int(colour), mask, exclude
        self.cond_channels, self.z2 = int(cond_channels), bool(z2)
        self.scale_bound = float(scale_bound)
        self.net = conditioner_cnn(self.dims, 1 + self.cond_channels, 2, width, depth, kernel)

    def _upd(self, x: torch.Tensor) -> torch.Tensor:
        return update_mask(x.shape[1:], self.colour, self.mask, self.exclude, device=x.device)

    def _scale_shift(self, x: torch.Tensor, upd: torch.Tensor, cond):
        h = (x * (~upd).to(x.dtype)).unsqueeze(1)
        if self.cond_channels:
            if cond is None:
                raise ValueError("this coupling layer is conditional: pass cond")
            c = cond.unsqueeze(1) if cond.dim() == x.dim() else cond
            h = torch.cat([h, c.to(x.dtype)], dim=1)
        if self.z2:
            out = self.net(torch.cat([h, -h], dim=0))
            o1, o2 = out[: x.shape[0]], out[x.shape[0]:]
            raw, t = 0.5 * (o1[:, 0] + o2[:, 0]), 0.5 * (o1[:, 1] - o2[:, 1])
        else:
            out = self.net(h)
            raw, t = out[:, 0], out[:, 1]
        b = self.scale_bound
        s = b * torch.tanh(raw / b)
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        return torch.where(upd, s, zero), torch.where(upd, t, zero)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        upd = self._upd(x)
        s, t = self._scale_shift(x, upd, cond)
        y = torch.where(upd, x * torch.exp(s) + t, x)
        return y, s.reshape(s.shape[0], -1).sum(-1)

    def inverse(self, y: torch.Tensor, cond: torch.Tensor | None = None):
        upd = self._upd(y)
        s, t = self._scale_shift(y, upd, cond)  # frozen sites of y are those of x
        x = torch.where(upd, (y - t) * torch.exp(-s), y)
        return x, -s.reshape(s.shape[0], -1).sum(-1)


class CouplingStack(nn.Module):
    """Composition of layers with ``forward(x, cond) -> (y, logdet)`` (log-dets add up)."""

    def __init__(self, layers):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        logdet = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x, cond)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, y: torch.Tensor, cond: torch.Tensor | None = None):
        logdet = y.new_zeros(y.shape[0])
        for layer in reversed(self.layers):
            y, ld = layer.inverse(y, cond)
            logdet = logdet + ld
        return y, logdet
