"""End to end: ``train.method: flow_rg`` / ``flow_checkerboard`` through ``python -m hpc_rg``.

Tiny decks (φ⁴ 4 → 8 → 16 with flow_rg; Ising 4 → 8 with flow_checkerboard through the
continuous relaxation) on 2 ranks: model.pt is tensor-only, upscaled.h5 follows the contract
with the MH diagnostics, and an upscale on 1 rank writes the same data as on 2 ranks.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from conftest import run_hpc_rg

PHI4 = """
run: {{name: flow_phi4, output: {out}, seed: 3, progress_seconds: 5}}
model: {{name: phi4, dims: 2, parametrization: bauer, lam: 0.02}}
sample: {{L: 4, couplings: [0.15, 0.3], algorithm: metropolis, chains: 2, thermalize: 50,
         samples: 64, thin: 2, chunk: 64}}
train: {{method: flow_rg, checkpoint_every: 10, flow: {{layers: 2, width: 4, depth: 1, steps: 12,
        batch: 8}}}}
upscale: {{target_L: 16, batch: 16, samples: 48, mh_chains: 2, hmc: {{trajectories: 0}}}}
"""

ISING = """
run: {{name: flow_ising, output: {out}, seed: 4, progress_seconds: 5}}
model: {{name: ising, dims: 2}}
sample: {{L: 4, temperatures: [2.269185, 3.0], algorithm: wolff, chains: 2, thermalize: 50,
         samples: 64, thin: 1, chunk: 64}}
train: {{method: flow_checkerboard, flow: {{layers: 2, width: 4, depth: 1, steps: 12, batch: 8,
        reg_weight: 1.0, reg_steps: 5}}}}
upscale: {{target_L: 8, batch: 16, samples: 40, mh_chains: 3, hmc: {{trajectories: 0}}}}
"""


PHI4_IR = PHI4.replace("batch: 8}}}}", "batch: 8, ir_matching: true, ir_hmc_trajectories: 5}}}}")
PHI4_UV = PHI4.replace("batch: 8}}}}", "batch: 8, uv_matching: true, uv_reference: 16, "
                                        "uv_hmc_trajectories: 10}}}}")


def _run_deck(tmp_path, text, name):
    out = tmp_path / name
    deck = tmp_path / f"{name}.yaml"
    deck.write_text(text.format(out=out))
    r = run_hpc_rg([deck], nprocs=2, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp_path / f"{name}.log").write_text(r.stdout + r.stderr)
    return deck, out


def _upscale_on_one_rank(deck, out, tmp_path, *extra):
    """Upscale ``out``'s samples.h5 and model.pt again on 1 rank; returns the new output."""
    out1 = tmp_path / "one"
    out1.mkdir()
    for name in ("samples.h5", "model.pt"):
        shutil.copy(out / name, out1 / name)
    r = run_hpc_rg([deck, "--stage", "upscale", "--set", f"run.output={out1}", *extra], nprocs=1)
    assert r.returncode == 0, r.stdout + r.stderr
    return out1


def _assert_one_line_error(deck, args, message):
    """``--dry-run`` of ``deck`` with ``args`` exits 2 with one error line containing
    ``message``."""
    r = run_hpc_rg([deck, *args, "--dry-run"])
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("hpc_rg: error:")]
    assert len(lines) == 1 and message in lines[0], r.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flows")
    return {"phi4": _run_deck(tmp, PHI4, "phi4"), "ising": _run_deck(tmp, ISING, "ising"),
            "phi4_ir": _run_deck(tmp, PHI4_IR, "phi4_ir"),
            "phi4_uv": _run_deck(tmp, PHI4_UV, "phi4_uv")}


def test_uv_matching_learns_fine_couplings_and_upscale_records_them(runs, tmp_path):
    """train.flow.uv_matching: every level learns its fine κ (stored in model.pt); each
    upscaled level's effective couplings are that κ (nominal beside them), and the upscale
    does not depend on the rank count."""
    deck, out = runs["phi4_uv"]
    meta = torch.load(out / "model.pt", weights_only=True)["meta"]
    fine = meta["fine_couplings"]
    log = (out.parent / "phi4_uv.log").read_text()  # the progress line shows the learned κ
    assert "12/12 steps (100%)" in log and \
        "level 2 loss" in log and f"kappa_2L {fine[1][0]:.4f} {fine[1][1]:.4f}" in log, log
    assert meta["coarse_couplings"] is None
    assert len(fine) == 2 and all(len(k) == 2 for k in fine), fine
    assert all(abs(a - b) > 1e-4 for a, b in zip(fine[0], meta["grid"])), fine
    assert all(abs(a - b) > 1e-5 for a, b in zip(fine[1], fine[0])), fine
    out1 = _upscale_on_one_rank(deck, out, tmp_path)
    with h5py.File(out / "upscaled.h5", "r") as a, h5py.File(out1 / "upscaled.h5", "r") as b:
        for level, g in enumerate(("L8", "L16")):
            np.testing.assert_allclose(a[g]["couplings"][()], fine[level])
            np.testing.assert_allclose(a[g]["nominal_temperatures"][()], meta["grid"])
            np.testing.assert_allclose(a[g].attrs["uv_fine_kappa"], fine[level])
            assert a[g].attrs["rescaled"]
            assert np.all(np.isfinite(a[g]["configs"][()]))
            for d in a[g]:
                assert np.array_equal(a[g][d][()], b[g][d][()], equal_nan=True), (g, d)


def test_ir_matching_learns_coarse_couplings_and_upscale_uses_them(runs, tmp_path):
    """train.flow.ir_matching: κ_L is learned per coupling and stored in model.pt; the upscale
    moves the stored 4×4 fields to κ_L (exact HMC), records κ_L, and does not depend on the
    rank count."""
    deck, out = runs["phi4_ir"]
    meta = torch.load(out / "model.pt", weights_only=True)["meta"]
    kl = meta["coarse_couplings"]
    assert len(kl) == 2 and all(abs(a - b) > 1e-4 for a, b in zip(kl, meta["grid"])), kl
    log = (out.parent / "phi4_ir.log").read_text()
    assert "level 1 loss" in log and f"kappa_L {kl[0]:.4f} {kl[1]:.4f}" in log, log
    assert torch.load(runs["phi4"][1] / "model.pt", weights_only=True)["meta"]["coarse_couplings"] is None
    out1 = _upscale_on_one_rank(deck, out, tmp_path)
    with h5py.File(out / "upscaled.h5", "r") as a, h5py.File(out1 / "upscaled.h5", "r") as b:
        for g in a:
            np.testing.assert_allclose(a[g].attrs["ir_coarse_kappa"], kl)
            assert np.all(np.isfinite(a[g]["configs"][()]))
            for d in a[g]:
                assert np.array_equal(a[g][d][()], b[g][d][()], equal_nan=True), (g, d)


@pytest.mark.parametrize("model", ["phi4", "ising"])
def test_model_file_is_tensor_only(runs, model):
    from hpc_rg.flows.modelfile import load_flow_model
    _, out = runs[model]
    blob = torch.load(out / "model.pt", weights_only=True)
    assert blob["format"] == "hpc_rg.flows"
    meta = blob["meta"]
    assert meta["method"] == ("flow_rg" if model == "phi4" else "flow_checkerboard")
    assert meta["levels"] == (2 if model == "phi4" else 1)
    assert meta["sizes"] == ([4, 8, 16] if model == "phi4" else [4, 8])
    assert len(meta["grid"]) == 2 and meta["flow"]["width"] == 4
    assert meta["provenance"]["stage"] == "train"
    bank, _ = load_flow_model(out / "model.pt")
    assert len(bank.chains) == 2 and len(bank.chains[0].levels) == meta["levels"]


@pytest.mark.parametrize("model", ["phi4", "ising"])
def test_upscaled_contract_and_mh_attrs(runs, model):
    _, out = runs[model]
    sizes = [8, 16] if model == "phi4" else [8]
    N = 48 if model == "phi4" else 40
    with h5py.File(out / "upscaled.h5", "r") as f:
        assert f.attrs["complete"]
        for level, L in enumerate(sizes, start=1):
            g = f[f"L{L}"]
            assert g.attrs["source"] == "superres_mh" and g.attrs["level"] == level
            c = g["configs"]
            assert c.shape == (2, N, L, L)
            if model == "ising":
                assert c.dtype == np.int8 and set(np.unique(c[()])) <= {-1, 1}
                e = g["energy"][()]
                assert e.shape == (2, N) and np.all((e >= -2) & (e <= 2))
            else:
                assert c.dtype == np.float32
                assert np.allclose(g["phi_mean"][()], c[()].mean((2, 3)), atol=1e-5)
            acc = g["mh_accepted"][()]
            assert acc.shape == (2, N)
            for k in ("acceptance", "ess_per_n", "reverse_kl", "tau_int"):
                assert g.attrs[k].shape == (2,), k
            assert np.all((g.attrs["acceptance"] >= 0) & (g.attrs["acceptance"] <= 1))
            assert np.all((g.attrs["ess_per_n"] > 0) & (g.attrs["ess_per_n"] <= 1))
            assert np.all(g.attrs["reverse_kl"] >= 0)
            # a rejected step repeats the previous configuration of its chain
            rows = np.argwhere(acc[0] == 0)[:, 0]
            rows = [n for n in rows if n % (N // g.attrs["mh_chains"]) != 0]
            if rows:
                n = rows[0]
                assert np.array_equal(c[0, n], c[0, n - 1]) or model == "ising"
            assert np.array_equal(g["temperatures" if model == "ising" else "couplings"][()],
                                  g["nominal_temperatures"][()])


@pytest.mark.parametrize("model", ["phi4", "ising"])
def test_undertrained_flow_is_not_certified_and_says_so(runs, model, tmp_path):
    """12 training steps: the MH chains cannot mix. Every level says certified = false,
    in the file and with a warning on screen that names the cause and what to do."""
    deck, out = runs[model]
    log = (out.parent / f"{model}.log").read_text()
    with h5py.File(out / "upscaled.h5", "r") as f:
        for name in f:
            a = f[name].attrs
            assert a["sampler"] == "flow+independence_mh" and bool(a["exact"])
            assert not a["certified"] and not a["certified_points"].any()
            assert a["n_effective"].shape == (2,) and np.all(a["n_effective"] < 100)
            assert "latent HMC (upscale.hmc.trajectories)" in a["certificate"]
            assert f"L={name[1:]}: NOT CERTIFIED (flow+independence_mh)" in log
    assert "NOT certified" in log
    # the tools show it and compare can refuse it
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.h5info", str(out / "upscaled.h5")],
                       capture_output=True, text=True)
    assert "NOT CERTIFIED" in r.stdout
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.compare", str(out / "upscaled.h5"),
                        str(out / "upscaled.h5"), "--require-certified"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--require-certified refuses it" in r.stderr


def test_files_from_before_certificates_still_read(runs, tmp_path):
    """An upscaled.h5 without certificate attributes (written before them): the tools read
    it and say its exactness is unknown -- never 'certified'."""
    from hpc_rg.analysis.certificate import read_certificate
    from hpc_rg.plots.common import cert_tag
    _, out = runs["ising"]
    old = tmp_path / "upscaled.h5"
    shutil.copy(out / "upscaled.h5", old)
    with h5py.File(old, "a") as f:
        for name in f:
            for k in [k for k in f[name].attrs if k in ("sampler", "exact", "certified",
                      "certified_points", "n_effective", "certificate", "reference")
                      or k.startswith(("z_", "bias_"))]:
                del f[name].attrs[k]
        assert read_certificate(f["L8"]) is None and cert_tag(f["L8"]) == " [no certificate]"
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.h5info", str(old)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "no certificate (written before certificates)" in r.stdout
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.compare", str(old), str(old)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "exactness unknown" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.observables", str(old)],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "exactness unknown" in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("model", ["phi4", "ising"])
def test_one_and_two_ranks_write_the_same_data(runs, model, tmp_path):
    deck, out = runs[model]
    out1 = _upscale_on_one_rank(deck, out, tmp_path)
    with h5py.File(out / "upscaled.h5", "r") as a, h5py.File(out1 / "upscaled.h5", "r") as b:
        for g in a:
            for d in a[g]:
                assert np.array_equal(a[g][d][()], b[g][d][()], equal_nan=True), (g, d)
            for k in ("acceptance", "ess_per_n", "reverse_kl", "tau_int"):
                assert np.allclose(a[g].attrs[k], b[g].attrs[k], equal_nan=True), (g, k)


def _hmc_upscale(deck, out, dest, nprocs):
    dest.mkdir()
    for name in ("samples.h5", "model.pt"):
        shutil.copy(out / name, dest / name)
    r = run_hpc_rg([deck, "--stage", "upscale", "--set", f"run.output={dest}",
                    "--set", "upscale.hmc.trajectories=3", "--set", "upscale.hmc.step_size=0.1"],
                   nprocs=nprocs, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest / "upscaled.h5", r.stdout


@pytest.mark.parametrize("model", ["phi4", "ising"])
def test_latent_hmc_upscale_same_on_one_and_two_ranks(runs, model, tmp_path):
    """upscale.hmc: every row is an HMC chain in the latent space started at the flow's
    proposal; diagnostics written; the file does not depend on the rank count."""
    deck, out = runs[model]
    two, log = _hmc_upscale(deck, out, tmp_path / "two", 2)
    one, _ = _hmc_upscale(deck, out, tmp_path / "one", 1)
    assert "latent_hmc" in log and "HMC trajectories" in log
    with h5py.File(two, "r") as a, h5py.File(one, "r") as b, \
            h5py.File(out / "upscaled.h5", "r") as mh:
        assert a.attrs["complete"]
        for g in a:
            ga = a[g]
            assert ga.attrs["correction"] == "latent_hmc" and ga.attrs["hmc_trajectories"] == 3
            assert mh[g].attrs["correction"] == "independence_mh"
            assert np.all((ga.attrs["acceptance"] > 0) & (ga.attrs["acceptance"] <= 1))
            assert np.all(ga.attrs["ess_per_n"] > 0)
            assert ga["mh_accepted"][()].any()
            if model == "ising":
                assert set(np.unique(ga["configs"][()])) <= {-1, 1}
            assert np.all(np.isfinite(ga["configs"][()]))
            for d in ga:
                assert np.array_equal(ga[d][()], b[g][d][()], equal_nan=True), (g, d)


@pytest.mark.parametrize("bad, message", [
    ("upscale.hmc.trajectories=-1", "upscale.hmc: trajectories=-1"),
    ("upscale.hmc.step_size=0", "need trajectories >= 0, leapfrog_steps >= 1, step_size > 0"),
    ("upscale.hmc.steps=3", "upscale.hmc.steps: unknown key"),
])
def test_bad_hmc_keys_are_one_line_errors(write_yaml, tmp_path, bad, message):
    deck = write_yaml(PHI4.format(out=tmp_path / "never"))
    _assert_one_line_error(deck, ["--set", bad], message)


def test_ir_matching_is_for_phi4(write_yaml, tmp_path):
    deck = write_yaml(ISING.format(out=tmp_path / "never"))
    r = run_hpc_rg([deck, "--set", "train.flow.ir_matching=true", "--dry-run"])
    assert r.returncode == 2 and "learns the coarse hopping parameter of phi4" in r.stderr, r.stderr


@pytest.mark.parametrize("sets, message", [
    (["train.flow.uv_matching=true", "model.parametrization=bachtis", "model.kappa=0.2",
      "sample.couplings=[-1.0,-0.5]"], "uv_matching=true: learns the fine hopping parameter"),
    (["train.flow.uv_matching=true", "train.flow.ir_matching=true"],
     "ir_matching and uv_matching are both true; choose one"),
    (["train.flow.uv_reference=1"], "need uv_reference >= 2"),
    (["train.flow.reweight_ess=1.5"], "0 < reweight_ess <= 1"),
])
def test_bad_matching_keys_are_one_line_errors(write_yaml, tmp_path, sets, message):
    deck = write_yaml(PHI4.format(out=tmp_path / "never"))
    _assert_one_line_error(deck, [a for s in sets for a in ("--set", s)], message)


def test_uv_matching_is_for_phi4(write_yaml, tmp_path):
    deck = write_yaml(ISING.format(out=tmp_path / "never"))
    r = run_hpc_rg([deck, "--set", "train.flow.uv_matching=true", "--dry-run"])
    assert r.returncode == 2 and "learns the fine hopping parameter of phi4" in r.stderr, r.stderr


def test_latent_hmc_needs_a_flow_method(write_yaml, tmp_path):
    deck = write_yaml(ISING.format(out=tmp_path / "never"))
    r = run_hpc_rg([deck, "--set", "train.method=cnn", "--set", "upscale.hmc.trajectories=5",
                    "--dry-run"])
    assert r.returncode == 2 and "latent HMC corrects the flow methods only" in r.stderr, r.stderr


@pytest.mark.parametrize("bad, message", [
    ("train.flow.widht=3", "train.flow.widht: unknown key (did you mean 'width'?)"),
    ("train.flow.steps=0", "train.flow.steps=0: must be >= 1"),
    ("train.method=flow", "train.method=flow: accepted values are cnn, flow_rg, flow_checkerboard"),
    ("upscale.mh_chains=0", "upscale.mh_chains=0: must be >= 1"),
    ("train.flow.ir_grad_steps=0", "need 1 <= ir_grad_steps <= ir_langevin_steps"),
    ("train.flow.ess_patience=-1", "train.flow.ess_patience=-1: must be >= 0 (0: off)"),
    ("train.flow.retrain_lr_factor=0", "train.flow.retrain_lr_factor=0.0: must be > 0"),
])
def test_bad_flow_keys_are_one_line_errors(write_yaml, tmp_path, bad, message):
    deck = write_yaml(PHI4.format(out=tmp_path / "never"))
    _assert_one_line_error(deck, ["--set", bad], message)
    assert not (tmp_path / "never").exists()


def test_flow_method_needs_phi4_or_ising(write_yaml, tmp_path):
    deck = write_yaml(f"""
run: {{output: {tmp_path / 'never'}}}
model: {{name: edwards_anderson, dims: 2, disorder_samples: 2}}
sample: {{L: 4, temperatures: [1.0]}}
train: {{method: flow_rg}}
""")
    r = run_hpc_rg([deck, "--dry-run"])
    assert r.returncode == 2
    assert "flows are for model phi4 and ising" in r.stderr


@pytest.mark.parametrize("trajectories", [0, 4])
def test_training_pool_is_advanced_by_the_upscale_correction(trajectories):
    """Level k+1 trains on level k's corrected output: independence MH (an untrained flow is
    rejected often, so chain states repeat) or, with upscale.hmc, latent HMC (every row its
    own chain: no repeats, and the trajectories' acceptance is recorded)."""
    from hpc_rg.config import config_from_dict
    from hpc_rg.flows.modelfile import FlowBank
    from hpc_rg.flows.sampler import FieldModel
    from hpc_rg.methods.flow.pool import advance_pool as _advance_pool

    cfg = config_from_dict({
        "model": {"name": "phi4", "dims": 2, "parametrization": "bauer", "lam": 0.02},
        "sample": {"L": 4, "couplings": [0.3]},
        "train": {"method": "flow_rg", "flow": {"layers": 2, "width": 4, "depth": 1}},
        "upscale": {"target_L": 16, "hmc": {"trajectories": trajectories, "step_size": 0.1}}})
    torch.manual_seed(0)
    bank = FlowBank({"method": "flow_rg", "dims": 2, "levels": 2, "n_params": 1, "layers": 2,
                     "width": 4, "depth": 1, "kernel": 3, "sigma": 1.0, "learn_sigma": True,
                     "z2": True, "conditional": False, "scale_bound": 2.0,
                     "local_flow": "coupling", "n_freq": 4, "n_time": 3, "ode_steps": 16})
    fm = FieldModel("phi4", 2, 0.3, cfg.model)
    pool = torch.randn(1, 96, 4, 4)
    pool_lp = fm.log_p(pool[0])[None]
    nxt, nxt_lp = _advance_pool(bank, 0, pool, pool_lp, [fm], cfg, rank=0)
    assert nxt.shape == (1, 96, 8, 8) and nxt_lp.shape == (1, 96)
    torch.testing.assert_close(nxt_lp[0], fm.log_p(nxt[0].double()), rtol=1e-4, atol=1e-3)
    distinct = len({tuple(r.flatten().tolist()) for r in nxt[0]})
    if trajectories:
        assert distinct == 96
    else:
        assert distinct < 96  # rejected proposals repeat the chain state


@pytest.mark.parametrize("run", ["phi4_ir", "phi4_uv"])
def test_matching_training_resumes_after_level_one(runs, tmp_path, run):
    """A training stopped after level 1 (flow_levels.pt with done = 1) resumes with the
    learned couplings (IR: κ_L, the pool moved to it; UV: level 1's fine κ, level 2 starting
    from it) and retrains level 2: the same model.pt as the uninterrupted run."""
    deck, out = runs[run]
    dest = tmp_path / "resumed"
    ck = dest / "checkpoints" / "train"
    ck.mkdir(parents=True)
    shutil.copy(out / "samples.h5", dest / "samples.h5")
    shutil.copytree(out / "checkpoints" / "train" / "level1", ck / "level1")
    blob = torch.load(out / "checkpoints" / "train" / "flow_levels.pt", weights_only=True)
    key = "coarse_couplings" if run == "phi4_ir" else "fine_couplings"
    assert blob["done"] == 2 and blob[key] is not None
    blob["done"] = 1
    if run == "phi4_uv":
        blob["fine_couplings"] = blob["fine_couplings"][:1]
    blob["history"] = [h for h in blob["history"] if h[0] == 0]
    torch.save(blob, ck / "flow_levels.pt")
    r = run_hpc_rg([deck, "--stage", "train", "--resume", "--set", f"run.output={dest}"],
                   nprocs=2, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1/2 level(s) already trained" in r.stdout, r.stdout
    a = torch.load(out / "model.pt", weights_only=True)
    b = torch.load(dest / "model.pt", weights_only=True)
    assert a["meta"][key] == b["meta"][key]
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=0)


def test_flow_train_sigterm_then_resume_equals_uninterrupted(tmp_path):
    """SIGTERM to both ranks during IR-matched flow training: exit 3 with one line (no abort
    from the gloo process group at exit), then ``--resume`` gives the model of the
    uninterrupted run bit for bit (κ_L included)."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import REPO, launch_env
    from helpers import rank_pids, wait_for

    text = PHI4_IR.replace("steps: 12,", "steps: 150,")
    models = {}
    for mode in ("straight", "killed"):
        out = tmp_path / mode
        deck = tmp_path / f"{mode}.yaml"
        deck.write_text(text.format(out=out))
        r = run_hpc_rg([deck, "--stage", "sample"], nprocs=2, timeout=240)
        assert r.returncode == 0, r.stdout + r.stderr
        if mode == "straight":
            r = run_hpc_rg([deck, "--stage", "train"], nprocs=2, timeout=400)
            assert r.returncode == 0, r.stdout + r.stderr
        else:
            cmd = ["mpirun", "-n", "2", sys.executable, "-m", "hpc_rg", str(deck), "--stage",
                   "train"]
            proc = subprocess.Popen(cmd, cwd=REPO, env=launch_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            ck = out / "checkpoints" / "train" / "level1"
            assert wait_for(lambda: len(list(ck.glob("step*"))) >= 2, 240, proc), \
                proc.communicate()
            for pid in rank_pids(proc.pid):
                os.kill(pid, signal.SIGTERM)
            stdout, stderr = proc.communicate(timeout=120)
            assert proc.returncode == 3, stdout + stderr
            assert "stopped by signal at level 1" in stdout + stderr, stdout + stderr
            assert "terminate called" not in stdout + stderr, stdout + stderr
            assert not (out / "model.pt").exists()
            r = run_hpc_rg([deck, "--stage", "train", "--resume"], nprocs=2, timeout=400)
            assert r.returncode == 0, r.stdout + r.stderr
            assert "level 1: resuming at step" in r.stdout, r.stdout
        models[mode] = torch.load(out / "model.pt", weights_only=True)
    a, b = models["straight"], models["killed"]
    assert a["meta"]["coarse_couplings"] == b["meta"]["coarse_couplings"]
    for k in a["state_dict"]:
        torch.testing.assert_close(a["state_dict"][k], b["state_dict"][k], rtol=0, atol=0)


def test_retraining_steps_and_early_stopping_on_ess(tmp_path):
    """train.flow.retrain_steps / retrain_lr_factor (Bauer's retraining of levels >= 2 at a
    smaller learning rate) and ess_patience (stop a level when the averaged batch ESS/N
    stalls): level 1 stops early, level 2 runs its 7 retraining steps."""
    deck, out = tmp_path / "es.yaml", tmp_path / "es"
    deck.write_text(PHI4.format(out=out).replace("steps: 12,", "steps: 60, ess_patience: 4, "
                                                 "retrain_steps: 7, retrain_lr_factor: 0.2,"))
    r = run_hpc_rg([deck, "--stage", "sample"], nprocs=2)
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_hpc_rg([deck, "--stage", "train"], nprocs=2, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "level 1: early stop at step" in r.stdout, r.stdout
    history = torch.load(out / "model.pt", weights_only=True)["meta"]["history"]
    level1 = [h for h in history if h[0] == 0]
    level2 = [h for h in history if h[0] == 1]
    assert 4 <= len(level1) < 60
    assert len(level2) == 7 or "level 2: early stop at step" in r.stdout
