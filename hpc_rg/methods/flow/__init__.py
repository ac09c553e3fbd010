"""Flow super-resolution (``train.method: flow_rg`` | ``flow_checkerboard``): exact-likelihood
levels trained by reverse KL and made exact by independence Metropolis–Hastings or latent
HMC (Shiina et al. 2021; Bauer et al. 2024). The flows themselves live in
:mod:`hpc_rg.flows`; this package trains them from the run's ensemble (:mod:`.train`) and
upscales with them (:mod:`.upscale`)."""

from __future__ import annotations

from ..base import Method


class FlowMethod(Method):
    """``train.method: flow_rg`` or ``flow_checkerboard``."""

    def train(self, cfg, comms, stop, resume: bool, device) -> None:
        from .train import train_flows
        train_flows(cfg, comms, stop, resume, device)

    def upscaler(self, cfg, comms, device):
        from .upscale import FlowUpscaler
        return FlowUpscaler(cfg, comms, device)
