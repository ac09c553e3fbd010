"""Physics of the trained CNN (slow; runs in dev/nightly.sh): on held-out 16 x 16 Ising
configurations, SR(block(sigma)) reproduces <|m|> and <e> of sigma within a few percent
(Efthymiou et al., appendix B; docs/validation.md has the full table)."""

import h5py
import numpy as np
import pytest
import torch

from conftest import run_hpc_rg

pytestmark = pytest.mark.slow

DECK = """
run: {{name: p, output: {out}, seed: 17, progress_seconds: 30}}
model: {{name: ising, dims: 2}}
sample: {{L: 16, temperatures: [2.0, 2.269185, 2.6, 3.0], chains: 4, thermalize: 1000,
         samples: 500, thin: 5, chunk: 250}}
train: {{epochs: 40, batch_size: 32, patience: 5, energy_weight: 2.0,
        network: {{depth: 4, width: 16, kernel: 3}}}}
"""


def test_superresolved_test_set_matches_monte_carlo(tmp_path):
    import hpc_rg.superres as sr
    from hpc_rg.rg.blocking import block
    from hpc_rg.rg.observables import observables
    deck = tmp_path / "deck.yaml"
    deck.write_text(DECK.format(out=tmp_path / "out"))
    for stage in ("sample", "train"):
        r = run_hpc_rg([deck, "--stage", stage], nprocs=2, timeout=1800)
        assert r.returncode == 0, r.stdout + r.stderr
    model = sr.load(tmp_path / "out" / "model.pt")
    with h5py.File(tmp_path / "out" / "samples.h5") as f:
        x = torch.from_numpy(f["L16/configs"][()].astype(np.float32))
    for k, T in enumerate(model.temperatures):
        sigma = torch.cat([x[k, c * 500 + 450:(c + 1) * 500] for c in range(4)])  # held out
        y = model.step(block(sigma, "majority", 2), k, 1, seed=1, ids=torch.arange(len(sigma)))
        a, b = observables(sigma, "spin", 2), observables(y, "spin", 2)
        for name, tol in (("abs_m", 0.06), ("e_nn", 0.04)):
            mc, got = a[name].mean().item(), b[name].mean().item()
            assert abs(got - mc) < tol * abs(mc), (T, name, mc, got)
