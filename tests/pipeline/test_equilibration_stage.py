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


# ----------------------------------------------------------------------------- downstream
DOWNSTREAM = """
run: {{name: eqd, output: {out}, seed: 3, progress_seconds: 30}}
model: {{name: edwards_anderson, dims: 3, disorder: gaussian, disorder_samples: 4, replicas: 2}}
sample: {{L: 4, temperatures: [1.0, 1.5], tempering: {tempering}, thermalize: 50,
         samples: {samples}, thin: 1, chunk: 16}}
train: {{epochs: 1, batch_size: 4, network: {{depth: 2, width: 4}}}}
upscale: {{target_L: 8, batch: 8, consistent: true}}
analyze: {{plots: false, exponents: false}}
"""


def _table_of(path, ids, tmp_path):
    """The lines of the sample stage's table computed from a file holding only the disorder
    samples ``ids`` of ``path``'s /L4 (the reference for the table over those samples)."""
    from hpc_rg.analysis.summary import format_table, summary_rows
    sub = tmp_path / f"only-{'-'.join(map(str, ids))}.h5"
    with h5py.File(path, "r") as f, h5py.File(sub, "w") as o:
        g, h = f["L4"], o.create_group("L4")
        h.attrs.update(dict(g.attrs))
        h[schema.TEMPERATURES] = g[schema.TEMPERATURES][()]
        for name in (schema.ENERGY, schema.MAGNETIZATION, schema.OVERLAP, schema.LINK_OVERLAP):
            h[name] = g[name][()][ids]
        return format_table(*summary_rows(h)).splitlines()


def _used(attrs):
    return (list(np.atleast_1d(attrs[schema.ATTR_DISORDER_SAMPLES_USED])),
            bool(attrs[schema.ATTR_EQUILIBRATED_ONLY]))


def test_downstream_stages_use_only_the_certified_samples(write_yaml, tmp_path, caplog):
    """Samples 1 and 3 fail the certificate (set in the file, as a failing sample stage
    would write it): the sample stage's end-of-stage table averages samples 0 and 2 only and
    says so; train, upscale and analyze on 2 ranks read samples 0 and 2 only, say once each
    which they left out, and record it in model.pt, upscaled.h5, analysis.h5."""
    import logging

    import torch

    from hpc_rg.pipeline.sample import _print_summary
    from hpc_rg.rg.blocking import block
    from hpc_rg.superres.modelfile import load_model
    from hpc_rg.tools.h5info import hdf5_info, render
    out = tmp_path / "out"
    deck = write_yaml(DOWNSTREAM.format(out=out, tempering="{enabled: true, every: 1}",
                                        samples=16))
    r = run_hpc_rg([deck, "--stage", "sample"])
    assert r.returncode == 0, r.stdout + r.stderr
    with h5py.File(out / "samples.h5") as f:
        n_ok = int(f["L4"][schema.EQUILIBRATED][()].sum())
    over = f"averaged over {n_ok}/4 certified samples" if n_ok else \
        "averaged over all 4 samples (none certified)"
    assert f"[sample] L4, {over} (jackknife errors in parentheses):" in r.stdout + r.stderr
    with h5py.File(out / "samples.h5", "r+") as f:
        f["L4"][schema.EQUILIBRATED][...] = [True, False, True, False]
    certified = _table_of(out / "samples.h5", [0, 2], tmp_path)
    all_four = _table_of(out / "samples.h5", [0, 1, 2, 3], tmp_path)
    assert certified != all_four  # the failed samples change the table
    for only, heading, lines in ((True, "averaged over 2/4 certified samples", certified),
                                 (False, "averaged over all 4 samples", all_four)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="hpc_rg"):
            _print_summary(out / "samples.h5", "L4", only)
        table = [rec.getMessage() for rec in caplog.records if rec.getMessage().startswith(
            "[sample] L4")][-1].splitlines()
        assert table[0] == f"[sample] L4, {heading} (jackknife errors in parentheses):"
        assert table[1:] == lines
    r = run_hpc_rg([deck, "--resume"], nprocs=2)
    assert r.returncode == 0, r.stdout + r.stderr
    log = r.stdout + r.stderr
    for stage in ("train", "upscale", "analyze"):
        lines = [x for x in log.splitlines() if f"[{stage}] " in x and "excluded ids" in x]
        assert len(lines) == 1, (stage, log)
        assert "L=4: using the 2/4 disorder samples certified as equilibrated; excluded ids " \
               "1, 3" in lines[0]
    assert load_model(out / "model.pt")[1][schema.ATTR_DISORDER_SAMPLES_USED] == [0, 2]
    with h5py.File(out / "upscaled.h5") as f, h5py.File(out / "samples.h5") as s:
        g = f["L8"]
        assert _used(g.attrs) == ([0, 2], True)
        assert g.attrs[schema.GROUP_ATTR_INPUT_COUNT] == 2 * 16  # 2 samples x 16 x 1 pair
        assert g["configs"].shape == (2, 32, 8, 8, 8)
        # consistent sampling: the level blocks back onto its inputs, the overlaps of 0 and 2
        y = torch.from_numpy(g["configs"][()].astype(np.float32))
        x = s["L4"][schema.CONFIGS][()].astype(np.float32)  # (D, T, S, R, 4, 4, 4)
        rho = (x[:, :, :, 0] * x[:, :, :, 1])[[0, 2]].transpose(1, 0, 2, 3, 4, 5)
        np.testing.assert_array_equal(block(y, "majority", 3).numpy(),
                                      rho.reshape(2, 32, 4, 4, 4))
    with h5py.File(out / "samples.h5") as s, h5py.File(out / "analysis.h5") as f:
        g = f["samples/L4"]
        assert _used(g.attrs) == ([0, 2], True) and g.attrs["disorder_samples"] == 2
        assert _used(f["upscaled/L8"].attrs) == ([0, 2], True)
        q = s["L4"][schema.OVERLAP][()]  # (D, T, S, P): [<|q|>] over samples 0 and 2 only
        np.testing.assert_allclose(g["abs_q"][()], np.abs(q[[0, 2]]).mean(axis=(0, 2, 3)))
        assert not np.allclose(g["abs_q"][()], np.abs(q).mean(axis=(0, 2, 3)))
        assert (g["n_configs"][()] == 2 * 16).all()
    assert "2 disorder samples used (ids 0, 2; certified equilibrated only)" in log
    assert "disorder samples used: 2 [0, 2], certified equilibrated only" in \
        render(hdf5_info(out / "upscaled.h5"))


def test_none_certified_is_a_one_line_error_unless_told_to_use_them(write_yaml, tmp_path):
    """4 kept configurations are too few to certify any sample (0/4): train stops with one
    line naming the file and the key, exit 2 as for any user error, no traceback; with
    sample.equilibration.only_passed: false train and analyze use all four."""
    from hpc_rg.superres.modelfile import load_model
    out = tmp_path / "out"
    deck = write_yaml(DOWNSTREAM.format(out=out, tempering="false", samples=4))
    r = run_hpc_rg([deck, "--stage", "sample"])
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_hpc_rg([deck, "--stage", "train"])
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    errors = [x for x in r.stderr.splitlines() if x.startswith("hpc_rg: error:")]
    assert errors == [f"hpc_rg: error: {out / 'samples.h5'}: no disorder sample passed the "
                      f"equilibration certificate at L=4 (0/4; see `python -m hpc_rg.tools."
                      f"h5info {out / 'samples.h5'}`); sample longer (sample.thermalize / "
                      f"sample.samples) or set sample.equilibration.only_passed: false to use "
                      f"them anyway"], r.stderr
    assert not (out / "model.pt").exists()
    off = ["--set", "sample.equilibration.only_passed=false"]
    for stage in ("train", "analyze"):
        r = run_hpc_rg([deck, "--stage", stage, *off])
        assert r.returncode == 0, r.stdout + r.stderr
        assert "excluded ids" not in r.stdout + r.stderr
    meta = load_model(out / "model.pt")[1]
    assert meta[schema.ATTR_DISORDER_SAMPLES_USED] == [0, 1, 2, 3]
    assert meta[schema.ATTR_EQUILIBRATED_ONLY] is False
    with h5py.File(out / "analysis.h5") as f:
        assert _used(f["samples/L4"].attrs) == ([0, 1, 2, 3], False)
