"""Per-rank stage checkpoints with a sequence number, written atomically.

Every rank saves ``<dir>/<stage>.rank<r>.<seq>.pt`` at the same collective points (same
``seq`` on all ranks, then a barrier), keeping the last two. A job killed at any moment
leaves every rank with its checkpoint ``seq_min`` (the ranks differ by at most one save),
so :meth:`RankCheckpoints.load_latest` restores all ranks to one consistent point.

A checkpoint is written to ``<name>.tmp``, fsync'ed, renamed over its final name and the
directory fsync'ed, so a file under the final name is always complete (also after SIGKILL
or a power cut). Callers write and flush their data *before* saving the checkpoint that
says it is done. Leftover ``.tmp`` files of a killed job are ignored and removed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..errors import HpcRgError, InputFileError, OutputError
from .writer import fsync_path, is_io_failure, os_error_reason


def atomic_torch_save(obj, path) -> None:
    """``torch.save`` to ``path.tmp``, fsync, ``os.replace`` onto ``path``, fsync the dir."""
    path = Path(path)
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
            state = torch.load(self._path(common), weights_only=False)
        except Exception as e:  # truncated or foreign file: never resume from it silently
            state, problem = None, f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        bad = self.comm.allreduce(problem is not None, op=_max_op())
        if bad:
            where = self._path(common) if problem else self.root
            raise InputFileError(f"{where}: checkpoint {self.stage} #{common} is unreadable "
                                 f"({problem or 'on another rank'}); delete {self.root} and "
                                 f"rerun without --resume")
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
