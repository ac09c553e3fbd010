"""Plumbing shared by the post-processing tools: argument parsing, exit codes, number format.

A tool's ``main(argv) -> int`` is wrapped by :func:`run_tool`, which turns an
:class:`~hpc_rg.errors.HpcRgError` into ``NAME: error: <one line>`` on stderr and exit 2.
Reading the outputs is :mod:`hpc_rg.io.outputs`.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Callable


class ToolParser(argparse.ArgumentParser):
    """argparse with one-line errors: a bad option raises HpcRgError (exit 2 via run_tool)."""

    def error(self, message):
        from ..errors import HpcRgError
        raise HpcRgError(f"{message} (see {self.prog} --help)")


def run_tool(name: str, main: Callable[[list[str] | None], int], argv=None) -> int:
    """Run ``main(argv)``; a user error prints one line and returns its exit code (2)."""
    from ..errors import HpcRgError
    try:
        return int(main(argv) or 0)
    except HpcRgError as e:
        sys.stderr.write(f"{name}: error: {' '.join(str(e).split())}\n")
        return e.exit_code
    except BrokenPipeError:  # `h5info FILE | head`
        return 0


def value_error(v: float, e: float) -> str:
    """``12.34(56)``: the value with its error in the last digits (up to 6 decimals);
    ``nan`` for a missing value, the bare value when the error is unknown or zero."""
    if not math.isfinite(v):
        return "nan"
    if not math.isfinite(e) or e <= 0:
        return f"{v:.4g}"
    digits = max(0, min(6, 1 - math.floor(math.log10(e))))
    return f"{v:.{digits}f}({int(round(e * 10 ** digits))})"
