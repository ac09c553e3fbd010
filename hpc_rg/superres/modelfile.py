"""The trained-model file: tensors and plain metadata only, safe to open.

``model.pt`` is a ``torch.save`` of ``{"format": "hpc_rg.superres", "version": 1,
"meta": {...}, "state_dict": {name: tensor}}`` where ``meta`` holds only str/int/float/
bool/list/dict values (network spec, blocking, model, temperatures, temperature flow,
provenance). It is read with ``torch.load(..., weights_only=True)``, which refuses any
pickled code, so a model file from a colleague cannot execute anything when opened.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import InputFileError, OutputError
from .network import NetworkBank, NetworkSpec

FORMAT = "hpc_rg.superres"
VERSION = 1


def save_model(path, bank: NetworkBank, meta: dict) -> None:
    """Write ``path`` atomically (``path.partial``, fsync, rename, fsync the directory), so a
    file named ``path`` is always complete. Raises :class:`OutputError` (one line naming
    the path) when it cannot be written (disk full, read-only, permissions)."""
    from ..io.writer import fsync_path, is_io_failure, os_error_reason
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in bank.state_dict().items()}
    meta = dict(meta, spec=bank.spec.to_dict())
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as fh:  # Python file: failures are OSError with an errno
            torch.save({"format": FORMAT, "version": VERSION, "meta": meta,
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


def load_model(path, device="cpu") -> tuple[NetworkBank, dict]:
    """Read a model file (``weights_only=True``) -> (bank in eval mode on ``device``, meta)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such model file (train it with --stage train)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused, truncated file, not a torch file
        raise InputFileError(f"{path}: not a readable hpc_rg model file "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise InputFileError(f"{path}: not an hpc_rg super-resolution model "
                             f"(format {blob.get('format') if isinstance(blob, dict) else None!r})")
    if blob.get("version") != VERSION:
        raise InputFileError(f"{path}: model file version {blob.get('version')}, this hpc_rg "
                             f"reads version {VERSION}")
    meta = blob["meta"]
    bank = NetworkBank(NetworkSpec.from_dict(meta["spec"]))
    bank.load_state_dict(blob["state_dict"])
    return bank.to(device).eval(), meta
