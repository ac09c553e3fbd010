"""Cluster-update throughput: Wolff and Swendsen-Wang on the 2D Ising model.

Measures :func:`hpc_rg.mc.cluster.wolff_update` and :func:`~hpc_rg.mc.cluster.swendsen_wang_update`
at L = 256 (default) and T = 2.0, T_c = 2.269185, 3.0, for a batch of B chains per call
(the Ensemble batches its chains with one generator per chain since 2026-11-22; B = 1 is the old per-chain loop).

Figures of merit
----------------
* ``sweeps/s``: sweep-equivalents per second summed over the batch. One SW update visits
  every spin (one sweep per chain); one Wolff update flips ``|C|`` spins, i.e.
  ``<|C|>/N`` sweep-equivalents per chain (the usual convention: Wolff work is measured in
  flipped spins).
* ``ms/update``: wall time of one call (all B chains).
* the breakdown of one update into bond activation (:func:`fk_bonds`), connected-component
  labelling (:func:`label_clusters`) and the flip, and the number of hooking iterations;
  for reference, one checkerboard Metropolis sweep of the same lattices.

Usage::

    python bench/bench_cluster.py                      # L=256, B=1,16, three temperatures
    python bench/bench_cluster.py --quick              # ~1 minute
    python bench/bench_cluster.py --device cuda --batches 1,16,64

Chains are equilibrated (``--equil`` updates from an ordered start below T_c, a random one
otherwise) before timing. Results: table + ``bench/results/cluster-<device>-<stamp>.{json,csv}``.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, interleave, machine_info, stamp, sync, table, write_results  # noqa: E402

from hpc_rg.analysis.exact import T_C_2D  # noqa: E402
from hpc_rg.mc import checkerboard as cb  # noqa: E402
from hpc_rg.mc import cluster  # noqa: E402
from hpc_rg.models import ising  # noqa: E402
from hpc_rg.models.lattice import global_site_ids  # noqa: E402
from hpc_rg.rng import CounterRNG  # noqa: E402


def _count_iterations(bonds):
    """Hooking iterations label_clusters needs (re-implements its loop counter only)."""
    calls = {"n": 0}
    orig = torch.Tensor.scatter_reduce_

    def counting(self, *a, **k):
        calls["n"] += 1
        return orig(self, *a, **k)
    torch.Tensor.scatter_reduce_ = counting
    try:
        cluster.label_clusters(bonds)
    finally:
        torch.Tensor.scatter_reduce_ = orig
    return calls["n"] // 2  # two scatter_reduce_ per iteration


def breakdown(spins, beta, gen, device, repeats=3):
    """Best-of-``repeats`` seconds of bonds / labelling / flip for one SW update."""
    best = {"bonds_ms": 1e9, "label_ms": 1e9, "flip_ms": 1e9}
    iters = 0
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        bonds = cluster.fk_bonds(spins, beta, gen)
        sync(device)
        t1 = time.perf_counter()
        labels = cluster.label_clusters(bonds)
        sync(device)
        t2 = time.perf_counter()
        cluster._flip_swendsen_wang(spins, labels, gen)
        sync(device)
        t3 = time.perf_counter()
        best["bonds_ms"] = min(best["bonds_ms"], (t1 - t0) * 1e3)
        best["label_ms"] = min(best["label_ms"], (t2 - t1) * 1e3)
        best["flip_ms"] = min(best["flip_ms"], (t3 - t2) * 1e3)
        iters = _count_iterations(bonds)
    best["label_iterations"] = iters
    return best


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--L", type=int, default=256)
    p.add_argument("--temps", default=f"2.0,{T_C_2D:.6f},3.0")
    p.add_argument("--batches", default="1,16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--equil", type=int, default=30, help="SW updates before timing")
    p.add_argument("--quick", action="store_true", help="B=1 only, 3 repeats, 10 equilibration updates")
    p.add_argument("--out", default="")
    a = p.parse_args(argv)
    if a.quick:
        a.batches, a.repeats, a.equil, a.min_time = "1", 3, 10, 0.3
    return a


def main(argv=None):
    a = parse_args(argv)
    dev = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if a.threads:
        torch.set_num_threads(a.threads)
    meta = machine_info(dev)
    meta.update(vars(a))
    meta["definition"] = ("sweeps/s = sweep-equivalents per second over the batch: SW B/t; "
                          "Wolff B*<|C|>/N/t")
    L = a.L
    N = L * L
    rows = []
    for B in [int(b) for b in a.batches.split(",")]:
        for T in [float(t) for t in a.temps.split(",")]:
            gen = torch.Generator(device=dev)
            gen.manual_seed(1234)
            beta = torch.full((B,), 1.0 / T, dtype=torch.float64, device=dev)
            if T < T_C_2D:
                s0 = torch.ones((B, L, L), dtype=torch.int8, device=dev)
            else:
                s0 = torch.randint(0, 2, (B, L, L), generator=gen, dtype=torch.int8, device=dev) * 2 - 1
                s0 = s0.to(torch.int8)
            for _ in range(a.equil):
                s0 = cluster.swendsen_wang_update(s0, beta, gen)
            state = {"sw": s0.clone(), "wolff": s0.clone(), "csum": 0, "ncall": 0}

            def sw():
                state["sw"] = cluster.swendsen_wang_update(state["sw"], beta, gen)

            def wolff():
                state["wolff"], size = cluster.wolff_update(state["wolff"], beta, gen)
                state["csum"] += int(size.sum())
                state["ncall"] += 1

            # reference: one checkerboard Metropolis sweep (library kernel, float32)
            rng = CounterRNG(5, torch.arange(B), global_site_ids((L, L), device=dev), dev)
            sm = s0.to(torch.float32)
            field = functools.partial(ising.local_field, J=1.0, h=0.0)
            betaf = beta.to(torch.float32)
            k = [0]

            def metro():
                cb.sweep(sm, field, betaf, rng, k[0])
                k[0] += 1
            timers = [Timer(f, dev, a.min_time) for f in (sw, wolff, metro)]
            state["csum"] = state["ncall"] = 0
            interleave(timers, a.repeats)
            frac = state["csum"] / max(state["ncall"], 1) / B / N
            t_sw, t_w, t_m = (t.best for t in timers)
            r = {"L": L, "B": B, "T": round(T, 6), "device": dev, "threads": torch.get_num_threads(),
                 "sw_ms": t_sw * 1e3, "sw_sweeps_per_s": B / t_sw,
                 "wolff_ms": t_w * 1e3, "wolff_cluster_frac": frac,
                 "wolff_sweeps_per_s": B * frac / t_w, "wolff_updates_per_s": B / t_w,
                 "metropolis_ms": t_m * 1e3, "metropolis_sweeps_per_s": B / t_m,
                 "sw_ns_per_site": t_sw / (B * N) * 1e9}
            r.update(breakdown(state["sw"], beta, gen, dev))
            rows.append(r)
            print(table([r], COLS).splitlines()[1], flush=True)
    print()
    print(table(rows, COLS))
    j, c = write_results(a.out or f"cluster-{dev.replace(':', '')}-{stamp()}", meta, rows)
    print(f"wrote {j} and {c}")
    return rows


COLS = [("L", "L", ""), ("B", "B", ""), ("T", "T", "{:.4f}"),
        ("sw_sweeps_per_s", "SW sweeps/s", "{:.2f}"), ("sw_ms", "SW ms/upd", "{:.1f}"),
        ("wolff_sweeps_per_s", "Wolff sweeps/s", "{:.3f}"), ("wolff_cluster_frac", "<|C|>/N", "{:.4f}"),
        ("wolff_ms", "Wolff ms/upd", "{:.1f}"), ("metropolis_sweeps_per_s", "Metro sweeps/s", "{:.1f}"),
        ("bonds_ms", "bonds ms", "{:.1f}"), ("label_ms", "label ms", "{:.1f}"),
        ("flip_ms", "flip ms", "{:.1f}"), ("label_iterations", "hook iters", "")]


if __name__ == "__main__":
    main()
