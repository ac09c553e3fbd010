"""Stop requests: SIGTERM (what SLURM/PBS send before the wall time) and SIGINT.

The handler only sets a flag; stages poll :meth:`StopFlag.requested` at safe points and
the driver makes every rank agree through an allreduce, so all ranks stop together.
"""

from __future__ import annotations

import signal


class StopFlag:
    """Records SIGTERM/SIGINT; install once per process with :meth:`install`."""

    def __init__(self):
        self.signum: int | None = None

    def install(self) -> "StopFlag":
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        self.signum = signum

    @property
    def local(self) -> bool:
        return self.signum is not None

    def requested(self, comms) -> bool:
        """Collective: True on every rank if any rank received a stop signal."""
        return comms.any(self.local)
