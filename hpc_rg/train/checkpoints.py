"""Kill-safe DeepSpeed checkpoints of a training loop.

A checkpoint goes to a fresh tag directory ``step<N>e<M>``; only when every rank has written
it (barrier) and its files are fsync'ed does rank 0 point ``latest`` at it, atomically
(temporary file + ``os.replace``). A job killed at any moment therefore leaves ``latest``
naming a complete checkpoint (or no ``latest`` at all); half-written tag directories are
never loaded and are removed. The loop state (a dataclass with a ``tag``) is the client
state, so a resumed loop continues bit-identically.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
from pathlib import Path

from ..errors import InputFileError, OutputError, collective

log = logging.getLogger("hpc_rg")

LATEST = "latest"
_TAG = re.compile(r"^step(\d+)(?:e(\d+))?$")


def latest_tag(ckpt_dir) -> str | None:
    """The tag named by ``ckpt_dir/latest`` when that checkpoint directory exists."""
    try:
        tag = (Path(ckpt_dir) / LATEST).read_text().strip()
    except OSError:
        return None
    return tag if tag and _TAG.match(tag) and (Path(ckpt_dir) / tag).is_dir() else None


def prepare_checkpoints(ckpt_dir, comm, resume: bool) -> str | None:
    """Collective: the tag to resume from (``None``: start afresh, stale checkpoints of an
    earlier or killed run removed)."""
    ckpt_dir = Path(ckpt_dir)
    tag = None
    if comm.Get_rank() == 0:
        tag = latest_tag(ckpt_dir) if resume else None
        if tag is None and ckpt_dir.exists():
            if resume and any(ckpt_dir.iterdir()):
                log.warning(f"[train] {ckpt_dir}: no complete checkpoint (killed before the "
                            f"first one was committed); training from the start")
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    return comm.bcast(tag, root=0)

def save_checkpoint(engine, ckpt_dir, state, comm) -> None:
    """Collective DeepSpeed checkpoint of ``state`` (a loop-state dataclass with ``tag``)
    as client state, committed by an atomic ``latest``; the committed tag and the one
    before it are kept (see the module docstring)."""
    from ..io.writer import fsync_path, os_error_reason
    ckpt_dir, tag = Path(ckpt_dir), state.tag
    rank = comm.Get_rank()
    problem = previous = None
    if rank == 0:
        previous = latest_tag(ckpt_dir)
        if previous == tag:  # same loop state already committed (e.g. resumed at the end)
            problem = "skip"
        else:
            shutil.rmtree(ckpt_dir / tag, ignore_errors=True)  # debris of a killed run
    if comm.bcast(problem, root=0) == "skip":
        return
    try:
        engine.save_checkpoint(str(ckpt_dir), tag=tag, save_latest=False,
                               client_state={"loop": copy.deepcopy(vars(state))})
    except OSError as e:
        raise OutputError(f"{ckpt_dir / tag}: cannot write training checkpoint: "
                          f"{os_error_reason(e)}") from None
    comm.Barrier()  # every rank's files of this tag are written
    if rank == 0:
        try:
            for root, _, files in os.walk(ckpt_dir / tag):
                for name in files:
                    fsync_path(os.path.join(root, name))
            fsync_path(ckpt_dir / tag, directory=True)
            tmp = ckpt_dir / (LATEST + ".tmp")
            with open(tmp, "w") as fd:
                fd.write(tag)
                fd.flush()
                os.fsync(fd.fileno())
            os.replace(tmp, ckpt_dir / LATEST)
            fsync_path(ckpt_dir, directory=True)
        except OSError as e:
            problem = f"{ckpt_dir}: cannot write training checkpoint: {os_error_reason(e)}"
        else:  # keep the committed tag and the one before it; drop everything else
            keep = {tag, previous}
            for p in ckpt_dir.iterdir():
                if p.is_dir() and _TAG.match(p.name) and p.name not in keep:
                    shutil.rmtree(p, ignore_errors=True)
    problem = comm.bcast(problem, root=0)
    if problem:
        raise OutputError(problem)


def _load_weights_only(engine) -> None:
    """Make DeepSpeed read this engine's checkpoint files with ``weights_only=True`` (its
    own engine passes False): a copied run directory cannot run code on ``--resume``.
    Our checkpoints hold tensors, plain data and the loop state only."""
    import torch

    def load(path, map_location=None):
        return torch.load(path, map_location=map_location, weights_only=True)
    engine.checkpoint_engine.load = load


def load_checkpoint(engine, ckpt_dir, tag: str) -> dict:
    """Collective: load DeepSpeed checkpoint ``tag``; its client state (a clear error if the
    committed checkpoint cannot be read)."""
    from ..io.checkpoint import unreadable_reason
    _load_weights_only(engine)
    try:
        path, client = engine.load_checkpoint(str(ckpt_dir), tag=tag)
    except Exception as e:
        path, client = None, unreadable_reason(e)
    bad = path is None or not isinstance(client, dict) or "loop" not in client
    if any_rank(bad):
        detail = client if isinstance(client, str) else "incomplete" if bad else "on another rank"
        raise collective(InputFileError(
            f"{Path(ckpt_dir) / tag}: training checkpoint is unreadable ({detail}); delete "
            f"{ckpt_dir} and rerun without --resume"))
    return client


def any_rank(flag: bool) -> bool:
    """``flag`` OR-reduced over the training process group (itself when there is none)."""
    import torch
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return bool(flag)
    t = torch.tensor([int(bool(flag))])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def cpu_state(module) -> dict:
    """A detached CPU copy of ``module``'s parameters and buffers."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
