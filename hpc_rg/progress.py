"""Rank-0 progress lines: stage, step, rate, ETA; and rank-tagged logging setup."""

from __future__ import annotations

import logging
import sys
import time


def setup_logging(rank: int, size: int, verbose: bool = False) -> logging.Logger:
    """Logger ``hpc_rg``: rank 0 prints INFO, other ranks WARNING and above, tagged."""
    logger = logging.getLogger("hpc_rg")
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stdout if rank == 0 else sys.stderr)
    tag = f"[rank {rank}] " if size > 1 else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s {tag}%(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else
                    (logging.INFO if rank == 0 else logging.WARNING))
    logger.propagate = False
    return logger


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}"


class Progress:
    """Prints ``[stage] what step/total (pct) rate unit/s ETA h:mm:ss`` at most every
    ``interval`` seconds (and at the end). Only rank 0 should hold an active one."""

    def __init__(self, stage: str, total: int, unit: str = "sweeps", interval: float = 10.0,
                 active: bool = True, start: int = 0, logger=None):
        self.stage, self.total, self.unit = stage, int(total), unit
        self.interval, self.active = interval, active
        self.logger = logger or logging.getLogger("hpc_rg")
        self.t0 = self.last = time.monotonic()
        self.start = start

    def update(self, done: int, extra: str = "", force: bool = False) -> None:
        if not self.active:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval and done < self.total:
            return
        self.last = now
        rate = (done - self.start) / max(now - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        pct = 100.0 * done / max(self.total, 1)
        eta_s = _fmt_time(eta) if eta != float("inf") else "?"
        self.logger.info(f"[{self.stage}] {done}/{self.total} {self.unit} ({pct:.0f}%) "
                         f"{rate:.1f} {self.unit}/s ETA {eta_s}{'  ' + extra if extra else ''}")
