"""Super-resolution speed: the inverse-RG chain, training, and 10^4 512² configurations vs Wolff.

Three measurements (issue #4, "Speed"):

1. ``sr``: super-resolved configurations per second through the library path,
   ``SuperResolver.step(x, 0, level, seed, ids)`` (network forward, counter-based RNG,
   Bernoulli sampling), level by level along the chain L0 -> 2 L0 -> ... -> target:
   2D 16 -> 512 (batches 1, 4, 16) and 3D 16 -> 128 (batches 1, 4). Reported per level
   (the last level is the single L -> 2L step 256² -> 512², 64³ -> 128³) and for the whole
   chain: configs/s, ms per config, and the peak RSS growth of the process (each
   (d, batch) case runs in its own subprocess, so ``ru_maxrss`` is that case's high-water
   mark) next to the documented bound batch × target_L^d × (4·width + 16) bytes.
2. ``train``: training samples per second per rank of the L = 8 -> 16 2D network
   (forward on ``block(target)``, ``spin_loss``, backward, Adam step), plain torch on one
   rank. The train stage runs the same step inside DeepSpeed, which adds the gradient
   all-reduce over ranks (not measured here).
3. ``wolff``: ``hpc_rg.mc.cluster.wolff_update`` at T_c on L = 16, 128, 256, 512
   (equilibrated from a random start by Swendsen-Wang updates, then a timed Wolff run):
   time per update and the integrated autocorrelation times of |m| and of the energy in
   units of Wolff updates (Sokal window). From these, the time to 10^4 independent 512²
   configurations: by super-resolution, 10^4 × (chain 16 -> 512 per config) + the 16²
   Monte Carlo for 10^4 independent inputs (10^4 × 2 tau_16 × t_update(16)); by Wolff at
   512², 10^4 × 2 tau_512 × t_update(512), with tau_512 measured and, as a cross-check,
   extrapolated from L = 256 with tau_sweeps ∝ L^z, z = 0.25.

Usage::

    python bench/bench_superres.py --quick           # < 2 minutes
    python bench/bench_superres.py                   # < 10 minutes on 2 cores
    python bench/bench_superres.py --parts sr --model runs/x/model.pt
    python bench/bench_superres.py --device cuda --threads 0

Random network weights unless ``--model`` (a trained ``model.pt``; used for the cases with
its dimension; timing does not depend on the weights, only on depth/width/kernel).
Timing: best repeat (see ``bench/common.py``); Wolff: the run is split into blocks of about
1 s and the best block is reported next to the mean. Results: tables and
``bench/results/superres-<device>[-quick]-<stamp>.{json,csv}``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Timer, machine_info, stamp, sync, table, write_results  # noqa: E402

from hpc_rg.analysis.exact import T_C_2D  # noqa: E402
from hpc_rg.analysis.stats import integrated_autocorr_time  # noqa: E402

N_CONFIGS = 10_000
#: dynamic exponent of Wolff in 2D: tau in sweeps ∝ L^z (Coddington & Baillie 1992)
Z_WOLFF = 0.25


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def _parse_sizes(s):
    l0, lt = (int(v) for v in s.split(":"))
    return l0, lt


# --------------------------------------------------------------------- 1. super-resolution
def sr_case(dims, L0, target, B, a, dev) -> dict:
    """Time the chain L0 -> target level by level for batch B (run in a subprocess)."""
    from hpc_rg.superres import SuperResolver, load
    from hpc_rg.superres.network import NetworkBank, NetworkSpec
    weights = "random"
    sr = None
    if a.model:
        sr = load(a.model, dev)
        if sr.dims != dims:
            sr = None
        else:
            weights = f"trained:{a.model}"
    if sr is None:
        torch.manual_seed(0)
        spec = NetworkSpec(dims, depth=a.depth, width=a.width, kernel=a.kernel,
                           temperatures=(T_C_2D,))
        bank = NetworkBank(spec).to(dev).eval()
        sr = SuperResolver(bank, {"blocking": "majority", "flow": None}, dev)
    spec = sr.spec
    levels = int(round(math.log2(target / L0)))
    gen = torch.Generator().manual_seed(1)
    x = (torch.randint(0, 2, (B,) + (L0,) * dims, generator=gen) * 2 - 1).to(torch.float32).to(dev)
    ids = torch.arange(B)
    seed = 7
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(dev)
    rss0 = _rss_mb()

    def chain():
        y, ts = x, []
        for level in range(1, levels + 1):
            sync(dev)
            t0 = time.perf_counter()
            y = sr.step(y, 0, level, seed, ids)
            sync(dev)
            ts.append(time.perf_counter() - t0)
        return y, ts

    t0 = time.perf_counter()
    y, _ = chain()  # warm-up
    first = time.perf_counter() - t0
    same = None
    if a.check:  # the level loop is exactly SuperResolver.upscale
        same = bool(torch.equal(y, sr.upscale(x, 0, levels, seed, ids)[-1]))
    xin = torch.ones((B,) + (target // 2,) * dims, device=dev)

    def forward_top():  # the network alone at the top level (for the breakdown)
        sync(dev)
        t0 = time.perf_counter()
        with torch.no_grad():
            sr.bank.forward_one(0, xin)
        sync(dev)
        return time.perf_counter() - t0

    calls = max(1, math.ceil(a.min_time / max(first, 1e-6)))
    per_level = np.full((a.repeats, levels), np.inf)
    fwd = np.full(a.repeats, np.inf)
    for r in range(a.repeats):  # forward-only calls interleaved, repeat by repeat
        acc = np.zeros(levels)
        for _ in range(calls):
            acc += chain()[1]
        per_level[r] = acc / calls
        if a.breakdown:
            fwd[r] = min(forward_top() for _ in range(calls))
    chain_t = per_level.sum(axis=1).min()
    level_t = per_level.min(axis=0)
    top = level_t[-1]
    row = {"kind": "sr", "dims": dims, "L0": L0, "target_L": target, "levels": levels, "B": B,
           "device": dev, "threads": torch.get_num_threads(), "weights": weights,
           "depth": spec.depth, "width": spec.width, "kernel": spec.kernel,
           "repeats": a.repeats, "calls_per_repeat": calls, "first_call_s": first,
           "step_from_L": target // 2, "step_ms_per_config": top / B * 1e3,
           "step_configs_per_s": B / top,
           "chain_ms_per_config": chain_t / B * 1e3, "chain_configs_per_s": B / chain_t,
           "chain_spread": float(np.median(per_level.sum(axis=1)) / chain_t - 1),
           "level_ms_per_config": [float(t / B * 1e3) for t in level_t],
           "matches_upscale": same, "loadavg_1m": os.getloadavg()[0]}
    if a.breakdown:  # best forward-only / best step; the rest is RNG + sampling
        row["step_forward_frac"] = float(fwd.min() / top)
    bound = B * target**dims * (4 * spec.width + 16) / 2**20
    row["mem_bound_MB"] = bound
    if dev.startswith("cuda"):
        row["peak_growth_MB"] = torch.cuda.max_memory_allocated(dev) / 2**20
    else:
        row["peak_growth_MB"] = _rss_mb() - rss0
    row["bytes_per_site"] = row["peak_growth_MB"] * 2**20 / (B * target**dims)
    return row


def run_sr(a, dev) -> list[dict]:
    rows = []
    for dims, sizes, batches, reps in ((2, a.sizes_2d, a.batches_2d, a.repeats),
                                       (3, a.sizes_3d, a.batches_3d, a.repeats_3d)):
        if not batches:
            continue
        L0, target = _parse_sizes(sizes)
        for i, B in enumerate(int(b) for b in batches.split(",")):
            job = {"dims": dims, "L0": L0, "target": target, "B": B, "dev": dev,
                   "model": a.model, "depth": a.depth, "width": a.width, "kernel": a.kernel,
                   "repeats": reps, "min_time": a.min_time, "threads": a.threads,
                   "check": i == 0, "breakdown": i == 0}
            out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                raise SystemExit(f"sr case d={dims} B={B} failed (exit {out.returncode})")
            row = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(table([row], SR_COLS).splitlines()[1], flush=True)
    return rows


def worker(job_json: str) -> None:
    job = argparse.Namespace(**json.loads(job_json))
    if job.threads:
        torch.set_num_threads(job.threads)
    row = sr_case(job.dims, job.L0, job.target, job.B, job, job.dev)
    print(json.dumps(row))


# --------------------------------------------------------------------- 2. training
def run_train(a, dev) -> list[dict]:
    from hpc_rg.rg.blocking import block
    from hpc_rg.superres.loss import spin_loss
    from hpc_rg.superres.network import NetworkBank, NetworkSpec
    rows = []
    for B in (int(b) for b in a.train_batches.split(",")):
        torch.manual_seed(0)
        bank = NetworkBank(NetworkSpec(2, depth=a.depth, width=a.width, kernel=a.kernel,
                                       temperatures=(T_C_2D,))).to(dev).train()
        opt = torch.optim.Adam(bank.parameters(), lr=1e-3)
        gen = torch.Generator().manual_seed(2)
        data = [(torch.randint(0, 2, (1, B, 16, 16), generator=gen) * 2 - 1).float().to(dev)
                for _ in range(8)]
        it = [0]

        def step():
            target = data[it[0] % len(data)]
            it[0] += 1
            x = block(target, "majority", 2)           # (n_T, B, 8, 8)
            out = bank(x)                                # (n_T, B, 1, 16, 16)
            loss = sum(spin_loss(out[k], target[k], 2) for k in range(target.shape[0]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        t = Timer(step, dev, a.min_time)
        for _ in range(a.repeats):
            t.repeat()
        row = {"kind": "train", "dims": 2, "L": 16, "B": B, "n_T": 1, "device": dev,
               "threads": torch.get_num_threads(), "depth": a.depth, "width": a.width,
               "ms_per_step": t.best * 1e3, "samples_per_s": B / t.best,
               "spread": t.median / t.best - 1, "loadavg_1m": os.getloadavg()[0]}
        rows.append(row)
        print(table([row], TRAIN_COLS).splitlines()[1], flush=True)
    return rows


# --------------------------------------------------------------------- 3. Wolff at T_c
def wolff_run(L, seconds, chains, equil, dev) -> dict:
    """Equilibrate (SW from random), then Wolff for ``seconds``; tau_int of |m| and e."""
    from hpc_rg.mc import cluster
    from hpc_rg.models import ising
    gen = torch.Generator(device=dev)
    gen.manual_seed(1000 + L)
    beta = torch.full((chains,), 1.0 / T_C_2D, dtype=torch.float64, device=dev)
    s = (torch.randint(0, 2, (chains, L, L), generator=gen, device=dev) * 2 - 1).to(torch.int8)
    t0 = time.perf_counter()
    for _ in range(equil):
        s = cluster.swendsen_wang_update(s, beta, gen)
    for _ in range(20):  # and a few Wolff updates before recording
        s, _c = cluster.wolff_update(s, beta, gen)
    t_equil = time.perf_counter() - t0
    N = L * L
    m, e, dt, csize = [], [], [], 0.0
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        sync(dev)
        t0 = time.perf_counter()
        s, c = cluster.wolff_update(s, beta, gen)
        sync(dev)
        dt.append(time.perf_counter() - t0)
        csize += float(c.sum())
        m.append((ising.magnetization(s).abs() / N).cpu().numpy())
        e.append((ising.energy(s) / N).cpu().numpy())
    n = len(dt)
    dt = np.array(dt)
    m, e = np.array(m), np.array(e)  # (n, chains)
    avg = chains > 1  # one tau from the autocovariance averaged over independent chains
    tau_m, err_m, w_m = integrated_autocorr_time(m if avg else m[:, 0], average=avg)
    tau_e, err_e, w_e = integrated_autocorr_time(e if avg else e[:, 0], average=avg)
    nb = max(1, int(1.0 / max(np.median(dt), 1e-9)))  # calls per ~1 s block
    blocks = dt[: n // nb * nb].reshape(-1, nb).mean(axis=1) if n >= nb else dt[None].mean(1)
    t_best = float(blocks.min())
    tau = max(float(tau_m), float(tau_e))
    err = float(err_m) if tau_m >= tau_e else float(err_e)
    return {"kind": "wolff", "L": L, "chains": chains, "T": round(T_C_2D, 6), "device": dev,
            "threads": torch.get_num_threads(), "equil_sw_updates": equil,
            "equil_s": t_equil, "updates": n, "run_s": float(dt.sum()),
            "cluster_frac": csize / (n * chains * N),
            "ms_per_update_mean": float(dt.mean()) / chains * 1e3,
            "ms_per_update_best": t_best / chains * 1e3,
            "blocks": len(blocks), "mean_abs_m": float(m.mean()), "mean_e": float(e.mean()),
            "tau_m": float(tau_m), "tau_m_err": float(err_m), "window_m": int(w_m),
            "tau_e": float(tau_e), "tau_e_err": float(err_e), "window_e": int(w_e),
            "tau_max": tau, "tau_max_err": err,
            "n_over_tau": n / tau, "reliable": bool(n >= 1000 * tau),
            "loadavg_1m": os.getloadavg()[0]}


def run_wolff(a, dev) -> list[dict]:
    rows = []
    for spec in a.wolff.split(","):
        L, sec, chains = (float(v) for v in spec.split(":"))
        row = wolff_run(int(L), sec, int(chains), a.equil, dev)
        rows.append(row)
        print(table([row], WOLFF_COLS).splitlines()[1], flush=True)
    return rows


def compare(sr_rows, wolff_rows, L_big=512, L_small=16) -> list[dict]:
    """Time to N_CONFIGS independent L_big² configurations: SR chain vs Wolff."""
    chain = [r for r in sr_rows if r["dims"] == 2 and r["target_L"] == L_big and r["L0"] == L_small]
    w = {r["L"]: r for r in wolff_rows}
    if not chain or L_small not in w or L_big not in w:
        return []
    best = min(chain, key=lambda r: r["chain_ms_per_config"])
    t_chain = best["chain_ms_per_config"] / 1e3
    mc16 = w[L_small]
    t_in = 2 * mc16["tau_max"] * mc16["ms_per_update_best"] / 1e3
    sr_total = N_CONFIGS * (t_chain + t_in)
    big = w[L_big]
    t_upd = big["ms_per_update_best"] / 1e3
    rows = []
    estimates = [(f"measured at L={L_big}", big["tau_max"], big["tau_max_err"])]
    ref = max((L for L in w if L_small < L < L_big), default=None)
    if ref is not None:
        # tau in sweeps = tau_updates × <|C|>/N scales as L^z; back to updates at L_big
        r = w[ref]
        tau_sw = r["tau_max"] * r["cluster_frac"] * (L_big / ref) ** Z_WOLFF
        tau_x = tau_sw / big["cluster_frac"]
        estimates.append((f"extrapolated from L={ref} (z={Z_WOLFF})", tau_x,
                          r["tau_max_err"] / r["tau_max"] * tau_x))
    for label, tau, err in estimates:
        wolff_total = N_CONFIGS * 2 * tau * t_upd
        rows.append({"kind": "compare", "L": L_big, "n_configs": N_CONFIGS,
                     "sr_batch": best["B"], "sr_chain_ms_per_config": t_chain * 1e3,
                     "mc16_ms_per_config": t_in * 1e3, "sr_total_s": sr_total,
                     "wolff_tau": label, "tau_updates": tau, "tau_err": err,
                     "wolff_ms_per_update": t_upd * 1e3, "wolff_total_s": wolff_total,
                     "wolff_total_err_s": wolff_total * err / tau,
                     "wolff_over_sr": wolff_total / sr_total})
    return rows


# --------------------------------------------------------------------- tables, CLI
SR_COLS = [("dims", "d", ""), ("L0", "L0", ""), ("target_L", "target", ""), ("B", "B", ""),
           ("step_configs_per_s", "step cfg/s", "{:.3g}"),
           ("step_ms_per_config", "step ms/cfg", "{:.1f}"),
           ("chain_configs_per_s", "chain cfg/s", "{:.3g}"),
           ("chain_ms_per_config", "chain ms/cfg", "{:.1f}"),
           ("chain_spread", "spread", "{:.0%}"), ("step_forward_frac", "fwd share", "{:.0%}"),
           ("peak_growth_MB", "peak +MB", "{:.0f}"), ("mem_bound_MB", "doc bound MB", "{:.0f}"),
           ("bytes_per_site", "B/site", "{:.0f}"), ("loadavg_1m", "load", "{:.1f}")]
TRAIN_COLS = [("L", "L", ""), ("B", "batch", ""), ("ms_per_step", "ms/step", "{:.2f}"),
              ("samples_per_s", "samples/s", "{:.0f}"), ("spread", "spread", "{:.0%}"),
              ("loadavg_1m", "load", "{:.1f}")]
WOLFF_COLS = [("L", "L", ""), ("chains", "chains", ""), ("updates", "updates", ""),
              ("ms_per_update_best", "ms/upd best", "{:.3f}"),
              ("ms_per_update_mean", "ms/upd mean", "{:.3f}"),
              ("cluster_frac", "<|C|>/N", "{:.3f}"), ("tau_m", "tau |m|", "{:.2f}"),
              ("tau_m_err", "±", "{:.2f}"), ("tau_e", "tau e", "{:.2f}"),
              ("tau_e_err", "±", "{:.2f}"),
              ("n_over_tau", "n/tau", "{:.0f}"), ("loadavg_1m", "load", "{:.1f}")]
CMP_COLS = [("wolff_tau", "Wolff tau", ""), ("tau_updates", "tau [upd]", "{:.2f}"),
            ("tau_err", "±", "{:.2f}"), ("wolff_total_s", "Wolff s", "{:.0f}"),
            ("wolff_total_err_s", "±", "{:.0f}"), ("sr_total_s", "SR s", "{:.0f}"),
            ("sr_chain_ms_per_config", "SR chain ms/cfg", "{:.1f}"),
            ("mc16_ms_per_config", "16² MC ms/cfg", "{:.3f}"),
            ("wolff_over_sr", "Wolff/SR", "{:.2f}")]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="sr,train,wolff")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (0: torch's default; 1 unless stated, see superres.md)")
    p.add_argument("--model", default="", help="a trained model.pt (else random weights)")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--sizes-2d", default="16:512", help="L0:target of the 2D chain")
    p.add_argument("--sizes-3d", default="16:128")
    p.add_argument("--batches-2d", default="1,4,16")
    p.add_argument("--batches-3d", default="1,4", help="empty: skip 3D")
    p.add_argument("--repeats", type=int, default=3, help="2D SR and training repeats")
    p.add_argument("--repeats-3d", type=int, default=2)
    p.add_argument("--min-time", type=float, default=1.0, help="seconds per repeat")
    p.add_argument("--train-batches", default="32")
    p.add_argument("--wolff", default="16:10:64,128:30:1,256:45:1,512:200:1",
                   help="L:seconds:chains of the timed Wolff runs at T_c")
    p.add_argument("--equil", type=int, default=200, help="SW updates from a random start")
    p.add_argument("--quick", action="store_true", help="< 2 minutes: smaller grid, short runs")
    p.add_argument("--out", default="")
    p.add_argument("--worker", default="", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.batches_2d, a.batches_3d, a.repeats, a.repeats_3d = "1,4", "1", 2, 1
        a.min_time, a.equil = 0.5, 100
        a.wolff = "16:4:64,128:8:1,256:12:1,512:25:1"
    return a


def main(argv=None):
    a = parse_args(argv)
    if a.worker:
        return worker(a.worker)
    dev = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    default_threads = torch.get_num_threads()
    if a.threads:
        torch.set_num_threads(a.threads)
    meta = machine_info(dev)
    meta.update({k: v for k, v in vars(a).items() if k != "worker"})
    meta["torch_default_threads"] = default_threads
    meta["definition"] = ("configs/s = B / best time of one call over B configurations; chain = "
                          "all levels L0 -> target; peak +MB = ru_maxrss growth of a fresh "
                          "process running that case; Wolff tau in units of updates (one "
                          "cluster per chain); 10^4 independent configs = 10^4 x 2 tau x t_upd")
    parts = set(a.parts.split(","))
    sr_rows, train_rows, wolff_rows = [], [], []
    t_start = time.perf_counter()
    if "sr" in parts:
        print("super-resolution (SuperResolver.step, level by level):", flush=True)
        print(table([], SR_COLS))
        sr_rows = run_sr(a, dev)
    if "train" in parts:
        print("\ntraining step, 2D 8 -> 16, plain torch on one rank:")
        print(table([], TRAIN_COLS))
        train_rows = run_train(a, dev)
    if "wolff" in parts:
        print(f"\nWolff at T_c = {T_C_2D:.6f} (equilibrated by {a.equil} SW updates):")
        print(table([], WOLFF_COLS))
        wolff_rows = run_wolff(a, dev)
    cmp_rows = compare(sr_rows, wolff_rows, *reversed(_parse_sizes(a.sizes_2d)))
    print()
    for name, rows, cols in (("super-resolution", sr_rows, SR_COLS),
                             ("training", train_rows, TRAIN_COLS),
                             ("Wolff", wolff_rows, WOLFF_COLS),
                             (f"time to {N_CONFIGS} independent "
                              f"{_parse_sizes(a.sizes_2d)[1]}² configurations at T_c",
                              cmp_rows, CMP_COLS)):
        if rows:
            print(f"{name}:\n{table(rows, cols)}\n")
    for r in sr_rows:
        lv = ", ".join(f"{r['L0'] * 2**i}->{r['L0'] * 2**(i + 1)}: {t:.2f}"
                       for i, t in enumerate(r["level_ms_per_config"]))
        print(f"d={r['dims']} B={r['B']} ms/config per level: {lv}"
              + ("" if r["matches_upscale"] is None
                 else f"  (== upscale(): {r['matches_upscale']})"))
    meta["total_s"] = time.perf_counter() - t_start
    name = a.out or f"superres-{dev.replace(':', '')}{'-quick' if a.quick else ''}-{stamp()}"
    j, c = write_results(name, meta, sr_rows + train_rows + wolff_rows + cmp_rows)
    print(f"total {meta['total_s']:.0f} s; wrote {j} and {c}")


if __name__ == "__main__":
    main()
