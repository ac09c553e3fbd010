"""glibc tuning applied by the CLI (the benchmark that motivates it is in bench/README.md)."""

import subprocess
import sys


def test_keep_heap_memory_applies_on_glibc_and_can_be_disabled():
    code = "from hpc_rg.parallel.malloc import keep_heap_memory; print(keep_heap_memory())"
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"HPC_RG_KEEP_MALLOC": "1", "PATH": "/usr/bin:/bin"})
    assert on.stdout.strip() == "True", on.stderr
    assert off.stdout.strip() == "False", off.stderr
