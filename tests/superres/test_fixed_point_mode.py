"""Issue #18 item 4 at CI size: the fixed-point training mode (``train.target_blockings``)
changes the chain's per-level magnetization ratio in the measured direction.

One Swendsen-Wang ensemble of 32^2 at T_c; two networks trained on it with the pipeline
(2 ranks, DeepSpeed on gloo): the paper's mode (pairs (maj sigma, sigma), 16 -> 32) and the
fixed-point mode with k = 1 (pairs (maj^2 sigma, maj sigma), 8 -> 16). Each network's first
level multiplies <|m|> by 2^-R; R is the magnetization ratio of its training pairs,
R_0 = 0.1185(4) for nearest-neighbour 32^2 and R_1 = 0.1243(5) for the once-blocked
ensemble (bench/majority_ratio.py, docs/validation.md). The test asserts R_fp - R_nn > 0 by
more than 3 jackknife errors (over row bins of the paired level/input magnetizations), and
that each first-level ratio lies within 0.006 of its training ensemble's own ratio,
measured on the same Monte Carlo. The test can fail: a mode that ignored
``target_blockings`` (training on nearest-neighbour pairs) gives R_fp ~ R_nn.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import run_hpc_rg

TC = 2.269185
DECK = """
run: {{name: fp, output: {out}, seed: 11, progress_seconds: 30}}
model: {{name: ising, dims: 2}}
sample: {{L: 32, temperatures: [{tc}], algorithm: swendsen_wang, chains: 4, thermalize: 200,
         samples: 600, thin: 1, chunk: 600}}
train: {{epochs: 20, batch_size: 32, patience: 5, target_blockings: {k},
        network: {{depth: 3, width: 12, kernel: 3}}}}
upscale: {{target_L: {target}, batch: 64, rescale_temperature: false}}
analyze: {{plots: false}}
"""


def _abs_m(x: np.ndarray) -> np.ndarray:
    return np.abs(x.reshape(len(x), -1).astype(np.float64).mean(axis=1))


def _ratio(m_in: np.ndarray, m_out: np.ndarray, bins: int = 20) -> tuple[float, float]:
    """log2(<|m_in|>/<|m_out|>) with a jackknife error over ``bins`` row blocks."""
    r = lambda a, b: float(np.log2(a.mean() / b.mean()))  # noqa: E731
    full = r(m_in, m_out)
    edges = np.linspace(0, len(m_in), bins + 1).astype(int)
    keep = np.ones(len(m_in), bool)
    jk = []
    for a, b in zip(edges, edges[1:]):
        keep[:] = True
        keep[a:b] = False
        jk.append(r(m_in[keep], m_out[keep]))
    jk = np.asarray(jk)
    return full, float(np.sqrt((bins - 1) * ((jk - jk.mean()) ** 2).mean()))


def _run(deck_path, out, *args):
    r = run_hpc_rg([deck_path, *args], nprocs=2, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fixed_point")
    fp, nn = tmp / "fp", tmp / "nn"
    (tmp / "fp.yaml").write_text(DECK.format(out=fp, tc=TC, k=1, target=64))
    r = _run(tmp / "fp.yaml", fp)
    nn.mkdir()
    shutil.copy(fp / "samples.h5", nn / "samples.h5")
    (tmp / "nn.yaml").write_text(DECK.format(out=nn, tc=TC, k=0, target=64))
    for stage in ("train", "upscale"):
        _run(tmp / "nn.yaml", nn, "--stage", stage)
    # the fixed-point network applied to the unblocked 32^2 Monte Carlo (warned about)
    mixed = tmp / "mixed"
    mixed.mkdir()
    for name in ("samples.h5", "model.pt"):
        shutil.copy(fp / name, mixed / name)
    (tmp / "mixed.yaml").write_text(DECK.format(out=mixed, tc=TC, k=1, target=64)
                                    .replace("batch: 64,", "batch: 64, input_blockings: 0,"))
    rm = _run(tmp / "mixed.yaml", mixed, "--stage", "upscale")
    return {"fp": fp, "nn": nn, "mixed": mixed, "log": r.stdout + r.stderr,
            "mixed_log": rm.stdout + rm.stderr}


def test_fixed_point_level_ratio_exceeds_nearest_neighbour_one(runs):
    import h5py
    import torch

    from hpc_rg.rg.blocking import block
    with h5py.File(runs["fp"] / "samples.h5") as f:
        mc = f["L32/configs"][0]
    b1 = block(torch.from_numpy(mc), "majority", 2)
    b2 = block(b1, "majority", 2)
    m0, m1, m2 = _abs_m(mc), _abs_m(b1.numpy()), _abs_m(b2.numpy())
    R0, _ = _ratio(m1, m0)  # the training ensembles' own ratios
    R1, _ = _ratio(m2, m1)
    with h5py.File(runs["fp"] / "upscaled.h5") as f:
        g = f["L32"]
        assert g.attrs["input_blockings"] == 1 and g.attrs["target_blockings"] == 1
        assert g.attrs["input_L"] == 32 and g.attrs["level"] == 1
        assert "fixed-point" in g.attrs["reference"]
        assert not any(k.startswith("z_") for k in g.attrs)  # no same-size comparison
        fp_level = _abs_m(f["L32/configs"][0])
    with h5py.File(runs["nn"] / "upscaled.h5") as f:
        assert f["L64"].attrs["input_blockings"] == 0 and f["L64"].attrs["target_blockings"] == 0
        nn_level = _abs_m(f["L64/configs"][0])
    R_fp, e_fp = _ratio(m1, fp_level)  # level 1 of the fixed-point chain: 16 -> 32
    R_nn, e_nn = _ratio(m0, nn_level)  # level 1 of the paper's chain: 32 -> 64
    msg = (f"R_fp={R_fp:.4f}({e_fp:.4f}) R_nn={R_nn:.4f}({e_nn:.4f}); training ensembles "
           f"R_1={R1:.4f} R_0={R0:.4f}")
    assert R1 > R0, msg  # the Monte Carlo itself (measured: 6 sigma at 64^2)
    assert R_fp - R_nn > 3 * np.hypot(e_fp, e_nn), msg
    assert abs(R_fp - R1) < 0.006 and abs(R_nn - R0) < 0.006, msg


def test_chain_inputs_follow_the_training_unless_overridden(runs):
    import h5py
    assert "fixed-point mode (train.target_blockings=1)" in runs["log"]
    assert "starts from the L=32 Monte Carlo configurations blocked 1 time(s)" in runs["log"]
    assert "no level is compared with same-size nearest-neighbour Monte Carlo" in runs["log"]
    # the fits do not mix the nearest-neighbour /L32 Monte Carlo into the fixed-point chain
    assert "finite-size scaling over the super-resolved levels only (L = 32, 64)" in runs["log"]
    assert "blocked 0 time(s) (upscale.input_blockings)" in runs["mixed_log"]
    with h5py.File(runs["mixed"] / "upscaled.h5") as f:
        assert list(f) == ["L64"]
        assert f["L64"].attrs["input_blockings"] == 0 and f["L64"].attrs["target_blockings"] == 1
