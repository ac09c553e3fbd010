"""The flagship deck, inputs/ea3d.yaml, at CI size: the command its header gives, end to end on
2 ranks (multi-spin-coded ±J parallel tempering, the equilibration certificate, overlap CNN,
upscale, analyze). The full-size cost is measured in bench/README.md, not here."""

from __future__ import annotations

import re
import shlex

import h5py
import numpy as np
import pytest

from conftest import REPO, run_hpc_rg


def _ci_command() -> list[str]:
    """The CI-sized variant's arguments, read from the deck's header (so they cannot drift)."""
    text = (REPO / "inputs" / "ea3d.yaml").read_text()
    block = re.search(r"#   mpirun -n 2 python -m hpc_rg inputs/ea3d.yaml (.*?)\n(?!#     )", text, re.S)
    assert block, "inputs/ea3d.yaml lost its CI-sized command"
    words = shlex.split(block[1].replace("\\\n#", " "))
    return ["inputs/ea3d.yaml", *words]


@pytest.fixture(scope="module")
def flagship(tmp_path_factory):
    out = tmp_path_factory.mktemp("ea3d")
    r = run_hpc_rg([*_ci_command(), "--set", f"run.output={out}"], nprocs=2, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out, r.stdout + r.stderr


def test_ci_command_is_the_flagship_deck_made_small():
    args = _ci_command()
    assert "--set" in args and "sample.L=8" in args and "model.disorder_samples=4" in args


def test_flagship_ci_variant_runs_msc_tempering_with_a_certificate(flagship):
    out, log = flagship
    assert "[sample] Monte Carlo kernel: msc (multi-spin coded" in log
    assert re.search(r"L=8: \d+/4 disorder samples equilibrated", log), log[-2000:]
    assert "below sample.tempering.warn_below" not in log  # acceptance >= 0.2 on every pair
    with h5py.File(out / "samples.h5") as f:
        g = f["L8"]
        assert str(g.attrs["kernel"]).startswith("msc (")
        acc = np.asarray(g.attrs["tempering_acceptance"])
        assert acc.shape == (7,) and (acc >= 0.2).all(), acc
        assert int(g.attrs["equilibrated_count"]) >= 1
        drifting = []
        for size in f.values():  # the disorder-averaged half-split test ran on every size
            z = float(size.attrs["ensemble_drift_q2_z"])
            lim = float(size.attrs["ensemble_drift_q2_limit"])
            assert np.isfinite(z) and np.isfinite(lim)
            drifting.append(abs(z) > lim)
        assert ("still changes between the two halves" in log) == any(drifting)
    with h5py.File(out / "upscaled.h5") as f:
        sizes = sorted(int(f[k].attrs["L"]) for k in f if "L" in f[k].attrs)
        assert sizes[-1] == 32
        for L in sizes:  # T_eff of levels beyond the training size is labelled as extrapolated
            a = f[f"L{L}"].attrs
            if bool(a["rescaled"]):
                assert int(a["flow_L"]) == 8 and bool(a["flow_extrapolated"]) == (L > 8)
    if "T_eff of levels L = 16, 32 uses the temperature flow measured at L = 8" not in log:
        with h5py.File(out / "upscaled.h5") as f:
            assert not any(bool(f[k].attrs.get("rescaled", False)) for k in f), log[-3000:]
    assert (out / "analysis.h5").exists()
