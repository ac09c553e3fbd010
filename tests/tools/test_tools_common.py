"""Every post-processing tool: --help works, a bad option or a missing file is one line, exit 2."""

import importlib
import subprocess
import sys

import pytest

from conftest import REPO

TOOLS = ("h5info", "compare", "to_xdmf", "observables", "exponents", "rescale", "plot",
         "size_check")


@pytest.mark.parametrize("name", TOOLS)
def test_bad_option_is_one_line_exit_2(name, capsys):
    mod = importlib.import_module(f"hpc_rg.tools.{name}")
    from hpc_rg.tools.common import run_tool
    assert run_tool(name, mod.main, ["--no-such-option", "x.h5", "y.h5"][:3 if name == "compare" else 2]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{name}: error: ")
    assert "--no-such-option" in err and "--help" in err


@pytest.mark.parametrize("name", TOOLS)
def test_help_and_missing_file(name, tmp_path):
    r = subprocess.run([sys.executable, "-m", f"hpc_rg.tools.{name}", "--help"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage" in r.stdout.lower()
    missing = tmp_path / "nothing.h5"
    args = [str(missing), str(missing)] if name == "compare" else [str(missing)]
    r = subprocess.run([str(REPO / "tools" / name), *args], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and "nothing.h5" in r.stderr and "Traceback" not in r.stderr
