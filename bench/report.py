"""Render benchmark result files (bench/results/*.json) as Markdown tables.

Usage::

    python bench/report.py bench/results/checkerboard-cpu-full.json [more.json ...]
    python bench/report.py --where threads=1 bench/results/checkerboard-cpu-full.json

The kind of table follows the file name (checkerboard-, cluster-, parallel-, profile-).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _fmt(v, fmt):
    if v is None or v == "" or (isinstance(v, float) and v != v):
        return "–"
    return fmt.format(v) if fmt else str(v)


def md(rows, cols) -> str:
    out = ["| " + " | ".join(h for _, h, _ in cols) + " |",
           "|" + "|".join("---:" for _ in cols) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_fmt(r.get(k), f) for k, _, f in cols) + " |")
    return "\n".join(out)


CHECKER = [("model", "model", ""), ("L", "L", ""), ("B", "B", ""), ("threads", "threads", ""),
           ("torch_upns", "torch upd/ns", "{:.4f}"), ("numpy_upns", "NumPy upd/ns", "{:.4f}"),
           ("speedup", "torch / NumPy", "{:.2f}×"), ("fused_upns", "fused upd/ns", "{:.4f}"),
           ("fused_speedup", "fused / NumPy", "{:.2f}×"), ("torch_spread", "spread", "{:.0%}")]
CLUSTER = [("B", "B", ""), ("T", "T", "{:.4f}"), ("sw_sweeps_per_s", "SW sweeps/s", "{:.1f}"),
           ("sw_ms", "SW ms/update", "{:.1f}"), ("wolff_cluster_frac", "Wolff ⟨|C|⟩/N", "{:.4f}"),
           ("wolff_sweeps_per_s", "Wolff sweeps/s", "{:.3f}"), ("wolff_ms", "Wolff ms/update", "{:.1f}"),
           ("metropolis_sweeps_per_s", "Metropolis sweeps/s", "{:.0f}"),
           ("bonds_ms", "bonds ms", "{:.1f}"), ("label_ms", "labelling ms", "{:.1f}"),
           ("flip_ms", "flip ms", "{:.1f}"), ("label_iterations", "hooking iterations", "")]
PT = [("label", "case", ""), ("ranks", "ranks", ""), ("local_chains", "chains/rank", ""),
      ("ms_per_sweep", "ms/sweep", "{:.2f}"), ("ms_per_exchange", "ms/exchange", "{:.2f}"),
      ("exchange_over_sweep", "exchange / sweeps", "{:.0%}"),
      ("ms_wait_per_exchange", "wait ms/exchange", "{:.2f}"), ("wait_over_sweep", "wait / sweeps", "{:.0%}")]
DD = [("label", "case", ""), ("ranks", "ranks", ""), ("local_shape", "slab", ""),
      ("local_chains", "chains/rank", ""), ("ms_per_sweep", "ms/sweep", "{:.1f}"),
      ("chain_sweeps_per_s", "chain-sweeps/s", "{:.0f}"), ("halo_fraction", "halo share", "{:.0%}"),
      ("halo_ms_in_sweep", "halo ms in sweep", "{:.2f}"), ("halo_ms_isolated", "halo ms alone", "{:.3f}")]
PROFILE = [("op", "operator", ""), ("ns_per_site", "ns / update", "{:.2f}"), ("share", "share", "{:.0%}"),
           ("calls_per_sweep", "calls / sweep", "{:.0f}")]


def render(path, where=()) -> str:
    d = json.loads(Path(path).read_text())
    rows, meta, name = d["results"], d["meta"], Path(path).name
    for cond in where:  # key=value filters (values compared as text; skipped rows kept)
        k, v = cond.split("=", 1)
        rows = [r for r in rows if k not in r or str(r[k]) == v]
    head = (f"`{name}`: {meta.get('date')}, {meta.get('cpu_model')}, torch {meta.get('torch')}, "
            f"load {meta.get('loadavg_start', ['?'])[0]:.1f}→{meta.get('loadavg_end', ['?'])[0]:.1f}")
    if name.startswith("checkerboard"):
        done = [r for r in rows if "skipped" not in r]
        skipped = [f"{r['model']} L={r['L']} B={r['B']} ({r['skipped']})" for r in rows if "skipped" in r]
        cols = [c for c in CHECKER if any(r.get(c[0]) is not None for r in done)]
        text = md(done, cols)
        if skipped:
            text += "\n\nSkipped: " + "; ".join(skipped) + "."
    elif name.startswith("cluster"):
        text = md(rows, CLUSTER)
    elif name.startswith("parallel"):
        text = (md([r for r in rows if r["case"] == "tempering"], PT) + "\n\n" +
                md([r for r in rows if r["case"] == "decomposition"], DD))
    elif name.startswith("profile"):
        text = (f"wall {meta.get('wall_ns_per_site', 0):.2f} ns/update; phases (profiled) "
                + ", ".join(f"{k} {v:.2f}" for k, v in meta.get("phases_ns_per_site", {}).items())
                + "\n\n" + md(rows, PROFILE))
    else:
        text = md(rows, [(k, k, "") for k in rows[0]]) if rows else ""
    return head + "\n\n" + text + "\n"


if __name__ == "__main__":
    args, where = sys.argv[1:], []
    while args and args[0] == "--where":
        where.append(args[1])
        args = args[2:]
    for p in args:
        print(render(p, where))
