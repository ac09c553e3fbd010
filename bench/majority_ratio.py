"""What the CNN chain's β/ν converges to: the magnetization ratio of majority-rule blocking.

A network trained on pairs (maj(σ), σ) at T_c learns E[σ | maj(σ)], so every super-resolution
step multiplies ⟨|m|⟩ by ⟨|m(σ)|⟩ / ⟨|m(maj σ)|⟩ of its training ensemble, and the chain's
fitted β/ν is (docs/validation.md)

    R(L) = log2( ⟨|m(maj σ_L)|⟩ / ⟨|m(σ_L)|⟩ ),   σ_L ~ 2D Ising at T_c on L × L.

The finite-size scaling value is β/ν = 1/8 = log2(⟨|m|⟩_{L/2} / ⟨|m|⟩_L) for L → ∞. This
script measures both with Swendsen–Wang Monte Carlo at T_c for L = 16 … 256, ties of the
majority rule broken by the block's first site (the paper's) and at random, errors by
jackknife over bins. If R(L) settles at a value ≠ 1/8, no training can make the chain's
β/ν exact: the bias is the blocking's amplitude ratio, not the network.

Usage::

    OMP_NUM_THREADS=1 python bench/majority_ratio.py --sizes 16 32 64 128 256 --sweeps 4000

Writes ``bench/results/majority-ratio-<stamp>.json`` and prints the table.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_info, stamp, write_results  # noqa: E402

from hpc_rg.mc.cluster import swendsen_wang_update  # noqa: E402
from hpc_rg.rg.blocking import majority_rule  # noqa: E402

TC = 2.0 / math.log(1.0 + math.sqrt(2.0))


def sample(L: int, chains: int, therm: int, sweeps: int, seed: int):
    """|m| of σ and of maj(σ) (first-site and random ties) per measurement, (n, chains) each."""
    gens = [torch.Generator().manual_seed(seed * 1000 + c) for c in range(chains)]
    tie_gen = torch.Generator().manual_seed(seed * 1000 + 999)
    s = torch.ones(chains, L, L, dtype=torch.int8)
    for _ in range(therm):
        s = swendsen_wang_update(s, 1.0 / TC, gens)
    out = {"m": [], "first": [], "random": []}
    for _ in range(sweeps):
        s = swendsen_wang_update(s, 1.0 / TC, gens)
        f = s.to(torch.float32)
        out["m"].append(f.mean((1, 2)).abs().numpy())
        out["first"].append(majority_rule(f, 2).mean((1, 2)).abs().numpy())
        out["random"].append(majority_rule(f, 2, ties="random", generator=tie_gen)
                             .mean((1, 2)).abs().numpy())
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def jackknife(fn, arrays, bins: int = 32):
    """Jackknife estimate and error of ``fn(*means)`` over ``bins`` bins of the time axis."""
    n = arrays[0].shape[0] // bins * bins
    binned = [a[:n].reshape(bins, -1, *a.shape[1:]).mean(axis=(1, 2)) for a in arrays]
    full = fn(*[b.mean() for b in binned])
    loo = np.array([fn(*[(b.sum() - b[i]) / (bins - 1) for b in binned]) for i in range(bins)])
    return float(full), float(math.sqrt((bins - 1) * ((loo - loo.mean()) ** 2).mean()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--sweeps", type=int, default=4000, help="measured SW sweeps per chain")
    p.add_argument("--therm", type=int, default=500)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows, abs_m = [], {}
    for L in args.sizes:
        t0 = time.monotonic()
        d = sample(L, args.chains, args.therm, args.sweeps, args.seed + L)
        ratio = lambda a, b: math.log2(a / b)  # noqa: E731
        r_first = jackknife(ratio, [d["first"], d["m"]])
        r_random = jackknife(ratio, [d["random"], d["m"]])
        abs_m[L] = jackknife(lambda a: a, [d["m"]])
        row = {"L": L, "abs_m": abs_m[L], "R_first": r_first, "R_random": r_random,
               "seconds": round(time.monotonic() - t0, 1)}
        if L // 2 in abs_m:  # finite-size scaling: log2(<|m|>_{L/2} / <|m|>_L)
            (a, ea), (b, eb) = abs_m[L // 2], abs_m[L]
            row["fss"] = (math.log2(a / b), math.hypot(ea / a, eb / b) / math.log(2))
        rows.append(row)
        fss = row.get("fss")
        print(f"L={L:4d}  <|m|>={row['abs_m'][0]:.5f}({row['abs_m'][1]:.5f})  "
              f"R_first={r_first[0]:.4f}({r_first[1]:.4f})  R_random={r_random[0]:.4f}"
              f"({r_random[1]:.4f})  FSS(L/2,L)="
              + (f"{fss[0]:.4f}({fss[1]:.4f})" if fss else "-") + f"  [{row['seconds']} s]",
              flush=True)
    meta = dict(machine_info(), args=vars(args), beta_over_nu=0.125,
                command="python bench/majority_ratio.py " + " ".join(sys.argv[1:]))
    flat = [{k: (v[0] if isinstance(v, tuple) else v) for k, v in r.items()}
            | {f"{k}_err": v[1] for k, v in r.items() if isinstance(v, tuple)} for r in rows]
    jpath, _ = write_results(f"majority-ratio-{stamp()}", meta, flat)
    print(f"wrote {jpath}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
