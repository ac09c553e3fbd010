"""The command line end to end: errors, dry runs, the sample stage on 1 and 2 ranks,
SIGTERM then --resume, and a rank that fails taking the whole job down."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import REPO, launch_env, run_hpc_rg
from helpers import assert_same_data, datasets, rank_pids, wait_for

SMALL = """
run: {{name: t, output: {out}, seed: 42, progress_seconds: 1}}
model: {{name: ising, dims: 2}}
sample: {{L: 8, temperatures: [2.0, 3.0], chains: 2, thermalize: {therm}, samples: {samples},
         thin: 2, chunk: {chunk}, algorithm: {algo}}}
"""


def deck(write_yaml, out, name="deck.yaml", therm=20, samples=30, chunk=10, algo="metropolis"):
    return write_yaml(SMALL.format(out=out, therm=therm, samples=samples, chunk=chunk, algo=algo), name)


def test_bad_config_one_line_per_problem_nothing_written(write_yaml, tmp_path):
    out = tmp_path / "out"
    path = write_yaml(SMALL.format(out=out, therm=20, samples=10, chunk=5, algo="metroplis")
                      .replace("L: 8", "L: 9"))
    for n in (1, 2):
        r = run_hpc_rg([path], nprocs=n)
        assert r.returncode == 2, r.stderr
        errors = [l for l in r.stderr.splitlines() if l.startswith("hpc_rg: error:")]
        assert len(errors) == 2, r.stderr  # printed once (rank 0), one line per problem
        assert any("sample.L=9" in l for l in errors)
        assert any("sample.algorithm=metroplis" in l and "did you mean 'metropolis'" in l for l in errors)
        assert "Traceback" not in r.stderr + r.stdout
        assert not out.exists()


def test_dry_run_and_default_config(tmp_path):
    r = run_hpc_rg(["--dry-run", "--set", f"run.output={tmp_path / 'o'}"])
    assert r.returncode == 0, r.stderr
    assert "quickstart.yaml" in r.stdout and "name: quickstart" in r.stdout
    assert not (tmp_path / "o").exists()


def test_analyze_without_outputs_is_a_clear_error(write_yaml, tmp_path):
    r = run_hpc_rg([deck(write_yaml, tmp_path / "o"), "--stage", "analyze"])
    assert r.returncode == 2
    assert "no samples.h5 or upscaled.h5 to analyze" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_check_reports_environment():
    r = subprocess.run([sys.executable, "-m", "hpc_rg", "--check"], capture_output=True,
                       text=True, env=launch_env(), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MPI enabled" in r.stdout and "Open MPI" in r.stdout and "deepspeed" in r.stdout
    assert "MC kernel" in r.stdout


@pytest.mark.parametrize("algo", ["metropolis", "heatbath"])
def test_sample_stage_same_on_one_and_two_ranks(write_yaml, tmp_path, algo):
    runs = {}
    for n in (1, 2):
        out = tmp_path / f"n{n}"
        r = run_hpc_rg([deck(write_yaml, out, f"d{n}.yaml", algo=algo)], nprocs=n)
        assert r.returncode == 0, r.stdout + r.stderr
        runs[n] = out / "samples.h5"
        assert runs[n].exists() and not (out / "samples.h5.partial").exists()
        assert not list((out / "checkpoints").glob("*.pt"))
    data, attrs = datasets(runs[2])
    assert attrs["complete"] and attrs["mpi_ranks"] == 2 and attrs["seed"] == 42
    assert "algorithm: " + algo in attrs["config_yaml"] and attrs["hpc_rg_version"]
    assert data["L8/configs"].shape == (2, 60, 8, 8) and data["L8/configs"].dtype == np.int8
    assert set(np.unique(data["L8/configs"])) == {-1, 1}
    np.testing.assert_allclose(data["L8/temperatures"], [2.0, 3.0])
    # energy per site stored = energy of the stored configuration
    s = data["L8/configs"].astype(np.float64)
    e = -(s * np.roll(s, 1, 2) + s * np.roll(s, 1, 3)).sum(axis=(2, 3)) / 64
    np.testing.assert_allclose(data["L8/energy"], e)
    np.testing.assert_allclose(data["L8/magnetization"], s.mean(axis=(2, 3)))
    assert_same_data(runs[1], runs[2])


def test_finished_run_needs_resume(write_yaml, tmp_path):
    path = deck(write_yaml, tmp_path / "o", samples=4, chunk=4)
    assert run_hpc_rg([path]).returncode == 0
    r = run_hpc_rg([path])
    assert r.returncode == 2 and "holds a finished run" in r.stderr and "--resume" in r.stderr
    r = run_hpc_rg([path, "--resume"])
    assert r.returncode == 0 and "complete; skipping" in r.stdout


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference run for the kill/resume tests (2 ranks, no interruption)."""
    tmp = tmp_path_factory.mktemp("ref")
    path = tmp / "ref.yaml"
    path.write_text(SMALL.format(out=tmp / "out", **KILL_RUN))
    r = run_hpc_rg([path], nprocs=2)
    assert r.returncode == 0, r.stderr
    return tmp / "out" / "samples.h5"


KILL_RUN = dict(therm=50, samples=6000, chunk=20, algo="metropolis")  # long enough to be stopped mid-run


def _checkpoints_past(ckdir, seq: int) -> bool:
    """A rank-0 sample checkpoint with sequence number >= seq exists (only the newest two
    are kept, so a fixed name is on disk for a few milliseconds on an idle machine)."""
    return any(int(p.name.split(".")[-2]) >= seq for p in ckdir.glob("sample.rank0.*.pt"))


@pytest.mark.parametrize("target", ["ranks", "mpirun"])
def test_sigterm_then_resume_equals_uninterrupted(write_yaml, tmp_path, target, uninterrupted):
    out = tmp_path / "run"
    kw = dict(KILL_RUN)
    kw.pop("algo")
    path = deck(write_yaml, out, "run.yaml", **kw)
    cmd = ["mpirun", "-n", "2", sys.executable, "-m", "hpc_rg", str(path)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=launch_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # stop it in the middle of production: after a few chunks were written
    ok = wait_for(lambda: _checkpoints_past(out / "checkpoints", 3), 120, proc)
    assert ok, proc.communicate()
    if target == "ranks":  # as SLURM's --signal=TERM@T does: every task gets SIGTERM
        pids = rank_pids(proc.pid)
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
    else:  # mpirun forwards SIGTERM to the ranks, then exits non-zero on its own account
        proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == (3 if target == "ranks" else proc.returncode) != 0, stdout + stderr
    assert "rerun with --resume" in stderr
    assert not (out / "samples.h5").exists() and (out / "samples.h5.partial").exists()
    r = run_hpc_rg([path, "--resume"], nprocs=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "resuming from checkpoint" in r.stdout
    assert_same_data(uninterrupted, out / "samples.h5")


ABORT_SCRIPT = r"""
import sys, time
from mpi4py import MPI
import hpc_rg.__main__ as cli
import hpc_rg.pipeline.driver as driver

def failing(cfg, comms, stages, stop, resume, device):
    if comms.rank == 1:
        raise RuntimeError("injected failure on one rank")
    comms.world.Barrier()  # rank 0 would wait here forever without the abort

driver.run_pipeline = failing
sys.exit(cli.main(sys.argv[1:]))
"""


def test_exception_on_one_rank_aborts_the_job(write_yaml, tmp_path):
    script = tmp_path / "abort.py"
    script.write_text(ABORT_SCRIPT)
    path = deck(write_yaml, tmp_path / "o")
    t0 = time.time()
    r = subprocess.run(["mpirun", "-n", "2", sys.executable, str(script), str(path)], cwd=REPO,
                       env=launch_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "[rank 1/2]" in r.stderr and "injected failure on one rank" in r.stderr
    assert time.time() - t0 < 100


EA = """
run: {{name: ea, output: {out}, seed: 5, progress_seconds: 5}}
model: {{name: edwards_anderson, dims: 3, disorder: pm1, disorder_samples: 2, replicas: 2}}
sample: {{L: 4, temperatures: [1.0, 1.5, 2.0], tempering: {{enabled: true, every: 1}},
         ranks_per_replica: {rpr}, thermalize: 10, samples: 12, thin: 1, chunk: 5}}
"""


def test_spin_glass_slabs_and_tempering_same_on_one_and_two_ranks(write_yaml, tmp_path):
    """EA with parallel tempering: 1 rank, 2 slab ranks, 2 groups all give the same file."""
    files = []
    for n, rpr in ((1, 1), (2, 2), (2, 1)):
        out = tmp_path / f"n{n}r{rpr}"
        r = run_hpc_rg([write_yaml(EA.format(out=out, rpr=rpr), f"ea{n}{rpr}.yaml")], nprocs=n)
        assert r.returncode == 0, r.stdout + r.stderr
        files.append(out / "samples.h5")
    data, _ = datasets(files[0])
    assert data["L4/configs"].shape == (2, 3, 12, 2, 4, 4, 4)
    assert data["L4/overlap"].shape == (2, 3, 12, 1)
    s = data["L4/configs"].astype(np.float64)
    np.testing.assert_allclose(data["L4/overlap"][..., 0], (s[:, :, :, 0] * s[:, :, :, 1]).mean(axis=(3, 4, 5)))
    with h5py.File(files[0]) as h:
        assert h["L4"].attrs["tempering_acceptance"].shape == (2,)
    for other in files[1:]:
        assert_same_data(files[0], other)


def test_signal_after_a_stage_stops_before_the_next(monkeypatch, tmp_path):
    """A SIGTERM that arrives after a stage's last poll (its output already committed) stops
    the pipeline before the next stage starts, with the resume hint; none after the last."""
    from mpi4py import MPI

    import hpc_rg.pipeline.sample as sample_mod
    import hpc_rg.pipeline.train as train_mod
    from hpc_rg.errors import StoppedBySignal
    from hpc_rg.parallel.comms import Comms
    from hpc_rg.pipeline.driver import run_pipeline
    from hpc_rg.pipeline.signals import StopFlag

    ran = []
    stop = StopFlag()

    def sample(cfg, comms, stop_, resume, device):
        ran.append("sample")
        stop_.signum = signal.SIGTERM  # the signal lands once the stage is past its polls

    monkeypatch.setattr(sample_mod, "run_sample", sample)
    monkeypatch.setattr(train_mod, "run_train", lambda *a: ran.append("train"))
    cfg = type("Cfg", (), {"output_dir": tmp_path})()
    comms = Comms(MPI.COMM_SELF)
    try:
        with pytest.raises(StoppedBySignal, match="after the sample stage.*--resume for train"):
            run_pipeline(cfg, comms, ("sample", "train"), stop, False, None)
        assert ran == ["sample"]
        run_pipeline(cfg, comms, ("sample",), stop, False, None)  # last: no error
        assert ran == ["sample", "sample"]
    finally:
        comms.free()
