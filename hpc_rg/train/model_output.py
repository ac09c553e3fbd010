"""Writing a trained model: rank 0 writes, every rank learns whether it worked."""

from __future__ import annotations

from ..errors import OutputError


def write_on_root(comms, path, save) -> None:
    """Collective: rank 0 creates ``path``'s directory and calls ``save(path)`` (which writes
    ``path.partial``, fsyncs and renames); a failure is an :class:`OutputError` on every
    rank, naming the file and the reason."""
    problem = None
    if comms.is_root:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save(path)
        except OSError as e:
            from ..io.writer import os_error_reason
            problem = f"{path}: cannot write the model: {os_error_reason(e)}"
        except OutputError as e:
            problem = str(e)
    problem = comms.bcast_root(problem)
    if problem:
        raise OutputError(problem)
