"""Exceptions whose message is meant for the user: one line, what is wrong and how to fix it.

The CLI prints ``str(error)`` of any :class:`HpcRgError` without a traceback and exits
with ``error.exit_code``; everything else is a bug and aborts the MPI job with a traceback.
"""


class HpcRgError(Exception):
    """Base class of user-facing errors.

    ``collective = True`` marks an error that every rank raises alike (the decision was
    reduced over the ranks): rank 0 prints it once and every rank exits with its code.
    Otherwise it may come from one rank only, and that rank takes the whole job down.
    """

    exit_code = 2
    collective = False


def collective(error: HpcRgError) -> HpcRgError:
    """Mark ``error`` as raised alike on every rank (see :class:`HpcRgError`)."""
    error.collective = True
    return error


class ConfigError(HpcRgError):
    """One or more problems in an input file; ``problems`` holds one line each."""

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class InputFileError(HpcRgError):
    """A file given to hpc_rg is missing, unreadable or not what it should be."""


class OutputError(HpcRgError):
    """The output directory cannot be written (permissions, disk full, finished run)."""


class StoppedBySignal(HpcRgError):
    """The job received SIGTERM/SIGINT, flushed a checkpoint and stopped; rerun with --resume."""

    exit_code = 3
