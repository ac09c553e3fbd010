"""Per-rank stage checkpoints with a sequence number, written atomically.

Every rank saves ``<dir>/<stage>.rank<r>.<seq>.pt`` at the same collective points (same
``seq`` on all ranks, then a barrier), keeping the last two. A job killed at any moment
leaves every rank with its checkpoint ``seq_min`` (the ranks differ by at most one save),
so :meth:`RankCheckpoints.load_latest` restores all ranks to one consistent point.

A checkpoint is written to ``<name>.tmp``, fsync'ed, renamed over its final name and the
directory fsync'ed, so a file under the final name is always complete (also after SIGKILL
or a power cut). Callers write and flush their data *before* saving the checkpoint that
says it is done. Leftover ``.tmp`` files of a killed job are ignored and removed.

Checkpoints hold tensors and plain data only (dict, list, tuple, str, int, float, bool,
None; NumPy arrays are stored as tensors and given back as arrays) and are read with
``torch.load(..., weights_only=True)``: a run directory copied from elsewhere cannot make
``--resume`` execute code. A file holding any other pickled object is refused with one line.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import numpy as np
import torch

from ..errors import HpcRgError, InputFileError, OutputError, collective
from .writer import fsync_path, is_io_failure, os_error_reason


_NDARRAY = "__ndarray__"  #: tag of a NumPy array stored as a tensor


def to_plain(obj):
    """``obj`` with NumPy arrays and scalars turned into tensors and Python numbers.

    Raises TypeError for anything ``weights_only`` loading would refuse (a bug in the
    caller: state must be tensors and plain data).
    """
    if obj is None or isinstance(obj, (bool, int, float, str, torch.Tensor)):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(f"checkpoint state holds a NumPy array of dtype {obj.dtype}")
        return {_NDARRAY: torch.from_numpy(np.array(obj, order="C", copy=True))}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_plain(v) for v in obj)
    raise TypeError(f"checkpoint state holds a {type(obj).__name__}; store tensors and plain "
                    f"data (dict, list, tuple, numbers, str, NumPy arrays)")


def from_plain(obj):
    """Inverse of :func:`to_plain` (tagged tensors back to NumPy arrays)."""
    if isinstance(obj, dict):
        if len(obj) == 1 and _NDARRAY in obj:
            return obj[_NDARRAY].numpy()
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(v) for v in obj)
    return obj


def load_plain(path):
    """Read a file of :func:`atomic_torch_save` with ``weights_only=True``; returns the state.

    Raises
    ------
    pickle.UnpicklingError
        The file holds a pickled object other than tensors and plain data (refused,
        nothing of it runs).
    """
    return from_plain(torch.load(path, map_location="cpu", weights_only=True))


def unreadable_reason(exc: Exception) -> str:
    """Why a checkpoint could not be loaded, in one clause (pickled objects named as such)."""
    if isinstance(exc, pickle.UnpicklingError):
        return ("it holds pickled Python objects besides tensors and plain data, which hpc_rg "
                "refuses to load because loading them could run code")
    text = str(exc).splitlines()[0][:120] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` of :func:`to_plain` ``(obj)`` to ``path.tmp``, fsync, ``os.replace``
    onto ``path``, fsync the dir."""
    path = Path(path)
    obj = to_plain(obj)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:  # Python file: failures are OSError with an errno
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent, directory=True)


class RankCheckpoints:
    """Checkpoints of one stage for the ranks of ``comm`` in directory ``root``."""

    keep = 2

    def __init__(self, root, stage: str, comm):
        self.root, self.stage, self.comm = Path(root), stage, comm
        self.rank = comm.Get_rank()
        self._pattern = re.compile(rf"^{re.escape(stage)}\.rank{self.rank}\.(\d+)\.pt$")

    def _path(self, seq: int) -> Path:
        return self.root / f"{self.stage}.rank{self.rank}.{seq}.pt"

    def _seqs(self) -> list[int]:
        if not self.root.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.root.iterdir()
                      if (m := self._pattern.match(p.name)))

    def save(self, seq: int, state: dict) -> None:
        """Collective: every rank writes its ``state`` under ``seq``; then a barrier."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            atomic_torch_save(state, self._path(seq))
            for old in self._seqs()[:-self.keep]:
                self._path(old).unlink(missing_ok=True)
        except (OSError, RuntimeError) as e:  # torch.save: RuntimeError on a failed write
            if not is_io_failure(e):
                raise
            raise OutputError(f"{self._path(seq)}: cannot write checkpoint: "
                              f"{os_error_reason(e, self.root)}") from None
        self.comm.Barrier()

    def load_latest(self) -> tuple[int, dict] | None:
        """Collective: the newest checkpoint every rank has, as (seq, state), or None."""
        mine = self._seqs()
        newest = mine[-1] if mine else -1
        common = self.comm.allreduce(newest, op=_min_op())
        if common < 0:
            return None
        if common not in mine:
            raise HpcRgError(f"{self.root}: checkpoints of the ranks do not match (rank "
                             f"{self.rank} lacks {self.stage} #{common}); the run was started "
                             f"with a different number of ranks? Resume with the same layout")
        problem = None
        try:
            state = load_plain(self._path(common))
        except Exception as e:  # truncated, foreign or pickled file: never resume from it
            state, problem = None, unreadable_reason(e)
        bad = self.comm.allreduce(problem is not None, op=_max_op())
        if bad:
            where = self._path(common) if problem else self.root
            raise collective(InputFileError(
                f"{where}: checkpoint {self.stage} #{common} is unreadable "
                f"({problem or 'on another rank'}); delete {self.root} and rerun without --resume"))
        return common, state

    def clear(self) -> None:
        """Remove this rank's checkpoints of the stage (and leftover temporary files)."""
        if not self.root.is_dir():
            return
        tmp = re.compile(rf"^{re.escape(self.stage)}\.rank{self.rank}\.\d+\.(pt\.)?tmp$")
        for p in self.root.iterdir():
            if self._pattern.match(p.name) or tmp.match(p.name):
                p.unlink(missing_ok=True)


def _min_op():
    from mpi4py import MPI
    return MPI.MIN


def _max_op():
    from mpi4py import MPI
    return MPI.MAX
