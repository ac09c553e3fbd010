"""train and upscale end to end: DeepSpeed on 2 ranks, upscale identical on 1 and 2 ranks,
kill/resume of training, and clear one-line errors for user mistakes."""

import os
import shutil
import signal
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from conftest import FINISHED_RUN_DECKS, REPO, launch_env, run_hpc_rg
from helpers import assert_same_data, rank_pids, wait_for

DECK = """
run: {{name: sr, output: {out}, seed: 3, progress_seconds: 1}}
model: {{name: ising, dims: 2}}
sample: {{L: 8, temperatures: [2.0, 2.269185, 2.6], chains: 2, thermalize: 100, samples: 40,
         thin: 2, chunk: 20, reference_sizes: [4]}}
train: {{epochs: {epochs}, batch_size: 8, patience: {patience}, checkpoint_every: 5,
        network: {{depth: 2, width: 4}}}}
upscale: {{target_L: 32, batch: 5}}
"""


def make_deck(tmp_path, name="deck.yaml", epochs=3, patience=10, out=None):
    p = tmp_path / name
    p.write_text(DECK.format(out=out or tmp_path / "out", epochs=epochs, patience=patience))
    return p


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """sample + train + upscale on 2 ranks."""
    tmp = tmp_path_factory.mktemp("sr")
    deck = make_deck(tmp)
    r = run_hpc_rg([deck], nprocs=2)
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp, deck


def test_pipeline_writes_model_and_levels(pipeline):
    tmp, _ = pipeline
    out = tmp / "out"
    import hpc_rg.superres as sr
    model = sr.load(out / "model.pt")
    assert model.blocking == "majority" and model.temperatures == (2.0, 2.269185, 2.6)
    assert len(model.meta["history"]) >= 1 and model.meta["train_L"] == 8
    with h5py.File(out / "samples.h5") as f:
        assert set(f) == {"L8", "L4"} and f["L4"].attrs["size_complete"]
    with h5py.File(out / "upscaled.h5") as f:
        assert f.attrs["complete"] and f.attrs["stage"] == "upscale"
        assert set(f) == {"L16", "L32"}
        for L in (16, 32):
            g = f[f"L{L}"]
            assert g["configs"].shape == (3, 80, L, L) and g["configs"].dtype == np.int8
            assert set(np.unique(g["configs"][0, :4])) <= {-1, 1}
            assert g.attrs["source"] == "superres" and g.attrs["L"] == L
            assert g["temperatures"].shape == (3,)
            np.testing.assert_array_equal(g["nominal_temperatures"][()], [2.0, 2.269185, 2.6])
            c = g["consistency"][()]
            assert c.shape == (3, 80) and 0.5 < c.mean() <= 1.0
            # stored observables agree with the stored configurations
            s = g["configs"][1, :7].astype(np.float64)
            np.testing.assert_allclose(g["magnetization"][1, :7], s.mean(axis=(1, 2)))
            e = -(s * np.roll(s, 1, 1) + s * np.roll(s, 1, 2)).mean(axis=(1, 2))
            np.testing.assert_allclose(g["energy"][1, :7], e)


@pytest.mark.parametrize("nprocs", [1, 2])
def test_upscale_same_file_on_one_and_two_ranks(pipeline, tmp_path, nprocs):
    """Upscaling the same model and ensemble on 1 and on 2 ranks writes the same data."""
    tmp, deck = pipeline
    out = tmp_path / "out"
    out.mkdir()
    for name in ("samples.h5", "model.pt"):
        shutil.copy(tmp / "out" / name, out / name)
    r = run_hpc_rg([deck, "--stage", "upscale", "--set", f"run.output={out}"], nprocs=nprocs)
    assert r.returncode == 0, r.stdout + r.stderr
    assert_same_data(tmp / "out" / "upscaled.h5", out / "upscaled.h5")


def test_upscale_samples_spread_over_the_ensemble(pipeline, tmp_path):
    """upscale.samples = 7 of 80 takes inputs n·80 // 7 (all chains, not chain 0's first 7)."""
    from hpc_rg.methods import input_runs
    from hpc_rg.rg.blocking import majority_rule
    tmp, deck = pipeline
    out = tmp_path / "out"
    out.mkdir()
    for name in ("samples.h5", "model.pt"):
        shutil.copy(tmp / "out" / name, out / name)
    r = run_hpc_rg([deck, "--stage", "upscale", "--set", f"run.output={out}",
                    "--set", "upscale.samples=7"], nprocs=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert input_runs(0, 7, 7, 80) == [(i * 80 // 7, i * 80 // 7 + 1) for i in range(7)]
    assert input_runs(2, 6, 80, 80) == [(2, 6)]
    with h5py.File(out / "samples.h5") as f, h5py.File(out / "upscaled.h5") as g:
        assert g["L16"].attrs["input_count"] == 80 and g["L16/configs"].shape[:2] == (3, 7)
        coarse = f["L8/configs"][2].astype(np.float32)  # T = 2.6: configurations differ
        fine = torch.from_numpy(g["L16/configs"][2].astype(np.float32))
        blocked = majority_rule(fine, dims=2).numpy()
        agree = (blocked[:, None] == coarse[None]).mean(axis=(2, 3))  # (7, 80)
        assert list(agree.argmax(axis=1)) == [n * 80 // 7 for n in range(7)]


def test_train_without_samples_is_a_one_line_error(tmp_path):
    r = run_hpc_rg([make_deck(tmp_path), "--stage", "train"])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "samples.h5: no Monte Carlo ensemble (run --stage sample first)" in r.stderr
    assert "Traceback" not in r.stderr


def test_upscale_without_model_is_a_one_line_error(pipeline, tmp_path):
    tmp, deck = pipeline
    out = tmp_path / "o"
    out.mkdir()
    shutil.copy(tmp / "out" / "samples.h5", out / "samples.h5")
    r = run_hpc_rg([deck, "--stage", "upscale", "--set", f"run.output={out}"])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "model.pt: no such model file" in r.stderr and "Traceback" not in r.stderr


def test_bad_deepspeed_config_is_a_one_line_error(pipeline, tmp_path):
    tmp, deck = pipeline
    out = tmp_path / "o"
    out.mkdir()
    shutil.copy(tmp / "out" / "samples.h5", out / "samples.h5")
    r = run_hpc_rg([deck, "--stage", "train", "--set", f"run.output={out}",
                    "--set", "train.deepspeed={train_batch_size: 7}"])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "train.deepspeed: DeepSpeed rejected the configuration" in r.stderr
    assert not (out / "model.pt").exists()


def test_resume_refuses_a_pickled_training_checkpoint(pipeline, tmp_path):
    """A copied run whose DeepSpeed checkpoint carries a pickled object (one that would run a
    shell command): --resume refuses it in one line, and nothing of it runs."""
    from helpers import RunsCode
    tmp, deck = pipeline
    out = tmp_path / "o"
    shutil.copytree(tmp / "out", out)
    (out / "model.pt").unlink()
    (out / "upscaled.h5").unlink()
    ckdir = out / "checkpoints" / "train"
    tag = (ckdir / "latest").read_text().strip()
    marker = tmp_path / "code-ran"
    for f in (ckdir / tag).glob("*.pt"):
        blob = torch.load(f, weights_only=True)
        blob["loop"]["payload"] = RunsCode(marker)
        torch.save(blob, f)
    r = run_hpc_rg([deck, "--stage", "train", "--resume", "--set", f"run.output={out}"], nprocs=2)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "pickled Python objects" in ln]
    assert len(lines) == 1 and "could run code" in lines[0] and "Traceback" not in r.stderr
    assert not marker.exists() and not (out / "model.pt").exists()


def test_train_sigterm_then_resume_equals_uninterrupted(pipeline, tmp_path):
    """SIGTERM to both ranks mid-training -> exit 3; --resume gives the same model."""
    tmp, _ = pipeline
    models = {}
    for mode in ("straight", "killed"):
        out = tmp_path / mode
        out.mkdir()
        shutil.copy(tmp / "out" / "samples.h5", out / "samples.h5")
        deck = make_deck(tmp_path, f"{mode}.yaml", epochs=60, patience=1000, out=out)
        if mode == "straight":
            r = run_hpc_rg([deck, "--stage", "train"], nprocs=2)
            assert r.returncode == 0, r.stdout + r.stderr
        else:
            cmd = ["mpirun", "-n", "2", sys.executable, "-m", "hpc_rg", str(deck), "--stage", "train"]
            proc = subprocess.Popen(cmd, cwd=REPO, env=launch_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            ck = out / "checkpoints" / "train"
            ok = wait_for(lambda: len(list(ck.glob("step*"))) >= 2, 240, proc)
            assert ok, proc.communicate()
            for pid in rank_pids(proc.pid):
                os.kill(pid, signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 3, stdout + stderr
            assert "rerun with --resume" in stderr and not (out / "model.pt").exists()
            r = run_hpc_rg([deck, "--stage", "train"])  # without --resume: refused, one line
            assert r.returncode == 2 and "holds an unfinished training" in r.stderr, r.stderr
            r = run_hpc_rg([deck, "--stage", "train", "--resume"], nprocs=2)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "resuming at step" in r.stdout
        models[mode] = torch.load(out / "model.pt", weights_only=True)
    a, b = models["straight"], models["killed"]
    assert a["meta"]["epochs_run"] == b["meta"]["epochs_run"] == 60
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=0)


OTHER_MODELS = {m: FINISHED_RUN_DECKS[m] for m in ("edwards_anderson", "phi4")}


@pytest.mark.parametrize("model", sorted(OTHER_MODELS))
def test_spin_glass_overlaps_and_phi4_run_end_to_end(tmp_path, model):
    deck = tmp_path / "deck.yaml"
    deck.write_text(OTHER_MODELS[model].format(out=tmp_path / "out"))
    r = run_hpc_rg([deck])
    assert r.returncode == 0, r.stdout + r.stderr
    with h5py.File(tmp_path / "out" / "upscaled.h5") as f:
        if model == "edwards_anderson":
            g = f["L16"]
            assert g.attrs["overlap_configs"] and g.attrs["blocking"] == "overlap"
            # N = disorder x samples x replica pairs (0,1), (2,3)
            assert g["configs"].shape == (2, 2 * 10 * 2, 16, 16, 16)
            rho = g["configs"][1].astype(np.float64)
            np.testing.assert_allclose(g["overlap"][1], rho.mean(axis=(1, 2, 3)))
        else:
            g = f["L32"]
            assert g["configs"].dtype == np.float32 and g["configs"].shape == (2, 20, 32, 32)
            phi = g["configs"][0].astype(np.float64)
            np.testing.assert_allclose(g["phi_mean"][0], phi.mean(axis=(1, 2)), rtol=1e-6)
            assert 0.5 < g["consistency"][()].mean() <= 1.0


def test_temperature_conditioned_network(pipeline, tmp_path):
    """train.network.conditioned: one network for all temperatures, conditioned on the
    effective temperature of each level."""
    tmp, deck = pipeline
    out = tmp_path / "o"
    out.mkdir()
    shutil.copy(tmp / "out" / "samples.h5", out / "samples.h5")
    r = run_hpc_rg([deck, "--stage", "train", "--set", f"run.output={out}",
                    "--set", "train.network.conditioned=true"], nprocs=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 network(s)" in r.stdout
    r = run_hpc_rg([deck, "--stage", "upscale", "--set", f"run.output={out}"])
    assert r.returncode == 0, r.stdout + r.stderr
    import hpc_rg.superres as sr
    model = sr.load(out / "model.pt")
    assert model.spec.conditioned and len(model.bank.nets) == 1
    with h5py.File(out / "upscaled.h5") as f:
        g = f["L16"]
        eff, net_t = g["temperatures"][()], g.attrs["network_temperatures"]
        nominal = g["nominal_temperatures"][()]
        np.testing.assert_array_equal(np.where(np.isfinite(eff), eff, nominal), net_t)
