"""Per-rank stage checkpoints with a sequence number, written atomically.

Every rank saves ``<dir>/<stage>.rank<r>.<seq>.pt`` at the same collective points (same
``seq`` on all ranks, then a barrier), keeping the last two. A job killed at any moment
leaves every rank with its checkpoint ``seq_min`` (the ranks differ by at most one save),
so :meth:`RankCheckpoints.load_latest` restores all ranks to one consistent point.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..errors import HpcRgError, OutputError


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
            tmp = self._path(seq).with_suffix(".tmp")
            torch.save(state, tmp)
            os.replace(tmp, self._path(seq))
            for old in self._seqs()[:-self.keep]:
                self._path(old).unlink(missing_ok=True)
        except OSError as e:
            raise OutputError(f"{self.root}: cannot write checkpoint ({e.strerror or e})") from None
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
        return common, torch.load(self._path(common), weights_only=False)

    def clear(self) -> None:
        for seq in self._seqs():
            self._path(seq).unlink(missing_ok=True)


def _min_op():
    from mpi4py import MPI
    return MPI.MIN
