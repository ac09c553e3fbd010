"""The trained-model file: tensors and plain metadata only, safe to open.

``model.pt`` is a ``torch.save`` of ``{"format": "hpc_rg.superres", "version": 1,
"meta": {...}, "state_dict": {name: tensor}}`` where ``meta`` holds only str/int/float/
bool/list/dict values (network spec, blocking, model, temperatures, temperature flow,
provenance). It is read with ``torch.load(..., weights_only=True)``, which refuses any
pickled code, so a model file from a colleague cannot execute anything when opened.
"""

from __future__ import annotations

from ..io.tensor_file import read_tensor_file, write_tensor_file
from .network import NetworkBank, NetworkSpec

FORMAT = "hpc_rg.superres"
VERSION = 1


def save_model(path, bank: NetworkBank, meta: dict) -> None:
    """Write ``path`` atomically (``path.partial``, fsync, rename, fsync the directory), so a
    file named ``path`` is always complete. Raises :class:`OutputError` (one line naming
    the path) when it cannot be written (disk full, read-only, permissions)."""
    write_tensor_file(path, FORMAT, VERSION, bank.state_dict(),
                      dict(meta, spec=bank.spec.to_dict()))


def load_model(path, device="cpu") -> tuple[NetworkBank, dict]:
    """Read a model file (``weights_only=True``) -> (bank in eval mode on ``device``, meta)."""
    blob = read_tensor_file(path, FORMAT, VERSION, "super-resolution model")
    meta = blob["meta"]
    bank = NetworkBank(NetworkSpec.from_dict(meta["spec"]))
    bank.load_state_dict(blob["state_dict"])
    return bank.to(device).eval(), meta
