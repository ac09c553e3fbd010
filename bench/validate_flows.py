"""Flow super-resolution of the 2D Ising model (relaxation) vs the CNN on the same chain.

Issue #5: "Ising 2D via the relaxation, 8 → 16 → 32: the corrected energy agrees with
Kaufman's exact finite-lattice value within 4σ at T = T_c and 3.0", and "compare with the
CNN method on the same Ising chain: observables' bias with and without the accept/reject
step, in one table".

One Monte Carlo ensemble of 8 × 8 (Wolff; references at 16 and 32 for ⟨|m|⟩) at
T ∈ {2.269185, 3.0}, then through the pipeline (``mpirun -n NP python -m hpc_rg``):

* ``flow_rg`` levels 8 → 16 → 32 trained by reverse KL, upscaled three times from the same
  model: uncorrected (``upscale.mh: false``), independence MH (Bauer eq. 10), latent HMC
  (``upscale.hmc``);
* the CNN of issue #4 trained on the same 8 × 8 ensemble (4 → 8, majority rule), applied
  8 → 16 → 32, at its effective temperature T_eff = f⁻¹(T) of the measured blocking flow.

Per level: ⟨e⟩ against Kaufman's exact energy at the level's temperature (nominal for the
flows, T_eff for the CNN), ⟨|m|⟩ against the 16² / 32² Monte Carlo at the nominal T (for the
CNN only meaningful where T_eff ≈ T, i.e. at T_c). Errors: standard error from 16 blocks of
rows (MH rows are a Markov chain; HMC and CNN rows are independent chains). Prints the
table, writes ``bench/results/flows-<stamp>.json``.

With ``--model phi4`` (Bauer et al.'s setting): φ⁴ in the Bauer parametrization, λ = 0.01,
κ ∈ {0.20 (symmetric), 0.25 (near the transition), 0.30 (broken)}, coarse 4 × 4 Monte Carlo
(HMC), flow_rg levels 4 → 8 → … → 64; per level the ESS/N of the flow's proposals, the
acceptance, and ⟨|φ|⟩ and χ = V(⟨φ̄²⟩ − ⟨|φ̄|⟩²) against HMC Monte Carlo at 16 and 32
(uncorrected and independence MH to 64, latent HMC to 32 on half the rows).
``--ir`` trains with IR matching (``train.flow.ir_matching``: learnable coarse κ_L, Bauer
sec. VI), ``--uv`` with UV matching (learnable fine κ per level, app. A; each level then
samples its learned κ, so the Monte Carlo comparison at the grid's κ is left out and the
table shows the learned couplings); ``--skip-hmc`` leaves out the latent-HMC variant (the ESS/N comparison needs only
the flow's proposals). The 4 × 4 ensemble and references of an earlier run are reused when
``--samples-from DIR/samples.h5`` is given.

Usage::

    python bench/validate_flows.py [--np 2] [--out runs/validate_flows] [--quick]
    python bench/validate_flows.py --model phi4 [--out runs/validate_flows_phi4]
    python bench/validate_flows.py --model phi4 --ir --skip-hmc --out runs/validate_flows_phi4_ir \
        --samples-from runs/validate_flows_phi4/flow/samples.h5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hpc_rg.analysis.exact import ising2d_energy  # noqa: E402
from hpc_rg.analysis.stats import binning_error  # noqa: E402

TEMPS = (2.269185, 3.0)

FLOW_DECK = """
run: {{name: flows, output: {out}, seed: {seed}, progress_seconds: 60}}
model: {{name: ising, dims: 2}}
sample: {{L: 8, temperatures: [2.269185, 3.0], algorithm: wolff, chains: 4, thermalize: 500,
         samples: {per_chain}, thin: 2, chunk: 128, reference_sizes: [16, 32]}}
train: {{method: flow_rg, checkpoint_every: 500, flow: {{layers: 6, width: 16, depth: 2,
        steps: {steps}, batch: 32, learning_rate: 0.003}}}}
upscale: {{target_L: 32, batch: 32, samples: {rows}}}
"""

PHI4_DECK = """
run: {{name: flows_phi4, output: {out}, seed: {seed}, progress_seconds: 60}}
model: {{name: phi4, dims: 2, parametrization: bauer, lam: 0.01}}
sample: {{L: 4, couplings: [0.2, 0.25, 0.3], algorithm: hmc, chains: 4, thermalize: 500,
         samples: {per_chain}, thin: 4, chunk: 128, reference_sizes: [16, 32]}}
train: {{method: flow_rg, checkpoint_every: 500, flow: {{layers: 6, width: 16, depth: 2,
        steps: {steps}, batch: 32, learning_rate: 0.003, sigma: 0.5, ir_matching: {ir},
        uv_matching: {uv}}}}}
upscale: {{target_L: 64, batch: 32, samples: {rows}}}
"""
COUPLINGS = (0.2, 0.25, 0.3)

CNN_DECK = """
run: {{name: cnn, output: {out}, seed: {seed}, progress_seconds: 60}}
model: {{name: ising, dims: 2}}
sample: {{L: 8, temperatures: {grid}, algorithm: wolff, chains: 4, thermalize: 500,
         samples: {per_chain}, thin: 2, chunk: 128, reference_sizes: [4]}}
train: {{epochs: 40, batch_size: 32, patience: 8, energy_weight: 2.0,
        network: {{depth: 4, width: 16}}}}
upscale: {{target_L: 32, batch: 32, samples: {rows}}}
"""
# the CNN's temperature flow needs a grid around the temperatures of interest
CNN_GRID = [1.9, 2.1, 2.2, 2.269185, 2.35, 2.45, 2.6, 2.8, 3.0, 3.2, 3.5]


def _env() -> dict:
    return dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
                OMPI_MCA_btl="self,vader", GLOO_SOCKET_IFNAME="lo", DS_ACCELERATOR="cpu",
                PYTHONUNBUFFERED="1")


def _hpc_rg(np_: int, deck: Path, *extra: str) -> float:
    cmd = ["mpirun", "-n", str(np_), sys.executable, "-m", "hpc_rg", str(deck), *extra]
    print("+", " ".join(cmd[5:]), flush=True)
    t0 = time.time()
    subprocess.run(cmd, cwd=REPO, env=_env(), check=True)
    return time.time() - t0


def _upscale_variant(np_, deck, base: Path, name: str, sets: list[str]) -> tuple[Path, float]:
    dest = base.parent / f"{base.name}-{name}"
    if not (dest / "upscaled.h5").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for f in ("samples.h5", "model.pt"):
            shutil.copy(base / f, dest / f)
        args = ["--stage", "upscale", "--set", f"run.output={dest}"]
        for s in sets:
            args += ["--set", s]
        return dest / "upscaled.h5", _hpc_rg(np_, deck, *args)
    return dest / "upscaled.h5", float("nan")


def _mean_err(x: np.ndarray) -> tuple[float, float]:
    m, e = binning_error(np.asarray(x, dtype=np.float64), n_bins=16)
    return float(m), float(e)


def level_rows(path: Path, method: str, mc: Path) -> list[dict]:
    """One row per (level, temperature of TEMPS) of an upscaled.h5."""
    rows = []
    with h5py.File(path, "r") as f, h5py.File(mc, "r") as ref:
        for g in sorted(f, key=lambda k: int(k[1:])):
            grp = f[g]
            L = int(grp.attrs["L"])
            nominal = grp["nominal_temperatures"][()]
            teff = grp["temperatures"][()]
            for T in TEMPS:
                t = int(np.argmin(np.abs(nominal - T)))
                if abs(nominal[t] - T) > 1e-6:
                    continue
                e, e_err = _mean_err(grp["energy"][t])
                m, m_err = _mean_err(np.abs(grp["magnetization"][t]))
                T_lvl = float(teff[t]) if np.isfinite(teff[t]) else float("nan")
                exact = ising2d_energy(L, T_lvl) if np.isfinite(T_lvl) else float("nan")
                row = {"method": method, "L": L, "T": T, "T_level": T_lvl, "e": e,
                       "e_err": e_err, "e_exact": exact, "z_e": (e - exact) / e_err,
                       "abs_m": m, "abs_m_err": m_err,
                       "correction": str(grp.attrs.get("correction", "none")),
                       "acceptance": float(grp.attrs["acceptance"][t]) if "acceptance" in grp.attrs else None,
                       "ess_per_n": float(grp.attrs["ess_per_n"][t]) if "ess_per_n" in grp.attrs else None}
                rg = ref.get(f"L{L}")
                if rg is not None:
                    tr = int(np.argmin(np.abs(rg["temperatures"][()] - T)))
                    mm, me = _mean_err(np.abs(rg["magnetization"][tr]))
                    row.update(abs_m_mc=mm, abs_m_mc_err=me,
                               z_m=(m - mm) / float(np.hypot(m_err, me)))
                rows.append(row)
    return rows


def _chi(m: np.ndarray, V: int, n_bins: int = 16) -> tuple[float, float]:
    """χ = V(⟨φ̄²⟩ − ⟨|φ̄|⟩²) with a jackknife error over ``n_bins`` blocks of rows."""
    from hpc_rg.analysis.stats import jackknife
    a = np.abs(np.asarray(m, dtype=np.float64))
    est, err = jackknife(lambda m1, m2: V * (m2 - m1 ** 2), a, a ** 2, n_bins=n_bins)
    return float(est), float(err)


def phi4_rows(path: Path, method: str, mc: Path) -> list[dict]:
    rows = []
    with h5py.File(path, "r") as f, h5py.File(mc, "r") as ref:
        for g in sorted(f, key=lambda k: int(k[1:])):
            grp = f[g]
            L = int(grp.attrs["L"])
            grid = grp["nominal_temperatures"][()]
            effective = grp["couplings"][()]
            for t, kappa in enumerate(grid):
                m = grp["phi_mean"][t]
                a, a_err = _mean_err(np.abs(m))
                chi, chi_err = _chi(m, L * L)
                row = {"method": method, "L": L, "kappa": float(kappa), "abs_phi": a,
                       "abs_phi_err": a_err, "chi": chi, "chi_err": chi_err,
                       "acceptance": float(grp.attrs["acceptance"][t]),
                       "ess_per_n": float(grp.attrs["ess_per_n"][t]),
                       "reverse_kl": float(grp.attrs["reverse_kl"][t]),
                       "kappa_eff": float(effective[t])}
                if "ir_coarse_kappa" in grp.attrs:
                    row["kappa_coarse"] = float(grp.attrs["ir_coarse_kappa"][t])
                rg = ref.get(f"L{L}")
                if rg is not None and abs(effective[t] - kappa) < 1e-12:
                    mr = rg["phi_mean"][t]
                    ra, ra_err = _mean_err(np.abs(mr))
                    rc, rc_err = _chi(mr, L * L)
                    row.update(abs_phi_mc=ra, abs_phi_mc_err=ra_err, chi_mc=rc, chi_mc_err=rc_err,
                               z_abs_phi=(a - ra) / float(np.hypot(a_err, ra_err)),
                               z_chi=(chi - rc) / float(np.hypot(chi_err, rc_err)))
                rows.append(row)
    return rows


def main_phi4(a) -> int:
    per_chain = max(a.rows // 4, 256)
    a.out.mkdir(parents=True, exist_ok=True)
    times, out = {}, a.out / "flow"
    deck = a.out / "flow.yaml"
    deck.write_text(PHI4_DECK.format(out=out, seed=a.seed, per_chain=per_chain, steps=a.steps,
                                     rows=a.rows, ir=str(a.ir).lower(), uv=str(a.uv).lower()))
    if not (out / "model.pt").exists():
        if a.samples_from and not (out / "samples.h5").exists():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copy(a.samples_from, out / "samples.h5")
        resume = ["--resume"] if out.exists() else []
        times["sample+train"] = _hpc_rg(a.np, deck, "--stage", "sample", *resume)
        times["sample+train"] += _hpc_rg(a.np, deck, "--stage", "train", "--resume")
    rows = []
    for label, name, sets in _variants(a):
        if name == "hmc" and a.skip_hmc:
            continue
        if name == "hmc":  # latent HMC costs ~600 flow gradients per row and level: to 32 only
            sets = sets + ["upscale.target_L=32", f"upscale.samples={max(a.rows // 2, 64)}"]
        path, dt = _upscale_variant(a.np, deck, out, name, sets)
        times[f"upscale: {label}"] = dt
        rows += phi4_rows(path, label, out / "samples.h5")
    print(f"\n{'method':<24} {'L':>3} {'kappa':>5} {'learned':>8} {'ESS/N':>7} {'acc':>6} {'<|phi|>':>15} "
          f"{'MC':>15} {'z':>6} {'chi':>15} {'MC':>15} {'z':>6}")
    for r in sorted(rows, key=lambda r: (r["kappa"], r["L"], r["method"])):
        mc = (f"{r['abs_phi_mc']:.4f}({r['abs_phi_mc_err']:.4f})", f"{r['z_abs_phi']:+.1f}",
              f"{r['chi_mc']:.3f}({r['chi_mc_err']:.3f})", f"{r['z_chi']:+.1f}") \
            if "chi_mc" in r else ("-", "-", "-", "-")
        learned = r.get("kappa_coarse", r["kappa_eff"])
        print(f"{r['method']:<24} {r['L']:>3} {r['kappa']:>5.2f} {learned:>8.5f} {r['ess_per_n']:>7.4f} "
              f"{r['acceptance']:>6.3f} {r['abs_phi']:.4f}({r['abs_phi_err']:.4f}) {mc[0]:>15} "
              f"{mc[1]:>6} {r['chi']:.3f}({r['chi_err']:.3f}) {mc[2]:>15} {mc[3]:>6}")
    stem = "flows-phi4-ir" if a.ir else "flows-phi4-uv" if a.uv else "flows-phi4"
    return _finish(a, stem, rows, times)


def _variants(a):
    return [("flow, uncorrected", "none", ["upscale.mh=false"]),
            ("flow + independence MH", "mh", ["upscale.mh=true", "upscale.hmc.trajectories=0"]),
            ("flow + latent HMC", "hmc", [f"upscale.hmc.trajectories={a.trajectories}",
                                          f"upscale.hmc.leapfrog_steps={a.leapfrog_steps}",
                                          f"upscale.hmc.step_size={a.step_size}"])]


def _finish(a, stem, rows, times) -> int:
    for k, v in times.items():
        print(f"time {k}: {v:.0f} s")
    if a.quick:
        print("(--quick: smoke run, no result file written)")
        return 0
    res = REPO / "bench" / "results" / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    res.write_text(json.dumps({"args": {k: str(v) for k, v in vars(a).items()},
                               "rows": rows, "times_s": times}, indent=1))
    print(f"wrote {res}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--np", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "validate_flows")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--steps", type=int, default=800, help="reverse-KL steps per flow level")
    p.add_argument("--rows", type=int, default=1024, help="upscaled configurations per T")
    p.add_argument("--trajectories", type=int, default=60)
    p.add_argument("--leapfrog-steps", type=int, default=10)
    p.add_argument("--step-size", type=float, default=0.3)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not a result")
    p.add_argument("--skip-cnn", action="store_true")
    p.add_argument("--model", choices=("ising", "phi4"), default="ising")
    p.add_argument("--ir", action="store_true", help="phi4: train with IR matching")
    p.add_argument("--uv", action="store_true", help="phi4: train with UV matching")
    p.add_argument("--skip-hmc", action="store_true", help="phi4: no latent-HMC variant")
    p.add_argument("--samples-from", type=Path, help="phi4: reuse this samples.h5")
    a = p.parse_args(argv)
    if a.quick:
        a.steps, a.rows, a.trajectories = 50, 64, 5
    if a.ir and a.uv:
        p.error("--ir and --uv: choose one")
    if a.model == "phi4":
        return main_phi4(a)
    per_chain = max(a.rows // 4, 256)
    a.out.mkdir(parents=True, exist_ok=True)
    times = {}
    flow_out = a.out / "flow"
    deck = a.out / "flow.yaml"
    deck.write_text(FLOW_DECK.format(out=flow_out, seed=a.seed, per_chain=per_chain,
                                     steps=a.steps, rows=a.rows))
    if not (flow_out / "model.pt").exists():
        resume = ["--resume"] if flow_out.exists() else []
        times["flow sample+train"] = _hpc_rg(a.np, deck, "--stage", "sample", *resume)
        times["flow sample+train"] += _hpc_rg(a.np, deck, "--stage", "train", "--resume")
    rows = []
    for label, name, sets in _variants(a):
        path, dt = _upscale_variant(a.np, deck, flow_out, name, sets)
        times[f"upscale: {label}"] = dt
        rows += level_rows(path, label, flow_out / "samples.h5")
    if not a.skip_cnn:
        cnn_out = a.out / "cnn"
        cdeck = a.out / "cnn.yaml"
        cdeck.write_text(CNN_DECK.format(out=cnn_out, seed=a.seed, per_chain=per_chain,
                                         rows=a.rows, grid=CNN_GRID))
        if not (cnn_out / "upscaled.h5").exists():
            times["cnn pipeline"] = _hpc_rg(a.np, cdeck, *(["--resume"] if cnn_out.exists() else []))
        rows += level_rows(cnn_out / "upscaled.h5", "CNN (issue #4), at T_eff",
                           flow_out / "samples.h5")
    print(f"\n{'method':<26} {'L':>3} {'T':>7} {'T_level':>8} {'<e>':>15} {'exact':>8} "
          f"{'z':>6} {'<|m|>':>14} {'MC':>14} {'z':>6} {'acc':>6} {'ESS/N':>7}")
    for r in sorted(rows, key=lambda r: (r["T"], r["L"], r["method"])):
        mc = f"{r['abs_m_mc']:.4f}({r['abs_m_mc_err']:.4f})" if "abs_m_mc" in r else "-"
        zm = f"{r['z_m']:+.1f}" if "z_m" in r else "-"
        acc = f"{r['acceptance']:.3f}" if r["acceptance"] is not None else "-"
        ess = f"{r['ess_per_n']:.4f}" if r["ess_per_n"] is not None else "-"
        print(f"{r['method']:<26} {r['L']:>3} {r['T']:>7.4f} {r['T_level']:>8.4f} "
              f"{r['e']:>8.4f}({r['e_err']:.4f}) {r['e_exact']:>8.4f} {r['z_e']:>+6.1f} "
              f"{r['abs_m']:.4f}({r['abs_m_err']:.4f}) {mc:>14} {zm:>6} {acc:>6} {ess:>7}")
    return _finish(a, "flows", rows, times)


if __name__ == "__main__":
    sys.exit(main())
