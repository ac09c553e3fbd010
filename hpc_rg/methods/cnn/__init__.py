"""The CNN super-resolution method (Efthymiou et al. 2019): a :class:`NetworkBank` trained
to invert the blocking, applied level after level with Bernoulli-sampled outputs."""

from __future__ import annotations

from ..base import Method


class CnnMethod(Method):
    """``train.method: cnn``."""

    def train(self, cfg, comms, stop, resume: bool, device) -> None:
        from .train import train_cnn
        train_cnn(cfg, comms, stop, resume, device)

    def upscaler(self, cfg, comms, device):
        from .upscale import CnnUpscaler
        return CnnUpscaler(cfg, comms, device)
