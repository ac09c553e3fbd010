"""Latent noise for super-resolution flows: zero-sum block noise and isotropic noise.

Both classes draw noise for the ``n - 1 = 2^d - 1`` free components of every block of a
coarse lattice, shape ``(B, L_1, ..., L_d, n - 1)`` (see :mod:`hpc_rg.flows.upsample`),
with a learnable width ``σ = exp(log_sigma)`` (one scalar per module, i.e. per level) and
return exact log densities summed per sample, shape ``(B,)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .upsample import block_size

__all__ = ["ZeroSumNoise", "GaussianNoise"]


class _BlockNoise(nn.Module):
    def __init__(self, dims: int, sigma: float = 1.0, learnable: bool = True):
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"noise width sigma must be > 0, got {sigma}")
        self.dims = int(dims)
        self.n = block_size(dims)
        log_sigma = torch.full((1,), math.log(sigma))  # 1-d: DeepSpeed broadcasts bytes views
        if learnable:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    @torch.no_grad()
    def set_sigma(self, sigma: float) -> None:
        """Set σ, e.g. to the standard deviation of the coarse field (Bauer et al. app. C)."""
        self.log_sigma.fill_(math.log(float(sigma)))

    def _eps(self, shape, generator):
        shape = tuple(int(s) for s in shape) + (self.n,)
        return torch.randn(shape, generator=generator, dtype=self.log_sigma.dtype,
                           device=self.log_sigma.device)

    def sample(self, shape, generator: torch.Generator | None = None):
        """Draw noise for coarse lattices of ``shape = (B, L_1, ..., L_d)``.

        Returns ``(zeta_free (B, *L, n-1), log_prob (B,))``; differentiable in σ
        (reparametrised). Dtype/device are those of the module.
        """
        raise NotImplementedError

    def log_prob(self, zeta_free: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class ZeroSumNoise(_BlockNoise):
    """Zero-sum Gaussian block noise (Bauer et al. 2024, eqs. 19-20).

    The free components of each block are ``N(0, Σ)`` with ``Σ = σ² (I_m - J_m / n)``,
    ``m = n - 1``, ``J`` the all-ones matrix; the last component is ``-Σ ζ'_i``.

    Notes
    -----
    Sampling: ``ε ~ N(0, σ² I_n)`` per block, subtract the block mean, keep the first
    ``m`` components — the projection ``P = I - J/n`` gives covariance ``σ² (I - J/n)``.
    Density: by Sherman–Morrison ``(I_m - J_m/n)^{-1} = I_m + J_m`` and
    ``det(I_m - J_m/n) = 1 - m/n = 1/n``, so per block

    ``log p(ζ') = -(m/2) log(2π σ²) + ½ log n - (Σ_i ζ'_i² + (Σ_i ζ'_i)²) / (2σ²)``,

    where the quadratic form is the squared norm of the completed zero-sum block.
    """

    def sample(self, shape, generator: torch.Generator | None = None):
        eps = self._eps(shape, generator)
        eps = eps - eps.mean(dim=-1, keepdim=True)
        zeta_free = self.sigma * eps[..., :-1]
        return zeta_free, self.log_prob(zeta_free)

    def log_prob(self, zeta_free: torch.Tensor) -> torch.Tensor:
        m, n = self.n - 1, self.n
        if zeta_free.shape[-1] != m:
            raise ValueError(f"zeta_free has {zeta_free.shape[-1]} components per block, "
                             f"expected 2^d - 1 = {m}")
        log_sigma = self.log_sigma.to(zeta_free.dtype)
        quad = (zeta_free ** 2).sum(-1) + zeta_free.sum(-1) ** 2
        per_block = (-0.5 * m * math.log(2 * math.pi) - m * log_sigma + 0.5 * math.log(n)
                     - 0.5 * quad * torch.exp(-2 * log_sigma))
        return per_block.reshape(per_block.shape[0], -1).sum(-1)

    def covariance(self) -> torch.Tensor:
        """``Σ = σ² (I_m - J_m / n)``, shape (m, m) (for tests and diagnostics)."""
        m = self.n - 1
        eye = torch.eye(m, dtype=self.log_sigma.dtype, device=self.log_sigma.device)
        return self.sigma ** 2 * (eye - 1.0 / self.n)


class GaussianNoise(_BlockNoise):
    """Isotropic ``N(0, σ² I)`` noise on the free components (Shiina et al. 2021, Fig. 1)."""

    def sample(self, shape, generator: torch.Generator | None = None):
        zeta_free = self.sigma * self._eps(shape, generator)[..., :-1]
        return zeta_free, self.log_prob(zeta_free)

    def log_prob(self, zeta_free: torch.Tensor) -> torch.Tensor:
        log_sigma = self.log_sigma.to(zeta_free.dtype)
        per = (-0.5 * math.log(2 * math.pi) - log_sigma
               - 0.5 * zeta_free ** 2 * torch.exp(-2 * log_sigma))
        return per.reshape(per.shape[0], -1).sum(-1)
