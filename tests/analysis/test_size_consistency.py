"""The check across sizes (issue #16): a larger Monte Carlo size whose susceptibility falls
below a smaller one's is flagged, per temperature and on the mean log ratio; consistent
sizes pass. Hand-made samples.h5 groups with Gaussian overlaps (magnetisations) of known
variance, so chi = N <q^2> is set by construction."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from hpc_rg.analysis import observables as obs
from hpc_rg.analysis.size_consistency import check_sizes, size_curve
from hpc_rg.io import schema

TEMPS = np.linspace(1.2, 2.0, 24)


def _chi_curve(T):
    return 200.0 / (1.0 + 10.0 * (T - 1.2))  # any positive curve


def _write_ea(f, L, scale, rng, D=32, S=50, P=6, sample_spread=0.0, temps=TEMPS):
    """Group /L<L>: overlaps q ~ N(0, chi(T) * scale * a_d / N) with a_d a per-sample factor
    (shared by all T: the disorder correlation between temperatures)."""
    N = L ** 3
    a = np.exp(sample_spread * rng.standard_normal(D))
    var = _chi_curve(temps)[None, :] * scale * a[:, None] / N  # (D, T)
    q = rng.standard_normal((D, len(temps), S, P)) * np.sqrt(var)[:, :, None, None]
    g = f.create_group(f"L{L}")
    g.attrs.update({"model": "edwards_anderson", "dims": 3, "L": L, "source": "monte_carlo"})
    g["configs"] = np.ones((D, len(temps), 1, 4, 2, 2, 2), np.int8)  # shape only
    g["overlap"] = q.astype(np.float32)
    g["temperatures"] = np.asarray(temps, float)
    g["equilibrated"] = np.ones(D, bool)
    return g


def _write_ising(f, L, scale, rng, n=4000, temps=TEMPS):
    N = L ** 2
    m = rng.standard_normal((len(temps), n)) * np.sqrt(_chi_curve(temps) * scale / N)[:, None]
    g = f.create_group(f"L{L}")
    g.attrs.update({"model": "ising", "dims": 2, "L": L, "source": "monte_carlo", "chains": 1})
    g["magnetization"] = m
    g["temperatures"] = np.asarray(temps, float)
    return g


def _pair(tmp_path, scale_large, writer=_write_ea, seed=0, **kw):
    rng = np.random.default_rng(seed)
    with h5py.File(tmp_path / f"s{seed}.h5", "w") as f:
        curves = [size_curve(writer(f, L, s, rng, **kw)) for L, s in ((4, 1.0), (8, scale_large))]
    (p,) = check_sizes(curves)
    assert (p.small.L, p.large.L) == (4, 8)
    return p


def test_ea_curve_is_chi_sg_with_the_jackknife_over_disorder_samples(tmp_path):
    rng = np.random.default_rng(3)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        g = _write_ea(f, 4, 1.0, rng, D=8, sample_spread=0.3)
        c = size_curve(g)
        q = g["overlap"][...]
    for t in range(len(TEMPS)):
        qt = np.moveaxis(q[:, t], 1, 0).reshape(q.shape[2], -1)
        v, e = obs.spin_glass_susceptibility(qt, 64, n_bins=8)  # the sample stage's table
        assert c.chi[t] == pytest.approx(v, rel=1e-9) and c.err[t] == pytest.approx(e, rel=1e-9)
    assert c.replicas.shape == (8, len(TEMPS)) and c.observable == "chi_SG"


def test_consistent_sizes_pass(tmp_path):
    p = _pair(tmp_path, 1.3, sample_spread=0.2)
    assert p.passed and p.log_ratio == pytest.approx(np.log(1.3), abs=0.1)
    assert p.log_ratio_z > 3 and "consistent" in p.summary()


def test_a_larger_size_far_below_is_flagged_per_temperature(tmp_path):
    p = _pair(tmp_path, 0.5, sample_spread=0.2)
    assert not p.passed and p.failed.sum() >= len(TEMPS) // 2
    assert "BELOW" in p.summary() and p.min_z < -4


def test_a_small_shortfall_at_every_temperature_is_caught_by_the_mean_log_ratio(tmp_path):
    """2 % low everywhere: about -1 sigma per temperature, about -5 sigma over 24 of them
    (independent thermal noise between temperatures)."""
    p = _pair(tmp_path, 0.98)
    assert not p.failed.any(), p.z  # no single temperature sees it
    assert p.combined_failed and not p.passed, (p.log_ratio, p.log_ratio_err)
    assert p.log_ratio == pytest.approx(np.log(0.98), abs=3 * p.log_ratio_err)


def test_the_mean_log_ratio_error_keeps_the_correlation_between_temperatures(tmp_path):
    """A disorder factor shared by all temperatures: the mean over 24 temperatures is no
    more precise than one temperature (its error is not the per-T error / sqrt(24))."""
    p = _pair(tmp_path, 1.0, sample_spread=0.4)
    per_t = np.hypot(p.err_small / p.chi_small, p.err_large / p.chi_large)
    assert p.log_ratio_err > 0.6 * per_t.mean()


def test_clean_model_uses_n_m2(tmp_path):
    ok = _pair(tmp_path, 1.2, writer=_write_ising, seed=1)
    bad = _pair(tmp_path, 0.6, writer=_write_ising, seed=2)
    assert ok.large.observable == "chi_full" and ok.passed
    assert not bad.passed and bad.failed.all()


def test_only_the_overlap_of_the_larger_grid_inside_the_smaller_is_compared(tmp_path):
    rng = np.random.default_rng(4)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        small = size_curve(_write_ea(f, 4, 1.0, rng, temps=np.linspace(1.2, 1.6, 5)))
        large = size_curve(_write_ea(f, 8, 1.0, rng, temps=np.linspace(1.5, 1.9, 5)))
    (p,) = check_sizes([large, small])
    assert np.allclose(p.T, [1.5, 1.6])


def _samples_file(path, scales):
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as f:
        f.attrs.update({schema.ATTR_SCHEMA: "hpc_rg", schema.ATTR_VERSION: 1,
                        schema.ATTR_STAGE: "sample"})
        for L, s in scales:
            _write_ea(f, L, s, rng)


@pytest.mark.parametrize("scale, rc", [(1.3, 0), (0.5, 1)])
def test_tool_exit_codes(tmp_path, scale, rc):
    path = tmp_path / "samples.h5"
    _samples_file(path, [(4, 1.0), (8, scale)])
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.size_check", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == rc, r.stdout + r.stderr
    assert ("BELOW" in r.stdout) == (rc == 1)


def test_tool_needs_two_sizes(tmp_path):
    path = tmp_path / "samples.h5"
    _samples_file(path, [(4, 1.0)])
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.size_check", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "at least two sizes" in r.stderr and "Traceback" not in r.stderr
