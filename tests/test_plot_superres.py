"""tools/plot_superres.py on tiny synthetic samples.h5 / upscaled.h5 (docs/hdf5-layout.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("plot_superres", REPO / "tools" / "plot_superres.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------- synthetic run directories

def _root(f, stage):
    f.attrs.update(hpc_rg_version="0.1.0", schema_version=1, config_yaml="run: {}\n",
                   created_utc="2026-01-01T00:00:00+00:00", mpi_ranks=1, seed=1,
                   git_commit="", stage=stage, complete=True)


def _ds(g, name, data, axes=None):
    d = g.create_dataset(name, data=data)
    if axes:
        d.attrs["axes"] = axes
    return d


def _spatial(dims):
    return ",".join("xyz"[:dims])


def _mc_group(f, model, L, dims, grid, rng, S=16, chains=2, D=3, R=4):
    g = f.create_group(f"L{L}")
    g.attrs.update(model=model, dims=dims, L=L, source="monte_carlo", chunks_done=1,
                   algorithm="metropolis", thermalize=10, thin=1, samples_per_chain=S // chains,
                   chains=chains, tempering=False, ranks_per_replica=1, sweeps=20,
                   size_complete=True, seed=1)
    T, lat = len(grid), (L,) * dims
    if model == "edwards_anderson":
        P = R * (R - 1) // 2
        g.attrs.update(J=1.0, h=0.0, disorder="gaussian", disorder_samples=D, replicas=R)
        _ds(g, "configs", rng.choice(np.array([-1, 1], np.int8), (D, T, S, R) + lat),
            "disorder,temperature,sample,replica," + _spatial(dims))
        for name in ("energy", "magnetization"):
            _ds(g, name, rng.normal(size=(D, T, S, R)), "disorder,temperature,sample,replica")
        for name in ("overlap", "link_overlap"):
            _ds(g, name, rng.uniform(-1, 1, (D, T, S, P)), "disorder,temperature,sample,pair")
        _ds(g, "temperatures", np.asarray(grid, float))
        return g
    axes = "temperature,sample"
    if model == "phi4":
        g.attrs.update(parametrization="bachtis", kappa=1.0, lam=0.7, scanned="mu2")
        _ds(g, "configs", rng.normal(size=(T, S) + lat).astype(np.float32), axes + "," + _spatial(dims))
        phi = rng.normal(0.5, 0.2, (T, S))
        for name, data in (("phi_mean", phi), ("magnetization", phi), ("phi2_mean", phi ** 2 + 0.1),
                           ("action", rng.normal(size=(T, S))), ("energy", rng.normal(size=(T, S)))):
            _ds(g, name, data, axes)
        _ds(g, "couplings", np.asarray(grid, float))
        return g
    g.attrs.update(J=1.0, h=0.0)
    _ds(g, "configs", rng.choice(np.array([-1, 1], np.int8), (T, S) + lat), axes + "," + _spatial(dims))
    N = L ** dims  # magnetization and energy on the lattice's value grid
    _ds(g, "magnetization", 2.0 * rng.integers(-N // 2, N // 2 + 1, (T, S)) / N, axes)
    _ds(g, "energy", -2.0 + 4.0 * rng.integers(0, N // 2, (T, S)) / N, axes)
    _ds(g, "temperatures", np.asarray(grid, float))
    return g


def _sr_group(f, model, L, dims, level, input_L, eff, nominal, N, rng):
    g = f.create_group(f"L{L}")
    g.attrs.update(model=model, dims=dims, L=L, source="superres", chunks_done=1, level=level,
                   input_L=input_L, train_L=input_L, blocking="majority", rescaled=True,
                   overlap_configs=model == "edwards_anderson",
                   network_temperatures=np.asarray(nominal, float))
    T, axes = len(nominal), "temperature,sample"
    dtype = np.float32 if model == "phi4" else np.int8
    _ds(g, "configs", np.ones((T, N) + (L,) * dims, dtype), axes + "," + _spatial(dims))
    _ds(g, "consistency", np.ones((T, N)), axes)
    if model == "edwards_anderson":
        _ds(g, "overlap", rng.uniform(-1, 1, (T, N)), axes)
        _ds(g, "link_overlap", rng.uniform(0, 1, (T, N)), axes)
    elif model == "phi4":
        phi = rng.normal(0.5, 0.2, (T, N))
        for name, data in (("phi_mean", phi), ("magnetization", phi), ("phi2_mean", phi ** 2)):
            _ds(g, name, data, axes)
    else:
        _ds(g, "magnetization", rng.uniform(-1, 1, (T, N)), axes)
        _ds(g, "energy", rng.uniform(-2, 0, (T, N)), axes)
    _ds(g, "couplings" if model == "phi4" else "temperatures", np.asarray(eff, float))
    _ds(g, "nominal_temperatures", np.asarray(nominal, float))
    return g


def make_run(path, model, dims=2, L=4, refs=(2, 8), levels=2):
    """A complete run directory: samples.h5 (L and refs) and upscaled.h5 (2L, 4L, ...)."""
    rng = np.random.default_rng(0)
    path.mkdir(parents=True, exist_ok=True)
    grid = [-1.0, -0.95, -0.9] if model == "phi4" else [2.0, 2.3, 2.6]
    S, D, R = 16, 3, 4
    with h5py.File(path / "samples.h5", "w") as f:
        _root(f, "sample")
        for size in (L,) + tuple(refs):
            _mc_group(f, model, size, dims, grid, rng, S=S, D=D, R=R)
    N = D * S * (R // 2) if model == "edwards_anderson" else S
    with h5py.File(path / "upscaled.h5", "w") as f:
        _root(f, "upscale")
        for k in range(1, levels + 1):
            eff = [np.nan] + [x * (1 - 0.02 * k) for x in grid[1:]]
            _sr_group(f, model, L * 2 ** k, dims, k, L, eff, grid, N, rng)
    return path


def _assert_pngs(paths):
    assert paths
    for p in paths:
        data = Path(p).read_bytes()
        assert len(data) > 1000 and data[:8] == PNG_SIGNATURE, p


# ---------------------------------------------------------------- numbers

def test_binder_ratio_averages_moments_over_disorder(tool):
    # disorder 0: q = +-1 (<q2> = <q4> = 1); 1: q = +-1/2 (1/4, 1/16); 2: mixed (5/8, 17/32)
    q = np.array([[1, 0.5, 0.5], [-1, 0.5, -1], [1, -0.5, 1], [-1, -0.5, -0.5]])
    g, err = tool.binder_ratio(q)
    q2, q4 = np.array([1, 0.25, 0.625]), np.array([1, 0.0625, 0.53125])
    assert g == pytest.approx(0.5 * (3 - q4.mean() / q2.mean() ** 2))  # not the mean of per-disorder g
    loo = [0.5 * (3 - np.delete(q4, i).mean() / np.delete(q2, i).mean() ** 2) for i in range(3)]
    assert err == pytest.approx(np.sqrt(2 / 3 * ((loo - np.mean(loo)) ** 2).sum()))


def test_binder_ratio_limits(tool):
    ordered = np.ones((8, 4))
    assert tool.binder_ratio(ordered)[0] == pytest.approx(1.0)
    gauss = np.random.default_rng(1).normal(size=(200_000, 1))  # one disorder sample
    g, err = tool.binder_ratio(gauss)
    assert abs(g) < 0.02 and err > 0


def test_overlap_grouping(tool):
    D, T, S, P = 3, 2, 4, 2
    q = np.arange(D * T * S * P, dtype=float).reshape(D, T, S, P)
    mc = tool.mc_overlaps(q, 1)
    assert mc.shape == (S * P, D)
    np.testing.assert_array_equal(mc[:, 2], q[2, 1].ravel())
    # SR: flat n = (d * S + k) * pairs + p, disorder slowest
    flat = q.transpose(1, 0, 2, 3).reshape(T, D * S * P)
    sr = tool.sr_overlaps(flat, 1, S * P)
    np.testing.assert_array_equal(sr, mc)
    # upscale.samples < all: the partial last disorder sample is dropped
    assert tool.sr_overlaps(flat[:, :-3], 1, S * P).shape == (S * P, D - 1)


def test_thermo_chi_and_specific_heat(tool):
    m = np.tile([0.5, -0.5, 1.0, -1.0], 8)[None, :]  # one temperature, 32 samples
    e = np.tile([-1.0, -2.0], 16)[None, :]
    T, N = 2.0, 16
    r = tool.thermo(e, m, [T], N, chains=2)
    assert r["abs_m"][0][0] == pytest.approx(0.75)
    assert r["e"][0][0] == pytest.approx(-1.5)
    assert r["chi"][0][0] == pytest.approx(N * (0.625 - 0.75 ** 2) / T)  # 0.5
    assert r["C"][0][0] == pytest.approx(N * (2.5 - 1.5 ** 2) / T ** 2)  # 1.0


def test_hist_edges_align_to_value_grid(tool):
    x = np.arange(0, 1.0001, 0.0625)  # N = 32 |m| values: step 1/16
    edges = tool.hist_edges([x])
    counts, _ = np.histogram(x, edges)
    assert counts.min() >= 1  # no aliased empty bins
    assert edges[0] < x.min() and edges[-1] > x.max()
    y = np.random.default_rng(2).normal(size=1000)  # continuous: plain 20 bins
    assert len(tool.hist_edges([y])) == 21


# ---------------------------------------------------------------- end to end

def test_ising_all(tool, tmp_path, capsys):
    run = make_run(tmp_path / "ising", "ising")
    out = tmp_path / "plots"
    assert tool.main([str(run), "--out", str(out)]) == 0
    printed = capsys.readouterr()
    paths = printed.out.split()
    names = sorted(Path(p).name for p in paths)
    assert names == ["curves.png", "histograms_t00_T2.0000.png", "histograms_t01_T2.3000.png",
                     "histograms_t02_T2.6000.png"]
    _assert_pngs(paths)
    assert "skipped binder" in printed.err and "skipped phi4" in printed.err


def test_ising_histograms_chosen_temperatures_1d(tool, tmp_path, capsys):
    run = make_run(tmp_path / "ising1d", "ising", dims=1, L=8, refs=(), levels=3)
    assert tool.main([str(run), "--kind", "histograms", "--temperature", "1"]) == 0
    paths = capsys.readouterr().out.split()
    assert [Path(p).name for p in paths] == ["histograms_t01_T2.3000.png"]
    assert Path(paths[0]).parent == run / "plots"
    _assert_pngs(paths)


def test_edwards_anderson_binder(tool, tmp_path, capsys):
    run = make_run(tmp_path / "ea", "edwards_anderson", dims=2)
    assert tool.main([str(run), "--out", str(tmp_path / "p")]) == 0
    paths = capsys.readouterr().out.split()
    assert [Path(p).name for p in paths] == ["binder.png"]
    _assert_pngs(paths)


def test_phi4(tool, tmp_path, capsys):
    run = make_run(tmp_path / "phi", "phi4", refs=(2,))
    assert tool.main([str(run), "--kind", "phi4", "--out", str(tmp_path / "p")]) == 0
    paths = capsys.readouterr().out.split()
    assert [Path(p).name for p in paths] == ["phi4.png"]
    _assert_pngs(paths)


# ---------------------------------------------------------------- bad input

def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_missing_file(tool, tmp_path, capsys):
    run = make_run(tmp_path / "r", "ising")
    (run / "upscaled.h5").unlink()
    assert tool.main([str(run)]) == 2
    _one_line_error(capsys, "upscaled.h5")


def test_missing_dir(tool, tmp_path, capsys):
    assert tool.main([str(tmp_path / "nope")]) == 2
    _one_line_error(capsys, "nope")


def test_not_hpc_rg_output(tool, tmp_path, capsys):
    run = make_run(tmp_path / "r", "ising")
    (run / "samples.h5").write_text("not hdf5\n")
    assert tool.main([str(run)]) == 2
    _one_line_error(capsys, "samples.h5")
    with h5py.File(run / "samples.h5", "w") as f:
        f.create_dataset("x", data=[1])
    assert tool.main([str(run)]) == 2
    _one_line_error(capsys, "samples.h5", "not an hpc_rg output")


def test_incomplete_file(tool, tmp_path, capsys):
    run = make_run(tmp_path / "r", "ising")
    with h5py.File(run / "upscaled.h5", "a") as f:
        f.attrs["complete"] = False
    assert tool.main([str(run)]) == 2
    _one_line_error(capsys, "upscaled.h5", "incomplete")


def test_missing_dataset_and_bad_choices(tool, tmp_path, capsys):
    run = make_run(tmp_path / "r", "ising")
    assert tool.main([str(run), "--kind", "binder"]) == 2
    _one_line_error(capsys, "binder", "edwards_anderson")
    assert tool.main([str(run), "--temperature", "7"]) == 2
    _one_line_error(capsys, "--temperature")
    with h5py.File(run / "upscaled.h5", "a") as f:
        del f["L8/energy"]
    assert tool.main([str(run), "--kind", "curves", "--out", str(tmp_path / "p")]) == 2
    _one_line_error(capsys, "upscaled.h5", "/L8/energy")
