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


# ---------------------------------------------------------------- rank counts of MPI tests
# `mpi` tests run in the 2-rank step (mpirun -n 2 pytest --with-mpi -m mpi); those that are
# also valid at 4 ranks carry `mpi4` and run in the 4-rank step (mpirun -n 4 ... -m mpi4).
# A test run at a rank count its markers do not name fails here instead of skipping itself.
RANKS_OF = {"mpi": (2,), "mpi4": (4,)}


def written_for(item) -> set[int]:
    """The rank counts (> 1) an MPI test is written for, from its markers."""
    return {n for name, sizes in RANKS_OF.items() if item.get_closest_marker(name)
            for n in sizes}


def pytest_runtest_setup(item):
    if item.get_closest_marker("mpi4") and not item.get_closest_marker("mpi"):
        pytest.fail("marked mpi4 without mpi: an mpi4 test is an mpi test valid at 4 ranks too",
                    pytrace=False)
    if not item.config.getoption("--with-mpi", default=False) \
            or not item.get_closest_marker("mpi"):
        return
    from mpi4py import MPI
    size = MPI.COMM_WORLD.Get_size()
    if size > 1 and size not in written_for(item):
        pytest.fail(f"run on {size} ranks but written for {sorted(written_for(item))}: select "
                    f"it with -m mpi (2 ranks) or -m mpi4 (4 ranks), or add the marker for "
                    f"{size} ranks if the test is valid there", pytrace=False)


# ---------------------------------------------------------------- order of the test files
# The serial step hands whole files to pytest-xdist workers in collection order
# (dev/run_tests.sh: --dist loadfile). These files each take one to three minutes on 2 cores
# (the step's --durations list); they go first, so no worker is left alone with a long file
# at the end. Order only: any file may be missing here or run in any order.
LONG_FILES_FIRST = (
    "pipeline/test_sr_vs_mc.py", "methods/test_flow_defaults.py",
    "superres/test_fixed_point_mode.py", "pipeline/test_flagship.py",
    "flows/test_flows_physics.py", "methods/test_flows_pipeline.py", "flows/test_flows_uv.py",
    "pipeline/test_new_user.py", "pipeline/test_superres_cli.py", "pipeline/test_cli.py",
    "pipeline/test_kill_resume.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {f"tests/{name}": i for i, name in enumerate(LONG_FILES_FIRST)}

    def key(item):
        rel = Path(str(item.fspath)).resolve().relative_to(REPO).as_posix()
        return rank.get(rel, len(rank))
    items.sort(key=key)  # stable: the order inside a file and among the rest is kept


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


# ---------------------------------------------------------------- finished runs for the tools
# Small complete runs (samples.h5, model.pt, upscaled.h5) made once per pytest session and
# shared by the post-processing tool tests. Treat them as read-only: copy before modifying.
FINISHED_RUN_DECKS = {
    "ising": """
run: {{name: tools_ising, output: {out}, seed: 7, progress_seconds: 5}}
model: {{name: ising, dims: 2}}
sample: {{L: 8, temperatures: [2.0, 2.269185, 2.6], chains: 2, thermalize: 100, samples: 40,
         thin: 2, chunk: 20, reference_sizes: [4, 16]}}
train: {{epochs: 2, batch_size: 8, network: {{depth: 2, width: 4}}}}
upscale: {{target_L: 32, batch: 10}}
""",
    "edwards_anderson": """
run: {{name: tools_ea, output: {out}, seed: 5, progress_seconds: 5}}
model: {{name: edwards_anderson, dims: 3, disorder: gaussian, disorder_samples: 2, replicas: 4}}
sample: {{L: 4, temperatures: [0.8, 1.3], tempering: {{enabled: true, every: 1}},
         thermalize: 20, samples: 10, thin: 1, chunk: 10}}
train: {{epochs: 1, batch_size: 4, network: {{depth: 2, width: 4}}}}
upscale: {{target_L: 16, batch: 3}}
""",
    "phi4": """
run: {{name: tools_phi4, output: {out}, seed: 5, progress_seconds: 5}}
model: {{name: phi4, dims: 2, parametrization: bachtis, kappa: 1.0, lam: 0.7}}
sample: {{L: 8, couplings: [-1.0, -0.9], chains: 2, thermalize: 20, samples: 10, thin: 1,
         chunk: 10}}
train: {{epochs: 1, batch_size: 4, network: {{depth: 2, width: 4}}}}
upscale: {{target_L: 32, batch: 3}}
""",
}


def _finished_run(tmp_path_factory, model: str) -> Path:
    out = tmp_path_factory.mktemp(f"run_{model}") / "out"
    deck = out.parent / "deck.yaml"
    deck.write_text(FINISHED_RUN_DECKS[model].format(out=out))
    r = run_hpc_rg([deck], nprocs=2 if model == "ising" else 1)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


@pytest.fixture(scope="session")
def ising_run(tmp_path_factory) -> Path:
    """Output directory of a finished 2D Ising run: MC 4, 8, 16; SR 16, 32 (3 temperatures)."""
    return _finished_run(tmp_path_factory, "ising")


@pytest.fixture(scope="session")
def ea_run(tmp_path_factory) -> Path:
    """Output directory of a finished 3D EA run: MC L = 4 (2 disorder, 4 replicas); SR 8, 16."""
    return _finished_run(tmp_path_factory, "edwards_anderson")


@pytest.fixture(scope="session")
def phi4_run(tmp_path_factory) -> Path:
    """Output directory of a finished 2D phi4 run: MC L = 8 (2 couplings); SR 16, 32."""
    return _finished_run(tmp_path_factory, "phi4")
