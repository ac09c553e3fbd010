"""End to end: ``train.method: flow_rg`` / ``flow_checkerboard`` through ``python -m hpc_rg``.

Tiny decks (φ⁴ 4 → 8 → 16 with flow_rg; Ising 4 → 8 with flow_checkerboard through the
continuous relaxation) on 2 ranks: model.pt is tensor-only, upscaled.h5 follows the contract
with the MH diagnostics, and an upscale on 1 rank writes the same data as on 2 ranks.
"""

from __future__ import annotations

import shutil

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
upscale: {{target_L: 16, batch: 16, samples: 48, mh_chains: 2}}
"""

ISING = """
run: {{name: flow_ising, output: {out}, seed: 4, progress_seconds: 5}}
model: {{name: ising, dims: 2}}
sample: {{L: 4, temperatures: [2.269185, 3.0], algorithm: wolff, chains: 2, thermalize: 50,
         samples: 64, thin: 1, chunk: 64}}
train: {{method: flow_checkerboard, flow: {{layers: 2, width: 4, depth: 1, steps: 12, batch: 8,
        reg_weight: 1.0, reg_steps: 5}}}}
upscale: {{target_L: 8, batch: 16, samples: 40, mh_chains: 3}}
"""


def _run_deck(tmp_path, text, name):
    out = tmp_path / name
    deck = tmp_path / f"{name}.yaml"
    deck.write_text(text.format(out=out))
    r = run_hpc_rg([deck], nprocs=2, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return deck, out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("flows")
    return {"phi4": _run_deck(tmp, PHI4, "phi4"), "ising": _run_deck(tmp, ISING, "ising")}


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
def test_one_and_two_ranks_write_the_same_data(runs, model, tmp_path):
    deck, out = runs[model]
    out1 = tmp_path / "one"
    out1.mkdir()
    for name in ("samples.h5", "model.pt"):
        shutil.copy(out / name, out1 / name)
    r = run_hpc_rg([deck, "--stage", "upscale", "--set", f"run.output={out1}"], nprocs=1)
    assert r.returncode == 0, r.stdout + r.stderr
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
    r = run_hpc_rg([deck, "--set", bad, "--dry-run"])
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("hpc_rg: error:")]
    assert len(lines) == 1 and message in lines[0], r.stderr


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
])
def test_bad_flow_keys_are_one_line_errors(write_yaml, tmp_path, bad, message):
    deck = write_yaml(PHI4.format(out=tmp_path / "never"))
    r = run_hpc_rg([deck, "--set", bad, "--dry-run"])
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [x for x in r.stderr.splitlines() if x.startswith("hpc_rg: error:")]
    assert len(lines) == 1 and message in lines[0], r.stderr
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
    from hpc_rg.pipeline.flow_stages import _advance_pool

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
