"""Keep glibc from mapping and unmapping every large temporary tensor.

Torch's CPU allocator uses malloc; glibc serves blocks above its mmap threshold with a
fresh ``mmap`` and returns them with ``munmap``, so each full-lattice temporary of a sweep
page-faults anew. Measured (bench/README.md): 2D Ising L=1024, 16 chains, checkerboard
Metropolis went from 72 to 19 ns per spin update with mmap disabled and trimming off.
The cost is that freed heap memory is kept by the process for reuse, not returned to the OS.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def keep_heap_memory() -> bool:
    """Disable mmap for large blocks and heap trimming (glibc only; no-op elsewhere).

    Skipped when ``HPC_RG_KEEP_MALLOC=1`` is set. Returns True when applied.
    """
    if os.environ.get("HPC_RG_KEEP_MALLOC") == "1":
        return False
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
