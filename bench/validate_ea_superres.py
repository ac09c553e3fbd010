"""Edwards-Anderson overlap CNN: the network alone, on its own size (issue #16, diagnosis).

The test-set check of Efthymiou et al. (appendix B) for the overlap CNN: take the size-L
Monte Carlo overlap fields rho = s^a s^b of a run (pairs (0,1), (2,3), ... as the train and
upscale stages use), block them to L/2 with the run's blocking, super-resolve them back to L
with the network of the SAME temperature (no temperature rescaling, no L/2 Monte Carlo
input), and compare g, chi_SG, xi_2, [<|q|>] and [<q_l>] of the output with those of the
very configurations that were blocked. Per disorder sample first, jackknife over disorder
samples of the paired difference SR - MC (the same samples on both sides), so the z-score
measures the network's bias alone: where this agrees and ``tools/sr_vs_mc`` does not, the
temperature rescaling or the L/2 input ensemble is to blame, not the network.

Only the configurations the training did not see are used by default (the last
``train.validation_fraction`` of each disorder sample's series, ``--all`` for every one).

Usage::

    python bench/validate_ea_superres.py runs/ea3d_vs_mc [--L 16] [--all] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

from hpc_rg.analysis.correlation import fourier_moments
from hpc_rg.analysis.stats import jackknife
from hpc_rg.analysis.tables import run_config
from hpc_rg.io import schema
from hpc_rg.io.equilibrated import usable_disorder_samples
from hpc_rg.io.ensemble import coarse_blocking
from hpc_rg.rg.blocking import block
from hpc_rg.superres import load

NAMES = ("g", "chi_SG", "xi", "abs_q", "q_l")


def per_sample_moments(rho: np.ndarray, dims: int) -> np.ndarray:
    """(q2, q4, |q|, q_l, s0, s_kmin) thermal averages of overlap fields (n, *lattice)."""
    axes = tuple(range(1, dims + 1))
    q = rho.mean(axis=axes)
    ql = np.mean([(rho * np.roll(rho, -1, axis=a)).mean(axis=axes) for a in axes], axis=0)
    fm = fourier_moments(rho, dims, [1])
    return np.array([np.mean(q * q), np.mean(q ** 4), np.mean(np.abs(q)), np.mean(ql),
                     np.mean(fm["s0"]), np.mean(fm["s_kmin"])])


def observables(m: np.ndarray, L: int, dims: int) -> np.ndarray:
    """g, chi_SG, xi, |q|, q_l from disorder-averaged moments (the rows of per_sample_moments)."""
    q2, q4, aq, ql, s0, sk = m
    with np.errstate(invalid="ignore", divide="ignore"):
        xi = math.sqrt(s0 / sk - 1.0) / (2.0 * math.sin(math.pi / L)) if s0 > sk else float("nan")
    return np.array([0.5 * (3.0 - q4 / (q2 * q2)), L ** dims * q2, xi, aq, ql])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run.output of an EA run with samples.h5 and model.pt")
    p.add_argument("--L", type=int, help="Monte Carlo size (default: the network's train_L)")
    p.add_argument("--all", action="store_true", help="every configuration, not only held-out")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", metavar="OUT")
    a = p.parse_args(argv)
    run = Path(a.run)
    model = load(run / schema.MODEL_FILE, "cpu")
    L = a.L or int(model.meta.get("train_L"))
    with h5py.File(run / schema.SAMPLES_FILE, "r") as f:
        cfg = run_config(f)
        g = f[schema.size_group(L)]
        dims = int(g.attrs[schema.GROUP_ATTR_DIMS])
        temps = np.asarray(g[schema.TEMPERATURES][()])
        ids = usable_disorder_samples(g, True, warn=False).ids
        ids = np.arange(g[schema.CONFIGS].shape[0]) if ids is None else ids
        D, T, S, R = g[schema.CONFIGS].shape[:4]
        frac = float((cfg.get("train") or {}).get("validation_fraction", 0.1))
        s0 = 0 if a.all else S - max(1, int(math.ceil(frac * S)))
        how = coarse_blocking(model.blocking)
        rows = []
        for k, T_k in enumerate(temps):
            mc_m, sr_m = [], []
            for n, d in enumerate(ids):
                x = np.asarray(g[schema.CONFIGS][int(d), k, s0:, :2 * (R // 2)], dtype=np.float32)
                rho = (x[:, 0::2] * x[:, 1::2]).reshape((-1,) + x.shape[2:])  # (S' P, *L)
                coarse = block(torch.from_numpy(rho), how, dims)
                ids_t = torch.arange(len(rho)) + (k * len(ids) + n) * len(rho)
                y = model.step(coarse, k, 1, a.seed, ids_t).numpy()
                mc_m.append(per_sample_moments(rho.astype(np.float64), dims))
                sr_m.append(per_sample_moments(y.astype(np.float64), dims))
            mc_m, sr_m = np.array(mc_m), np.array(sr_m)  # (D, 6)
            both = np.concatenate([mc_m, sr_m], axis=1)

            def diff(m):
                return observables(m[6:], L, dims) - observables(m[:6], L, dims)
            nb = len(both)
            d_val, d_err = jackknife(diff, both, n_bins=nb)
            mc_val, mc_err = jackknife(lambda m: observables(m, L, dims), mc_m, n_bins=nb)
            sr_val, sr_err = jackknife(lambda m: observables(m, L, dims), sr_m, n_bins=nb)
            rows.append({"T": float(T_k), "mc": mc_val.tolist(), "mc_err": mc_err.tolist(),
                         "sr": sr_val.tolist(), "sr_err": sr_err.tolist(),
                         "diff": d_val.tolist(), "diff_err": d_err.tolist(),
                         "z_paired": (d_val / d_err).tolist()})
    print(f"# {run}: L={L} Monte Carlo blocked to {L // 2} and super-resolved back with the "
          f"network of the same T (no rescaling); {len(ids)} disorder samples, "
          f"{'all' if a.all else 'held-out'} configurations (series {s0}..{S - 1}), "
          f"pairs of replicas {[(i, i + 1) for i in range(0, 2 * (R // 2), 2)]}")
    print(f"{'T':>7s} " + " ".join(f"{n + ' MC':>12s} {n + ' SR':>12s} {'z':>6s}" for n in NAMES))
    for r in rows:
        cells = []
        for i, _ in enumerate(NAMES):
            cells.append(f"{r['mc'][i]:12.4g} {r['sr'][i]:12.4g} {r['z_paired'][i]:6.1f}")
        print(f"{r['T']:7.4f} " + " ".join(cells))
    print("z: paired (SR - MC on the same configurations), jackknife over disorder samples")
    if a.json:
        Path(a.json).write_text(json.dumps({"L": L, "names": NAMES, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
