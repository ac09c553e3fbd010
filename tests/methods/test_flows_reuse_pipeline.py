"""End to end (issue #17): ``train.flow.linear_kernel`` and ``train.flow.reuse_first_level``
through ``python -m hpc_rg`` on 2 ranks (φ⁴ 4 → 8 → 16, test_flows_pipeline.py's
PHI4 deck with the two keys set): level 1 is trained with a block convolution in front of its
couplings, level 2 carries level 1's weights unchanged, model.pt says so and round-trips,
and the upscale stage corrects both levels and records their ESS/N."""

from __future__ import annotations

import h5py
import numpy as np
import torch

from conftest import run_hpc_rg
from test_flows_pipeline import PHI4

REUSE = ["--set", "train.flow.linear_kernel=3", "--set", "train.flow.reuse_first_level=true"]


def test_linear_kernel_and_reused_first_level_through_the_pipeline(tmp_path):
    from hpc_rg.flows.linear import BlockConv
    from hpc_rg.flows.modelfile import load_flow_model
    out = tmp_path / "run"
    deck = tmp_path / "deck.yaml"
    deck.write_text(PHI4.format(out=out))
    r = run_hpc_rg([deck, *REUSE], nprocs=2, timeout=240)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    # the train log: level 1 trained, level 2 not
    assert "level 1 loss" in log and "level 2 loss" not in log, log
    assert "level 2 (8 -> 16): level 1's weights, unchanged (not trained)" in log, log
    blob = torch.load(out / "model.pt", weights_only=True)
    meta, sd = blob["meta"], blob["state_dict"]
    assert meta["trained_levels"] == [1] and meta["levels"] == 2
    assert meta["flow"]["reuse_first_level"] is True and meta["flow"]["linear_kernel"] == 3
    assert meta["spec"]["linear_kernel"] == 3
    assert {int(h[0]) for h in meta["history"]} == {0}       # only level 1 has a history
    for c in range(2):
        lv = [{k.split(f"chains.{c}.levels.{i}.", 1)[1]: v for k, v in sd.items()
               if k.startswith(f"chains.{c}.levels.{i}.")} for i in range(2)]
        assert lv[0] and list(lv[0]) == list(lv[1])
        for k in lv[0]:
            assert torch.equal(lv[0][k], lv[1][k]), (c, k)
        w = lv[0]["flow.layers.0.weight"]                   # the block convolution, trained
        assert w.shape == (4, 4, 3, 3)
        ident = torch.zeros_like(w)
        ident[:, :, 1, 1] = torch.eye(4)
        assert (w - ident).abs().max() > 1e-3
    bank, meta2 = load_flow_model(out / "model.pt")
    assert meta2["trained_levels"] == [1]
    assert isinstance(bank.chains[0].levels[1].flow.layers[0], BlockConv)
    assert bank.state_dict().keys() == sd.keys()
    assert all(torch.equal(bank.state_dict()[k], v) for k, v in sd.items())
    with h5py.File(out / "upscaled.h5", "r") as f:
        assert f.attrs["complete"]
        for level, L in enumerate((8, 16), start=1):
            g = f[f"L{L}"]
            assert g.attrs["level"] == level and g.attrs["source"] == "superres_mh"
            ess = g.attrs["ess_per_n"]
            assert ess.shape == (2,) and np.all((ess > 0) & (ess <= 1)), ess
            assert np.all(np.isfinite(g["configs"][()]))


def test_without_reuse_every_level_is_trained(tmp_path):
    """The default (reuse_first_level: false) still trains level 2: different weights and a
    history and meta that say so."""
    out = tmp_path / "run"
    deck = tmp_path / "deck.yaml"
    deck.write_text(PHI4.format(out=out))
    r = run_hpc_rg([deck, *REUSE[:2]], nprocs=2, timeout=240)  # linear_kernel only
    assert r.returncode == 0, r.stdout + r.stderr
    assert "level 2 loss" in r.stdout + r.stderr
    blob = torch.load(out / "model.pt", weights_only=True)
    meta, sd = blob["meta"], blob["state_dict"]
    assert meta["trained_levels"] == [1, 2] and meta["flow"]["reuse_first_level"] is False
    assert {int(h[0]) for h in meta["history"]} == {0, 1}
    key = "chains.0.levels.{}.flow.layers.0.weight"
    assert not torch.equal(sd[key.format(0)], sd[key.format(1)])
