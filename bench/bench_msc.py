"""Multi-spin-coded ±J sweep throughput: spin updates per nanosecond per core (one thread).

Side by side, on the same lattices, interleaved repeats (same load for all):

* ``msc_compiled`` -- :mod:`hpc_rg.mc.msc.compiled` (C++, AVX-512 / AVX2 / 64-bit words as
  torch's CPU capability says; one sweep per call, including its copy in and out of the
  kernel's word-inner buffer), and ``msc_compiled_batched``: ``--batched-sweeps`` sweeps per
  call (what a sampler that measures every few sweeps pays),
* ``msc_torch`` -- :mod:`hpc_rg.mc.msc.sweep_torch` (the reference; int64 bitwise ops),
* ``compiled`` -- today's float32 kernel :mod:`hpc_rg.mc.compiled` (``sample.kernel: compiled``),
* ``numpy`` -- the NumPy baseline of ``bench_checkerboard.py`` (int8 spins, lookup table).

Cases: 3D ±J Edwards-Anderson at T = 1.0 (one disorder sample, broadcast to every lane:
the recommended layout, lanes = temperatures × replicas of one sample, here all at T = 1)
with L = 16, 32 (64 with ``--sizes-3d``), and the 2D Ising ferromagnet at T_c, L = 256, 1024.
Metropolis everywhere. MSC runs W words = 64 W systems; the float32 kernels run B chains.
One spin update = one site of one system visited once: a sweep is (systems × sites) updates.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_msc.py                       # default grid
    OMP_NUM_THREADS=1 python bench/bench_msc.py --words 8 --batch 16 --repeats 5

Results: a table on stdout and ``bench/results/msc-<stamp>.{json,csv}``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_checkerboard import NumpyCheckerboard, compiled_case  # noqa: E402
from common import Timer, interleave, machine_info, stamp, table, write_results  # noqa: E402

from hpc_rg.mc.msc import compiled as msc_compiled  # noqa: E402
from hpc_rg.mc.msc import layout  # noqa: E402
from hpc_rg.mc.msc import sweep_torch  # noqa: E402

CASES = {"ea3d": (3, 1.0), "ising2d": (2, 2.269185)}  # name: (dims, temperature)


def msc_case(impl, name, L, W, seed=0, n_sweeps=1):
    """Sweep callable of the MSC kernel (``impl``: "compiled" or "torch"), ``n_sweeps`` per call."""
    d, T = CASES[name]
    shape = (L,) * d
    gen = torch.Generator().manual_seed(seed)
    spins = torch.randint(-2 ** 63, 2 ** 63 - 1, (W,) + shape, dtype=torch.int64, generator=gen)
    J = None
    if name == "ea3d":
        Jpm = 1 - 2 * torch.randint(0, 2, (d,) + shape, generator=gen)
        J = layout.pack_couplings(Jpm, words=W)
    thr = layout.thresholds(torch.full((W, 64), 1.0 / T, dtype=torch.float64), d, "metropolis")
    ids = torch.arange(math.prod(shape)).reshape(shape)
    wid = torch.arange(W)
    run = msc_compiled.sweep if impl == "compiled" else sweep_torch.sweep
    k = [0]

    def step():
        run(spins, J, thr, seed, wid, ids, k[0], n_sweeps=n_sweeps)
        k[0] += n_sweeps
    return step


def numpy_case(name, L, B, seed=0):
    d, T = CASES[name]
    shape = (L,) * d
    rng = np.random.default_rng(seed)
    J = (1 - 2 * rng.integers(0, 2, (d,) + shape)).astype(np.float32) if name == "ea3d" else None
    nb = NumpyCheckerboard("ea" if name == "ea3d" else "ising", shape, np.full(B, 1.0 / T), J, seed)
    return nb.sweep


def float_compiled_case(name, L, B, seed=0):
    d, T = CASES[name]
    shape = (L,) * d
    J = None
    if name == "ea3d":
        g = torch.Generator().manual_seed(seed)
        J = (1 - 2 * torch.randint(0, 2, (d,) + shape, generator=g)).float()
    step, _ = compiled_case("ea" if name == "ea3d" else "ising", shape, B, T, "cpu", seed, J)
    return step


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes-3d", default="16,32")
    p.add_argument("--sizes-2d", default="256,1024")
    p.add_argument("--words", type=int, default=8, help="MSC words (64 systems each)")
    p.add_argument("--batch", type=int, default=16, help="chains of the float32 kernels")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per repeat")
    p.add_argument("--batched-sweeps", type=int, default=10,
                   help="sweeps per call of the msc_compiled_batched row (copies paid once per call)")
    p.add_argument("--torch-max-updates", type=float, default=2 ** 26,
                   help="skip msc_torch where one sweep is more updates than this (memory-bound)")
    p.add_argument("--skip", default="", help="comma list of implementations to skip")
    p.add_argument("--out", default=None)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(1)
    skip = set(filter(None, args.skip.split(",")))
    meta = machine_info("cpu")
    meta.update(msc_isa=msc_compiled.default_isa(), msc_vector_words=msc_compiled.vector_words(),
                argv=sys.argv[1:])
    rows = []
    grid = [("ea3d", int(L)) for L in args.sizes_3d.split(",") if L] + \
           [("ising2d", int(L)) for L in args.sizes_2d.split(",") if L]
    for name, L in grid:
        d = CASES[name][0]
        N = L ** d
        nb = args.batched_sweeps
        impls = {"msc_compiled": (lambda: msc_case("compiled", name, L, args.words), 64 * args.words),
                 "msc_compiled_batched": (lambda: msc_case("compiled", name, L, args.words, n_sweeps=nb),
                                          64 * args.words * nb),
                 "msc_torch": (lambda: msc_case("torch", name, L, args.words), 64 * args.words),
                 "compiled": (lambda: float_compiled_case(name, L, args.batch), args.batch),
                 "numpy": (lambda: numpy_case(name, L, args.batch), args.batch)}
        timers, systems = {}, {}
        for impl, (make, S) in impls.items():
            if impl in skip or (impl == "msc_torch" and S * N > args.torch_max_updates):
                continue
            timers[impl] = Timer(make(), "cpu", min_time=args.min_time)
            systems[impl] = S
        interleave(list(timers.values()), args.repeats)
        for impl, t in timers.items():
            ups = systems[impl] * N
            per_call = nb if impl == "msc_compiled_batched" else 1
            rows.append({"case": name, "L": L, "impl": impl, "systems": systems[impl] // per_call,
                         "best_upns": ups / t.best * 1e-9, "median_upns": ups / t.median * 1e-9,
                         "sweep_ms": t.best * 1e3 / per_call})
        print(f"{name} L={L} done (load {' '.join(f'{x:.2f}' for x in __import__('os').getloadavg())})",
              flush=True)
    meta["loadavg_end"] = list(__import__("os").getloadavg())
    print(table(rows, [("case", "case", ""), ("L", "L", ""), ("impl", "impl", ""),
                       ("systems", "systems", ""), ("best_upns", "best upd/ns", "{:.3f}"),
                       ("median_upns", "median upd/ns", "{:.3f}"), ("sweep_ms", "best sweep ms", "{:.2f}")]))
    stem = args.out or str(Path(__file__).resolve().parent / "results" / f"msc-{stamp()}")
    paths = write_results(stem, meta, rows)
    print("wrote", *paths)


if __name__ == "__main__":
    main()
