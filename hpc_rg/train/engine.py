"""DeepSpeed engines over an MPI communicator: configuration, logging, process group, and
one engine's life (create, resume, run its loop, stop cleanly on every rank)."""

from __future__ import annotations

import contextlib
import logging
import os

from ..errors import ConfigError, HpcRgError, StoppedBySignal
from ..parallel.torch_dist import process_group
from .checkpoints import load_checkpoint

log = logging.getLogger("hpc_rg")


def deepspeed_config(batch_size: int, learning_rate: float, overrides: dict,
                     world_size: int) -> dict:
    """Built-in DeepSpeed defaults (Adam, ZeRO stage 0, ``batch_size`` per rank) with
    ``overrides`` (the deck's ``train.deepspeed``) merged over them (deep merge)."""
    base = {
        "train_micro_batch_size_per_gpu": batch_size,
        "gradient_accumulation_steps": 1,
        "train_batch_size": batch_size * world_size,
        "optimizer": {"type": "Adam", "params": {"lr": learning_rate, "torch_adam": True}},
        "zero_optimization": {"stage": 0},
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    return _merge(base, dict(overrides))


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def quiet_deepspeed(device) -> None:
    """CPU accelerator unless on GPU; DeepSpeed's INFO chatter off (warnings stay)."""
    if device.type != "cuda":
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    from deepspeed.utils import logger as ds_logger
    ds_logger.setLevel(logging.WARNING)


@contextlib.contextmanager
def training_group(comms, device):
    """The torch process group of data-parallel training over ``comms.world`` (NCCL on GPU,
    gloo on CPU), DeepSpeed quieted; yields the holder of every torch object that must be
    released before the group is torn down (see :mod:`hpc_rg.parallel.torch_dist`)."""
    quiet_deepspeed(device)
    with process_group(comms.world, "nccl" if device.type == "cuda" else "gloo",
                       comms.local_rank) as holder:
        yield holder


def run_engine(holder: dict, model, parameters, config: dict, source, ckpt_dir, tag,
               state, loop, on_resume=None):
    """Train ``model`` with a DeepSpeed engine (collective over the process group).

    Creates the engine (a configuration DeepSpeed rejects is a one-line error naming
    ``train.deepspeed`` of ``source``), restores the loop state from checkpoint ``tag`` of
    ``ckpt_dir`` when given (``on_resume(state)`` is called then), and returns
    ``(loop(engine, state), None)``. A stop signal or an error raised alike on every rank
    comes back as ``(state, error)`` with the engine released, so that the caller can leave
    the process group cleanly and raise it afterwards.
    """
    import deepspeed
    try:
        engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=parameters,
                                                       config=config)
    except (ValueError, AssertionError, KeyError, TypeError) as e:
        raise ConfigError(f"{source}: train.deepspeed: DeepSpeed rejected the "
                          f"configuration: {str(e).splitlines()[0][:200]}") from None
    holder.update(engine=engine, optimizer=optimizer)
    stopped = None
    try:
        if tag is not None:
            state = type(state)(**load_checkpoint(engine, ckpt_dir, tag)["loop"])
            if on_resume is not None:
                on_resume(state)
        state = loop(engine, state)
    except StoppedBySignal as e:  # collective: tear the group down cleanly, re-raise later
        stopped = e.with_traceback(None)  # its frames hold the engine and the tensors
    except HpcRgError as e:  # raised alike on every rank: the same clean teardown
        if not e.collective:
            raise
        stopped = e.with_traceback(None)
    del engine, optimizer
    holder.pop("engine", None)
    holder.pop("optimizer", None)
    return state, stopped
