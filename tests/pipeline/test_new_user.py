"""What a new user meets first (issue #12): the quick start ends with an analysis and
pictures and prints no NaN temperatures, the default kernel is the fastest one here and
says so, one temperature runs on two ranks, and a missing grid is named as such."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import pytest

from conftest import REPO, launch_env, run_hpc_rg
from hpc_rg.mc import compiled

ONE_T = """
run: {{name: one, output: {out}, seed: 5, progress_seconds: 1}}
model: {{name: ising, dims: 2}}
sample: {{L: 8, temperatures: [2.5], thermalize: 20, samples: 10, thin: 2, chunk: 5}}
"""


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """inputs/quickstart.yaml as `make quickstart` runs it (2 ranks), output in a temp dir."""
    out = tmp_path_factory.mktemp("qs") / "run"
    r = run_hpc_rg(["inputs/quickstart.yaml", "--set", f"run.output={out}"], nprocs=2, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r.stdout + r.stderr


def test_quickstart_ends_with_analysis_and_plots(quickstart):
    out, log = quickstart
    assert (out / "analysis.h5").is_file()
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert "curves.png" in pngs and any(p.startswith("snapshots_") for p in pngs), pngs
    assert any(p.startswith("histograms_") for p in pngs)
    assert f"plot(s) in {out / 'plots'}/: " in log and "curves.png" in log
    with h5py.File(out / "analysis.h5") as f:
        assert {"samples", "upscaled"} <= set(f)


def test_quickstart_prints_no_nan_temperature(quickstart):
    """Temperatures outside the measured flow read 'outside', explained once per table."""
    out, log = quickstart
    assert "T_eff=nan" not in log and "->?" not in log
    tables = log[log.index("[upscale] levels:"):]
    assert " nan " not in tables.replace("\n", " \n ") and "\nnan " not in tables
    with h5py.File(out / "upscaled.h5") as f:
        import numpy as np
        n_outside = sum(int((~np.isfinite(f[g]["temperatures"][()])).sum()) for g in f)
    assert n_outside > 0  # the quick start has temperatures beyond the measured flow
    assert "T_eff=outside" in log and log.count("outside the measured temperature flow") == 2
    assert "outside the measured flow (no f(T)): T = 1.9000" in log


def test_quickstart_runs_the_fastest_kernel_and_says_why(quickstart):
    from hpc_rg.config import load_config
    from hpc_rg.mc.kernels import choose_spin_kernel

    _, log = quickstart
    cfg = load_config(REPO / "inputs" / "quickstart.yaml")
    choice = choose_spin_kernel("auto", cfg.model, cfg.sample.algorithm, "cpu")
    assert f"[sample] Monte Carlo kernel: {choice.kernel} ({choice.why})" in log
    assert log.count("Monte Carlo kernel:") == 1


def test_one_temperature_on_two_ranks_takes_two_chains(write_yaml, tmp_path):
    deck = write_yaml(ONE_T.format(out=tmp_path / "o"))
    r = run_hpc_rg([deck, "--dry-run"], nprocs=2)
    assert r.returncode == 0, r.stderr
    assert "# sample.chains: auto -> 2 chain(s) per grid point (2 replica group(s), 1 temperature(s))" \
        in r.stdout and "chains: 2" in r.stdout
    r = run_hpc_rg([deck, "--dry-run"], nprocs=1)
    assert "auto -> 1 chain(s)" in r.stdout
    r = run_hpc_rg([deck], nprocs=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "sample.chains: auto -> 2" in r.stdout
    with h5py.File(tmp_path / "o" / "samples.h5") as f:
        assert f["L8"]["configs"].shape == (1, 20, 8, 8) and f["L8"].attrs["chains"] == 2


def test_missing_couplings_on_two_ranks_names_the_key(write_yaml, tmp_path):
    deck = write_yaml(ONE_T.format(out=tmp_path / "o").replace("name: ising", "name: phi4")
                      .replace("temperatures: [2.5], ", ""))
    r = run_hpc_rg([deck], nprocs=2)
    assert r.returncode == 2
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("hpc_rg: error:")]
    assert len(errors) == 1 and "sample.couplings: required for model phi4" in errors[0], r.stderr
    assert "ranks" not in errors[0] and not (tmp_path / "o").exists()


def test_ranks_build_the_kernel_once_with_a_read_only_home(write_yaml, tmp_path):
    """Two ranks, no writable ~/.cache, nothing built yet: rank 0 compiles once into the
    per-user temporary cache, both ranks run the compiled kernel."""
    from helpers import counting_compiler, read_only_home_env
    if compiled.choose_kernel("auto", "ising", "metropolis")[0] != "compiled":
        pytest.fail("no compiler or AVX2 here: the compiled kernels do not apply")
    cxx, log = counting_compiler(tmp_path)
    home = read_only_home_env(tmp_path, cxx)
    env = {k: v for k, v in launch_env().items() if k != "HPC_RG_KERNEL_CACHE"}
    env.update({k: home[k] for k in ("XDG_CACHE_HOME", "TMPDIR", "CXX")})
    deck = write_yaml(ONE_T.format(out=tmp_path / "o"))
    r = subprocess.run(["mpirun", "-n", "2", sys.executable, "-m", "hpc_rg", str(deck)], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "[sample] Monte Carlo kernel: msc (multi-spin coded" in r.stdout  # ±J Ising: MSC
    assert log.read_text().split() == ["compile"]  # the MSC kernel only, once
    assert list((tmp_path / "tmp" / f"hpc_rg-kernels-{os.getuid()}").glob("msc-*.so"))


def test_a_deck_with_upscale_but_no_train_section_trains_first(write_yaml, tmp_path):
    """Before: sample ran, then 'model.pt: no such model file'. Now train runs with defaults."""
    deck = write_yaml(ONE_T.format(out=tmp_path / "o") + "upscale: {target_L: 16}\n")
    r = run_hpc_rg([deck, "--dry-run"])
    assert r.returncode == 0 and "# stages: sample, train, upscale;" in r.stdout, r.stdout


def test_too_few_samples_for_the_batch_is_one_line_on_two_ranks(write_yaml, tmp_path):
    """Decided alike on every rank (a reduction): printed once, exit 2, the process group torn
    down cleanly (no MPI_ABORT noise, no gloo crash at exit)."""
    deck = write_yaml(ONE_T.format(out=tmp_path / "o").replace("samples: 10", "samples: 5")
                      + "train: {batch_size: 8, epochs: 1}\n")
    r = run_hpc_rg([deck], nprocs=2)
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [ln for ln in r.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "train.batch_size=8: a rank holds only" in errors[0], r.stderr
    assert "MPI_ABORT" not in r.stderr and "terminate called" not in r.stderr
