"""tools/observables, tools/exponents, tools/rescale and the analyze stage: numbers, files,
MPI = 1 rank, and one-line errors for bad input."""

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import FINISHED_RUN_DECKS, REPO, launch_env, run_hpc_rg
from hpc_rg.analysis import observables as obs
from hpc_rg.analysis.correlation import two_point_profile
from hpc_rg.analysis.summary import _bins
from hpc_rg.io import schema
from hpc_rg.tools import exponents, observables, rescale
from hpc_rg.tools.common import run_tool


def write_file(path, groups, stage="sample", model="phi4", dims=2):
    """A minimal hpc_rg-style output: ``groups`` = {L: {dataset: array, ...}}."""
    with h5py.File(path, "w") as f:
        f.attrs.update({schema.ATTR_SCHEMA: 1, schema.ATTR_VERSION: "0.1.0",
                        schema.ATTR_STAGE: stage, schema.ATTR_COMPLETE: True,
                        schema.ATTR_SEED: 1, schema.ATTR_CONFIG: ""})
        for L, data in groups.items():
            g = f.create_group(f"L{L}")
            g.attrs.update({"model": model, "dims": dims, "L": L, "chains": 1,
                            "source": "monte_carlo" if stage == "sample" else "superres"})
            for k, v in data.items():
                g[k] = v
    return path


def load_json(path):
    return json.loads(path.read_text())


def group_of(doc, label, L):
    return next(g for g in doc["groups"] if g["label"] == label and g["L"] == L)


# ------------------------------------------------------------------------- observables
def test_observables_ising_numbers_and_outputs(ising_run, tmp_path):
    src = ising_run / "samples.h5"
    out_json, out_csv, out_h5 = tmp_path / "o.json", tmp_path / "o.csv", tmp_path / "a.h5"
    assert observables.main([str(src), "--json", str(out_json), "--csv", str(out_csv),
                             "--h5", str(out_h5), "--quiet"]) == 0
    doc = load_json(out_json)
    with h5py.File(src) as f:
        for L in (4, 8, 16):
            g = f[f"L{L}"]
            m, e, T = g["magnetization"][()], g["energy"][()], g["temperatures"][()]
            conf = g["configs"][()]
            res = group_of(doc, "samples", L)
            o = res["observables"]
            np.testing.assert_allclose(o["abs_m"]["value"], np.abs(m).mean(1), rtol=1e-12)
            np.testing.assert_allclose(o["e"]["value"], e.mean(1), rtol=1e-12)
            nb = _bins(m.shape[1], 2)
            assert res["jackknife_bins"] == nb
            for t in range(len(T)):
                chi, chi_err = obs.susceptibility(m[t], 1 / T[t], L * L, nb)
                assert o["chi"]["value"][t] == pytest.approx(float(chi), rel=1e-10)
                assert o["chi"]["error"][t] == pytest.approx(float(chi_err), rel=1e-8)
                c, _ = obs.specific_heat(e[t], 1 / T[t], L * L, nb)
                assert o["C"]["value"][t] == pytest.approx(float(c), rel=1e-10)
                u, _ = obs.binder_cumulant(m[t], nb)
                assert o["U4"]["value"][t] == pytest.approx(float(u), rel=1e-10)
            rs = np.arange(1, L // 2 + 1)
            assert res["two_point"]["r"] == rs.tolist()
            G = two_point_profile(conf, 2, rs).mean(axis=1)  # (T, n_r)
            np.testing.assert_allclose(res["two_point"]["value"], G, rtol=1e-12)
    head = out_csv.read_text().splitlines()
    assert head[0].startswith("source,L,grid_name,T") and len(head) == 1 + 3 * 3
    with h5py.File(out_h5) as h:
        assert h.attrs[schema.ATTR_COMPLETE] and h.attrs[schema.ATTR_STAGE] == "analyze"
        assert h.attrs[schema.ATTR_SCHEMA] == schema.SCHEMA_VERSION
        np.testing.assert_allclose(h["samples/L8/abs_m"][()], group_of(doc, "samples", 8)
                                   ["observables"]["abs_m"]["value"])
        assert h["samples/L16/two_point"].shape == (3, 8)
    assert not (tmp_path / "a.h5.partial").exists()


def test_observables_xi_and_G_of_known_configurations(tmp_path):
    """phi_x = ±(a + b cos(2 pi x_1 / L)): G(r) = a^2 + b^2/4 (1 + cos(2 pi r/L)),
    chi(0) = N a^2, chi(k_min) = N b^2 / 8 (averaged over both directions)."""
    L, a, b = 16, 0.75, 0.5
    x = np.arange(L)
    phi = (a + b * np.cos(2 * np.pi * x / L))[:, None] * np.ones((1, L))
    configs = np.stack([phi, -phi] * 4)[None].astype(np.float64)  # (1, 8, L, L)
    m = configs.mean(axis=(2, 3))
    path = write_file(tmp_path / "samples.h5", {L: {
        "configs": configs, "magnetization": m, "phi_mean": m,
        "phi2_mean": (configs ** 2).mean(axis=(2, 3)), "couplings": np.array([0.1])}})
    out = tmp_path / "o.json"
    assert observables.main([str(path), "--json", str(out), "--r", "1", "4", "8", "99"]) == 0
    res = load_json(out)["groups"][0]
    xi = np.sqrt(8 * a * a / (b * b) - 1) / (2 * np.sin(np.pi / L))
    assert res["observables"]["xi"]["value"][0] == pytest.approx(xi, rel=1e-10)
    assert res["two_point"]["r"] == [1, 4, 8]
    G = [a * a + b * b / 4 * (1 + np.cos(2 * np.pi * r / L)) for r in (1, 4, 8)]
    np.testing.assert_allclose(res["two_point"]["value"][0], G, rtol=1e-12)
    assert res["observables"]["abs_m"]["value"][0] == pytest.approx(a)


def test_observables_ea_disorder_average(ea_run, tmp_path):
    out = tmp_path / "o.json"
    assert observables.main([str(ea_run / "samples.h5"), "--json", str(out)]) == 0
    res = load_json(out)["groups"][0]
    with h5py.File(ea_run / "samples.h5") as f:
        q = f["L4/overlap"][()]  # (D, T, S, P)
        ql, e = f["L4/link_overlap"][()], f["L4/energy"][()]
    D, nT = q.shape[:2]
    assert res["disorder_samples"] == D == res["jackknife_bins"]
    for t in range(nT):
        qt = np.moveaxis(q[:, t], 1, 0).reshape(q.shape[2], -1)  # (S, D*P): the summary layout
        g, g_err = obs.spin_glass_binder(qt, n_bins=D)
        chi, _ = obs.spin_glass_susceptibility(qt, 64, n_bins=D)
        assert res["observables"]["g"]["value"][t] == pytest.approx(float(g), rel=1e-10)
        assert res["observables"]["g"]["error"][t] == pytest.approx(float(g_err), rel=1e-8)
        assert res["observables"]["chi_SG"]["value"][t] == pytest.approx(float(chi), rel=1e-10)
        assert res["observables"]["q_l"]["value"][t] == pytest.approx(ql[:, t].mean())
        assert res["observables"]["e"]["value"][t] == pytest.approx(e[:, t].mean())
    # super-resolved levels: the stored overlaps, disorder blocks of N / D
    assert observables.main([str(ea_run / "upscaled.h5"), "--json", str(out), "--L", "8"]) == 0
    res = load_json(out)["groups"][0]
    with h5py.File(ea_run / "upscaled.h5") as f:
        q = f["L8/overlap"][()]
    per_d = q.reshape(q.shape[0], 2, -1)
    q2, q4 = (per_d ** 2).mean(-1).mean(-1), (per_d ** 4).mean(-1).mean(-1)
    np.testing.assert_allclose(res["observables"]["g"]["value"], 0.5 * (3 - q4 / q2 ** 2))


def test_observables_phi4_runs(phi4_run, tmp_path):
    out = tmp_path / "o.json"
    assert observables.main([str(phi4_run / "upscaled.h5"), "--json", str(out)]) == 0
    res = group_of(load_json(out), "upscaled", 32)
    assert res["grid_name"] == "couplings" and len(res["nominal_temperatures"]) == 2
    with h5py.File(phi4_run / "upscaled.h5") as f:
        p2 = f["L32/phi2_mean"][()]
    np.testing.assert_allclose(res["observables"]["phi2"]["value"], p2.mean(1))


def test_observables_two_ranks_equal_one_rank(ising_run, tmp_path):
    src = ising_run / "upscaled.h5"
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert observables.main([str(src), "--json", str(one)]) == 0
    r = subprocess.run(["mpirun", "-n", "2", sys.executable, "-m", "hpc_rg.tools.observables",
                        str(src), "--json", str(two), "--quiet"], cwd=REPO, env=launch_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    a, b = load_json(one), load_json(two)
    for ga, gb in zip(a["groups"], b["groups"]):
        assert ga["observables"] == gb["observables"]  # bit for bit
        assert ga["two_point"] == gb["two_point"]


# --------------------------------------------------------------------------- exponents
def power_law_files(tmp_path, x=0.125, d=2):
    """Constant configurations ±a(1±δ), a = L^-x: <|m|> = a, chi = N a² δ², G(r) = a²(1+δ²)."""
    delta = 0.3
    files = {}
    for stage, sizes in (("sample", (8, 16)), ("upscale", (32, 64))):
        groups = {}
        for L in sizes:
            a = L ** -x
            vals = np.array([a * (1 + delta), -a * (1 - delta), -a * (1 + delta), a * (1 - delta)] * 2)
            configs = (vals[:, None, None] * np.ones((1, L, L)))[None].astype(np.float32)
            m = configs[:, :, 0, 0].astype(np.float64)
            groups[L] = {"configs": configs, "magnetization": m, "phi_mean": m,
                         "phi2_mean": m * m, "couplings": np.array([0.5])}
            if stage == "upscale":
                groups[L]["nominal_temperatures"] = np.array([0.5])
        files[stage] = write_file(tmp_path / f"{stage}.h5", groups, stage=stage)
    return files


def test_exponents_recover_power_laws(tmp_path):
    files = power_law_files(tmp_path)
    out = tmp_path / "e.json"
    assert exponents.main([str(files["sample"]), str(files["upscale"]), "--json", str(out)]) == 0
    fit = load_json(out)["fits"][0]
    assert fit["sizes"] == [8, 16, 32, 64] and fit["T"] == 0.5
    ex = fit["exponents"]
    assert ex["gamma_nu"]["value"] == pytest.approx(1.75, abs=1e-5)
    assert ex["beta_nu"]["value"] == pytest.approx(0.125, abs=1e-5)
    assert ex["eta_quarter"]["value"] == pytest.approx(0.25, abs=1e-5)
    assert ex["eta_half"]["value"] == pytest.approx(0.25, abs=1e-5)
    assert ex["gamma_nu"]["error"] < 1e-5
    out2 = tmp_path / "e2.json"
    assert exponents.main([str(files["sample"]), str(files["upscale"]), "--from-L", "16",
                           "--json", str(out2)]) == 0
    assert load_json(out2)["fits"][0]["sizes"] == [16, 32, 64]


def test_exponents_ising_run_default_temperature(ising_run, capsys):
    assert exponents.main([str(ising_run / "samples.h5"), str(ising_run / "upscaled.h5")]) == 0
    text = capsys.readouterr().out
    assert "T = 2.26918" in text and "samples/L16, upscaled/L32" in text and "gamma_nu" in text


# ----------------------------------------------------------------------------- rescale
def test_rescale_curves_match_numpy(ising_run, tmp_path):
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    assert rescale.main([str(ising_run / "samples.h5"), "--json", str(out), "--plot", str(png)]) == 0
    doc = load_json(out)
    assert doc["L"] == 8 and doc["blocking"] == "majority"
    with h5py.File(ising_run / "samples.h5") as f:
        m4 = f["L4/magnetization"][()]
        s8 = f["L8/configs"][()].astype(np.int64)  # (T, S, 8, 8)
    np.testing.assert_allclose(doc["mc"]["abs_m"]["value"], np.abs(m4).mean(1), rtol=1e-12)
    blocks = s8.reshape(s8.shape[:2] + (4, 2, 4, 2)).sum(axis=(3, 5))
    maj = np.where(blocks != 0, np.sign(blocks), s8[:, :, ::2, ::2])
    np.testing.assert_allclose(doc["blocked"]["abs_m"]["value"],
                               np.abs(maj.mean(axis=(2, 3))).mean(1), rtol=1e-12)
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------- analyze stage
def test_analyze_stage_writes_analysis_h5(ising_run, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(ising_run, out)
    deck = tmp_path / "deck.yaml"
    deck.write_text(FINISHED_RUN_DECKS["ising"].format(out=out) + "analyze: {sizes: [8, 16, 32]}\n")
    r = run_hpc_rg([deck, "--stage", "analyze"])
    assert r.returncode == 0, r.stderr
    ref = tmp_path / "ref.json"
    assert observables.main([str(out / "upscaled.h5"), "--json", str(ref), "--L", "16"]) == 0
    ref_g = load_json(ref)["groups"][0]
    with h5py.File(out / "analysis.h5") as h:
        assert h.attrs[schema.ATTR_COMPLETE] and h.attrs[schema.ATTR_STAGE] == "analyze"
        assert "seed: 7" in h.attrs[schema.ATTR_CONFIG]
        assert sorted(h["samples"]) == ["L16", "L8"] and sorted(h["upscaled"]) == ["L16", "L32"]
        np.testing.assert_allclose(h["upscaled/L16/chi"][()], ref_g["observables"]["chi"]["value"])
        np.testing.assert_allclose(h["upscaled/L16/xi_err"][()], ref_g["observables"]["xi"]["error"])
        assert h["exponents/temperatures"][()].tolist() == [2.269185]
        assert h["exponents/sizes"][0].tolist() == [8, 16, 32]
    r = run_hpc_rg([deck, "--stage", "analyze", "--resume"])
    assert r.returncode == 0 and "complete; skipping" in r.stderr + r.stdout
    r = run_hpc_rg([deck, "--stage", "analyze", "--set", "analyze.sizes=[12]", "--dry-run"])
    assert r.returncode == 2 and "analyze.sizes=[12]: size 12 is not made by this run" in r.stderr


# ------------------------------------------------------------------------- bad input
@pytest.fixture
def bad_inputs(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.zeros(3)
    return {"missing": (tmp_path / "nope.h5", "no such file"),
            "text": (text, "not an HDF5 file"),
            "plain": (plain, "not an hpc_rg output")}


@pytest.mark.parametrize("tool", [observables, exponents, rescale])
@pytest.mark.parametrize("case", ["missing", "text", "plain"])
def test_bad_files_one_line(tool, case, bad_inputs, capsys):
    path, msg = bad_inputs[case]
    name = tool.__name__.rsplit(".", 1)[1]
    assert run_tool(name, tool.main, [str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{name}: error: ") and msg in err


@pytest.mark.parametrize("tool", [observables, rescale])
def test_missing_size_group(tool, ising_run, capsys):
    name = tool.__name__.rsplit(".", 1)[1]
    assert run_tool(name, tool.main, [str(ising_run / "samples.h5"), "--L", "64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no group /L64" in err


def test_exponents_mixed_models_and_wrapper_script(ising_run, phi4_run):
    r = subprocess.run([str(REPO / "tools" / "exponents"), str(ising_run / "samples.h5"),
                        str(phi4_run / "samples.h5")], capture_output=True, text=True,
                       env=launch_env(), timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "mix models" in r.stderr
    r = subprocess.run([str(REPO / "tools" / "observables"), "--help"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "xi_2" in r.stdout
