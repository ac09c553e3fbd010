"""The driver: decides which stages run, checks the output directory, runs them in order
(skipping finished ones on ``--resume``) and stops between stages on a signal."""

from __future__ import annotations

import logging

from ..config import STAGES
from ..errors import ConfigError, StoppedBySignal
from ..io import schema

log = logging.getLogger("hpc_rg")

#: stage -> the file it writes in run.output
STAGE_FILES = {"sample": schema.SAMPLES_FILE, "upscale": schema.UPSCALED_FILE,
               "analyze": schema.ANALYSIS_FILE, "train": schema.MODEL_FILE}


def stages_for(request: str, cfg=None) -> tuple[str, ...]:
    """``all``: sample, then each later stage whose section the deck has (in order); a deck
    with ``upscale:`` but no ``train:`` section trains with the defaults first (there is
    nothing to upscale with otherwise)."""
    if request != "all":
        return (request,)
    present = set(cfg.present if cfg is not None else STAGES)
    if "upscale" in present:
        present.add("train")
    return tuple(s for s in STAGES if s == "sample" or s in present)


def check_output_state(cfg, stages, resume: bool) -> None:
    """Refuse to overwrite a finished or unfinished run unless ``--resume`` (rank 0 only)."""
    if resume:
        return
    out = cfg.output_dir
    for stage in stages:
        final = out / STAGE_FILES[stage]
        partial = final.with_name(final.name + schema.PARTIAL_SUFFIX)
        if final.exists():
            raise ConfigError(f"{cfg.source}: run.output={out} holds a finished run "
                              f"({final.name}); pass --resume to keep it, or choose another "
                              f"run.output (--set run.output=...)")
        if partial.exists():
            raise ConfigError(f"{cfg.source}: run.output={out} holds an unfinished run "
                              f"({partial.name}); pass --resume to continue it, or delete it")
        # a killed training leaves committed DeepSpeed checkpoints, no .partial file
        latest = out / schema.CHECKPOINT_DIR / "train" / "latest"
        if stage == "train" and latest.exists():
            raise ConfigError(f"{cfg.source}: run.output={out} holds an unfinished training "
                              f"({latest.relative_to(out)}); pass --resume to continue it, or "
                              f"delete {schema.CHECKPOINT_DIR}/train")


def run_pipeline(cfg, comms, stages, stop, resume: bool, device) -> None:
    """Run ``stages`` in order (collective); with ``resume`` a stage whose output file is
    complete is skipped."""
    from .analyze import run_analyze
    from .sample import run_sample
    from .train import run_train
    from .upscale import run_upscale

    runners = {"sample": run_sample, "train": run_train, "upscale": run_upscale,
               "analyze": run_analyze}
    for stage in stages:
        final = cfg.output_dir / STAGE_FILES[stage]
        if resume and comms.bcast_root(final.exists()):
            log.info(f"[{stage}] {final} is complete; skipping (--resume)")
            continue
        runners[stage](cfg, comms, stop, resume, device)
        later = stages[stages.index(stage) + 1:]
        if later and stop.requested(comms):  # a signal that came after the stage's last poll
            raise StoppedBySignal(f"stopped by signal after the {stage} stage ({final} is "
                                  f"complete); rerun with --resume for {', '.join(later)}")
