"""Checkerboard Metropolis throughput: spin updates per nanosecond, torch vs a NumPy baseline.

Measures :func:`hpc_rg.mc.checkerboard.sweep` (the library kernel the sample stage runs:
float32 spins, ``CounterRNG`` uniforms, one draw per sweep) on

* 2D Ising, L = 64, 128, 256, 512, 1024,
* 3D Ising and 3D Edwards-Anderson (one disorder sample shared by the batch), L = 16 .. 128,

for batches of B independent chains (1, 4, 16, 64), on CPU (and CUDA when asked for and
available), next to a plain vectorised NumPy implementation written below (np.roll
neighbour sums, PCG64 float32 uniforms, an acceptance lookup table) as the baseline.
With ``--compiled`` also the compiled library kernel (:mod:`hpc_rg.mc.compiled`, what
``sample.kernel: compiled`` runs: one fused C++ pass, bit-identical to the eager kernel).
Besides wall-clock time every implementation's
thread CPU time is recorded (``*_cpu_upns``): on a shared machine it is less disturbed by
other processes than the wall clock, though not by their use of the caches.

One spin update = one site visited once; a sweep of B chains of N sites is B*N updates.

Usage::

    python bench/bench_checkerboard.py --quick                 # a few minutes, CPU
    python bench/bench_checkerboard.py                         # full grid
    python bench/bench_checkerboard.py --device cuda --no-numpy --models ising2d --sizes-2d 1024
    python bench/bench_checkerboard.py --models ea3d --sizes-3d 32 --batches 16,64 --compiled
    python bench/bench_checkerboard.py --models ising2d --sizes-2d 256,1024 --batches 16,64 --compiled

Results: a table on stdout, ``bench/results/checkerboard-<device>-<stamp>.{json,csv}``
(``--out`` to choose). Combinations whose estimated memory exceeds ``--max-gb`` or whose
single sweep takes longer than ``--max-sweep-seconds`` are skipped (listed as skipped).
"""

from __future__ import annotations

import argparse
import functools
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, interleave, machine_info, stamp, table, write_results  # noqa: E402

from hpc_rg.mc import checkerboard as cb  # noqa: E402
from hpc_rg.models import edwards_anderson as ea  # noqa: E402
from hpc_rg.models import ising  # noqa: E402
from hpc_rg.models.lattice import global_site_ids  # noqa: E402
from hpc_rg.rng import CounterRNG  # noqa: E402

MODELS = {  # name: (dims, temperature)
    "ising2d": (2, 2.269185),   # T_c of the square lattice
    "ising3d": (3, 4.5115),     # T_c of the simple cubic lattice
    "ea3d": (3, 1.0),           # near T_c of the Gaussian 3D EA glass (~0.95)
}

class CpuTimer(Timer):
    """:class:`common.Timer` that also records the thread CPU time of every repeat."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cpu_times: list[float] = []

    def repeat(self) -> float:
        c0 = time.thread_time()
        dt = super().repeat()
        self.cpu_times.append((time.thread_time() - c0) / self.calls)
        return dt


# Estimated peak bytes per site (spins, RNG keys, uniforms, temporaries of one colour update)
TORCH_BYTES_PER_SITE = 48
NUMPY_BYTES_PER_SITE = {"ising": 24, "ea": 48}


# =======================================================================================
# NumPy baseline
# =======================================================================================

class NumpyCheckerboard:
    """Plain vectorised NumPy checkerboard Metropolis (the baseline).

    What a competent NumPy programmer writes: int8 spins, neighbour sums with ``np.roll``,
    one PCG64 float32 uniform per site per sweep, per-chain acceptance lookup tables
    ``min(1, exp(-beta dE))`` indexed by the integer ``s_x * h_x`` (Ising and +-J EA;
    Gaussian EA computes ``exp`` directly), flips applied with ``np.negative(where=)``.
    Same dynamics as the library (``a(dE = 0) = 1/2``, both colours from one draw).

    Parameters
    ----------
    model : {"ising", "ea"}
    shape : tuple of int, the lattice
    beta : ndarray (B,), inverse temperature per chain
    J : ndarray (d, *shape) float32, EA couplings (shared by the batch)
    seed : int
    """

    def __init__(self, model, shape, beta, J=None, seed=0):
        self.model, self.shape = model, tuple(shape)
        d = self.d = len(shape)
        B = len(beta)
        self.rng = np.random.default_rng(seed)
        self.s = (self.rng.integers(0, 2, size=(B,) + self.shape, dtype=np.int8) * 2 - 1).astype(np.int8)
        par = np.indices(self.shape).sum(axis=0) % 2
        self.masks = (par == 0, par == 1)
        self.beta = np.asarray(beta, dtype=np.float64)
        bshape = (B,) + (1,) * d
        self.integer = model == "ising" or (J is not None and np.all(np.abs(J) == 1))
        if self.integer:
            K = 4 * d + 1  # s*h in [-2d, 2d] -> dE = 2 s h in [-4d, 4d] (even values)
            k = np.arange(K) - 2 * d  # s*h
            dE = 2.0 * k
            acc = np.where(dE == 0, 0.5, np.minimum(1.0, np.exp(-self.beta[:, None] * dE[None, :])))
            self.table = acc.astype(np.float32).ravel()
            self.offset = (np.arange(B) * K + 2 * d).reshape(bshape).astype(np.intp)
        else:
            self.m2beta = (-2.0 * self.beta).astype(np.float32).reshape(bshape)
        if model == "ea":
            J = np.asarray(J, dtype=np.float32)
            self.J = J
            self.Jm = np.stack([np.roll(J[mu], 1, axis=mu) for mu in range(d)])  # bond to x - e_mu
            if self.integer:
                self.J = self.J.astype(np.int8)
                self.Jm = self.Jm.astype(np.int8)

    def field(self):
        s, d = self.s, self.d
        if self.model == "ising":
            h = np.roll(s, 1, 1) + np.roll(s, -1, 1)
            for ax in range(2, d + 1):
                h += np.roll(s, 1, ax)
                h += np.roll(s, -1, ax)
            return h
        h = self.J[0] * np.roll(s, -1, 1) + self.Jm[0] * np.roll(s, 1, 1)
        for mu in range(1, d):
            h += self.J[mu] * np.roll(s, -1, mu + 1)
            h += self.Jm[mu] * np.roll(s, 1, mu + 1)
        return h

    def sweep(self):
        u = self.rng.random(self.s.shape, dtype=np.float32)
        for colour in (0, 1):
            x = self.s * self.field()  # dE / 2 (int8 for integer couplings)
            if self.integer:
                p = self.table[x + self.offset]
            else:
                p = np.exp(np.minimum(x * self.m2beta, 0.0, dtype=np.float32))
            flip = u < p
            flip &= self.masks[colour]
            np.negative(self.s, out=self.s, where=flip)

    def energy_per_site(self):
        """Mean energy per site over the batch (for the self-check)."""
        s, d = self.s.astype(np.float64), self.d
        e = 0.0
        for mu in range(d):
            J = 1.0 if self.model == "ising" else self.J[mu].astype(np.float64)
            e = e - (J * s * np.roll(s, -1, mu + 1)).sum(axis=tuple(range(1, d + 1)))
        return e / np.prod(self.shape)


# =======================================================================================
# torch (library) side
# =======================================================================================

def torch_case(model, shape, B, T, device, seed=0, J=None):
    """(sweep callable, spins) for the library kernel on ``device``."""
    rng = CounterRNG(seed, torch.arange(B), global_site_ids(shape, device=device), device)
    spins = torch.where(rng.uniform(10**9) < 0.5, -1.0, 1.0)
    beta = torch.full((B,), 1.0 / T, device=device)
    if model == "ising":
        field = functools.partial(ising.local_field, J=1.0, h=0.0)
    else:
        field = functools.partial(ea.local_field, J=J.to(device))
    sampler = cb.CheckerboardSampler(field, rng, "metropolis")
    k = [0]

    def step():
        sampler.sweep(spins, beta, k[0])
        k[0] += 1
    return step, spins


def compiled_case(model, shape, B, T, device, seed=0, J=None):
    """(sweep callable, spins) for the compiled library kernel (hpc_rg.mc.compiled)."""
    from hpc_rg.mc.compiled import CompiledCheckerboard
    name = "ising" if model == "ising" else "edwards_anderson"
    kern = CompiledCheckerboard("metropolis", shape, seed, torch.arange(B), model=name, couplings=J)
    rng = CounterRNG(seed, torch.arange(B), global_site_ids(shape))
    spins = torch.where(rng.uniform(10**9) < 0.5, -1.0, 1.0)
    del rng
    beta = torch.full((B,), 1.0 / T)
    k = [0]

    def step():
        kern.sweep(spins, beta, k[0])
        k[0] += 1
    return step, spins


def _ints(text):
    return [int(v) for v in str(text).split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="ising2d,ising3d,ea3d",
                   help="comma list of ising2d, ising3d, ea3d")
    p.add_argument("--sizes-2d", default="64,128,256,512,1024")
    p.add_argument("--sizes-3d", default="16,32,64,128")
    p.add_argument("--batches", default="1,4,16,64")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--threads", default="",
                   help="comma list of torch CPU thread counts (default: torch's default)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats; the best is reported")
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per repeat (at least)")
    p.add_argument("--max-gb", type=float, default=2.0, help="skip combinations above this memory")
    p.add_argument("--max-sweep-seconds", type=float, default=4.0,
                   help="skip combinations whose single sweep is slower than this")
    p.add_argument("--ea-disorder", default="gaussian", choices=("gaussian", "pm1"))
    p.add_argument("--no-numpy", action="store_true", help="skip the NumPy baseline")
    p.add_argument("--compiled", action="store_true",
                   help="also time the compiled library kernel (sample.kernel: compiled)")
    p.add_argument("--selfcheck", action="store_true",
                   help="first check both samplers against the exact 2D Ising energy")
    p.add_argument("--quick", action="store_true",
                   help="preset: L=64,256,1024 (2D), 16,32 (3D), batches 1,16,64, 3 repeats")
    p.add_argument("--out", default="", help="result file stem (default bench/results/...)")
    a = p.parse_args(argv)
    if a.quick:
        a.sizes_2d, a.sizes_3d, a.batches = "64,256,1024", "16,32", "1,16,64"
        a.repeats, a.min_time = 3, 0.2
    return a


def selfcheck():
    """Both samplers reproduce the exact energy of the 16x16 Ising model at T = 3."""
    from hpc_rg.analysis.exact import ising2d_energy
    L, T, B, n_th, n = 16, 3.0, 64, 200, 400
    exact = ising2d_energy(L, T)
    nb = NumpyCheckerboard("ising", (L, L), np.full(B, 1 / T), seed=1)
    step, spins = torch_case("ising", (L, L), B, T, "cpu", seed=1)
    e_np, e_t = [], []
    for i in range(n_th + n):
        nb.sweep()
        step()
        if i >= n_th:
            e_np.append(nb.energy_per_site())
            e_t.append((ising.energy(spins) / L ** 2).numpy())
    for name, e in (("numpy", e_np), ("torch", e_t)):
        per_chain = np.asarray(e).mean(axis=0)  # independent chains -> honest error
        m, err = per_chain.mean(), per_chain.std(ddof=1) / math.sqrt(B)
        ok = abs(m - exact) < 4 * err
        print(f"selfcheck {name}: e = {m:.5f} +- {err:.5f}, exact {exact:.5f} "
              f"({'ok' if ok else 'MISMATCH'})")
        if not ok:
            raise SystemExit(f"selfcheck failed for {name}")


def main(argv=None):
    a = parse_args(argv)
    dev = a.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device on this machine")
    if a.selfcheck:
        selfcheck()
    threads = _ints(a.threads) or [torch.get_num_threads()]
    meta = machine_info(dev)
    meta.update(vars(a))
    meta["unit"] = "spin updates per ns (B * N sites / seconds per sweep / 1e9)"
    if a.compiled:
        if dev != "cpu":
            raise SystemExit("--compiled: the compiled kernel runs on the CPU only")
        from hpc_rg.mc import compiled
        t0 = time.perf_counter()
        lib = compiled.load_library()
        meta["compiled_load_seconds"] = time.perf_counter() - t0  # compile if not cached
        meta["compiled_vector_width"] = int(lib.hpc_rg_vector_width())
        print(f"compiled kernel ready in {meta['compiled_load_seconds']:.1f} s", flush=True)
    rows = []
    for name in a.models.split(","):
        dims, T = MODELS[name]
        model = "ising" if name.startswith("ising") else "ea"
        sizes = _ints(a.sizes_2d if dims == 2 else a.sizes_3d)
        for L in sizes:
            shape = (L,) * dims
            N = L ** dims
            J = None
            if model == "ea":
                J = ea.couplings(L, dims, a.ea_disorder, 1, 0, dtype=torch.float32)
            for B in _ints(a.batches):
                row = {"model": name, "L": L, "B": B, "sites": B * N, "device": dev}
                gb_t = B * N * TORCH_BYTES_PER_SITE / 1e9
                gb_n = B * N * NUMPY_BYTES_PER_SITE[model] / 1e9
                tt, torch_skip = None, None
                if gb_t > a.max_gb:
                    torch_skip = f"memory ~{gb_t:.1f} GB > {a.max_gb} GB"
                else:
                    tstep, _ = torch_case(model, shape, B, T, dev, J=J)
                    tt = CpuTimer(tstep, dev, a.min_time)
                    if tt.first > a.max_sweep_seconds:
                        torch_skip = f"one sweep took {tt.first:.1f} s > {a.max_sweep_seconds} s"
                        tt = None
                if torch_skip and not (a.compiled and gb_n <= a.max_gb):
                    row["skipped"] = torch_skip
                    rows.append(row)
                    print(f"{name} L={L} B={B}: skipped ({row['skipped']})", flush=True)
                    continue
                if torch_skip:  # still time NumPy and the compiled kernel
                    row["torch_skipped"] = torch_skip
                nt = None
                if not a.no_numpy and gb_n <= a.max_gb:
                    nb = NumpyCheckerboard(model, shape, np.full(B, 1.0 / T),
                                           None if J is None else J.numpy(), seed=0)
                    nt = CpuTimer(nb.sweep, "cpu", a.min_time)
                    if nt.first > a.max_sweep_seconds:
                        row["numpy_skipped"] = f"one sweep took {nt.first:.1f} s"
                        nt = None
                ct = None
                if a.compiled:
                    cstep, _ = compiled_case(model, shape, B, T, dev, J=J)
                    ct = CpuTimer(cstep, dev, a.min_time)
                for nth in threads:
                    if not dev.startswith("cuda"):
                        torch.set_num_threads(nth)
                    for t in (tt, ct):
                        if t is not None:
                            t.times.clear()
                            getattr(t, "cpu_times", []).clear()
                    interleave([tt, nt if nth == threads[0] else None, ct], a.repeats)
                    r = dict(row, threads=nth if not dev.startswith("cuda") else None)
                    if tt is not None:
                        r["torch_ms"] = tt.best * 1e3
                        r["torch_upns"] = B * N / tt.best / 1e9
                        r["torch_spread"] = tt.median / tt.best - 1.0
                        r["torch_cpu_upns"] = B * N / min(tt.cpu_times) / 1e9
                    if nt is not None and nt.times:
                        r["numpy_ms"] = nt.best * 1e3
                        r["numpy_upns"] = B * N / nt.best / 1e9
                        r["numpy_cpu_upns"] = B * N / min(nt.cpu_times) / 1e9
                        if tt is not None:
                            r["speedup"] = nt.best / tt.best
                    if ct is not None:
                        r["compiled_ms"] = ct.best * 1e3
                        r["compiled_upns"] = B * N / ct.best / 1e9
                        r["compiled_cpu_upns"] = B * N / min(ct.cpu_times) / 1e9
                        r["compiled_spread"] = ct.median / ct.best - 1.0
                        if tt is not None:
                            r["compiled_vs_torch"] = tt.best / ct.best
                        if nt is not None and nt.times:
                            r["compiled_speedup"] = nt.best / ct.best
                            r["compiled_cpu_speedup"] = min(nt.cpu_times) / min(ct.cpu_times)
                    rows.append(r)
                    print(table([r], COLS).splitlines()[1], flush=True)
                del tt, nt, ct
    print()
    print(table([r for r in rows if "skipped" not in r], COLS))
    skipped = [r for r in rows if "skipped" in r]
    if skipped:
        print("skipped: " + "; ".join(f"{r['model']} L={r['L']} B={r['B']} ({r['skipped']})"
                                      for r in skipped))
    stem = a.out or f"checkerboard-{dev.replace(':', '')}-{stamp()}"
    j, c = write_results(stem, meta, rows)
    print(f"wrote {j} and {c}")
    return rows


COLS = [("model", "model", ""), ("L", "L", ""), ("B", "B", ""), ("threads", "thr", ""),
        ("torch_upns", "torch upd/ns", "{:.4f}"), ("numpy_upns", "numpy upd/ns", "{:.4f}"),
        ("speedup", "torch/numpy", "{:.2f}x"), ("compiled_upns", "compiled upd/ns", "{:.4f}"),
        ("compiled_speedup", "compiled/numpy", "{:.2f}x"), ("compiled_cpu_speedup", "(cpu time)", "{:.2f}x"),
        ("compiled_vs_torch", "compiled/torch", "{:.1f}x"), ("torch_spread", "spread", "{:.0%}"),
        ("compiled_spread", "c.spread", "{:.0%}")]


if __name__ == "__main__":
    main()
