"""hpc_rg.tools.plot (python -m hpc_rg.tools.plot, tools/plot) on finished runs and synthetic files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from hpc_rg.analysis import correlation
from hpc_rg.analysis import ensemble_stats as stats
from hpc_rg.analysis.correlation import two_point_profile
from hpc_rg.plots import correlation as plot_correlation
from hpc_rg.plots import flow_diagnostics, snapshots, tempering
from hpc_rg.tools import plot as tool

REPO = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_pngs(paths, min_h=300, min_w=400):
    from matplotlib.image import imread

    assert paths
    for p in paths:
        data = Path(p).read_bytes()
        assert len(data) > 5000 and data[:8] == PNG_SIGNATURE, p
        img = imread(str(p))
        assert img.ndim == 3 and img.shape[0] >= min_h and img.shape[1] >= min_w, (p, img.shape)
        assert img[..., :3].std() > 0.01, p  # not a blank canvas


def _run(argv, capsys):
    """cli() in-process: (exit code, stdout lines, stderr)."""
    rc = tool.run_tool("plot", tool.main, [str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out.split(), cap.err


def _one_line_error(rc, err, *needles):
    assert rc == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("plot: error: "), err
    for n in needles:
        assert n in err, err


def _copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns("checkpoints", "model.pt", "plots"))
    return dst


# ---------------------------------------------------------------- numbers (synthetic data)

def test_binder_ratio_averages_moments_over_disorder():
    # disorder 0: q = +-1 (<q2> = <q4> = 1); 1: q = +-1/2 (1/4, 1/16); 2: mixed (5/8, 17/32)
    q = np.array([[1, 0.5, 0.5], [-1, 0.5, -1], [1, -0.5, 1], [-1, -0.5, -0.5]])
    g, err = stats.binder_ratio(q)
    q2, q4 = np.array([1, 0.25, 0.625]), np.array([1, 0.0625, 0.53125])
    assert g == pytest.approx(0.5 * (3 - q4.mean() / q2.mean() ** 2))  # not the mean of per-disorder g
    loo = [0.5 * (3 - np.delete(q4, i).mean() / np.delete(q2, i).mean() ** 2) for i in range(3)]
    assert err == pytest.approx(np.sqrt(2 / 3 * ((loo - np.mean(loo)) ** 2).sum()))


def test_binder_ratio_limits():
    assert stats.binder_ratio(np.ones((8, 4)))[0] == pytest.approx(1.0)
    gauss = np.random.default_rng(1).normal(size=(200_000, 1))  # one disorder sample
    g, err = stats.binder_ratio(gauss)
    assert abs(g) < 0.02 and err > 0


def test_overlap_grouping():
    D, T, S, P = 3, 2, 4, 2
    q = np.arange(D * T * S * P, dtype=float).reshape(D, T, S, P)
    mc = stats.mc_overlaps(q, 1)
    assert mc.shape == (S * P, D)
    np.testing.assert_array_equal(mc[:, 2], q[2, 1].ravel())
    # SR: flat n = (d * S + k) * pairs + p, disorder slowest
    flat = q.transpose(1, 0, 2, 3).reshape(T, D * S * P)
    np.testing.assert_array_equal(stats.sr_overlaps(flat, 1, S * P), mc)
    # upscale.samples < all: the partial last disorder sample is dropped
    assert stats.sr_overlaps(flat[:, :-3], 1, S * P).shape == (S * P, D - 1)


def test_thermo_chi_and_specific_heat():
    m = np.tile([0.5, -0.5, 1.0, -1.0], 8)[None, :]  # one temperature, 32 samples
    e = np.tile([-1.0, -2.0], 16)[None, :]
    T, N = 2.0, 16
    r = stats.thermo(e, m, [T], N, chains=2)
    assert r["abs_m"][0][0] == pytest.approx(0.75)
    assert r["e"][0][0] == pytest.approx(-1.5)
    assert r["chi"][0][0] == pytest.approx(N * (0.625 - 0.75 ** 2) / T)  # 0.5
    assert r["C"][0][0] == pytest.approx(N * (2.5 - 1.5 ** 2) / T ** 2)  # 1.0


def test_hist_edges_align_to_value_grid():
    x = np.arange(0, 1.0001, 0.0625)  # N = 32 |m| values: step 1/16
    edges = stats.hist_edges([x])
    counts, _ = np.histogram(x, edges)
    assert counts.min() >= 1  # no aliased empty bins
    assert edges[0] < x.min() and edges[-1] > x.max()
    y = np.random.default_rng(2).normal(size=1000)  # continuous: plain 20 bins
    assert len(stats.hist_edges([y])) == 21


def test_distances():
    np.testing.assert_array_equal(correlation.distances(8), [1, 2, 3, 4])
    r = correlation.distances(1024)
    assert r[0] == 1 and r[-1] == 512 and len(r) <= 16 and np.all(np.diff(r) > 0)


# ---------------------------------------------------------------- every kind on finished runs

def test_ising_all(ising_run, tmp_path, capsys):
    rc, paths, err = _run([ising_run, "--out", tmp_path / "p"], capsys)
    assert rc == 0 and err == "", err  # inapplicable kinds are skipped silently
    names = sorted(Path(p).name for p in paths)
    assert names == ["correlation_t01_T2.2692.png", "curves.png", "histograms_t00_T2.0000.png",
                     "histograms_t01_T2.2692.png", "histograms_t02_T2.6000.png",
                     "snapshots_t01_T2.2692_n0.png"]  # default temperature: nearest T_c
    _assert_pngs(paths)


def test_ea_all_from_files(ea_run, tmp_path, capsys):
    files = [ea_run / "upscaled.h5", ea_run / "samples.h5"]  # any order
    rc, paths, err = _run([*files, "--out", tmp_path / "p", "--temperature", "all"], capsys)
    assert rc == 0, err
    names = sorted(Path(p).name for p in paths)
    assert names == ["binder.png", "correlation_t00_T0.8000.png", "correlation_t01_T1.3000.png",
                     "snapshots_t00_T0.8000_n0.png", "snapshots_t01_T1.3000_n0.png", "tempering.png"]
    _assert_pngs(paths)


def test_phi4_module_subprocess(phi4_run, tmp_path):
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.plot", str(phi4_run)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    paths = r.stdout.split()
    assert all(Path(p).parent == phi4_run / "plots" for p in paths)  # default --out
    assert sorted(Path(p).name for p in paths) == [
        "correlation_t01_K-0.9000.png", "phi4.png", "snapshots_t01_K-0.9000_n0.png"]
    _assert_pngs(paths)
    shutil.rmtree(phi4_run / "plots")  # the fixture is shared: leave it as it was


def test_help_and_wrapper(ising_run, tmp_path):
    r = subprocess.run([sys.executable, "-m", "hpc_rg.tools.plot", "--help"], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "snapshots" in r.stdout and "--max-configs" in r.stdout
    wrapper = REPO / "tools" / "plot"
    assert wrapper.stat().st_mode & 0o111
    r = subprocess.run([str(wrapper), str(ising_run / "samples.h5"), "--kind", "correlation",
                        "--sizes", "4,16", "--temperature", "0,2", "--out", str(tmp_path / "w")],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(Path(p).name for p in r.stdout.split()) == [
        "correlation_t00_T2.0000.png", "correlation_t02_T2.6000.png"]
    _assert_pngs(r.stdout.split())
    r = subprocess.run([str(wrapper), str(tmp_path / "nope.h5")], capture_output=True, text=True,
                       timeout=60)
    _one_line_error(r.returncode, r.stderr, "nope.h5", "no such file")


# ---------------------------------------------------------------- what is drawn

def test_snapshots_pick_the_descendants(ising_run, ea_run, tmp_path, capsys):
    inp = tool.open_inputs([ising_run])
    try:
        panels = snapshots.snapshot_panels(inp, 2, 5)
        assert [(src, L) for src, L, *_ in panels] == [("MC", 8), ("SR", 16), ("SR", 32)]
        with h5py.File(ising_run / "samples.h5") as s, h5py.File(ising_run / "upscaled.h5") as u:
            np.testing.assert_array_equal(panels[0][3], s["L8/configs"][2, 5])
            np.testing.assert_array_equal(panels[1][3], u["L16/configs"][2, 5])
            np.testing.assert_array_equal(panels[2][3], u["L32/configs"][2, 5])
            assert panels[1][2] == pytest.approx(u["L16/temperatures"][2])
    finally:
        inp.close()
    inp = tool.open_inputs([ea_run])
    try:
        # n = (d*S + k)*P + p with S = 10 samples, P = 2 pairs: n = 27 -> d=1, k=3, p=1
        panels = snapshots.snapshot_panels(inp, 1, 27)
        with h5py.File(ea_run / "samples.h5") as s, h5py.File(ea_run / "upscaled.h5") as u:
            spins = s["L4/configs"][1, 1, 3]  # (R, L, L, L)
            np.testing.assert_array_equal(panels[0][3], spins[2] * spins[3])
            np.testing.assert_array_equal(panels[2][3], u["L16/configs"][1, 27])
        sl = snapshots.middle_slice(panels[2][3], 3)
        np.testing.assert_array_equal(sl, panels[2][3][:, :, 8])
    finally:
        inp.close()
    rc, paths, err = _run([ea_run, "--kind", "snapshots", "--config", "27", "--temperature", "1",
                           "--out", tmp_path], capsys)
    assert rc == 0 and [Path(p).name for p in paths] == ["snapshots_t01_T1.3000_n27.png"], err
    _assert_pngs(paths)
    rc, _, err = _run([ea_run, "--kind", "snapshots", "--config", "40"], capsys)
    _one_line_error(rc, err, "--config 40", "0..39")


def test_correlation_values_are_two_point(ising_run, ea_run):
    inp = tool.open_inputs([ising_run])
    try:
        rows = {(src, L): (rs, G, err, n) for src, L, _, rs, G, err, n in plot_correlation.correlation_data(inp, 1)}
        assert set(rows) == {("MC", 4), ("MC", 8), ("MC", 16), ("SR", 16), ("SR", 32)}
        with h5py.File(ising_run / "samples.h5") as s, h5py.File(ising_run / "upscaled.h5") as u:
            for (src, L), (rs, G, err, n) in rows.items():
                x = (s if src == "MC" else u)[f"L{L}/configs"][1]
                want = two_point_profile(x, 2, rs)
                assert n == 80 and np.all(err > 0)
                np.testing.assert_allclose(G, want.mean(axis=0), rtol=1e-12)
        # --max-configs: every step-th configuration, spread over both chains
        sub = {(src, L): (G, n) for src, L, _, rs, G, err, n in plot_correlation.correlation_data(inp, 0, 30)}
        with h5py.File(ising_run / "upscaled.h5") as u:
            x = u["L32/configs"][0, ::3]
        assert sub[("SR", 32)][1] == 27
        np.testing.assert_allclose(sub[("SR", 32)][0], two_point_profile(x, 2, correlation.distances(32)).mean(0))
    finally:
        inp.close()
    inp = tool.open_inputs([ea_run])
    try:
        (src, L, _, rs, G, _, n), *_ = plot_correlation.correlation_data(inp, 0)
        with h5py.File(ea_run / "samples.h5") as s:
            c = s["L4/configs"][:, 0]  # (D, S, R, 4, 4, 4)
        rho = (c[:, :, 0::2] * c[:, :, 1::2]).reshape((-1,) + c.shape[3:])  # (d, k, p) order
        assert (src, L, n) == ("MC", 4, 40)
        np.testing.assert_allclose(G, two_point_profile(rho, 3, rs).mean(0))
        # batched reading gives the same series as one read
        g = inp.samples["L4"]
        np.testing.assert_array_equal(correlation.correlation_series(g, 0, rs, 3, batch_elements=64 * 3),
                                      two_point_profile(rho, 3, rs))
    finally:
        inp.close()


def test_tempering_data(ea_run):
    inp = tool.open_inputs([ea_run / "samples.h5"])
    try:
        (L, T, acc, trips, attempts), = tempering.tempering_data(inp)
        with h5py.File(ea_run / "samples.h5") as s:
            np.testing.assert_array_equal(acc, s["L4"].attrs["tempering_acceptance"])
            np.testing.assert_array_equal(trips, s["L4"].attrs["tempering_round_trips"])
        assert L == 4 and len(acc) == len(T) - 1
    finally:
        inp.close()


def test_ess(ising_run, tmp_path, capsys):
    run = _copy(ising_run, tmp_path)
    rc, _, err = _run([run, "--kind", "ess"], capsys)
    _one_line_error(rc, err, "upscaled.h5", "ess_per_n")
    with h5py.File(run / "upscaled.h5", "a") as f:
        f["L16"].attrs["ess_per_n"] = [0.8, 0.6, 0.7]
        f["L16"].create_dataset("acceptance", data=[0.5, 0.4, 0.45])
        f["L32"].create_dataset("ess_per_n", data=[0.5, 0.3, 0.4])
    rc, paths, err = _run([run, "--kind", "ess", "--out", tmp_path / "p"], capsys)
    assert rc == 0 and [Path(p).name for p in paths] == ["ess.png"], err
    _assert_pngs(paths)
    inp = tool.open_inputs([run / "upscaled.h5"])
    try:
        rows = flow_diagnostics.ess_data(inp)
        assert [(r[0], r[1]) for r in rows] == [(16, 1), (32, 2)]
        np.testing.assert_allclose(rows[1][4], [0.5, 0.3, 0.4])
        assert rows[1][5] is None
    finally:
        inp.close()
    with h5py.File(run / "upscaled.h5", "a") as f:  # one number per level
        for L in (16, 32):
            f[f"L{L}"].attrs["ess_per_n"] = 0.5
        del f["L16/acceptance"], f["L32/ess_per_n"]
    rc, paths, err = _run([run, "--kind", "ess", "--out", tmp_path / "q"], capsys)
    assert rc == 0, err
    _assert_pngs(paths)


def test_samples_only_run_dir(ising_run, tmp_path, capsys):
    run = _copy(ising_run, tmp_path)
    (run / "upscaled.h5").unlink()
    rc, paths, err = _run([run, "--out", tmp_path / "p", "-v"], capsys)
    assert rc == 0 and sorted(Path(p).name for p in paths) == [
        "correlation_t01_T2.2692.png", "curves.png"], err
    # -v: one note per skipped kind of `all` (without -v they are skipped silently)
    assert "skipped histograms" in err and "upscaled.h5" in err and "skipped binder" in err
    assert err.count("\n") == 6 and "error" not in err
    rc, _, err = _run([run, "--kind", "histograms"], capsys)
    _one_line_error(rc, err, "upscaled.h5", "histograms")


# ---------------------------------------------------------------- bad input

def test_bad_paths(ising_run, tmp_path, capsys):
    rc, _, err = _run([tmp_path / "nope"], capsys)
    _one_line_error(rc, err, "nope", "no such file")
    (tmp_path / "empty").mkdir()
    rc, _, err = _run([tmp_path / "empty"], capsys)
    _one_line_error(rc, err, "empty", "samples.h5")
    (tmp_path / "x.h5").write_text("not hdf5\n")
    rc, _, err = _run([tmp_path / "x.h5"], capsys)
    _one_line_error(rc, err, "x.h5", "not an HDF5 file")
    with h5py.File(tmp_path / "y.h5", "w") as f:
        f.create_dataset("x", data=[1])
    rc, _, err = _run([tmp_path / "y.h5"], capsys)
    _one_line_error(rc, err, "y.h5", "not an hpc_rg output")
    rc, _, err = _run([ising_run / "samples.h5", ising_run / "samples.h5"], capsys)
    _one_line_error(rc, err, "samples.h5", "at most one")
    rc, _, err = _run([ising_run, tmp_path / "empty"], capsys)
    _one_line_error(rc, err, "is a directory")
    rc, _, err = _run([], capsys)
    _one_line_error(rc, err, "required")
    rc, _, err = _run([ising_run, "--kind", "nonsense"], capsys)
    _one_line_error(rc, err, "--kind")


def test_inapplicable_kinds_and_options(ising_run, ea_run, tmp_path, capsys):
    rc, _, err = _run([ising_run, "--kind", "phi4"], capsys)
    _one_line_error(rc, err, "--kind phi4", "phi4", "ising")
    rc, _, err = _run([ising_run, "--kind", "tempering"], capsys)
    _one_line_error(rc, err, "samples.h5", "tempering_acceptance")
    rc, _, err = _run([ea_run / "upscaled.h5", "--kind", "binder"], capsys)
    _one_line_error(rc, err, "binder", "samples.h5")
    rc, _, err = _run([ising_run, "--sizes", "64"], capsys)
    _one_line_error(rc, err, "/L64", "/L16")
    rc, _, err = _run([ising_run, "--kind", "histograms", "--temperature", "7"], capsys)
    _one_line_error(rc, err, "--temperature 7", "0..2")
    rc, _, err = _run([ising_run, "--temperature", "x"], capsys)
    _one_line_error(rc, err, "--temperature")
    rc, _, err = _run([ea_run / "samples.h5", ising_run / "upscaled.h5"], capsys)
    _one_line_error(rc, err, "different models")


def test_incomplete_and_missing_dataset(ising_run, tmp_path, capsys):
    run = _copy(ising_run, tmp_path)
    with h5py.File(run / "upscaled.h5", "a") as f:
        del f["L16/energy"]
    rc, _, err = _run([run, "--kind", "curves", "--out", tmp_path / "p"], capsys)
    _one_line_error(rc, err, "upscaled.h5", "/L16", "energy")
    with h5py.File(run / "upscaled.h5", "a") as f:
        f.attrs["complete"] = False
    rc, _, err = _run([run], capsys)
    _one_line_error(rc, err, "upscaled.h5", "incomplete")


def test_phi4_same_size_crossing(tmp_path):
    """MC and SR ensembles of one size on one coupling grid: the second panel's data and the
    crossing of their ⟨|φ|⟩ curves (MC falls faster with μ² than SR; they cross at −0.95)."""
    from test_tools_analysis import write_file
    from hpc_rg.plots import make_plots, open_inputs
    from hpc_rg.plots.phi4 import phi4_same_size
    rng = np.random.default_rng(3)
    k = np.linspace(-1.0, -0.9, 5)
    n = 384  # a multiple of the jackknife bins: the binned mean is the plain mean
    noise = lambda: 0.01 * rng.standard_normal((5, n))  # noqa: E731
    mc_phi = (0.5 - 4.0 * (k + 0.95))[:, None] + noise()
    sr_phi = (0.5 - 2.0 * (k + 0.95))[:, None] + noise()
    write_file(tmp_path / "samples.h5", {8: {"couplings": k, "phi_mean": mc_phi + 0.1},
                                         16: {"couplings": k, "phi_mean": mc_phi}})
    write_file(tmp_path / "upscaled.h5", {16: {"couplings": k + 0.003, "nominal_temperatures": k,
                                               "phi_mean": sr_phi}}, stage="upscale")
    with h5py.File(tmp_path / "upscaled.h5", "a") as f:
        f["L16"].attrs["input_L"] = 8
    inp = open_inputs([str(tmp_path)])
    try:
        (L, grid, (m, me), (s, se), cross), = phi4_same_size(inp)
        assert L == 16 and np.allclose(grid, k)
        np.testing.assert_allclose(m, mc_phi.mean(1)), np.testing.assert_allclose(s, sr_phi.mean(1))
        (x0, err), = cross
        assert 0 < err < 0.002 and abs(x0 + 0.95) < 4 * err
        paths = make_plots(inp, tmp_path / "plots", kinds=("phi4",))
    finally:
        inp.close()
    _assert_pngs(paths)
