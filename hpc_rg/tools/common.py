"""Plumbing shared by the post-processing tools: opening outputs, size groups, exit codes.

A tool's ``main(argv) -> int`` is wrapped by :func:`run_tool`, which turns an
:class:`~hpc_rg.errors.HpcRgError` into ``NAME: error: <one line>`` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Callable

from ..errors import InputFileError
from ..io import schema

SIZE_GROUP = re.compile(r"^L(\d+)$")


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


def open_output(path, kinds: tuple[str, ...] | None = None, driver_kwargs: dict | None = None):
    """Open an hpc_rg HDF5 output read-only (h5py.File), or raise InputFileError.

    ``kinds``: accepted values of the root attribute ``stage`` (e.g. ``("sample", "upscale")``);
    None accepts any stage. ``driver_kwargs``: e.g. ``dict(driver="mpio", comm=comm)``.
    """
    import h5py

    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory, expected an HDF5 file written by hpc_rg")
    try:
        ok = h5py.is_hdf5(str(p))
    except OSError as e:
        raise InputFileError(f"{p}: cannot be read ({e.strerror or e})") from None
    if not ok:
        raise InputFileError(f"{p}: not an HDF5 file (expected an hpc_rg output such as "
                             f"{schema.SAMPLES_FILE} or {schema.UPSCALED_FILE})")
    try:
        f = h5py.File(str(p), "r", **(driver_kwargs or {}))
    except OSError as e:
        raise InputFileError(f"{p}: cannot be opened ({e})") from None
    if schema.ATTR_SCHEMA not in f.attrs or schema.ATTR_VERSION not in f.attrs:
        f.close()
        raise InputFileError(f"{p}: not an hpc_rg output (no '{schema.ATTR_SCHEMA}' root attribute)")
    stage = str(f.attrs.get(schema.ATTR_STAGE, ""))
    if kinds is not None and stage not in kinds:
        f.close()
        raise InputFileError(f"{p}: written by stage '{stage}', this tool reads "
                             f"{' or '.join(repr(k) for k in kinds)} outputs")
    return f


def size_groups(f) -> list[tuple[int, object]]:
    """The ``/L<size>`` groups of an open file as ``[(L, group), ...]``, smallest first."""
    out = []
    for name in f:
        m = SIZE_GROUP.match(name)
        if m and hasattr(f[name], "keys"):
            out.append((int(m.group(1)), f[name]))
    return sorted(out, key=lambda t: t[0])


def select_sizes(f, sizes=None) -> list[tuple[int, object]]:
    """Size groups restricted to ``sizes`` (list of int, None = all); a missing one is an error."""
    groups = size_groups(f)
    if not groups:
        raise InputFileError(f"{f.filename}: has no lattice-size groups (/L16, /L32, ...)")
    if sizes is None:
        return groups
    have = {L: g for L, g in groups}
    missing = [L for L in sizes if L not in have]
    if missing:
        raise InputFileError(f"{f.filename}: no group /L{missing[0]} (has "
                             f"{', '.join('/L%d' % L for L in have)})")
    return [(L, have[L]) for L in sizes]


def require_dataset(group, name: str):
    """``group[name]`` or InputFileError naming file, group and dataset."""
    if name not in group:
        raise InputFileError(f"{group.file.filename}: group {group.name} has no dataset '{name}'")
    return group[name]


def temperature_grid(group):
    """(name, values) of the group's scan axis: ``temperatures`` or φ⁴ ``couplings``."""
    for name in (schema.TEMPERATURES, schema.COUPLINGS):
        if name in group:
            return name, group[name][...]
    raise InputFileError(f"{group.file.filename}: group {group.name} has neither "
                         f"'{schema.TEMPERATURES}' nor '{schema.COUPLINGS}'")


def script_main(module_name: str) -> None:
    """Entry for the ``tools/NAME`` wrappers: import ``hpc_rg.tools.<module_name>`` and exit."""
    import importlib
    mod = importlib.import_module(f"hpc_rg.tools.{module_name}")
    sys.exit(mod.cli())
