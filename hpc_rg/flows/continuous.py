"""A local continuous normalising flow (Bauer et al. 2024, eqs. 22-28), RK4-integrated.

``dΨ_x/dt = G(Ψ, t)_x = Σ_{y ∈ K(x), d, f} W_{x-y, d, f} K_d(t) H_f(Ψ_y)`` with the basis
``H_1(u) = u``, ``H_f(u) = sin(ω_f u)`` (learnable ω_f, eq. 24) and the Fourier time kernel
``K(t) = (1, cos 2πt/T, sin 2πt/T, cos 4πt/T, ...)`` (D terms) on ``[0, T]``. The spatial
sum is a periodic convolution of kernel size ``k`` (size-agnostic); no bias, so G is odd in
Ψ and the flow is Z₂-equivariant by construction.

Log-det: ``d log|det|/dt = ∇·G = Σ_x Σ_{d,f} W_{0,d,f} K_d(t) H'_f(Ψ_x)`` — the exact
divergence (only the centre tap of the kernel touches Ψ_x itself), integrated along the
trajectory together with Ψ by classical RK4 with ``steps`` fixed steps. The ODE flow is an
exact bijection; the RK4 map and its integrated log-det agree with it (and the inverse,
integrated backwards, with the forward map) up to O(h⁴) — not to machine precision.
Not implemented from the paper: the low-rank factorisation of W (eq. 25) and the tying of
lattice-symmetry-equivalent bonds.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as nnf

__all__ = ["ContinuousFlow"]

_CONV = {1: nnf.conv1d, 2: nnf.conv2d, 3: nnf.conv3d}


class ContinuousFlow(nn.Module):
    """``forward(x, cond=None) -> (y, logdet)``; ``inverse(y, cond=None) -> (x, logdet_inv)``.

    Parameters
    ----------
    dims : 1, 2, 3
    n_freq : F, number of basis functions (1 linear + F-1 sines)
    n_time : D, number of Fourier time terms
    kernel : odd spatial kernel size
    t_end : integration time T
    steps : RK4 steps
    ``cond`` is accepted for interface compatibility and ignored.
    """

    def __init__(self, dims: int, n_freq: int = 4, n_time: int = 3, kernel: int = 3,
                 t_end: float = 1.0, steps: int = 16):
        super().__init__()
        if dims not in _CONV or kernel % 2 != 1 or n_freq < 1 or n_time < 1:
            raise ValueError("need dims in (1, 2, 3), an odd kernel, n_freq >= 1, n_time >= 1")
        self.dims, self.kernel, self.t_end, self.steps = dims, kernel, float(t_end), int(steps)
        self.n_time = n_time
        self.omega = nn.Parameter(torch.linspace(0.5, 2.0, max(n_freq - 1, 1))[: n_freq - 1])
        # zero weights: the flow starts as the identity (Bauer et al.)
        self.weight = nn.Parameter(torch.zeros((n_time, n_freq) + (kernel,) * dims))

    def _time_kernel(self, t: float, dtype, device) -> torch.Tensor:
        vals = [1.0]
        j = 1
        while len(vals) < self.n_time:
            w = 2 * math.pi * j * t / self.t_end
            vals += [math.cos(w), math.sin(w)]
            j += 1
        return torch.tensor(vals[: self.n_time], dtype=dtype, device=device)

    def _rhs(self, psi: torch.Tensor, t: float):
        """``(G(Ψ, t) (B, *L), ∇·G (B,))``."""
        kt = self._time_kernel(t, psi.dtype, psi.device)
        w = torch.einsum("d,df...->f...", kt, self.weight.to(psi.dtype)).unsqueeze(0)
        om = self.omega.to(psi.dtype).reshape((1, -1) + (1,) * self.dims)
        u = psi.unsqueeze(1)
        h = torch.cat([u, torch.sin(om * u)], dim=1)                 # (B, F, *L)
        dh = torch.cat([torch.ones_like(u), om * torch.cos(om * u)], dim=1)
        pad = (self.kernel // 2,) * (2 * self.dims)
        g = _CONV[self.dims](nnf.pad(h, pad, mode="circular"), w)[:, 0]
        centre = w[(0, slice(None)) + (self.kernel // 2,) * self.dims]  # (F,)
        div = torch.einsum("f,bf...->b...", centre, dh)
        return g, div.reshape(div.shape[0], -1).sum(-1)

    def _integrate(self, x: torch.Tensor, backwards: bool):
        h = self.t_end / self.steps * (-1.0 if backwards else 1.0)
        t = self.t_end if backwards else 0.0
        logdet = x.new_zeros(x.shape[0])
        for _ in range(self.steps):
            k1, d1 = self._rhs(x, t)
            k2, d2 = self._rhs(x + 0.5 * h * k1, t + 0.5 * h)
            k3, d3 = self._rhs(x + 0.5 * h * k2, t + 0.5 * h)
            k4, d4 = self._rhs(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
            logdet = logdet + h / 6 * (d1 + 2 * d2 + 2 * d3 + d4)
            t += h
        return x, logdet

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None):
        return self._integrate(x, backwards=False)

    def inverse(self, y: torch.Tensor, cond: torch.Tensor | None = None):
        return self._integrate(y, backwards=True)
