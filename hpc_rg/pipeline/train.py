"""The ``train`` stage: the method of ``train.method`` learns the L/2 -> L super-resolution
from the Monte Carlo ensemble of ``samples.h5`` and writes ``model.pt``
(:mod:`hpc_rg.methods`; DeepSpeed plumbing in :mod:`hpc_rg.train`)."""

from __future__ import annotations

from ..methods import method_for


def run_train(cfg, comms, stop, resume: bool, device) -> None:
    """Train the super-resolution model (collective over ``comms.world``)."""
    method_for(cfg).train(cfg, comms, stop, resume, device)
