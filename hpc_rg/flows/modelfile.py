"""Flow super-resolution models: construction from a plain spec, and the tensor-only file.

A :class:`FlowBank` holds one :class:`~hpc_rg.flows.levels.FlowChain` per temperature (φ⁴:
per coupling) of the run's grid; chain ``t`` has ``levels`` levels ``L → 2L → … → 2^k L``.
Everything needed to rebuild it is the *spec*, a dict of plain values
(:func:`flow_spec`). ``model.pt`` is a ``torch.save`` of ``{"format": "hpc_rg.flows",
"version": 1, "meta": {...}, "state_dict": {name: tensor}}`` with ``meta["spec"]`` the
spec; it is read with ``torch.load(..., weights_only=True)`` (no pickled code runs).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..io.tensor_file import read_tensor_file, write_tensor_file
from .levels import CheckerboardLevel, FlowChain, SuperResolutionLevel

__all__ = ["FORMAT", "VERSION", "flow_spec", "build_level", "FlowBank", "save_flow_model",
           "load_flow_model", "is_flow_model"]

FORMAT = "hpc_rg.flows"
VERSION = 1

_SPEC_KEYS = ("local_flow", "layers", "width", "depth", "kernel", "sigma", "learn_sigma", "z2",
              "conditional", "scale_bound", "n_freq", "n_time", "ode_steps")
# keys added later, with the value that reproduces older specs and model files
_SPEC_DEFAULTS = {"linear_kernel": 0}


def flow_spec(cfg, n_params: int, n_levels: int) -> dict:
    """The plain spec of the run's flow bank (``train.method``, ``train.flow`` keys)."""
    f = cfg.train.flow
    spec = {k: getattr(f, k) for k in _SPEC_KEYS}
    spec.update({k: getattr(f, k, v) for k, v in _SPEC_DEFAULTS.items()})
    spec.update(method=cfg.train.method, dims=int(cfg.model.dims), levels=int(n_levels),
                n_params=int(n_params))
    return spec


def build_level(spec: dict) -> nn.Module:
    """One level ``L → 2L`` of ``spec["method"]`` (``flow_rg``: Bauer et al.;
    ``flow_checkerboard``: Shiina et al.), untrained."""
    cls = {"flow_rg": SuperResolutionLevel, "flow_checkerboard": CheckerboardLevel}[spec["method"]]
    flow = None
    if spec.get("local_flow", "coupling") == "continuous":
        from .continuous import ContinuousFlow
        flow = ContinuousFlow(spec["dims"], n_freq=spec["n_freq"], n_time=spec["n_time"],
                              kernel=spec["kernel"], steps=spec["ode_steps"])
    return cls(spec["dims"], n_layers=spec["layers"], width=spec["width"], depth=spec["depth"],
               kernel=spec["kernel"], sigma=spec["sigma"], learn_sigma=spec["learn_sigma"],
               z2=spec["z2"], conditional=spec["conditional"], scale_bound=spec["scale_bound"],
               flow=flow, linear_kernel=int(spec.get("linear_kernel", 0)))


class FlowBank(nn.Module):
    """``chains[t]``: the FlowChain of parameter point ``t``; ``level_modules(k)`` lists level
    ``k`` (0-based) of every chain."""

    def __init__(self, spec: dict):
        super().__init__()
        self.spec = dict(spec)
        self.chains = nn.ModuleList(
            FlowChain([build_level(spec) for _ in range(spec["levels"])])
            for _ in range(spec["n_params"]))

    def level_modules(self, k: int) -> list:
        return [c.levels[k] for c in self.chains]

    @torch.no_grad()
    def transfer(self, k: int) -> None:
        """Level ``k + 1`` of every chain starts from level ``k``'s weights."""
        for c in self.chains:
            c.transfer(k)


def is_flow_model(path) -> bool:
    """Whether ``path`` is a flow model file (cheap check used by the stages)."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(blob, dict) and blob.get("format") == FORMAT


def save_flow_model(path, bank: FlowBank, meta: dict) -> None:
    """Write ``path`` atomically (``.partial``, fsync, rename); :class:`OutputError` (one
    line) if it cannot be written."""
    write_tensor_file(path, FORMAT, VERSION, bank.state_dict(), dict(meta, spec=dict(bank.spec)))


def load_flow_model(path, device="cpu") -> tuple[FlowBank, dict]:
    """Read a flow model file (``weights_only=True``) -> (bank in eval mode, meta)."""
    blob = read_tensor_file(path, FORMAT, VERSION, "flow model",
                            "; train.method of the deck and of the model must agree")
    meta = blob["meta"]
    bank = FlowBank(meta["spec"])
    bank.load_state_dict(blob["state_dict"])
    return bank.to(device).eval(), meta
