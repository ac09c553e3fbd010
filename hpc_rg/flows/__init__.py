"""Flow building blocks for super-resolution with exact likelihoods.

Every bijection returns ``(output, log|det J|)`` in both directions, log-dets per sample,
shape ``(B,)``. Modules: :mod:`.upsample` (naive upsampling, block mean, zero-sum
embedding), :mod:`.noise` (zero-sum and isotropic block noise), :mod:`.coupling`
(checkerboard affine couplings), :mod:`.continuous` (local continuous flow, RK4),
:mod:`.levels` (super-resolution levels and chains).
"""

from .continuous import ContinuousFlow
from .coupling import AffineCoupling, CouplingStack
from .levels import CheckerboardLevel, FlowChain, SuperResolutionLevel
from .noise import GaussianNoise, ZeroSumNoise
from .upsample import ZeroSumEmbedding, block_mean, upsample

__all__ = [
    "AffineCoupling",
    "CouplingStack",
    "ContinuousFlow",
    "CheckerboardLevel",
    "FlowChain",
    "SuperResolutionLevel",
    "GaussianNoise",
    "ZeroSumNoise",
    "ZeroSumEmbedding",
    "block_mean",
    "upsample",
]
