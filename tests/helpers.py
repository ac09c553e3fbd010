"""Helpers shared by tests in several directories (imported as ``helpers``; ``tests/`` is on
the path through conftest.py): comparing output files, following a launched job's ranks,
a counting compiler and a read-only home for the kernel-cache tests, a pickle that runs code."""

from __future__ import annotations

import os
import subprocess
import time

import h5py
import numpy as np


def datasets(path):
    with h5py.File(path, "r") as h:
        out = {}
        h.visititems(lambda n, o: out.__setitem__(n, o[...]) if isinstance(o, h5py.Dataset) else None)
        return out, dict(h.attrs)


def assert_same_data(a, b):
    da, _ = datasets(a)
    db, _ = datasets(b)
    assert da.keys() == db.keys()
    for k in da:
        np.testing.assert_array_equal(da[k], db[k], err_msg=k)


def wait_for(pred, timeout, proc):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def rank_pids(mpirun_pid):
    out = subprocess.run(["pgrep", "-P", str(mpirun_pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


_COUNTING_CXX = """#!/bin/sh
case "$*" in *-shared*) echo compile >> {log} ;; esac
exec g++ "$@"
"""


def counting_compiler(tmp_path):
    """A g++ wrapper that logs every compile (its own cache key: a fresh build)."""
    log = tmp_path / "compiles.log"
    cxx = tmp_path / "counting-g++"
    cxx.write_text(_COUNTING_CXX.format(log=log))
    cxx.chmod(0o755)
    return cxx, log


def read_only_home_env(tmp_path, cxx):
    """Environment whose ~/.cache cannot be created (its parent is a file, which even root
    cannot write into) and whose TMPDIR is fresh."""
    blocker = tmp_path / "home-is-read-only"
    blocker.write_text("")
    env = {k: v for k, v in os.environ.items() if k != "HPC_RG_KERNEL_CACHE"}
    env.update(XDG_CACHE_HOME=str(blocker / "cache"), TMPDIR=str(tmp_path / "tmp"), CXX=str(cxx))
    (tmp_path / "tmp").mkdir()
    return env


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
