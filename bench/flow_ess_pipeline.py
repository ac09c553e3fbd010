"""Collect the runs of bench/flow_ess_pipeline.sh: per run the train/upscale CPU time and
per upscaled level ESS/N, reverse KL (and per site), acceptance, N_eff; one JSON, one table.

Usage: python bench/flow_ess_pipeline.py RUNS_DIR OUT.json
"""

import json
import sys
from pathlib import Path

import h5py
import torch


def _cpu(path: Path) -> dict:
    f = path.read_text().split()
    return {"cpu_s": round(float(f[2]) + float(f[4]), 1), "wall_s": float(f[6])}


def collect(root: Path) -> dict:
    out = {}
    for d in sorted(p for p in root.iterdir() if (p / "upscaled.h5").is_file()):
        meta = torch.load(d / "model.pt", weights_only=True)["meta"]
        fl = meta["flow"]
        row = {"linear_kernel": fl["linear_kernel"], "reuse_first_level": fl["reuse_first_level"],
               "steps": fl["steps"], "retrain_steps": fl["retrain_steps"], "batch": fl["batch"],
               "trained_levels": meta["trained_levels"],
               "train": _cpu(d / "time_train.txt"), "upscale": _cpu(d / "time_upscale.txt"),
               "levels": {}}
        with h5py.File(d / "upscaled.h5", "r") as f:
            for g in sorted(f, key=lambda n: int(n[1:])):
                a, L = f[g].attrs, int(g[1:])
                n = f[g]["configs"].shape[1]
                row["levels"][L] = {"n": n, "ess_per_n": float(a["ess_per_n"][0]),
                                    "reverse_kl": float(a["reverse_kl"][0]),
                                    "kl_per_site": float(a["reverse_kl"][0]) / L ** 2,
                                    "acceptance": float(a["acceptance"][0]),
                                    "n_effective": float(a["n_effective"][0])}
        out[d.name] = row
    return out


def main():
    root, dest = Path(sys.argv[1]), Path(sys.argv[2])
    res = collect(root)
    dest.write_text(json.dumps(res, indent=1) + "\n")
    for name, r in res.items():
        lv = r["levels"]
        print(f"{name:14s} k={r['linear_kernel']} reuse={r['reuse_first_level']!s:5s} "
              f"train {r['train']['cpu_s'] / 60:5.2f} CPU-min  ESS/N "
              + " ".join(f"{v['ess_per_n']:.3f}" for v in lv.values()) + "  KL/site "
              + " ".join(f"{v['kl_per_site']:.1e}" for v in lv.values()))


if __name__ == "__main__":
    main()
