"""The ``upscale`` stage: the trained model of ``train.method`` applied level after level,
L -> 2L -> ... -> ``upscale.target_L``, written to ``upscaled.h5`` (one group per level).

The method (:mod:`hpc_rg.methods`) supplies the work; :func:`hpc_rg.pipeline.loop.run_rounds`
resumes, checkpoints and stops it. Every rank writes its own slices of every level (mpio).
"""

from __future__ import annotations

import logging

from ..io import schema
from ..io.ensemble import open_samples, size_group
from ..methods import method_for
from .loop import run_rounds

log = logging.getLogger("hpc_rg")


def run_upscale(cfg, comms, stop, resume: bool, device) -> None:
    """Upscale the Monte Carlo ensemble (collective over ``comms.world``)."""
    from ..config import upscale_input_L
    work = method_for(cfg).upscaler(cfg, comms, device)
    final = cfg.output_dir / schema.UPSCALED_FILE
    with open_samples(cfg) as f:
        run_rounds(work, final, size_group(f, upscale_input_L(cfg), f.filename), comms, stop, resume,
                   "upscale", cfg.run.progress_seconds)
    log.info(f"[upscale] wrote {final}")
    if comms.is_root:
        work.report(final)
