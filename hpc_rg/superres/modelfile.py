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
    write_tensor_file(path, FORMAT, VERSION, bank.state_dict(),
                      dict(meta, spec=bank.spec.to_dict()))


def write_tensor_file(path, fmt: str, version: int, state_dict: dict, meta: dict) -> None:
    """Atomic tensor-only model file ``{format, version, meta, state_dict}`` (shared by the
    CNN and flow model files); I/O failures become one-line :class:`OutputError`."""
    from ..io.writer import fsync_path, is_io_failure, os_error_reason
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


def load_model(path, device="cpu") -> tuple[NetworkBank, dict]:
    """Read a model file (``weights_only=True``) -> (bank in eval mode on ``device``, meta)."""
    blob = read_tensor_file(path, FORMAT, VERSION, "super-resolution model")
    meta = blob["meta"]
    bank = NetworkBank(NetworkSpec.from_dict(meta["spec"]))
    bank.load_state_dict(blob["state_dict"])
    return bank.to(device).eval(), meta
