"""The loop every resumable stage shares: open or resume ``<file>.partial``, run rounds of
work, poll the stop flag, checkpoint every few rounds, print progress, finish.

A stage supplies the work as an object with ``rounds``, ``create_file(h5)``,
``structure_complete(h5)``, ``step(r, inputs)`` (yielding ``(L, selection, configs,
scalars)`` to write into group ``/L<L>``), ``state()`` / ``restore(state)`` and
``finish(h5)`` (see :class:`hpc_rg.methods.base.Upscaler`). Checkpoints are saved only after
the data they count were flushed, so a resumed stage never claims data the file lacks.
"""

from __future__ import annotations

import logging
import time

from ..errors import StoppedBySignal
from ..io import schema
from ..io.checkpoint import RankCheckpoints
from ..io.writer import open_output, partial_is_usable
from ..parallel.resources import gather_usage
from ..progress import Progress

log = logging.getLogger("hpc_rg")

CHECKPOINT_EVERY = 8  # rounds between checkpoints


def partial_path(final):
    """``final`` with the ``.partial`` suffix of a file being written."""
    return final.with_name(final.name + schema.PARTIAL_SUFFIX)


def reopen_partial(final, comms, structure_complete, stage: str):
    """Collective: ``final``'s partial file reopened for appending, or ``None`` (with a
    warning) when it cannot be reopened or lacks the structure made at creation (a job
    killed while creating it)."""
    h5 = None
    if partial_is_usable(final, comms.world):
        h5 = open_output(final, comms.world, "r+")
        if not comms.bcast_root(structure_complete(h5)):
            h5.close(complete=False)
            h5 = None
    if h5 is None:
        log.warning(f"[{stage}] {partial_path(final)}: unreadable or incomplete (the job was "
                    f"killed while creating it?); starting the stage again from scratch")
    return h5


def run_rounds(work, final, inputs, comms, stop, resume: bool, stage: str,
               progress_seconds: float) -> None:
    """Collective: write ``final`` from ``work`` round by round (see the module docstring);
    ``inputs`` is passed to every ``work.step``. Returns with the file complete, or raises
    :class:`StoppedBySignal` after a checkpoint."""
    out = final.parent
    ckpts = RankCheckpoints(out / schema.CHECKPOINT_DIR, stage, comms.world)
    saved = ckpts.load_latest() if resume else None
    partial = comms.bcast_root(partial_path(final).exists())
    h5, done, seq = None, 0, -1
    if saved is not None and partial:
        h5 = reopen_partial(final, comms, work.structure_complete, stage)
        if h5 is not None:
            seq, state = saved
            done = state["done"]
            work.restore(state)
            log.info(f"[{stage}] resuming: {done}/{work.rounds} batch rounds done")
    elif resume and partial:
        log.info(f"[{stage}] {partial_path(final)}: no checkpoint yet; starting the stage again")
    if h5 is None:
        ckpts.clear()
        h5 = open_output(final, comms.world, "w")
        work.create_file(h5)
    progress = Progress(stage, work.rounds, "batches", progress_seconds, active=comms.is_root,
                        start=done)
    t0, items = time.monotonic(), 0
    for r in range(done, work.rounds):
        for i, (L, selection, configs, scalars) in enumerate(work.step(r, inputs)):
            items += len(configs) if i == 0 else 0  # configurations per level
            group = schema.size_group(L)
            h5.put(f"{group}/{schema.CONFIGS}", selection, configs)
            for name, values in scalars.items():
                h5.put(f"{group}/{name}", selection, values)
        stopping = stop.requested(comms)
        if (r + 1) % CHECKPOINT_EVERY == 0 or stopping:
            h5.flush()
            seq += 1
            ckpts.save(seq, {"done": r + 1, **work.state()})
            if stopping:
                h5.close(complete=False)
                raise StoppedBySignal(f"{stage} stage stopped by signal after {r + 1}/"
                                      f"{work.rounds} batch rounds; rerun with --resume")
        progress.update(r + 1)
    usage = gather_usage(comms.world, time.monotonic() - t0, items)
    h5.set_attrs("/", usage.attrs(stage))
    if comms.is_root:
        log.info(usage.line(stage))
    work.finish(h5)
    h5.close(complete=True)
    ckpts.comm.Barrier()
    ckpts.clear()
