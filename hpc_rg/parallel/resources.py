"""What a stage cost: wall time, items per second and peak memory per rank (collective).

Recorded by the resumable loop (:func:`hpc_rg.pipeline.loop.run_rounds`) as root attributes
``<stage>_...`` of the stage's output file and printed once, so a user sizing a cluster job
reads the measured throughput and memory per rank instead of a projection.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

import numpy as np

__all__ = ["peak_rss_bytes", "StageUsage", "gather_usage"]


def peak_rss_bytes() -> int:
    """High-water resident set size of this process in bytes (``ru_maxrss``; kB on Linux,
    bytes on macOS). It includes everything the process did before (earlier stages run in
    the same process, imports)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass(frozen=True)
class StageUsage:
    """Cost of one stage run, over all ranks.

    Attributes
    ----------
    ranks : number of ranks
    seconds : wall seconds of the slowest rank (rounds run by this process only: a resumed
        stage counts the rounds after the resume)
    items : items (configurations) written by this process, all ranks together
    peak_rss : (ranks,) int64 high-water RSS per rank in bytes (see :func:`peak_rss_bytes`)
    """

    ranks: int
    seconds: float
    items: int
    peak_rss: np.ndarray

    @property
    def items_per_second_per_rank(self) -> float:
        return self.items / self.seconds / self.ranks if self.seconds > 0 else float("nan")

    def attrs(self, stage: str) -> dict:
        """Root attributes ``<stage>_ranks, _wall_seconds, _items, _items_per_second_per_rank,
        _peak_rss_bytes`` (per rank)."""
        p = f"{stage}_"
        return {p + "ranks": self.ranks, p + "wall_seconds": self.seconds, p + "items": self.items,
                p + "items_per_second_per_rank": self.items_per_second_per_rank,
                p + "peak_rss_bytes": self.peak_rss.astype(np.int64)}

    def line(self, stage: str, what: str = "configurations") -> str:
        gb = self.peak_rss / 2**30
        return (f"[{stage}] {self.items} {what} in {self.seconds:.1f} s on {self.ranks} "
                f"rank(s): {self.items_per_second_per_rank:.4g} {what}/s per rank; peak RSS per "
                f"rank {gb.min():.2f}-{gb.max():.2f} GiB (process high-water mark)")


def gather_usage(comm, seconds: float, items: int) -> StageUsage:
    """Collective over ``comm``: this rank's wall ``seconds`` and ``items`` combined with the
    other ranks' (max of seconds, sum of items, every rank's peak RSS)."""
    from mpi4py import MPI
    peaks = comm.allgather(peak_rss_bytes())
    return StageUsage(ranks=comm.Get_size(), seconds=float(comm.allreduce(seconds, op=MPI.MAX)),
                      items=int(comm.allreduce(int(items), op=MPI.SUM)),
                      peak_rss=np.asarray(peaks, dtype=np.int64))
