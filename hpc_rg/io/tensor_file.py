"""Tensor-only model files: ``{format, version, meta, state_dict}`` written atomically and
read with ``torch.load(..., weights_only=True)``, which refuses any pickled code, so a model
file from a colleague cannot execute anything when opened. ``meta`` holds only str/int/
float/bool/list/dict values. The CNN (:mod:`hpc_rg.superres.modelfile`) and the flows
(:mod:`hpc_rg.flows.modelfile`) each have their own ``format``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import InputFileError, OutputError
from .writer import fsync_path, is_io_failure, os_error_reason


def write_tensor_file(path, fmt: str, version: int, state_dict: dict, meta: dict) -> None:
    """Write ``path`` atomically (``path.partial``, fsync, rename, fsync the directory);
    I/O failures become a one-line :class:`OutputError`."""
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in state_dict.items()}
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as fh:  # Python file: failures are OSError with an errno
            torch.save({"format": fmt, "version": version, "meta": meta,
                        "state_dict": state}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_path(path.parent, directory=True)
    except (OSError, RuntimeError) as e:  # torch.save: RuntimeError on a failed write
        if not is_io_failure(e):
            raise
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OutputError(f"{path}: cannot write the model: {os_error_reason(e, path)}") from None


def read_tensor_file(path, fmt: str, version: int, kind: str, hint: str = "") -> dict:
    """Read a file of :func:`write_tensor_file` with ``weights_only=True`` (no code runs);
    a missing, unreadable or foreign file is a one-line :class:`InputFileError`."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such model file (train it with --stage train)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused, truncated file, not a torch file
        raise InputFileError(f"{path}: not a readable hpc_rg model file "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        got = blob.get("format") if isinstance(blob, dict) else None
        raise InputFileError(f"{path}: not an hpc_rg {kind} (format {got!r}){hint}")
    if blob.get("version") != version:
        raise InputFileError(f"{path}: {kind} file version {blob.get('version')}, this hpc_rg "
                             f"reads version {version}")
    return blob
