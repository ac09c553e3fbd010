"""The sample stage's Ensemble on the flagship layout: sweep cost with and without parallel
tempering, and the cost of one measurement (energies, overlaps, configurations).

One rank's share of inputs/ea3d.yaml by default: 3D ±J EA, L = 16, D disorder samples x 4
replicas x 24 temperatures (geometric 0.9-2.0), Metropolis, PT exchanges after every sweep.
Kernels side by side (interleaved repeats): ``msc`` (multi-spin coded, compiled) and, for
scale, ``compiled`` (the float kernel) on a smaller D (it is 10-20x slower).

* ``ms/sweep`` -- one ``Ensemble.sweep(1)``: with PT this includes the energies (counted
  inside the MSC kernel call), the exchange decision and the threshold update;
* ``PT overhead`` -- (ms/sweep with PT) / (ms/sweep without) - 1, same chains;
* ``measure ms`` -- ``measure() + pair_observables() + configs()``, what the stage does every
  ``thin`` sweeps.

Usage::

    OMP_NUM_THREADS=1 python bench/bench_msc_sampler.py                  # D = 64 (half the deck)
    OMP_NUM_THREADS=1 python bench/bench_msc_sampler.py --samples 8 --repeats 3

Results: a table on stdout and ``bench/results/msc-sampler-<stamp>.{json,csv}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, interleave, machine_info, stamp, table, write_results  # noqa: E402

from hpc_rg.config import config_from_dict  # noqa: E402
from hpc_rg.mc.ensemble import Ensemble  # noqa: E402
from hpc_rg.parallel.comms import Comms  # noqa: E402


def ensemble(kernel: str, pt: bool, D: int, T: int, L: int) -> Ensemble:
    cfg = config_from_dict({
        "run": {"seed": 1},
        "model": {"name": "edwards_anderson", "dims": 3, "disorder": "pm1",
                  "disorder_samples": D, "replicas": 4},
        "sample": {"L": L, "temperatures": {"min": 0.9, "max": 2.0, "count": T,
                                            "spacing": "geometric"},
                   "algorithm": "metropolis", "kernel": kernel,
                   "tempering": {"enabled": pt, "every": 1}}})
    e = Ensemble(cfg, Comms(MPI.COMM_SELF, 1), "cpu")
    e.sweep(20)
    return e


def measurement(e: Ensemble):
    def fn():
        e.measure()
        e.pair_observables()
        e.configs()
    return fn


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=64, help="disorder samples (x 4 replicas)")
    p.add_argument("--float-samples", type=int, default=4, help="D for the float kernel (0: skip)")
    p.add_argument("--temperatures", type=int, default=24)
    p.add_argument("--L", type=int, default=16)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    cases = [("msc", a.samples)] + ([("compiled", a.float_samples)] if a.float_samples else [])
    for kernel, D in cases:
        ens = {pt: ensemble(kernel, pt, D, a.temperatures, a.L) for pt in (False, True)}
        timers = {pt: Timer(lambda e=e: e.sweep(1), min_time=a.min_time) for pt, e in ens.items()}
        meas = Timer(measurement(ens[True]), min_time=a.min_time)
        interleave([timers[False], timers[True], meas], a.repeats)
        e = ens[True]
        updates = e.B * a.L ** 3
        rows.append({
            "kernel": kernel, "disorder_samples": D, "chains": e.B, "L": a.L,
            "ms_sweep_no_pt": 1e3 * timers[False].best, "ms_sweep_pt": 1e3 * timers[True].best,
            "upd_per_ns_no_pt": updates / timers[False].best / 1e9,
            "upd_per_ns_pt": updates / timers[True].best / 1e9,
            "pt_overhead": timers[True].best / timers[False].best - 1.0,
            "ms_measure": 1e3 * meas.best, "kernel_reason": e.kernel_reason})
    cols = [("kernel", "kernel", ""), ("chains", "chains", ""),
            ("ms_sweep_no_pt", "ms/sweep", "{:.2f}"), ("ms_sweep_pt", "ms/sweep PT", "{:.2f}"),
            ("upd_per_ns_no_pt", "upd/ns", "{:.2f}"), ("upd_per_ns_pt", "upd/ns PT", "{:.2f}"),
            ("pt_overhead", "PT overhead", "{:.0%}"), ("ms_measure", "measure ms", "{:.1f}")]
    print(table(rows, cols))
    meta = machine_info() | {"command": " ".join(["python", "bench/bench_msc_sampler.py", *(argv or sys.argv[1:])]),
                             "temperatures": a.temperatures, "repeats": a.repeats}
    j, c = write_results(a.out or f"msc-sampler-{stamp()}", meta, rows)
    print(f"results: {j} {c}")


if __name__ == "__main__":
    main()
