"""2D Ising: super-resolved 2L configurations vs 2L Monte Carlo at the rescaled temperature.

Efthymiou, Beach & Melko (2019), Sec. IV and Figs. 4-5: super-resolve L × L Monte Carlo to
2L, attach the effective temperature T_eff = f^{-1}(T) of the measured blocking flow
f (L blocked to L/2 vs L/2 Monte Carlo), and compare with 2L Monte Carlo at T_eff.

The blocked nearest-neighbour model is not closed under majority rule, so ⟨|m|⟩ and ⟨e⟩
define slightly different flows. This script fits the flow from each observable alone and
from both combined (the one stored in model.pt), and compares each observable at the
T_eff of its own flow and of the combined one. Errors: standard errors of the means
(binned over 16 blocks), the flow's error propagated through the slope of the 2L curve.

Usage::

    mpirun -n 2 python -m hpc_rg inputs/ising2d.yaml --set upscale.target_L=32 ...
    python bench/validate_rescaling.py RUN_DIR [--T 2.0 2.269185 2.6]

RUN_DIR needs samples.h5 with /L<L/2>, /L<L>, /L<2L> (sample.reference_sizes: [L/2, 2L])
and upscaled.h5 with /L<2L>. Prints a table, writes bench/results/rescaling-<stamp>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hpc_rg.analysis.stats import binning_error  # noqa: E402
from hpc_rg.rg.rescaling import fit_flow  # noqa: E402

NAMES = {"abs_m": "<|m|>", "e_nn": "<e>"}


def _series(group, blocked: bool, batch: int = 512) -> dict[str, np.ndarray]:
    """Per-configuration |m| and e (T, N) of a size group, optionally majority-blocked."""
    import torch

    from hpc_rg.rg.blocking import majority_rule
    from hpc_rg.rg.observables import observables
    if not blocked:
        return {"abs_m": np.abs(group["magnetization"][...]), "e_nn": group["energy"][...]}
    ds = group["configs"]
    n_T, N = ds.shape[:2]
    out = {k: np.empty((n_T, N)) for k in NAMES}
    for t in range(n_T):
        for a in range(0, N, batch):
            x = torch.from_numpy(ds[t, a:a + batch].astype(np.float32))
            obs = observables(majority_rule(x, dims=2), "spin", 2)
            for k in NAMES:
                out[k][t, a:a + batch] = obs[k].numpy()
    return out


def _mean_err(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Means and binned standard errors along the sample axis of (T, N)."""
    means = x.mean(axis=1)
    errs = np.array([binning_error(row, n_bins=16)[1] for row in x])
    return means, errs


def _at(T_grid, y, y_err, T):
    """Linear interpolation of a curve and its error at T; slope for error propagation."""
    i = int(np.clip(np.searchsorted(T_grid, T) - 1, 0, len(T_grid) - 2))
    w = (T - T_grid[i]) / (T_grid[i + 1] - T_grid[i])
    slope = (y[i + 1] - y[i]) / (T_grid[i + 1] - T_grid[i])
    val = (1 - w) * y[i] + w * y[i + 1]
    err = np.hypot((1 - w) * y_err[i], w * y_err[i + 1])
    return float(val), float(err), float(slope)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--T", type=float, nargs="*", default=[2.0, 2.269185, 2.6],
                   help="nominal temperatures to report (nearest grid points)")
    p.add_argument("--flow-L", dest="flow_L", type=int, default=0,
                   help="measure the flow from /L<flow_L> blocked vs /L<flow_L/2> (default: "
                        "the SR input size L, i.e. L blocked vs L/2, what the pipeline uses; "
                        "2L gives the flow of the step being compared, 2L -> L)")
    args = p.parse_args(argv)
    run = Path(args.run_dir)
    with h5py.File(run / "upscaled.h5") as fu:
        L2 = min(int(k[1:]) for k in fu if k.startswith("L"))
        g = fu[f"L{L2}"]
        T = g["nominal_temperatures"][...]
        sr = {"abs_m": np.abs(g["magnetization"][...]), "e_nn": g["energy"][...]}
    L = L2 // 2
    Lf = args.flow_L or L
    with h5py.File(run / "samples.h5") as fs:
        small = _series(fs[f"L{Lf // 2}"], blocked=False)
        blocked = _series(fs[f"L{Lf}"], blocked=True)
        big = _series(fs[f"L{L2}"], blocked=False)
        T_small = fs[f"L{Lf // 2}/temperatures"][...]
        T_big = fs[f"L{L2}/temperatures"][...]
    mc_s = {k: _mean_err(v) for k, v in small.items()}
    bl = {k: _mean_err(v) for k, v in blocked.items()}
    mc_b = {k: _mean_err(v) for k, v in big.items()}
    srm = {k: _mean_err(v) for k, v in sr.items()}

    flows = {}
    for label, obs in (("abs_m", ["abs_m"]), ("e_nn", ["e_nn"]), ("combined", list(NAMES))):
        flows[label] = fit_flow(T, {k: mc_s[k][0] for k in obs}, {k: bl[k][0] for k in obs},
                                mc_errors={k: mc_s[k][1] for k in obs},
                                blocked_errors={k: bl[k][1] for k in obs}, T_small=T_small)

    rows = []
    print(f"# {run}: SR {L} -> {L2} vs Monte Carlo {L2} at T_eff = f^-1(T); flows from "
          f"/L{Lf} blocked vs /L{Lf // 2}")
    print(f"{'T':>8s} {'obs':>6s} {'flow':>9s} {'T_eff':>14s} {'SR':>16s} {'MC at T_eff':>16s} "
          f"{'dev %':>7s} {'z':>6s} {'MC at T':>10s}")
    picks = sorted({int(np.argmin(np.abs(T - t))) for t in args.T})
    for k in picks:
        for name in NAMES:
            for label in (name, "combined"):
                fl = flows[label]
                t_eff, t_err = fl.inverse(T[k], out_of_range="nan", return_err=True)
                t_eff, t_err = float(t_eff), float(t_err)
                s, s_err = srm[name][0][k], srm[name][1][k]
                at_T = mc_b[name][0][int(np.argmin(np.abs(T_big - T[k])))]
                if not np.isfinite(t_eff):
                    row = dict(T=float(T[k]), observable=name, flow=label, T_eff=None, sr=s,
                               sr_err=s_err, mc_at_T=float(at_T))
                    print(f"{T[k]:8.4f} {NAMES[name]:>6s} {label:>9s} {'outside flow':>14s} "
                          f"{s:9.4f}({s_err:.4f})")
                    rows.append(row)
                    continue
                m, m_err, slope = _at(T_big, *mc_b[name], t_eff)
                sig = float(np.sqrt(s_err**2 + m_err**2 + (slope * t_err) ** 2))
                dev = 100 * (s - m) / abs(m)
                z = (s - m) / sig
                rows.append(dict(T=float(T[k]), observable=name, flow=label, T_eff=t_eff,
                                 T_eff_err=t_err, sr=float(s), sr_err=float(s_err), mc=m,
                                 mc_err=m_err, sigma=sig, dev_pct=dev, z=z, mc_at_T=float(at_T)))
                print(f"{T[k]:8.4f} {NAMES[name]:>6s} {label:>9s} {t_eff:8.4f}({t_err:.4f}) "
                      f"{s:9.4f}({s_err:.4f}) {m:9.4f}({m_err:.4f}) {dev:7.2f} {z:6.2f} {at_T:10.4f}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"rescaling-{stamp}.json"
    out.write_text(json.dumps({"run": str(run), "L": L, "flow_L": Lf, "rows": rows,
                               "flows": {k: {"T": v.T.tolist(), "f": v.f.tolist(),
                                             "f_err": v.f_err.tolist(),
                                             "valid": v.valid.tolist()}
                                         for k, v in flows.items()}}, indent=1))
    print(f"# wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
