"""The sample stage certifies the equilibration of every Edwards–Anderson disorder sample:
datasets in samples.h5, one summary line in the log, a loud warning when any sample fails,
and clean-model decks unchanged."""

import h5py
import numpy as np

from conftest import run_hpc_rg
from hpc_rg.analysis.equilibration import DRIFT_OBSERVABLES, certify, sample_diagnostics
from hpc_rg.io import schema

EA = """
run: {{name: eq, output: {out}, seed: 3, progress_seconds: 30}}
model: {{name: edwards_anderson, dims: 3, disorder: gaussian, disorder_samples: 4, replicas: 2}}
sample: {{L: 4, temperatures: [1.0, 1.5, 2.0], tempering: {tempering}, thermalize: 100,
         samples: {samples}, thin: 1, chunk: 16}}
"""


def test_two_ranks_write_the_certificate_and_log_the_summary(write_yaml, tmp_path):
    out = tmp_path / "out"
    r = run_hpc_rg([write_yaml(EA.format(out=out, tempering="{enabled: true, every: 1}",
                                         samples=32))], nprocs=2)
    assert r.returncode == 0, r.stdout + r.stderr
    log = r.stdout + r.stderr
    with h5py.File(out / "samples.h5") as f:
        g = f["L4"]
        eq = g[schema.EQUILIBRATED][()]
        assert eq.dtype == bool and eq.shape == (4,)
        for name in DRIFT_OBSERVABLES:
            assert g[schema.DRIFT_Z_PREFIX + name].shape == (4, 3)
        summary = g.attrs[schema.GROUP_ATTR_EQUILIBRATION]
        assert summary.startswith(f"L=4: {eq.sum()}/4 disorder samples equilibrated at all "
                                  f"temperatures")
        assert g.attrs[schema.GROUP_ATTR_EQUILIBRATED_COUNT] == eq.sum()
        # the stored certificate is the one the file's own series give
        temps = g[schema.TEMPERATURES][()]
        diag = sample_diagnostics(np.arange(4), g[schema.ENERGY][()], g[schema.OVERLAP][()],
                                  g[schema.LINK_OVERLAP][()], temps, 3, 4.0)
        rt = g.attrs[schema.TEMPERING_ROUND_TRIPS].reshape(4, 2).sum(axis=1)
        np.testing.assert_array_equal(g[schema.SAMPLE_ROUND_TRIPS][()], rt)
        cert = certify(diag, temps, rt, True, 4.0, 1)
        np.testing.assert_array_equal(cert.equilibrated, eq)
        np.testing.assert_array_equal(cert.diagnostics.z["energy"],
                                      g[schema.DRIFT_Z_PREFIX + "energy"][()])
    assert f"[sample] {summary}" in log
    assert ("NOT certified as equilibrated" in log) == (not eq.all())
    from hpc_rg.tools.h5info import hdf5_info, render
    assert f"equilibration: {summary}" in render(hdf5_info(out / "samples.h5"))


def test_too_short_a_run_is_reported_not_failed(write_yaml, tmp_path):
    """No tempering (no round trips) and 4 kept configurations (too few to bin): every
    sample is honestly not equilibrated, the warning says what to do, the stage succeeds."""
    out = tmp_path / "out"
    r = run_hpc_rg([write_yaml(EA.format(out=out, tempering="false", samples=4))])
    assert r.returncode == 0, r.stdout + r.stderr
    log = r.stdout + r.stderr
    assert "L=4: 0/4 disorder samples equilibrated at all temperatures; 4 not: ids 0, 1, 2, 3" \
        in log
    assert "too few samples" in log and "sample.thermalize" in log
    with h5py.File(out / "samples.h5") as f:
        assert not f["L4"][schema.EQUILIBRATED][()].any()
        assert (f["L4"][schema.SAMPLE_ROUND_TRIPS][()] == -1).all()


def test_clean_models_resolved_config_has_no_equilibration_key():
    from hpc_rg.config.load import config_from_dict
    ising = config_from_dict({"model": {"name": "ising"}, "sample": {"temperatures": [2.0]}})
    assert "equilibration" not in ising.to_yaml()
    ea = config_from_dict({"model": {"name": "edwards_anderson", "dims": 3},
                           "sample": {"temperatures": [1.0]}})
    assert "min_round_trips: 1" in ea.to_yaml()
