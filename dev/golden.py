"""Fingerprint a run directory's outputs, for checking that a refactor changed no result.

Usage: python dev/golden.py RUN_DIR [RUN_DIR ...] > fingerprint.txt
(dev/golden/run.sh runs the reference decks before and after a change and fingerprints them.)

One line per HDF5 dataset, HDF5 attribute and model.pt tensor / metadata entry: its path and
a SHA-256 of its bytes. Provenance that differs between two identical runs (creation time,
git commit, hpc_rg version) is left out; so is wall-clock timing. Compare two fingerprints
with ``diff``: an empty diff means byte-identical results for the same seed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import h5py
import numpy as np

SKIP_ATTRS = {"created_utc", "git_commit", "hpc_rg_version"}
SKIP_META = {"created_utc", "git_commit", "hpc_rg_version", "seconds", "wall_s"}


def _digest(value) -> str:
    if isinstance(value, (bytes, str)):
        data = value.encode() if isinstance(value, str) else value
    else:
        a = np.asarray(value)
        data = a.tobytes() if a.dtype != object else repr(a.tolist()).encode()
        data += str(a.dtype).encode() + str(a.shape).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def _h5(path: Path, rel: str):
    with h5py.File(path, "r") as f:
        def attrs(name, obj):
            for k in sorted(obj.attrs):
                if k not in SKIP_ATTRS:
                    yield f"{rel}:{name}@{k} {_digest(obj.attrs[k])}"
        yield from attrs("/", f)
        names = []
        f.visititems(lambda n, o: names.append(n))
        for n in sorted(names):
            o = f[n]
            if isinstance(o, h5py.Dataset):
                yield f"{rel}:{n} {_digest(o[()])}"
            yield from attrs(n, o)


def _plain(obj, prefix: str):
    import torch
    if isinstance(obj, dict):
        for k in sorted(obj, key=str):
            if k not in SKIP_META:
                yield from _plain(obj[k], f"{prefix}/{k}")
    elif isinstance(obj, torch.Tensor):
        yield f"{prefix} {_digest(obj.detach().cpu().numpy())}"
    else:
        yield f"{prefix} {_digest(json.dumps(obj, sort_keys=True, default=str))}"


def fingerprint(run: Path):
    for p in sorted(run.rglob("*")):
        rel = str(p.relative_to(run))
        if p.suffix == ".h5":
            yield from _h5(p, rel)
        elif p.suffix == ".pt" and "checkpoints" not in p.parts:
            import torch
            yield from _plain(torch.load(p, map_location="cpu", weights_only=True), rel)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        for line in fingerprint(Path(arg)):
            print(line)
