"""``python -m hpc_rg --check``: what a user must know before submitting a job.

Prints the versions of hpc_rg and its stack, whether h5py has MPI, the MPI library,
and the devices torch sees. Exit status 1 when something required is missing, with the fix.
"""

from __future__ import annotations

import importlib
import os
import sys

from . import __version__

FIX = "run: bash dev/install.sh (see INSTALL.md)"


class _PmJ:
    """A ±J model (what the multi-spin-coded kernel runs) for the kernel line."""
    name, disorder = "edwards_anderson", "pm1"


def _try(name):
    try:
        return importlib.import_module(name), None
    except Exception as e:  # ImportError, or a broken shared library (OSError)
        return None, f"{type(e).__name__}: {e}"


def run_check(out=sys.stdout) -> int:
    missing: list[str] = []

    def line(key, value):
        print(f"{key:<12} {value}", file=out)

    line("hpc_rg", f"{__version__} ({os.path.dirname(os.path.abspath(__file__))})")
    line("python", sys.version.split()[0])
    for name in ("numpy", "yaml"):
        mod, err = _try(name)
        line(name, mod.__version__ if mod else f"MISSING ({err})")
        if not mod:
            missing.append(f"{name}: {FIX}")
    torch, err = _try("torch")
    if torch:
        line("torch", torch.__version__)
        devs = ["cpu"]
        if torch.cuda.is_available():
            devs += [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
        line("devices", ", ".join(devs) + f"; {torch.get_num_threads()} CPU threads")
    else:
        line("torch", f"MISSING ({err})")
        missing.append(f"torch: {FIX}")
    h5py, err = _try("h5py")
    if h5py:
        mpi = h5py.get_config().mpi
        line("h5py", f"{h5py.__version__}, HDF5 {h5py.version.hdf5_version}, "
             f"MPI {'enabled' if mpi else 'DISABLED'}")
        if not mpi:
            print("             (without MPI, output falls back to one file per rank plus a "
                  "virtual-dataset master; rebuild: see INSTALL.md)", file=out)
    else:
        line("h5py", f"MISSING ({err})")
        missing.append(f"h5py: {FIX}")
    mpi4py, err = _try("mpi4py")
    if mpi4py:
        try:
            from mpi4py import MPI
            vendor, ver = MPI.get_vendor()
            lib = MPI.Get_library_version().splitlines()[0].strip()
            line("mpi4py", f"{mpi4py.__version__}, {vendor} {'.'.join(map(str, ver))}, "
                 f"MPI {'.'.join(map(str, MPI.Get_version()))}, "
                 f"{MPI.COMM_WORLD.Get_size()} rank(s)")
            line("MPI library", lib)
        except Exception as e:
            line("mpi4py", f"{mpi4py.__version__}, MPI library FAILED to load ({e})")
            missing.append(f"MPI library: install OpenMPI (apt-get install openmpi-bin "
                           f"libopenmpi-dev) or module load an MPI; {FIX}")
    else:
        line("mpi4py", f"MISSING ({err})")
        missing.append(f"mpi4py: {FIX}")
    spec = importlib.util.find_spec("deepspeed")
    if spec is None:
        line("deepspeed", "MISSING (needed by the train stage)")
        missing.append(f"deepspeed: {FIX}")
    else:
        from importlib.metadata import version
        line("deepspeed", version("deepspeed") + " (not imported; used by the train stage)")
    if importlib.util.find_spec("torch") is not None:
        from .mc.compiled import choose_kernel
        from .mc.kernels import choose_spin_kernel
        from .models.spec import ISING
        kernel, why = choose_kernel("auto", ISING.name, "metropolis", "cpu")
        line("MC kernel", f"{kernel} ({why})")  # sample.kernel: auto, float models on the CPU
        msc = choose_spin_kernel("msc", _PmJ(), "metropolis", "cpu")
        line("MSC kernel", f"{msc.implementation} ({msc.why})")  # ±J models
    if missing:
        print("\nMissing:", file=out)
        for m in missing:
            print(f"  - {m}", file=out)
        return 1
    print("\nOK: ready to run.", file=out)
    return 0
