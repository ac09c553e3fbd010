"""Surviving kills (issue #6): every stage killed with SIGTERM or SIGKILL at a random point,
then ``--resume``, gives the same data as an uninterrupted run; outputs never look
complete when they are not; disk-full and unwritable outputs give one clear line.

The kill points are random but reproducible: the seed is printed (``KILL_SEED=...``) and
can be set from the environment to replay a failure. The SIGTERM case of the sample stage
is in test_cli.py (test_sigterm_then_resume_equals_uninterrupted).
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import torch

from conftest import REPO, launch_env, run_hpc_rg
from helpers import assert_same_data, rank_pids, wait_for

KILL_SEED = int(os.environ.get("KILL_SEED", random.SystemRandom().randrange(2**31)))

DECK = """
run: {{name: kr, output: {out}, seed: 11, progress_seconds: 1}}
model: {{name: ising, dims: 2}}
sample: {{L: 8, temperatures: [2.0, 2.6], chains: 2, thermalize: 40, samples: 240, thin: 2,
         chunk: 20, reference_sizes: [4]}}
train: {{epochs: 6, batch_size: 8, patience: 1000, checkpoint_every: 3,
        network: {{depth: 2, width: 4}}}}
upscale: {{target_L: 32, batch: 2, samples: 200}}
"""
SAMPLE_CHUNKS = 240 // 20


def write_deck(path: Path, out: Path) -> Path:
    path.write_text(DECK.format(out=out))
    return path


def kill_rng(name: str) -> random.Random:
    print(f"kill points: KILL_SEED={KILL_SEED} ({name})")
    return random.Random(f"{KILL_SEED}-{name}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: sample + train + upscale on 2 ranks."""
    tmp = tmp_path_factory.mktemp("kr_ref")
    deck = write_deck(tmp / "ref.yaml", tmp / "out")
    r = run_hpc_rg([deck], nprocs=2, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return tmp / "out"


def kill_during(deck: Path, stage: str, sig: int, started, rng: random.Random,
                max_delay: float, timeout: float = 180):
    """Launch ``--stage stage`` on 2 ranks; once ``started()`` is true, wait a random
    fraction of ``max_delay`` seconds, then send ``sig`` to every rank (SIGKILL: the
    mpirun too). Returns (finished_before_kill, stdout, stderr, returncode)."""
    cmd = ["mpirun", "-n", "2", sys.executable, "-m", "hpc_rg", str(deck), "--stage", stage]
    proc = subprocess.Popen(cmd, cwd=REPO, env=launch_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        ok = wait_for(started, timeout, proc)
        delay = rng.uniform(0, max_delay)
        print(f"{stage}: {'started' if ok else 'not seen starting'}; kill with "
              f"{signal.Signals(sig).name} after {delay:.3f} s more")
        time.sleep(delay)
        finished = proc.poll() is not None
        pids = rank_pids(proc.pid)
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if sig == signal.SIGKILL:
            try:
                proc.kill()
            except ProcessLookupError:
                pass
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if finished:
        print(f"{stage}: the job had finished before the kill (rc {proc.returncode}); "
              f"checking the resume and the data all the same")
    return finished, stdout, stderr, proc.returncode


def check_not_complete_looking(out: Path, name: str) -> bool:
    """A file under its final name must be complete; True if it exists."""
    final = out / name
    if not final.exists():
        return False
    if name.endswith(".h5"):
        with h5py.File(final, "r") as f:
            assert f.attrs["complete"], f"{final} exists but is not marked complete"
    else:
        blob = torch.load(final, weights_only=True)
        assert blob["format"] == "hpc_rg.superres"
    return True


def resume(deck: Path, stage: str):
    r = run_hpc_rg([deck, "--stage", stage, "--resume"], nprocs=2, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return r


def check_samples(path: Path) -> None:
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"]
        for g in ("L8", "L4"):
            grp = f[g]
            assert grp.attrs["size_complete"] and grp.attrs["chunks_done"] == SAMPLE_CHUNKS
            configs = grp["configs"][()]
            # nothing lost: every configuration row written (spins are +-1, never 0)
            assert (configs != 0).all(), f"{g}: unwritten configuration rows"


def check_upscaled(path: Path) -> None:
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"]
        for g in ("L16", "L32"):
            configs = f[g]["configs"][()]
            assert (configs != 0).all(), f"{g}: unwritten configuration rows"
            assert (f[g]["consistency"][()] > 0).all()


def assert_same_model(a: Path, b: Path) -> None:
    ma, mb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert ma["state_dict"].keys() == mb["state_dict"].keys()
    for k in ma["state_dict"]:
        torch.testing.assert_close(ma["state_dict"][k], mb["state_dict"][k], rtol=0, atol=0)
    for key in ("epochs_run", "best_epoch", "best_validation_loss", "history"):
        assert ma["meta"][key] == mb["meta"][key], key


def no_partials(out: Path) -> None:
    left = sorted(p.name for p in out.iterdir() if p.name.endswith((".partial", ".tmp")))
    assert not left, left


# ------------------------------------------------------------------------------ sample
def test_sample_sigkill_then_resume_equals_uninterrupted(reference, tmp_path):
    rng = kill_rng("sample-SIGKILL")
    out = tmp_path / "out"
    deck = write_deck(tmp_path / "deck.yaml", out)
    finished, stdout, stderr, rc = kill_during(
        deck, "sample", signal.SIGKILL,
        lambda: (out / "samples.h5.partial").exists() or (out / "samples.h5").exists(),
        rng, max_delay=3.0)
    check_not_complete_looking(out, "samples.h5")
    r = resume(deck, "sample")
    check_samples(out / "samples.h5")
    assert_same_data(reference / "samples.h5", out / "samples.h5")
    no_partials(out)
    assert not list((out / "checkpoints").glob("sample*"))


def test_a_kill_while_the_size_check_is_recorded_resumes(reference, tmp_path):
    """The check across sizes writes its attributes after the stage has finished, with the
    file renamed back to ``.partial``: a kill there leaves a complete-data file under the
    partial name, which ``--resume`` reopens, finds every size done, and completes."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(reference / "samples.h5", out / "samples.h5.partial")
    with h5py.File(out / "samples.h5.partial", "r+") as f:
        assert bool(f["L8"].attrs["size_check_passed"])  # the 2-size run recorded it
        for k in [k for k in f["L8"].attrs if k.startswith("size_check")]:
            del f["L8"].attrs[k]  # killed before the attributes were written
    deck = write_deck(tmp_path / "deck.yaml", out)
    check_not_complete_looking(out, "samples.h5")
    r = resume(deck, "sample")
    assert "[sample] sizes: L=8 against L=4" in r.stdout + r.stderr
    check_samples(out / "samples.h5")
    assert_same_data(reference / "samples.h5", out / "samples.h5")
    with h5py.File(out / "samples.h5") as f:
        assert bool(f["L8"].attrs["size_check_passed"]) and f["L8"].attrs["size_check_against"] == 4
    no_partials(out)


# ------------------------------------------------------------------------------ train
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_train_killed_then_resume_equals_uninterrupted(reference, tmp_path, sig):
    rng = kill_rng(f"train-{sig.name}")
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(reference / "samples.h5", out / "samples.h5")
    deck = write_deck(tmp_path / "deck.yaml", out)
    ck = out / "checkpoints" / "train"
    finished, stdout, stderr, rc = kill_during(
        deck, "train", sig, lambda: (ck / "latest").exists() or (out / "model.pt").exists(),
        rng, max_delay=4.0)
    if sig == signal.SIGTERM and not finished and rc == 3:
        assert "rerun with --resume" in stderr
    # a kill that lands after model.pt was committed (teardown) leaves nothing to resume
    model_written = check_not_complete_looking(out, "model.pt")
    r = resume(deck, "train")
    if (ck / "latest").exists() and not model_written and rc != 0:
        assert "resuming at step" in r.stdout, r.stdout
    elif model_written:
        assert "is complete; skipping" in r.stdout, r.stdout
    assert_same_model(reference / "model.pt", out / "model.pt")
    no_partials(out)
    # the committed checkpoint and at most one before it; nothing half-written
    tags = sorted(p.name for p in ck.iterdir() if p.is_dir())
    assert 1 <= len(tags) <= 2, tags
    assert (ck / "latest").read_text().strip() in tags


# ------------------------------------------------------------------------------ upscale
def upscale_dir(reference: Path, tmp_path: Path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    out.mkdir()
    for name in ("samples.h5", "model.pt"):
        shutil.copy(reference / name, out / name)
    return out, write_deck(tmp_path / "deck.yaml", out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_upscale_killed_then_resume_equals_uninterrupted(reference, tmp_path, sig):
    rng = kill_rng(f"upscale-{sig.name}")
    out, deck = upscale_dir(reference, tmp_path)
    finished, stdout, stderr, rc = kill_during(
        deck, "upscale", sig,
        lambda: (out / "upscaled.h5.partial").exists() or (out / "upscaled.h5").exists(),
        rng, max_delay=2.0)
    if sig == signal.SIGTERM and not finished and rc == 3:
        assert "rerun with --resume" in stderr
    check_not_complete_looking(out, "upscaled.h5")
    resume(deck, "upscale")
    check_upscaled(out / "upscaled.h5")
    assert_same_data(reference / "upscaled.h5", out / "upscaled.h5")
    no_partials(out)
    assert not list((out / "checkpoints").glob("upscale*"))


def test_unreadable_partial_file_is_rebuilt_not_resumed(reference, tmp_path):
    """A .partial file wrecked by a crash (here: its superblock overwritten after SIGKILL)
    is detected on --resume and the stage starts again: the result is still right."""
    out, deck = upscale_dir(reference, tmp_path)
    partial = out / "upscaled.h5.partial"
    ckdir = out / "checkpoints"
    finished, *_ = kill_during(deck, "upscale", signal.SIGKILL,
                               lambda: ckdir.exists() and any(ckdir.glob("upscale.rank*.pt")),
                               random.Random(0), max_delay=0.0)
    wrecked = partial.exists() and not (out / "upscaled.h5").exists()
    if wrecked:
        with open(partial, "r+b") as fh:
            fh.write(b"\0" * 4096)
    else:
        print("upscale finished before the kill; nothing to wreck")
    r = resume(deck, "upscale")
    if wrecked:
        assert "unreadable or incomplete" in r.stdout + r.stderr, r.stdout + r.stderr
    assert_same_data(reference / "upscaled.h5", out / "upscaled.h5")


def test_checkpoint_ahead_of_the_data_is_not_trusted(reference, tmp_path):
    """A sample checkpoint claiming more chunks than the file records (data lost) makes the
    resume redo that size instead of leaving unwritten rows."""
    for attempt, max_delay in enumerate((0.5, 0.1, 0.0)):  # stop it mid-stage, however loaded
        out = tmp_path / f"out{attempt}"
        deck = write_deck(tmp_path / f"deck{attempt}.yaml", out)
        ckdir = out / "checkpoints"
        kill_during(deck, "sample", signal.SIGTERM,
                    lambda: ckdir.exists() and any(ckdir.glob("sample.rank0.*.pt")),
                    random.Random(1), max_delay=max_delay)
        partial = out / "samples.h5.partial"
        if partial.exists():
            break
    assert partial.exists(), "the sample stage finished before SIGTERM in all three attempts"
    with h5py.File(partial, "r+") as f:  # pretend the chunks never reached the disk
        g = next(g for g in ("L8", "L4") if not f[g].attrs["size_complete"])
        f[g].attrs["chunks_done"] = 0
        f[f"{g}/configs"][...] = 0
    name = "sample" if g == "L8" else f"sample_{g}"
    newest = max(ckdir.glob(f"{name}.rank0.*.pt"), key=lambda p: int(p.name.split(".")[-2]))
    claimed = torch.load(newest, weights_only=False)["chunks_done"]
    r = resume(deck, "sample")
    if claimed > 0:
        assert "ahead of the data" in r.stdout + r.stderr, r.stdout + r.stderr
    check_samples(out / "samples.h5")
    assert_same_data(reference / "samples.h5", out / "samples.h5")


# ------------------------------------------------------------------ unwritable outputs
def _one_line_error(r, *needles):
    assert r.returncode != 0, r.stdout + r.stderr
    text = r.stdout + r.stderr
    assert "Traceback" not in text, text
    lines = [l for l in r.stderr.splitlines() if "cannot write" in l]
    assert lines, text
    for n in needles:
        assert n in lines[0], lines[0]
    print(lines[0])
    return lines[0]


def test_output_under_a_file_is_a_one_line_error(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    deck = write_deck(tmp_path / "deck.yaml", blocker / "out")
    r = run_hpc_rg([deck, "--stage", "sample"], nprocs=2, timeout=120)
    _one_line_error(r, str(blocker / "out"), "not a directory")


@pytest.fixture
def mount_point(tmp_path):
    """Mount helper (root only): yields mount(spec...) and unmounts everything after."""
    mounted = []

    def mount(*args, target: Path):
        target.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount here ({r.stderr.strip() or r.returncode}); needs root "
                        f"with CAP_SYS_ADMIN")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        for _ in range(50):  # a killed job may still hold files for a moment
            if subprocess.run(["umount", str(target)], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)


def test_read_only_output_is_a_one_line_error(tmp_path, mount_point):
    src = tmp_path / "src"
    src.mkdir()
    ro = mount_point("-o", "bind,ro", str(src), target=tmp_path / "ro")
    deck = write_deck(tmp_path / "deck.yaml", ro / "out")
    r = run_hpc_rg([deck, "--stage", "sample"], nprocs=2, timeout=120)
    _one_line_error(r, str(ro / "out"), "read-only file system")


def test_disk_full_is_a_one_line_error(tmp_path, mount_point):
    full = mount_point("-t", "tmpfs", "-o", "size=128k", "tmpfs", target=tmp_path / "full")
    deck = write_deck(tmp_path / "deck.yaml", full / "out")
    r = run_hpc_rg([deck, "--stage", "sample"], nprocs=2, timeout=120)
    _one_line_error(r, str(full / "out"), "the disk is full")
    assert not (full / "out" / "samples.h5").exists()


def test_disk_full_model_and_checkpoint_unit(tmp_path, monkeypatch):
    """ENOSPC from the writers of model.pt and of the rank checkpoints: one line naming the
    path, nothing left under the final name."""
    from mpi4py import MPI

    from hpc_rg.errors import OutputError
    from hpc_rg.io.checkpoint import RankCheckpoints
    from hpc_rg.io.writer import _os_error
    from hpc_rg.superres.modelfile import save_model
    from hpc_rg.superres.network import NetworkBank, NetworkSpec

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    bank = NetworkBank(NetworkSpec(dims=2, depth=2, width=4, temperatures=(2.0,)))
    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OutputError) as e:
        save_model(tmp_path / "model.pt", bank, {})
    assert str(e.value) == f"{tmp_path / 'model.pt'}: cannot write the model: the disk is full"
    assert not list(tmp_path.iterdir())
    ck = RankCheckpoints(tmp_path / "ck", "sample", MPI.COMM_SELF)
    with pytest.raises(OutputError) as e:
        ck.save(0, {"x": 1})
    assert "sample.rank0.0.pt: cannot write checkpoint: the disk is full" in str(e.value)
    assert ck.load_latest() is None and not list((tmp_path / "ck").iterdir())
    msg = str(_os_error(tmp_path / "x.h5", OSError(errno.ENOSPC, "No space left on device")))
    assert msg == f"{tmp_path / 'x.h5'}: cannot write output: the disk is full"
    monkeypatch.undo()
    # a real OSError as root: the model's directory is a file
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError) as e:
        save_model(tmp_path / "f" / "model.pt", bank, {})
    assert "model.pt: cannot write the model: a parent is not a directory" in str(e.value)


def test_checkpoint_files_are_atomic_and_tmp_debris_ignored(tmp_path):
    """A torn ``.tmp`` of a killed save is never loaded and is cleared; an unreadable
    committed checkpoint is a clear error, not a resume from garbage."""
    from mpi4py import MPI

    from hpc_rg.errors import InputFileError
    from hpc_rg.io.checkpoint import RankCheckpoints

    ck = RankCheckpoints(tmp_path, "upscale", MPI.COMM_SELF)
    for seq in range(4):
        ck.save(seq, {"done": seq})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upscale.rank0.2.pt", "upscale.rank0.3.pt"]
    (tmp_path / "upscale.rank0.4.pt.tmp").write_bytes(b"torn")
    assert ck.load_latest() == (3, {"done": 3})
    (tmp_path / "upscale.rank0.3.pt").write_bytes(b"garbage")
    with pytest.raises(InputFileError, match="unreadable"):
        ck.load_latest()
    ck.clear()
    assert not list(tmp_path.iterdir())
