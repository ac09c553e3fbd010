"""Provenance attributes written at the root of every output file."""

from __future__ import annotations

import datetime as _dt
import subprocess
from pathlib import Path

from .. import __version__
from . import schema


def git_commit() -> str:
    """The hpc_rg source tree's commit hash (with ``-dirty``), or "" when unknown."""
    src = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(src), "describe", "--always", "--dirty",
                              "--abbrev=40"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def provenance(cfg, n_ranks: int, stage: str, commit: str | None = None) -> dict:
    """Root attributes for a file written by ``stage`` of the run ``cfg``."""
    return {
        schema.ATTR_VERSION: __version__,
        schema.ATTR_SCHEMA: schema.SCHEMA_VERSION,
        schema.ATTR_CONFIG: cfg.to_yaml(),
        schema.ATTR_CREATED: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        schema.ATTR_RANKS: int(n_ranks),
        schema.ATTR_SEED: int(cfg.run.seed),
        schema.ATTR_GIT: git_commit() if commit is None else commit,
        schema.ATTR_STAGE: stage,
        schema.ATTR_COMPLETE: False,
    }


def stage_provenance(cfg, comms, stage: str) -> dict:
    """Collective: :func:`provenance` of ``stage``, identical on every rank (the git commit
    is looked up on rank 0 only, then broadcast)."""
    return comms.bcast_root(provenance(cfg, comms.size, stage,
                                       commit=None if comms.is_root else ""))


def plain_provenance(cfg, comms, stage: str) -> dict:
    """:func:`provenance` with plain Python values (for a model file's metadata); the git
    commit is looked up on rank 0 only."""
    import numpy as np
    p = provenance(cfg, comms.size, stage, commit=None if comms.is_root else "")
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in p.items()}
