"""Shared fixtures: a clean environment for launching hpc_rg under mpirun from a test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

MPI_ENV = {
    "OMPI_ALLOW_RUN_AS_ROOT": "1",
    "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
    "OMPI_MCA_rmaps_base_oversubscribe": "1",
    "OMPI_MCA_btl": "self,vader",
    "OMPI_MCA_oob_tcp_if_include": "lo",
    "GLOO_SOCKET_IFNAME": "lo",
    "OMP_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}


def launch_env() -> dict:
    env = dict(os.environ)
    # a test run under mpirun must not leak its own rank variables into the child job
    for key in list(env):
        if key.startswith(("OMPI_COMM_WORLD", "PMIX_", "OMPI_MCA_ess", "OMPI_FILE_LOCATION")):
            env.pop(key)
    env.update(MPI_ENV)
    return env


def run_hpc_rg(args, nprocs: int = 1, cwd=None, timeout: float = 300, **kw):
    """Run ``python -m hpc_rg ARGS`` (under ``mpirun -n nprocs`` when nprocs > 1)."""
    cmd = [sys.executable, "-m", "hpc_rg", *map(str, args)]
    if nprocs > 1:
        cmd = ["mpirun", "-n", str(nprocs), *cmd]
    return subprocess.run(cmd, cwd=cwd or REPO, env=launch_env(), capture_output=True,
                          text=True, timeout=timeout, **kw)


@pytest.fixture
def write_yaml(tmp_path):
    """Write a YAML deck into tmp_path and return its path."""
    def _write(text: str, name: str = "deck.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text)
        return p
    return _write


@pytest.fixture
def shared_tmp(tmp_path):
    """A directory that every MPI rank of the test sees (rank 0's tmp_path)."""
    from mpi4py import MPI
    return Path(MPI.COMM_WORLD.bcast(str(tmp_path), root=0))


@pytest.fixture
def one_thread():
    """Small lattices: torch intra-op threads only add overhead (and stall on a loaded
    2-core machine); physics tests opt in with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
