"""The super-resolution vs Monte Carlo comparison (issue #16): temperature matching,
interpolation, z-scores and the P(q) histogram errors, on hand-made tables and files."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from hpc_rg.analysis.tables import GroupTable
from hpc_rg.analysis.versus_mc import (compare_histograms, compare_tables, match_rows,
                                       overlap_histogram)


def _table(grid, values, errors, nominal=None, source="monte_carlo"):
    return GroupTable(label=source, path="x.h5", L=16, dims=3, model="edwards_anderson",
                      source=source, grid_name="temperatures", grid=np.asarray(grid, float),
                      nominal=None if nominal is None else np.asarray(nominal, float),
                      r=np.array([1]), values={k: np.asarray(v, float) for k, v in values.items()},
                      errors={k: np.asarray(v, float) for k, v in errors.items()}, disorder=8)


def test_match_rows_interpolates_inside_and_skips_outside_or_unknown():
    mc = np.array([1.0, 1.2, 1.4])
    pairs, skipped = match_rows(mc, np.array([1.1, 1.4, np.nan, 1.5, 0.9]),
                                np.array([1.0, 1.2, 1.3, 1.4, 1.0]), "effective")
    assert [p[0] for p in pairs] == [0, 1]
    i0, i1, w = pairs[0][3]
    assert (i0, i1) == (0, 1) and w == pytest.approx(0.5)
    assert pairs[1][3] == (2, 2, 1.0)  # on a grid point: that point alone
    assert [s[0] for s in skipped] == [2, 3, 4]
    assert "no effective temperature" in skipped[0][2] and "outside" in skipped[1][2]


def test_match_rows_nominal_uses_the_input_temperature():
    pairs, skipped = match_rows(np.array([1.0, 1.2]), np.array([1.1, 1.3, 1.0]),
                                np.array([1.2, 1.1, 1.25]), "nominal")
    assert [(p[0], p[3][:2]) for p in pairs] == [(0, (1, 1)), (1, (0, 1))]
    assert pairs[1][1] == pytest.approx(1.1) and pairs[1][3][2] == pytest.approx(0.5)
    assert skipped[0][0] == 2 and "T_in=1.25 outside" in skipped[0][2]


def test_z_scores_use_the_interpolated_curve_and_both_errors():
    mc = _table([1.0, 2.0], {"g": [0.8, 0.4]}, {"g": [0.02, 0.04]})
    sr = _table([1.5, 1.5], {"g": [0.6 + 0.05, 0.6 + 0.5]}, {"g": [0.03, 0.03]},
                nominal=[1.0, 2.0], source="superres")
    c = compare_tables(mc, sr, ["g"])
    assert c.mc["g"] == pytest.approx([0.6, 0.6])
    assert c.mc_err["g"] == pytest.approx([0.03, 0.03])  # w e1 + (1-w) e2
    assert c.z["g"] == pytest.approx([0.05 / np.hypot(0.03, 0.03), 0.5 / np.hypot(0.03, 0.03)])
    worst = c.worst(4.0)
    assert len(worst) == 1 and worst[0][0] == "g" and worst[0][2] > 4  # the 0.5 shift is caught


def _ea_mc_file(path, q, temps):
    """A minimal EA Monte Carlo size group: overlap (D, T, S, P), certified samples."""
    D, T, S, P = q.shape
    with h5py.File(path, "w") as f:
        g = f.create_group("L4")
        g.attrs.update({"model": "edwards_anderson", "dims": 3, "L": 4, "source": "monte_carlo",
                        "equilibrated": np.ones(D, bool)})
        g["configs"] = np.ones((D, T, S, 4, 4, 4, 4), np.int8)
        g["overlap"] = q
        g["link_overlap"] = np.zeros_like(q)
        g["temperatures"] = np.asarray(temps, float)


def _sr_file(path, q, temps, nominal):
    T, N = q.shape
    with h5py.File(path, "w") as f:
        g = f.create_group("L4")
        g.attrs.update({"model": "edwards_anderson", "dims": 3, "L": 4, "source": "superres",
                        "level": 1, "input_L": 2})
        g["configs"] = np.ones((T, N, 4, 4, 4), np.int8)
        g["overlap"] = q
        g["link_overlap"] = np.zeros_like(q)
        g["temperatures"] = np.asarray(temps, float)
        g["nominal_temperatures"] = np.asarray(nominal, float)


def test_overlap_histogram_jackknife_over_disorder_samples(tmp_path):
    rng = np.random.default_rng(1)
    D, T, S, P = 6, 2, 10, 3
    q = rng.choice([-0.5, 0.0, 0.5, 1.0], size=(D, T, S, P))
    _ea_mc_file(tmp_path / "mc.h5", q, [1.0, 2.0])
    edges = np.linspace(-1, 1, 5)
    edges[-1] += 1e-12
    with h5py.File(tmp_path / "mc.h5") as f:
        p, err, n = overlap_histogram(f["L4"], edges, cfg={})
    per_sample = np.stack([[np.histogram(q[d, t].ravel(), edges)[0] / (S * P) for d in range(D)]
                           for t in range(T)])  # (T, D, bins)
    assert p == pytest.approx(per_sample.mean(axis=1))
    assert p.sum(axis=1) == pytest.approx([1.0, 1.0]) and list(n) == [D * S * P] * T
    # equal block sizes: the jackknife error is the standard error of the per-sample means
    assert err == pytest.approx(per_sample.std(axis=1, ddof=1) / np.sqrt(D))


def test_histograms_of_the_same_ensemble_agree_and_of_a_shifted_one_do_not(tmp_path):
    rng = np.random.default_rng(2)
    D, T, S, P = 16, 2, 40, 2
    q = np.clip(rng.normal(0.0, 0.3, size=(D, T, S, P)), -1, 1)
    _ea_mc_file(tmp_path / "mc.h5", q, [1.0, 2.0])
    same = q.transpose(1, 0, 2, 3).reshape(T, D * S * P)  # rows ordered by disorder sample
    _sr_file(tmp_path / "same.h5", same, [1.0, 2.0], [1.0, 2.0])
    _sr_file(tmp_path / "shift.h5", np.clip(same + 0.3, -1, 1), [1.0, 2.0], [1.0, 2.0])
    cfg = {"model": {"disorder_samples": D}}
    with h5py.File(tmp_path / "mc.h5") as fm, h5py.File(tmp_path / "same.h5") as fs, \
            h5py.File(tmp_path / "shift.h5") as fx:
        mc = _table([1.0, 2.0], {"g": [0.5, 0.5]}, {"g": [0.1, 0.1]})
        sr = _table([1.0, 2.0], {"g": [0.5, 0.5]}, {"g": [0.1, 0.1]}, nominal=[1.0, 2.0])
        c = compare_tables(mc, sr, ["g"])
        compare_histograms(c, fm["L4"], fs["L4"], bins=8, cfg_mc={}, cfg_sr=cfg)
        assert np.allclose(c.pq["sr"], c.pq["mc"]) and np.all(c.pq["chi2"] == 0)
        compare_histograms(c, fm["L4"], fx["L4"], bins=8, cfg_mc={}, cfg_sr=cfg)
        assert np.all(c.pq["max_abs_z"] > 4)


def test_an_empty_bin_gets_the_binomial_error_not_zero(tmp_path):
    """Few super-resolved configurations: a bin empty by chance must not give |z| = p/σ_MC."""
    rng = np.random.default_rng(3)
    D, T, S, P = 16, 1, 50, 2
    q = np.clip(rng.normal(0.0, 0.3, size=(D, T, S, P)), -1, 1)
    _ea_mc_file(tmp_path / "mc.h5", q, [1.0])
    few = q[:, :, :1, :1].reshape(T, D)  # one overlap per disorder sample
    _sr_file(tmp_path / "few.h5", few, [1.0], [1.0])
    with h5py.File(tmp_path / "mc.h5") as fm, h5py.File(tmp_path / "few.h5") as fs:
        mc = _table([1.0], {"g": [0.5]}, {"g": [0.1]})
        sr = _table([1.0], {"g": [0.5]}, {"g": [0.1]}, nominal=[1.0])
        c = compare_tables(mc, sr, ["g"])
        compare_histograms(c, fm["L4"], fs["L4"], bins=16, cfg_mc={},
                           cfg_sr={"model": {"disorder_samples": D}})
    assert np.all(c.pq["sr_err"][c.pq["mc"] > 0] > 0)
    assert c.pq["max_abs_z"][0] < 4
