"""The inspection tools h5info, compare and to_xdmf on finished runs (serial, via subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import h5py
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def tool(name: str, *args, wrapper: bool = False, cwd=None):
    """Run a tool as ``python -m hpc_rg.tools.NAME`` or through the ``tools/NAME`` wrapper."""
    cmd = [str(REPO / "tools" / name)] if wrapper else [sys.executable, "-m", f"hpc_rg.tools.{name}"]
    env = dict(os.environ, PY=sys.executable)
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def one_line_error(r, *fragments):
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    for frag in fragments:
        assert frag in lines[0], lines[0]


# ------------------------------------------------------------------------------------ h5info
def test_h5info_samples_tree_provenance_completeness(ising_run):
    r = tool("h5info", ising_run / "samples.h5")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "stage sample, complete" in out
    for key in ("hpc_rg_version=0.1.0", "schema_version=1", "mpi_ranks=2", "seed=7", "git_commit="):
        assert key in out
    assert "model: name=ising dims=2" in out  # the deck, one line per section
    l16 = out[out.index("/L16"):]
    assert l16.splitlines()[0].startswith("/L16  size complete  source=monte_carlo")
    assert "chunks_done=2" in l16.splitlines()[0]
    conf = next(line for line in l16.splitlines() if line.strip().startswith("configs"))
    assert "(3, 80, 16, 16)" in conf and "int8" in conf and "[temperature,sample,x,y]" in conf
    assert "temperatures" in l16 and "= [2, 2.269185, 2.6]" in l16
    assert out.index("/L4 ") < out.index("/L8 ") < out.index("/L16 ")  # sizes in numeric order


def test_h5info_upscaled_and_model_via_wrapper(ising_run):
    r = tool("h5info", ising_run / "upscaled.h5", ising_run / "model.pt", wrapper=True)
    assert r.returncode == 0, r.stderr
    up, model = r.stdout.split("model.pt: trained super-resolution network")
    assert "stage upscale, complete" in up
    assert "/L32  source=superres  model=ising  dims=2  L=32  level=2" in up
    assert "(3, 80, 32, 32)" in up and "nominal_temperatures" in up
    assert "model=ising dims=2 field=spin blocking=majority train_L=8" in model
    assert "temperatures (3) = [2, 2.269185, 2.6]" in model
    assert "depth=2 width=4" in model and "history=2 epochs" in model


def test_h5info_partial_file_json_and_config(ising_run, tmp_path):
    part = tmp_path / "samples.h5.partial"
    shutil.copy(ising_run / "samples.h5", part)
    with h5py.File(part, "r+") as f:  # a sample stage killed while writing L16
        f.attrs["complete"] = False
        del f["L16"].attrs["size_complete"]
        f["L16"].attrs["chunks_done"] = 1
    r = tool("h5info", part)
    assert r.returncode == 0, r.stderr
    assert "INCOMPLETE (a .partial file" in r.stdout.splitlines()[0]
    assert "/L16  SIZE INCOMPLETE" in r.stdout and "chunks_done=1" in r.stdout
    assert "/L8  size complete" in r.stdout

    r = tool("h5info", "--json", part, ising_run / "samples.h5")
    info = json.loads(r.stdout)
    assert [i["complete"] for i in info] == [False, True] and info[0]["partial"]
    g16 = next(g for g in info[1]["groups"] if g["name"] == "/L16")
    conf = next(d for d in g16["datasets"] if d["name"] == "configs")
    assert conf["shape"] == [3, 80, 16, 16] and conf["dtype"] == "int8"
    assert g16["attrs"]["size_complete"] is True

    r = tool("h5info", "--config", ising_run / "samples.h5")
    with h5py.File(ising_run / "samples.h5") as f:
        deck = f.attrs["config_yaml"]
    deck = deck.decode() if isinstance(deck, bytes) else deck
    assert all(("    " + line).rstrip() in r.stdout.splitlines() for line in deck.splitlines())


def test_h5info_ea_layout(ea_run):
    r = tool("h5info", ea_run / "samples.h5")
    assert r.returncode == 0, r.stderr
    assert "(2, 2, 10, 4, 4, 4, 4)" in r.stdout
    assert "[disorder,temperature,sample,replica,x,y,z]" in r.stdout
    assert "[disorder,temperature,sample,pair]" in r.stdout
    assert "tempering_round_trips=[" in r.stdout  # short arrays in full


# ----------------------------------------------------------------------------------- compare
def test_compare_file_with_itself_is_zero(ising_run, tmp_path):
    out = tmp_path / "cmp.json"
    r = tool("compare", ising_run / "samples.h5", ising_run / "samples.h5", "--json", out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK: all 27 comparisons" in r.stdout  # 3 sizes x 3 temperatures x 3 observables
    rep = json.loads(out.read_text())
    assert {r_["L"] for r_ in rep["results"]} == {4, 8, 16}
    assert {r_["observable"] for r_ in rep["results"]} == {"abs_m", "m2", "e"}
    for res in rep["results"]:
        assert res["z"] == 0 and res["ks"] == 0 and res["tv"] == 0
        assert res["mean_a"] == res["mean_b"] and res["err_a"] > 0 and res["n_a"] == 80


def test_compare_detects_biased_copy(ising_run, tmp_path):
    biased = tmp_path / "biased.h5"
    shutil.copy(ising_run / "samples.h5", biased)
    with h5py.File(biased, "r+") as f:
        m = f["L16/magnetization"]
        m[...] = m[...] * 0.5  # as if half of the spins had been flipped to disorder
    r = tool("compare", ising_run / "samples.h5", biased, "--L", 16, wrapper=True)
    assert r.returncode == 1, r.stdout + r.stderr
    fail = r.stdout.strip().splitlines()[-1]
    assert fail.startswith("FAIL:") and "L16 T=2 |m|" in fail and "m^2" in fail
    assert " e " not in fail  # the energy was left alone
    rows = [line for line in r.stdout.splitlines() if line.split()[:1] == ["16"]]
    assert len(rows) == 9 and sum("<-- |z|" in line for line in rows) >= 2
    assert tool("compare", ising_run / "samples.h5", biased, "--L", 16,
                "--tolerance", 1e9).returncode == 0


def test_compare_samples_vs_upscaled(ising_run, tmp_path):
    out = tmp_path / "cmp.json"
    r = tool("compare", ising_run / "samples.h5", ising_run / "upscaled.h5", "--json", out,
             "--match", "nominal", "--observables", "abs_m", "e")
    assert r.returncode in (0, 1), r.stderr  # the toy network need not be good
    rep = json.loads(out.read_text())
    assert rep["match"] == "nominal" and rep["unmatched"] == []
    assert [(x["L"], x["observable"]) for x in rep["results"]] == \
        [(16, "abs_m")] * 3 + [(16, "e")] * 3
    assert np.allclose([x["T"] for x in rep["results"][:3]], [2.0, 2.269185, 2.6])
    with h5py.File(ising_run / "upscaled.h5") as f:
        assert rep["results"][0]["mean_b"] == pytest.approx(np.abs(f["L16/magnetization"][0]).mean())
    assert all(0 <= x["ks"] <= 1 and 0 <= x["tv"] <= 1 for x in rep["results"])


def test_compare_ea_mc_layout_vs_superres_layout(ea_run, tmp_path):
    fake = tmp_path / "up.h5"  # super-resolved L8 relabelled L4 to meet the MC layout
    shutil.copy(ea_run / "upscaled.h5", fake)
    with h5py.File(fake, "r+") as f:
        f.move("L8", "L4")
        f["L4/temperatures"][1] = 1.31  # one row without a partner
    r = tool("compare", ea_run / "samples.h5", fake, "--json", "-")
    assert r.returncode in (0, 1), r.stderr
    rep = json.loads(r.stdout)
    assert {x["observable"] for x in rep["results"]} == {"abs_q", "q2", "ql"}
    assert all(x["n_a"] == 2 * 10 * 6 and x["n_b"] == 40 and x["T"] == 0.8 for x in rep["results"])
    assert {(u["file"], u["row"]) for u in rep["unmatched"]} == {("A", 1), ("B", 1)}
    with h5py.File(ea_run / "samples.h5") as f:
        q = f["L4/overlap"][:, 0]
    res = next(x for x in rep["results"] if x["observable"] == "q2")
    assert res["mean_a"] == pytest.approx((q ** 2).mean())
    r = tool("compare", ea_run / "samples.h5", ea_run / "samples.h5")
    assert r.returncode == 0 and "OK: all 6 comparisons" in r.stdout


# ----------------------------------------------------------------------------------- to_xdmf
def _check_xdmf(xdmf: Path, h5: Path, per_temperature: int):
    """Parse the sidecar; every hyperslab resolves (h5py) to the configuration its name says."""
    root = ET.parse(xdmf).getroot()
    assert root.tag == "Xdmf" and root.get("Version") == "3.0"
    n = 0
    with h5py.File(h5) as f:
        for coll in root.iter("Grid"):
            if coll.get("GridType") != "Collection":
                continue
            assert coll.get("CollectionType") == "Temporal"
            ds = f[coll.get("Name")]["configs"]
            axes = ds.attrs["axes"].split(",")
            dims = sum(a in "xyz" for a in axes)
            lattice = ds.shape[-dims:]
            grids = coll.findall("Grid")
            assert len(grids) == ds.shape[axes.index("temperature")] * per_temperature
            assert [float(g.find("Time").get("Value")) for g in grids] == list(range(len(grids)))
            for g in grids:
                topo = g.find("Topology")
                assert topo.get("TopologyType") == f"{dims}DCoRectMesh"
                assert topo.get("Dimensions") == " ".join(str(L + 1) for L in lattice)
                slab = g.find("Attribute/DataItem")
                assert slab.get("ItemType") == "HyperSlab"
                sel, src = slab.findall("DataItem")
                ref_file, ref_path = src.text.strip().split(":")
                assert (xdmf.parent / ref_file).resolve() == h5.resolve()
                assert ref_path == ds.name
                assert src.get("Dimensions") == " ".join(map(str, ds.shape))
                nt = ("Char", "1") if ds.dtype == np.int8 else ("Float", "4")
                assert (src.get("NumberType"), src.get("Precision")) == nt
                start, stride, count = np.array(sel.text.split(), int).reshape(3, ds.ndim)
                assert sel.get("Dimensions") == f"3 {ds.ndim}"
                slices = tuple(slice(a, a + c * s, s) for a, c, s in zip(start, count, stride))
                data = ds[slices].reshape([int(x) for x in slab.get("Dimensions").split()])
                # the configuration named by the grid: "L16 T=2 sample 3", "... disorder 0 ..."
                words = g.get("Name").split()
                index = {axes[i]: int(words[words.index(axes[i]) + 1])
                         for i in range(ds.ndim - dims) if axes[i] != "temperature"}
                group = f[coll.get("Name")]
                temps = group["temperatures" if "temperatures" in group else "couplings"][...]
                index["temperature"] = int(np.argmin(np.abs(temps - float(words[1].split("=")[1]))))
                expect = ds[tuple(index[a] for a in axes[:ds.ndim - dims])]
                np.testing.assert_array_equal(data, expect)
                n += 1
    return n


def test_to_xdmf_ising_clean_layout(ising_run, tmp_path):
    h5 = tmp_path / "samples.h5"
    shutil.copy(ising_run / "samples.h5", h5)
    r = tool("to_xdmf", h5, "--max-configs", 2)
    assert r.returncode == 0, r.stderr
    xdmf = tmp_path / "samples.xdmf"
    assert xdmf.is_file() and not (tmp_path / "samples.xdmf.partial").exists()
    assert "18 configurations (L4: 6, L8: 6, L16: 6)" in r.stdout
    assert _check_xdmf(xdmf, h5, 2) == 18
    names = [g.get("Name") for g in ET.parse(xdmf).getroot().iter("Grid")]
    assert "L16 T=2.269185 sample 1" in names

    sub = tmp_path / "views"  # --out elsewhere: the reference is relative to the sidecar
    sub.mkdir()
    r = tool("to_xdmf", h5, "--L", 16, "--out", sub / "l16.xdmf", wrapper=True)
    assert r.returncode == 0, r.stderr
    assert _check_xdmf(sub / "l16.xdmf", h5, 4) == 12
    assert "../samples.h5:/L16/configs" in (sub / "l16.xdmf").read_text()


def test_to_xdmf_ea_and_phi4(ea_run, phi4_run, tmp_path):
    cases = [(ea_run, "samples.h5", 3, 3, 6, "spin"),  # (D, T, S, R, L, L, L) int8
             (ea_run, "upscaled.h5", 0, 40, 160, "overlap"),  # 0 = all configurations
             (phi4_run, "upscaled.h5", 4, 4, 16, "phi")]  # float32
    for k, (run, name, max_configs, per_t, total, attr) in enumerate(cases):
        h5 = tmp_path / str(k) / name
        h5.parent.mkdir()
        shutil.copy(run / name, h5)
        r = tool("to_xdmf", h5, "--max-configs", max_configs)
        assert r.returncode == 0, r.stderr
        xdmf = h5.with_suffix(".xdmf")
        assert _check_xdmf(xdmf, h5, per_t) == total
        assert {a.get("Name") for a in ET.parse(xdmf).getroot().iter("Attribute")} == {attr}
    names = [g.get("Name") for g in ET.parse(tmp_path / "0" / "samples.xdmf").getroot().iter("Grid")]
    assert names[1:4] == ["L4 T=0.8 disorder 0 sample 0 replica 0",
                          "L4 T=0.8 disorder 0 sample 0 replica 1",
                          "L4 T=0.8 disorder 0 sample 0 replica 2"]


# ------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.h5").write_text("not HDF5 at all\n")
    with h5py.File(d / "other.h5", "w") as f:
        f["x"] = np.arange(3)
    return d


@pytest.mark.parametrize("name", ["h5info", "compare", "to_xdmf"])
@pytest.mark.parametrize("case", ["missing", "not_hdf5", "not_hpc_rg", "missing_group"])
def test_bad_input_is_one_line_exit_2(name, case, bad_inputs, ising_run, capsys):
    """In-process through run_tool (what cli() does): stderr, exit code, no exception."""
    import importlib
    from hpc_rg.tools.common import run_tool
    good = ising_run / "samples.h5"
    target, frag = {"missing": (bad_inputs / "nope.h5", "no such file"),
                    "not_hdf5": (bad_inputs / "notes.h5", "not an HDF5 file"),
                    "not_hpc_rg": (bad_inputs / "other.h5", "not an hpc_rg output"),
                    "missing_group": (good, "no group /L64")}[case]
    args = [good, target] if name == "compare" else [target]
    if case == "missing_group":
        if name == "h5info":  # no --L: a truncated file stands in for a broken one
            target = bad_inputs / "truncated.h5"
            target.write_bytes(good.read_bytes()[:2048])
            args, frag = [target], "cannot be opened"
        else:
            args += ["--L", 64]
    rc = run_tool(name, importlib.import_module(f"hpc_rg.tools.{name}").main, list(map(str, args)))
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"{name}: error: ") and target.name in err and frag in err, err


@pytest.mark.parametrize("name", ["h5info", "compare", "to_xdmf"])
def test_bad_input_from_the_command_line(name, bad_inputs):
    args = [bad_inputs / "nope.h5"] * (2 if name == "compare" else 1)
    one_line_error(tool(name, *args, wrapper=True), f"{name}: error: ", "nope.h5: no such file")
    one_line_error(tool(name, *[bad_inputs / "notes.h5"] * len(args)), "not an HDF5 file")
