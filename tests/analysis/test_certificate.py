"""Certificates of super-resolved levels (hpc_rg.analysis.certificate, methods.certify)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hpc_rg.analysis import certificate as cert
from hpc_rg.methods.certify import chain_mean_error


def test_unmixed_mh_chain_is_not_certified():
    """The issue's case: acceptance 0.002, tau_int 138.69 on a 1000-row chain."""
    c = cert.certify_mh([138.69], [2], rows_per_chain=1000, chains=1)
    assert not c.certified and not c.certified_points[0] and c.exact
    assert "not mixed" in c.reasons[0] and "latent HMC" in c.reasons[0]
    assert c.n_effective[0] <= 3  # bounded by the distinct configurations
    attrs = c.attrs(16, "temperature", [3.0])
    assert attrs["certified"] is False and "L=16 temperature=3: not mixed" in attrs["certificate"]


def test_mixed_chain_is_certified_and_counts_independent_configurations():
    c = cert.certify_mh([1.25, 1.25], [700, 650], rows_per_chain=500, chains=2)
    assert c.certified and c.certified_points.all()
    np.testing.assert_allclose(c.n_effective, 1000 / 2.5)
    assert c.attrs(16, "temperature", [2.0, 3.0])["certificate"] == ""


@pytest.mark.parametrize("tau, accepted, rows, chains, words", [
    (np.nan, 0, 400, 1, "never moved"), (1.0, 150, 150, 1, "effectively independent"),
    (10.0, 300, 400, 1, "not mixed")])
def test_each_failure_says_why(tau, accepted, rows, chains, words):
    c = cert.certify_mh([tau], [accepted], rows, chains)
    assert not c.certified and words in c.reasons[0]


def test_latent_hmc_certificate():
    ok = cert.certify_hmc([0.8], [200], rows=200)
    assert ok.certified and ok.n_effective[0] == 200
    assert "step_size" in cert.certify_hmc([0.1], [200], 200).reasons[0]
    assert "never left" in cert.certify_hmc([0.8], [100], 200).reasons[0]


def test_reference_z_scores_fail_a_point_and_interpolate_for_cnn():
    c = cert.certify_mh([1.0, 1.0], [900, 900], 1000, 1)
    mc = {"e": (np.array([-1.0, -0.8]), np.array([0.01, 0.01]))}
    sr = {"e": (np.array([-1.0, -1.1]), np.array([0.01, 0.01]))}
    attrs = cert.compare_to_reference(c, sr, mc, [2.0, 3.0], [2.0, 3.0])
    assert abs(attrs["z_e"][0]) < 1e-12 and attrs["z_e"][1] < -20
    assert c.certified_points.tolist() == [True, False] and "z(e) = -21.2" in c.reasons[1]
    a = cert.approximate("cnn", 2, "approximate")
    attrs = cert.compare_to_reference(a, {"e": (np.array([-0.9, -0.9]), np.array([0.0, 0.0]))},
                                      mc, [2.0, 3.0], [2.5, np.nan], interpolate=True)
    np.testing.assert_allclose(attrs["bias_e"][0], 0.0, atol=1e-12)  # MC at 2.5: -0.9
    assert np.isnan(attrs["bias_e"][1]) and not a.certified


def test_chain_error_accounts_for_autocorrelation():
    """AR(1) chains (rho = 0.9: tau_int = 9.5): the error matches the spread of the means
    over many independent chains (a naive error would be sqrt(19) too small)."""
    rng = np.random.default_rng(1)
    rho, n, reps = 0.9, 4000, 200
    means, errs = [], []
    for _ in range(reps):
        e = rng.standard_normal(n)
        x = np.empty(n)
        x[0] = e[0] / np.sqrt(1 - rho ** 2)
        for i in range(1, n):
            x[i] = rho * x[i - 1] + e[i]
        m, s = chain_mean_error(x, chains=2)
        means.append(m)
        errs.append(s)
    true = np.std(means, ddof=1)
    assert 0.8 < np.mean(errs) / true < 1.2, (np.mean(errs), true)


def test_files_without_certificates_read_as_unknown(tmp_path):
    with h5py.File(tmp_path / "old.h5", "w") as f:
        g = f.create_group("L16")
        g.attrs["source"] = "superres_mh"
        assert cert.read_certificate(g) is None
        g.attrs.update(cert.certify_mh([1.0], [500], 500, 1).attrs(16, "temperature", [3.0]))
        g.attrs["z_e"] = np.array([0.5])
        back = cert.read_certificate(g)
        assert back["certified"] and back["sampler"] == "flow+independence_mh"
        assert back["z_e"].tolist() == [0.5]


def test_auto_correction_picks_latent_hmc_when_the_flow_is_poor():
    """upscale.hmc.trajectories: auto -> latent HMC below auto_below, independence MH above
    (the worst of the measured ESS/N decides)."""
    from hpc_rg.config import config_from_dict
    from hpc_rg.methods.flow.pool import resolve_correction, training_ess
    cfg = config_from_dict({"model": {"name": "ising"}, "sample": {"L": 8, "temperatures": [3.0]},
                            "train": {"method": "flow_rg"}, "upscale": {"target_L": 32}})
    assert cfg.upscale.hmc.trajectories == "auto"
    c, note = resolve_correction(cfg, [0.4, 0.3], "pilot")
    assert c.upscale.hmc.trajectories == 0 and "independence MH" in note and "0.300" in note
    c, note = resolve_correction(cfg, [0.4, 0.02, np.nan], "pilot")
    assert c.upscale.hmc.trajectories == 60 and "latent HMC" in note and "0.020 < 0.2" in note
    assert resolve_correction(cfg, [], "pilot")[0].upscale.hmc.trajectories == 60
    history = [(0, s, 1.0, 0.4) for s in range(10)] + [(1, s, 1.0, 0.3 if s < 5 else 0.02)
                                                        for s in range(10)]
    assert training_ess(history, 1) == pytest.approx(0.4)
    assert training_ess(history, 2) == pytest.approx(0.02)
    fixed = config_from_dict({"model": {"name": "ising"}, "sample": {"L": 8, "temperatures": [3.0]},
                              "train": {"method": "flow_rg"},
                              "upscale": {"target_L": 32, "hmc": {"trajectories": 0}}})
    assert resolve_correction(fixed, [0.02], "pilot") == (fixed, None)


def test_cnn_levels_are_approximate_with_their_measured_bias(ising_run):
    """CNN levels: exact = false, never certified; where samples.h5 has Monte Carlo of the
    level's size (here 16) the bias at the effective temperature is stored, and it is the
    difference of the two ensembles' means (MC interpolated to T_eff)."""
    with h5py.File(ising_run / "upscaled.h5") as f, h5py.File(ising_run / "samples.h5") as s:
        for name in ("L16", "L32"):
            a = f[name].attrs
            assert a["sampler"] == "cnn" and not a["exact"] and not a["certified"]
            assert np.isnan(a["n_effective"]).all() and "approximate" in a["certificate"]
        a, g, mc = f["L16"].attrs, f["L16"], s["L16"]
        assert "z_e" not in f["L32"].attrs and a["reference"].startswith("samples.h5 /L16")
        T_eff, T_mc = g["temperatures"][()], mc["temperatures"][()]
        e_mc = mc["energy"][()].mean(axis=1)
        for t, T in enumerate(T_eff):
            if np.isfinite(T) and T_mc[0] <= T <= T_mc[-1]:
                ref = np.interp(T, T_mc, e_mc)
                assert a["bias_e"][t] == pytest.approx(g["energy"][t].mean() - ref, abs=1e-9)
            else:
                assert np.isnan(a["bias_e"][t])
