"""Super-resolution levels L → 2L with exact likelihoods, and chains of levels.

Every level is a bijection ``T: (coarse φ (B, *L), ζ' (B, *L, 2^d - 1)) ↔ fine (B, *2L)``
and a noise distribution ``p(ζ')``. It offers

* ``transform(coarse, zeta_free) -> (fine, logdet)``, ``logdet = log|det ∂fine/∂(φ, ζ')|``;
* ``inverse_transform(fine) -> (coarse, zeta_free, logdet_inv)``;
* ``sample(coarse, generator) -> (fine, log_q)`` and ``log_prob(fine) -> (coarse, log_q)``

with ``log_q = log p(ζ') - logdet``. This is the exact log density of the fine field
relative to the coarse one: if ``φ ~ p_L`` then the fine field has density
``log q(fine) = log p_L(φ) + log_q`` with ``φ = T†(fine)`` — the quantity importance
weights and independence Metropolis-Hastings need.

Two constructions (``conditional=False``) follow the papers; ``conditional=True`` feeds the
upsampled coarse field ``U(φ)`` to every conditioner as an extra channel. A conditioner can
only see φ if the inverse can recover φ *before* inverting the couplings, so in that mode
the couplings act only on the noise and leave the coarse carrier untouched:

* :class:`SuperResolutionLevel` (Bauer et al. 2024, Fig. 2): ``Ψ = U(φ) + ζ`` (zero-sum
  noise), then a local flow. Unconditional: ``fine = F(Ψ)``, ``φ = U† F^{-1}(fine)``.
  Conditional: ``fine = U(φ) + V(G(ζ'; U φ))``, block means preserved (``φ = U† fine``).
* :class:`CheckerboardLevel` (Shiina et al. 2021, Fig. 1): φ on the first site of each
  block, ``g ~ N(0, σ²)`` on the others, then couplings. Unconditional: ``fine = F(z)``,
  φ = first sites of ``F^{-1}(fine)``. Conditional: the first sites are frozen, so
  ``φ = `` first sites of ``fine`` (decimation) and the couplings are conditioned on U(φ).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .coupling import AffineCoupling, CouplingStack
from .noise import GaussianNoise, ZeroSumNoise
from .upsample import ZeroSumEmbedding, from_blocks, to_blocks, upsample

__all__ = ["SuperResolutionLevel", "CheckerboardLevel", "FlowChain", "coupling_layers"]


def _mask_plan(dims: int, n_layers: int, conditional: bool):
    """(mask kind, colour) per layer: site parity alternating; block masks in conditional
    mode (in d = 1 the non-excluded sites of every block share one site parity)."""
    if not conditional:
        kinds = [("site", 0), ("site", 1)]
    elif dims == 1:
        kinds = [("block", 0), ("block", 1)]
    else:
        kinds = [("site", 0), ("site", 1), ("block", 0), ("block", 1)]
    return [kinds[i % len(kinds)] for i in range(n_layers)]


def coupling_layers(dims: int, n_layers: int, *, width: int, depth: int, kernel: int,
                    z2: bool, scale_bound: float, conditional: bool = False,
                    exclude: str | None = None) -> list:
    """The affine coupling layers of one level: ``n_layers`` layers on the masks of
    :func:`_mask_plan`; ``conditional`` adds one conditioning channel (U(coarse)) and
    ``exclude`` keeps the coarse carrier of every block frozen (conditional levels)."""
    return [AffineCoupling(dims, colour, mask=kind, exclude=exclude, width=width, depth=depth,
                           kernel=kernel, cond_channels=1 if conditional else 0, z2=z2,
                           scale_bound=scale_bound)
            for kind, colour in _mask_plan(int(dims), int(n_layers), bool(conditional))]


class _Level(nn.Module):
    """Shared machinery: noise module + coupling stack; subclasses define T."""

    _exclude: str = ""

    def __init__(self, dims, noise, *, n_layers, width, depth, kernel, z2, conditional,
                 scale_bound, flow=None, linear_kernel=0):
        super().__init__()
        self.dims, self.conditional = int(dims), bool(conditional)
        self.noise = noise
        if (flow is not None or linear_kernel > 0) and conditional:
            raise ValueError("a custom flow or linear_kernel > 0 works only in the "
                             "unconditional mode (conditional=False): both move block means")
        if flow is None:
            flow = CouplingStack(coupling_layers(
                dims, n_layers, width=width, depth=depth, kernel=kernel, z2=z2,
                scale_bound=scale_bound, conditional=self.conditional,
                exclude=self._exclude if self.conditional else None))
        if linear_kernel > 0:
            # a linear block convolution (exact FFT log-det) in front of the local flow
            from .linear import BlockConv
            flow = CouplingStack([BlockConv(dims, linear_kernel)] + list(
                flow.layers if isinstance(flow, CouplingStack) else [flow]))
        self.flow = flow

    def _check(self, coarse):
        if coarse.dim() != self.dims + 1:
            raise ValueError(f"coarse field of shape {tuple(coarse.shape)}: expected "
                             f"(B, L_1, ..., L_{self.dims}) for a d={self.dims} level")

    def sample(self, coarse: torch.Tensor, generator: torch.Generator | None = None):
        """Draw ``fine (B, *2L)`` given ``coarse (B, *L)``; returns ``(fine, log_q (B,))``."""
        self._check(coarse)
        zeta_free, log_p = self.noise.sample(coarse.shape, generator)
        fine, logdet = self.transform(coarse.to(zeta_free.dtype), zeta_free)
        return fine, log_p - logdet

    def log_prob(self, fine: torch.Tensor):
        """Coarse field and ``log_q`` of a given fine field: ``(coarse (B, *L), log_q (B,))``."""
        coarse, zeta_free, logdet_inv = self.inverse_transform(fine)
        return coarse, self.noise.log_prob(zeta_free) + logdet_inv


class SuperResolutionLevel(_Level):
    """Bauer et al.'s level: naive upsampling + zero-sum noise + local (coupling) flow.

    Parameters
    ----------
    dims : int (1, 2, 3)
    n_layers, width, depth, kernel : coupling stack and conditioner CNN sizes.
    sigma, learn_sigma : initial noise width and whether it is trained.
    z2 : Z₂-equivariant couplings (φ⁴): ``T(-φ, -ζ') = -T(φ, ζ')``.
    conditional : feed ``U(φ)`` to the conditioners (see the module docstring).
    scale_bound : bound of the coupling log-scales.
    flow : optional module with ``forward(x, cond) -> (y, logdet)`` and ``inverse`` to use
        instead of the coupling stack (unconditional mode only), e.g.
        :class:`hpc_rg.flows.continuous.ContinuousFlow` for Bauer's CNF.
    linear_kernel : 0 (off) or an odd kernel size: a :class:`hpc_rg.flows.linear.BlockConv`
        in front of the local flow (unconditional mode only).

    Notes
    -----
    ``logdet = N_c log 2^d + log|det ∂F/∂Ψ|`` (unconditional) or ``N_c log 2^d +
    log|det ∂G/∂ζ'|`` (conditional; ``∂fine/∂φ`` then has an extra term ``V ∂G/∂φ``
    that lies in the span of the ζ'-columns and drops out of the determinant).
    """

    _exclude = "last"

    def __init__(self, dims: int, n_layers: int = 4, width: int = 16, depth: int = 2,
                 kernel: int = 3, sigma: float = 1.0, learn_sigma: bool = True,
                 z2: bool = False, conditional: bool = False, scale_bound: float = 2.0,
                 flow: nn.Module | None = None, linear_kernel: int = 0):
        super().__init__(dims, ZeroSumNoise(dims, sigma, learn_sigma), n_layers=n_layers,
                         width=width, depth=depth, kernel=kernel, z2=z2,
                         conditional=conditional, scale_bound=scale_bound, flow=flow,
                         linear_kernel=linear_kernel)
        self.embed = ZeroSumEmbedding(dims)

    def transform(self, coarse: torch.Tensor, zeta_free: torch.Tensor):
        self._check(coarse)
        if not self.conditional:
            psi, ld0 = self.embed(coarse, zeta_free)
            fine, ld1 = self.flow(psi)
            return fine, ld0 + ld1
        field = from_blocks(torch.cat([zeta_free, torch.zeros_like(zeta_free[..., :1])], -1))
        field, ld1 = self.flow(field, upsample(coarse))
        fine, ld0 = self.embed(coarse, to_blocks(field)[..., :-1])
        return fine, ld0 + ld1

    def inverse_transform(self, fine: torch.Tensor):
        if not self.conditional:
            psi, ld1 = self.flow.inverse(fine)
            (coarse, zeta_free), ld0 = self.embed.inverse(psi)
            return coarse, zeta_free, ld0 + ld1
        (coarse, eta_free), ld0 = self.embed.inverse(fine)
        field = from_blocks(torch.cat([eta_free, torch.zeros_like(eta_free[..., :1])], -1))
        field, ld1 = self.flow.inverse(field, upsample(coarse))
        return coarse, to_blocks(field)[..., :-1], ld0 + ld1


class CheckerboardLevel(_Level):
    """Shiina et al.'s level: φ on each block's first site, Gaussian noise elsewhere, then
    checkerboard couplings. Same parameters as :class:`SuperResolutionLevel`; the
    placement is a permutation (log-det 0), so ``logdet`` is that of the couplings.
    """

    _exclude = "first"

    def __init__(self, dims: int, n_layers: int = 4, width: int = 16, depth: int = 2,
                 kernel: int = 3, sigma: float = 1.0, learn_sigma: bool = True,
                 z2: bool = False, conditional: bool = False, scale_bound: float = 2.0,
                 flow: nn.Module | None = None, linear_kernel: int = 0):
        super().__init__(dims, GaussianNoise(dims, sigma, learn_sigma), n_layers=n_layers,
                         width=width, depth=depth, kernel=kernel, z2=z2,
                         conditional=conditional, scale_bound=scale_bound, flow=flow,
                         linear_kernel=linear_kernel)

    def transform(self, coarse: torch.Tensor, zeta_free: torch.Tensor):
        self._check(coarse)
        z = from_blocks(torch.cat([coarse.unsqueeze(-1), zeta_free], dim=-1))
        return self.flow(z, upsample(coarse) if self.conditional else None)

    def inverse_transform(self, fine: torch.Tensor):
        cond = upsample(to_blocks(fine)[..., 0]) if self.conditional else None
        z, logdet_inv = self.flow.inverse(fine, cond)
        blocks = to_blocks(z)
        return blocks[..., 0], blocks[..., 1:], logdet_inv


class FlowChain(nn.Module):
    """Levels applied in turn, ``L → 2L → ... → 2^k L``, each with its own weights.

    ``sample(coarse, generator) -> (fines, log_qs)``: lists of length k, finest last;
    ``log_q`` of the whole chain is ``sum(log_qs)`` (relative to the coarsest field).
    ``log_prob(finest) -> (coarsest, log_qs)`` inverts level by level (same ordering).
    """

    def __init__(self, levels: Sequence[nn.Module]):
        super().__init__()
        self.levels = nn.ModuleList(levels)

    def sample(self, coarse: torch.Tensor, generator: torch.Generator | None = None):
        fines, log_qs = [], []
        x = coarse
        for level in self.levels:
            x, lq = level.sample(x, generator)
            fines.append(x)
            log_qs.append(lq)
        return fines, log_qs

    def log_prob(self, fine: torch.Tensor):
        log_qs = []
        x = fine
        for level in reversed(self.levels):
            x, lq = level.log_prob(x)
            log_qs.append(lq)
        return x, log_qs[::-1]

    @torch.no_grad()
    def transfer(self, k: int) -> None:
        """Initialise level ``k + 1`` with a copy of level ``k``'s weights (transfer
        learning: the size-agnostic level trained on L → 2L starts 2L → 4L)."""
        if not 0 <= k < len(self.levels) - 1:
            raise ValueError(f"transfer(k) needs 0 <= k < {len(self.levels) - 1}, got {k}")
        self.levels[k + 1].load_state_dict(self.levels[k].state_dict())
