"""What the CNN chain's β/ν converges to: the magnetization ratio of majority-rule blocking.

A network trained on pairs (maj(σ), σ) at T_c learns E[σ | maj(σ)], so every super-resolution
step multiplies ⟨|m|⟩ by ⟨|m(σ)|⟩ / ⟨|m(maj σ)|⟩ of its training ensemble, and the chain's
fitted β/ν is (docs/validation.md)

    R(L) = log2( ⟨|m(maj σ_L)|⟩ / ⟨|m(σ_L)|⟩ ),   σ_L ~ 2D Ising at T_c on L × L.

The finite-size scaling value is β/ν = 1/8 = log2(⟨|m|⟩_{L/2} / ⟨|m|⟩_L) for L → ∞. This
script measures both with Swendsen–Wang Monte Carlo at T_c, ties of the majority rule broken
by the block's first site (the paper's) and, for the first blocking, also at random; errors by
jackknife over time bins (the error of a ratio is the jackknife of the ratio). If R(L)
settles at a value ≠ 1/8, no training can make the chain's β/ν exact: the bias is the
blocking's amplitude ratio, not the network.

Repeated blocking (issue #18). From the same configurations, σ^(k) = maj^k σ_L is the
k-times-blocked lattice, of side L_k = L / 2^k (k = 0 … K, L_K ≥ 4), and

    R_k(L)   = log2( ⟨|m(σ^(k+1))|⟩ / ⟨|m(σ^(k))|⟩ ),                 R_0 = R(L),
    G_k      = ⟨s_x s_{x+r}⟩ on σ^(k) at r = L_k / 4 (both axes, all x, periodic),
    R^G_k(L) = log2( G_{k+1} / G_k ),

so G_k and G_{k+1} are taken at the same physical distance L/4 of the same lattice. If the
blocked ensembles approach a fixed point H* of the blocking, σ^(k) is H* on an L_k × L_k
lattice, and H* on L_k and on L_k / 2 differ only by the scale: ⟨|m|⟩_{H*,L'} ∝ L'^{−β/ν}
and G_{H*,L'}(L'/4) ∝ L'^{−η} with amplitudes that do not depend on L'. Hence

    R_k → β/ν = 1/8   and   R^G_k → η = 2β/ν = 1/4   as k → ∞ (then L → ∞),

both positive (the block spins are more strongly correlated than the spins they replace).
At k = 0 the ratios are amplitude ratios of the nearest-neighbour model instead (R_0 ≈ 0.1187,
docs/validation.md). For comparison the script prints the plain finite-size ratios of
unblocked Monte Carlo at sizes L/2 and L, log2(⟨|m|⟩_{L/2}/⟨|m|⟩_L) → 1/8 and
log2(G_{L/2}(L/8)/G_L(L/4)) → 1/4, which need the size L/2 in ``--sizes``.

Usage::

    OMP_NUM_THREADS=1 python bench/majority_ratio.py --sizes 32 64 128 256 512 \\
        --sweeps 2000 2000 2000 1000 400 --levels 5

``--sweeps`` takes one value for all sizes or one per size. Writes
``bench/results/majority-ratio-<stamp>.json`` (rewritten after every size, so a stopped run
keeps the sizes it finished) and prints the table.
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

from common import machine_info, stamp, table, write_results  # noqa: E402

from hpc_rg.mc.cluster import swendsen_wang_update  # noqa: E402
from hpc_rg.rg.blocking import majority_rule  # noqa: E402

TC = 2.0 / math.log(1.0 + math.sqrt(2.0))
MIN_SIDE = 4  # the smallest blocked lattice measured: r = L_k / 4 ≥ 1


def n_blockings(L: int, levels: int) -> int:
    """How many 2×2 blockings of an L × L lattice to take: at most ``levels``, while the
    blocked side stays an integer ≥ MIN_SIDE (so r = L_k/4 is an integer ≥ 1)."""
    k = 0
    while k < levels and L % 2 == 0 and L // 2 >= MIN_SIDE:
        L //= 2
        k += 1
    return k


def block_levels(spins: torch.Tensor, blockings: int) -> list[torch.Tensor]:
    """[σ, maj σ, …, maj^blockings σ] with first-site ties; ``spins`` shape (B, L, L), ±1.

    Element k has shape (B, L/2^k, L/2^k) and the dtype of ``spins``.
    """
    out = [spins]
    for _ in range(blockings):
        out.append(majority_rule(out[-1], 2))
    return out


def two_point(spins: torch.Tensor, r: int) -> torch.Tensor:
    """⟨s_x s_{x+r}⟩ per configuration, averaged over all x and both axes (periodic).

    ``spins`` shape (B, L, L) floating ±1; returns shape (B,).
    """
    along_x = (spins * torch.roll(spins, r, dims=-1)).mean((-2, -1))
    along_y = (spins * torch.roll(spins, r, dims=-2)).mean((-2, -1))
    return 0.5 * (along_x + along_y)


def measure(spins: torch.Tensor, blockings: int) -> tuple[np.ndarray, np.ndarray]:
    """|m| and G(L_k/4) of every blocking level k = 0 … blockings; each (B, blockings + 1)."""
    levels = block_levels(spins.to(torch.float32), blockings)
    m = torch.stack([s.mean((-2, -1)).abs() for s in levels], dim=-1)
    g = torch.stack([two_point(s, s.shape[-1] // 4) for s in levels], dim=-1)
    return m.numpy(), g.numpy()


def sample(L: int, chains: int, therm: int, sweeps: int, seed: int, blockings: int):
    """Measurements per SW sweep: ``m`` and ``G`` of shape (n, chains, blockings + 1)
    (level k on the last axis; level 0 = σ), ``random``: |m(maj σ)| with random ties, (n,
    chains)."""
    gens = [torch.Generator().manual_seed(seed * 1000 + c) for c in range(chains)]
    tie_gen = torch.Generator().manual_seed(seed * 1000 + 999)
    s = torch.ones(chains, L, L, dtype=torch.int8)
    for _ in range(therm):
        s = swendsen_wang_update(s, 1.0 / TC, gens)
    out = {"m": [], "G": [], "random": []}
    for _ in range(sweeps):
        s = swendsen_wang_update(s, 1.0 / TC, gens)
        f = s.to(torch.float32)
        m, g = measure(f, blockings)
        out["m"].append(m)
        out["G"].append(g)
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


def log2_ratio_err(num, den):
    """log2(a/b) of two independent estimates (value, error), errors in quadrature."""
    (a, ea), (b, eb) = num, den
    return math.log2(a / b), math.hypot(ea / a, eb / b) / math.log(2)


def fmt(v) -> str:
    return f"{v[0]:.5f}({v[1]:.5f})" if isinstance(v, tuple) else "-"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    p.add_argument("--chains", type=int, default=8)
    p.add_argument("--sweeps", type=int, nargs="+", default=[4000],
                   help="measured SW sweeps per chain: one value, or one per size")
    p.add_argument("--therm", type=int, default=500)
    p.add_argument("--levels", type=int, default=5,
                   help="at most this many blockings (fewer where L/2^k would drop below 4)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if len(args.sweeps) not in (1, len(args.sizes)):
        p.error(f"--sweeps: give one value or one per size ({len(args.sizes)}), "
                f"got {len(args.sweeps)}")
    sweeps = args.sweeps * len(args.sizes) if len(args.sweeps) == 1 else args.sweeps
    torch.set_num_threads(1)
    ratio = lambda a, b: math.log2(a / b)  # noqa: E731
    meta = dict(machine_info(), args=vars(args), beta_over_nu=0.125, eta=0.25,
                command="python bench/majority_ratio.py " + " ".join(sys.argv[1:]))
    stem = f"majority-ratio-{stamp()}"
    rows, abs_m, g0 = [], {}, {}
    for L, n in zip(args.sizes, sweeps):
        t0 = time.monotonic()
        K = n_blockings(L, args.levels)
        d = sample(L, args.chains, args.therm, n, args.seed + L, K)
        m, g = d["m"], d["G"]
        abs_m[L] = jackknife(lambda a: a, [m[..., 0]])
        g0[L] = jackknife(lambda a: a, [g[..., 0]])
        row = {"L": L, "abs_m": abs_m[L], "R_first": jackknife(ratio, [m[..., 1], m[..., 0]]),
               "R_random": jackknife(ratio, [d["random"], m[..., 0]]), "blockings": K,
               "sweeps": n, "chains": args.chains}
        for k in range(K + 1):
            row[f"abs_m_k{k}"] = jackknife(lambda a: a, [m[..., k]])
            row[f"G_k{k}"] = jackknife(lambda a: a, [g[..., k]])
        for k in range(K):
            row[f"R_k{k}"] = jackknife(ratio, [m[..., k + 1], m[..., k]])
            row[f"RG_k{k}"] = jackknife(ratio, [g[..., k + 1], g[..., k]])
        if L // 2 in abs_m:  # finite-size scaling of unblocked Monte Carlo at L/2 and L
            row["fss"] = log2_ratio_err(abs_m[L // 2], abs_m[L])
            row["fss_G"] = log2_ratio_err(g0[L // 2], g0[L])
        row["seconds"] = round(time.monotonic() - t0, 1)
        rows.append(row)
        print(f"L={L:4d}  <|m|>={fmt(row['abs_m'])}  R_random={fmt(row['R_random'])}  "
              f"FSS m={fmt(row.get('fss'))}  FSS G={fmt(row.get('fss_G'))}  "
              f"[{n} sweeps x {args.chains} chains, {row['seconds']} s]", flush=True)
        print("    R_k : " + "  ".join(f"k={k} {fmt(row[f'R_k{k}'])}" for k in range(K)))
        print("    RG_k: " + "  ".join(f"k={k} {fmt(row[f'RG_k{k}'])}" for k in range(K)),
              flush=True)
        flat = [{k: (v[0] if isinstance(v, tuple) else v) for k, v in r.items()}
                | {f"{k}_err": v[1] for k, v in r.items() if isinstance(v, tuple)}
                for r in rows]
        jpath, _ = write_results(stem, meta, flat)
    K = max(r["blockings"] for r in rows)
    cols = [("L", "L", "")] + [(f"R_k{k}", f"R_{k}", "{:.5f}") for k in range(K)]
    print("\nR_k = log2(<|m|>_{k+1}/<|m|>_k)  (-> beta/nu = 0.125)")
    print(table(flat, cols + [("fss", "FSS m", "{:.4f}")]))
    cols = [("L", "L", "")] + [(f"RG_k{k}", f"RG_{k}", "{:.5f}") for k in range(K)]
    print("\nRG_k = log2(G_{k+1}(L_{k+1}/4)/G_k(L_k/4))  (-> eta = 0.25)")
    print(table(flat, cols + [("fss_G", "FSS G", "{:.4f}")]))
    print(f"wrote {jpath}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
