"""Super-resolution methods behind one interface (:mod:`.base`), chosen by ``train.method``:
``cnn`` (:mod:`.cnn`, Efthymiou et al. 2019) and the normalizing flows ``flow_rg`` /
``flow_checkerboard`` (:mod:`.flow`, Shiina et al. 2021, Bauer et al. 2024)."""

from __future__ import annotations

from .base import Method, Upscaler, input_runs, levels_of

__all__ = ["Method", "Upscaler", "method_for", "levels_of", "input_runs"]


def method_for(cfg) -> Method:
    """The :class:`Method` of ``cfg.train.method``."""
    if cfg.train.method == "cnn":
        from .cnn import CnnMethod
        return CnnMethod()
    from .flow import FlowMethod
    return FlowMethod()
