"""Collect the runs of bench/flow_ess_pipeline.sh: per run κ, the training keys, the
train/upscale CPU time and per upscaled level ESS/N, reverse KL (and per site), acceptance,
N_eff; with MC_DIR (bench/flow_ess.py's cached Monte Carlo fields, runs/flow_ess_mc) also
the z-scores of the level's MH-corrected ⟨|φ̄|⟩ and ⟨φ²⟩ (the certificate's observables,
errors as the certificate's: per MH chain, autocorrelation-corrected) against Monte Carlo of
the same size and κ (jackknife over its chains). One JSON, one table.

Usage: python bench/flow_ess_pipeline.py RUNS_DIR OUT.json [MC_DIR]
"""

import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hpc_rg.analysis.stats import jackknife  # noqa: E402
from hpc_rg.methods.certify import chain_mean_error  # noqa: E402

#: MC_DIR file name: L, κ, λ, fields, chains, thermalisation sweeps, seed
_MC = re.compile(r"^L(\d+)-k([0-9.]+)-l([0-9.]+)-n(\d+)-c(\d+)-t(\d+)-s(\d+)\.pt$")


def _cpu(path: Path) -> dict:
    f = path.read_text().split()
    return {"cpu_s": round(float(f[2]) + float(f[4]), 1), "wall_s": float(f[6])}


def mc_reference(mc_dir: Path, L: int, kappa: float, lam: float):
    """{name: (mean, err)} of ⟨|φ̄|⟩ and ⟨φ²⟩ from the largest cached Monte Carlo ensemble
    of (L, κ, λ) (rows sweep-major, chains fastest; jackknife over chains), or None."""
    best = None
    for p in mc_dir.glob(f"L{L}-*.pt"):
        m = _MC.match(p.name)
        if m and abs(float(m[2]) - kappa) < 1e-9 and abs(float(m[3]) - lam) < 1e-9:
            n, c, t = int(m[4]), int(m[5]), int(m[6])
            if best is None or (n, t) > best[1:3]:
                best = (p, n, t, c)
    if best is None:
        return None
    p, n, t, c = best
    x = torch.load(p).to(torch.float64)
    series = {"abs_phi": x.mean((1, 2)).abs(), "phi2": (x * x).mean((1, 2))}
    out = {"file": p.name}
    for name, s in series.items():
        per_chain = s[: len(s) // c * c].reshape(-1, c).mean(0).numpy()  # (chains,)
        mean, err = jackknife(lambda m: m, per_chain, n_bins=c)
        out[name] = (float(mean), float(err))
    return out


def collect(root: Path, mc_dir: Path | None = None) -> dict:
    out = {}
    for d in sorted(p for p in root.iterdir() if (p / "upscaled.h5").is_file()):
        meta = torch.load(d / "model.pt", weights_only=True)["meta"]
        fl, target = meta["flow"], meta["targets"][0]
        row = {"kappa": target["kappa"], "lam": target["lam"],
               "linear_kernel": fl["linear_kernel"], "reuse_first_level": fl["reuse_first_level"],
               "lr_schedule": fl.get("lr_schedule", "constant"),
               "steps": fl["steps"], "retrain_steps": fl["retrain_steps"], "batch": fl["batch"],
               "trained_levels": meta["trained_levels"],
               "train": _cpu(d / "time_train.txt"), "upscale": _cpu(d / "time_upscale.txt"),
               "levels": {}}
        with h5py.File(d / "upscaled.h5", "r") as f:
            for g in sorted(f, key=lambda n: int(n[1:])):
                a, L = f[g].attrs, int(g[1:])
                n = f[g]["configs"].shape[1]
                lv = {"n": n, "ess_per_n": float(a["ess_per_n"][0]),
                      "reverse_kl": float(a["reverse_kl"][0]),
                      "kl_per_site": float(a["reverse_kl"][0]) / L ** 2,
                      "acceptance": float(a["acceptance"][0]),
                      "n_effective": float(a["n_effective"][0])}
                ref = mc_reference(mc_dir, L, row["kappa"], row["lam"]) if mc_dir else None
                if ref is not None:
                    chains = int(a["mh_chains"])
                    lv["mc_file"] = ref["file"]
                    for name, x in (("abs_phi", np.abs(f[g]["phi_mean"][0])),
                                    ("phi2", f[g]["phi2_mean"][0])):
                        m, e = chain_mean_error(x, chains)
                        mm, me = ref[name]
                        lv[name] = {"flow": [m, e], "mc": [mm, me],
                                    "z": (m - mm) / float(np.hypot(e, me))}
                row["levels"][L] = lv
        out[d.name] = row
    return out


def main():
    root, dest = Path(sys.argv[1]), Path(sys.argv[2])
    mc_dir = Path(sys.argv[3]) if len(sys.argv) > 3 else None
    res = collect(root, mc_dir)
    dest.write_text(json.dumps(res, indent=1) + "\n")
    for name, r in res.items():
        lv = r["levels"]
        print(f"{name:18s} k={r['kappa']:.2f} lin={r['linear_kernel']} "
              f"reuse={r['reuse_first_level']!s:5s} {r['lr_schedule']:8s} "
              f"train {r['train']['cpu_s'] / 60:5.2f} CPU-min  ESS/N "
              + " ".join(f"{v['ess_per_n']:.3f}" for v in lv.values()) + "  acc "
              + " ".join(f"{v['acceptance']:.2f}" for v in lv.values()) + "  z(|phi|,phi2) "
              + " ".join(f"{v['abs_phi']['z']:+.1f},{v['phi2']['z']:+.1f}" if "abs_phi" in v
                         else "-" for v in lv.values()))


if __name__ == "__main__":
    main()
