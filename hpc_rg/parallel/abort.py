"""Abort the whole MPI job when one rank fails, so no rank hangs in a collective."""

from __future__ import annotations

import sys
import traceback


def abort_world(comm, message: str, code: int = 1) -> None:
    """Print ``message`` tagged with the rank to stderr and abort every rank of ``comm``.

    With one rank this is a plain ``sys.exit(code)``.
    """
    rank = comm.Get_rank()
    sys.stderr.write(f"hpc_rg [rank {rank}/{comm.Get_size()}] {message}\n")
    sys.stderr.flush()
    if comm.Get_size() > 1:
        comm.Abort(code)
    raise SystemExit(code)


def report_bug(comm, exc: BaseException) -> None:
    """An unexpected exception: print its traceback with the rank, then abort the job."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    abort_world(comm, f"failed with an unexpected error (a bug; please report it):\n{text}")
