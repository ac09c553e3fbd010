"""Critical exponents of the 2D Ising model from the super-resolution chain 16 -> 512.

Efthymiou, Beach & Melko (2019), Sec. IV.A: Monte Carlo only at 16 x 16 and T_c, train the
8 -> 16 network (majority-rule blocking), upscale repeatedly, and fit at T_c

    chi ~ L^{gamma/nu},  <|m|> ~ L^{-beta/nu},  G(r) ~ r^{-(d-2+eta)} at r = L/4, L/2

over the sizes (16 from Monte Carlo, the rest super-resolved). Repeated with independent
seeds (Monte Carlo and training); the spread over repeats is the quoted error.

Usage::

    python bench/validate_exponents.py --repeats 5 --target 512 --samples 2500
    python bench/validate_exponents.py --quick      # 2 repeats to 128, minutes
    python bench/validate_exponents.py --train-L 32 # network 16 -> 32 trained on 32² MC

``--train-L 32`` samples 32 × 32 (and 16 × 16) Monte Carlo at T_c, trains the 16 -> 32
network on blocked 32² configurations, and starts the chain from the 16² Monte Carlo
ensemble (upscaled here with ``hpc_rg.superres.load(...).upscale``): the first step then
sees inputs of the size the network was trained on, and the fixed point of the learned
map is that of the 32 -> 16 blocking rather than 16 -> 8.

``--fixed-point K`` (issue #18, item 2): samples (16 * 2**K)² (or ``--mc-L``) Monte Carlo at
T_c, trains the network with ``train.target_blockings: K`` (targets the configurations blocked K
times, inputs blocked once more), and lets the pipeline's upscale stage start the chain
from the same Monte Carlo blocked K times (``upscale.input_blockings: auto``), so the fits
run over L = 16 (blocked Monte Carlo) ... target, every level a fixed-point ensemble.

Runs ``mpirun -n NP python -m hpc_rg`` per repeat in ``runs/exponents/seed<k>``; prints the
table and writes ``bench/results/exponents-<stamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hpc_rg.analysis.scaling import (ISING2D_EXPONENTS, combine_repeats,  # noqa: E402
                                     critical_exponents, levels_observables)

TC = 2.269185
DECK = """
run: {{name: exponents, output: {out}, seed: {seed}, progress_seconds: 60}}
model: {{name: ising, dims: 2}}
sample: {{L: 16, temperatures: [{tc}], algorithm: swendsen_wang, chains: 4, thermalize: 500,
         samples: {per_chain}, thin: 2, chunk: 500}}
train: {{epochs: {epochs}, batch_size: 64, patience: 6, energy_weight: {gamma},
        network: {{depth: {depth}, width: {width}, kernel: 3, two_pass: {two_pass}}}}}
upscale: {{target_L: {target}, batch: 16, rescale_temperature: false, consistent: {consistent}}}
"""
DECK_TRAIN_L32 = """
run: {{name: exponents, output: {out}, seed: {seed}, progress_seconds: 60}}
model: {{name: ising, dims: 2}}
sample: {{L: 32, temperatures: [{tc}], algorithm: swendsen_wang, chains: 4, thermalize: 500,
         samples: {per_chain}, thin: 2, chunk: 500, reference_sizes: [16]}}
train: {{epochs: {epochs}, batch_size: 64, patience: 6, energy_weight: {gamma},
        network: {{depth: {depth}, width: {width}, kernel: 3, two_pass: {two_pass}}}}}
"""

DECK_FIXED_POINT = """
run: {{name: exponents, output: {out}, seed: {seed}, progress_seconds: 60}}
model: {{name: ising, dims: 2}}
sample: {{L: {mc_L}, temperatures: [{tc}], algorithm: swendsen_wang, chains: 4, thermalize: 500,
         samples: {per_chain}, thin: 2, chunk: 500}}
train: {{epochs: {epochs}, batch_size: 64, patience: 6, energy_weight: {gamma},
        target_blockings: {fixed_point},
        network: {{depth: {depth}, width: {width}, kernel: 3, two_pass: {two_pass}}}}}
upscale: {{target_L: {target}, batch: 16, rescale_temperature: false, consistent: {consistent},
          samples: {upscale_samples}}}
"""


def blocked_mc(out: Path, L: int, k: int):
    """The /L<L> Monte Carlo of samples.h5 at T_c blocked k times (first-site majority):
    the chain's level-0 ensemble in the fixed-point mode."""
    import numpy as np
    import torch
    from hpc_rg.rg.blocking import block_repeatedly
    with h5py.File(out / "samples.h5") as f:
        x = torch.from_numpy(f[f"L{L}/configs"][0])
    return np.ascontiguousarray(block_repeatedly(x, "majority", 2, k).numpy())


def chain_from_16(out: Path, target: int, seed: int, batch: int = 64) -> dict:
    """Upscale samples.h5 /L16 (Monte Carlo at T_c) with out/model.pt up to ``target``."""
    import numpy as np
    import torch
    import hpc_rg.superres as sr

    model = sr.load(out / "model.pt")
    levels = (target // 16).bit_length() - 1
    with h5py.File(out / "samples.h5") as f:
        x16 = f["L16/configs"][0]
    configs = {16: x16}
    outs = {16 * 2**k: [] for k in range(1, levels + 1)}
    for i in range(0, len(x16), batch):
        x = torch.as_tensor(x16[i:i + batch], dtype=torch.float32)
        ids = torch.arange(i, min(i + batch, len(x16)))
        for k, y in enumerate(model.upscale(x, 0, levels, seed=seed, ids=ids, rescale=False), 1):
            outs[16 * 2**k].append(y.to(torch.int8).numpy())
    configs.update({L: np.concatenate(v) for L, v in outs.items()})
    return configs


class TempSlice:
    """``ds[t]`` of an h5py dataset (T, N, L, L), read lazily in slices along N."""

    def __init__(self, ds, t: int):
        self.ds, self.t = ds, t
        self.shape = ds.shape[1:]

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, sel):
        return self.ds[self.t, sel]


def run_repeat(seed: int, args, root: Path) -> dict:
    out = root / f"seed{seed}"
    deck = root / f"seed{seed}.yaml"
    template = DECK_TRAIN_L32 if args.train_L == 32 else DECK
    if args.fixed_point:
        template = DECK_FIXED_POINT
    done = out / ("model.pt" if args.train_L == 32 else "upscaled.h5")
    mc_L = args.mc_L or 16 * 2 ** args.fixed_point
    start = mc_L >> args.fixed_point if args.fixed_point else 16
    deck.write_text(template.format(out=out, seed=seed, tc=TC, per_chain=args.samples // 4,
                                mc_L=mc_L, fixed_point=args.fixed_point,
                                upscale_samples=args.upscale_samples,
                                epochs=args.epochs, gamma=args.gamma, target=args.target,
                                depth=args.depth, width=args.width,
                                two_pass=str(args.two_pass).lower(),
                                consistent=str(args.consistent).lower()))
    if not done.exists():
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                   OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1",
                   OMPI_MCA_btl="self,vader", GLOO_SOCKET_IFNAME="lo", DS_ACCELERATOR="cpu")
        cmd = ["mpirun", "-n", str(args.np), sys.executable, "-m", "hpc_rg", str(deck)]
        if (out / "samples.h5.partial").exists() or (out / "samples.h5").exists():
            cmd.append("--resume")
        subprocess.run(cmd, cwd=REPO, env=env, check=True)
    if args.train_L == 32:
        levels = levels_observables(chain_from_16(out, args.target, seed), 2, TC)
        ex = critical_exponents(levels)
        return {"seed": seed, **{k: v for k, v in ex.as_dict().items() if not isinstance(v, dict)},
                "levels": [lv.as_dict() for lv in levels]}
    configs = {}
    files = [h5py.File(out / "samples.h5"), h5py.File(out / "upscaled.h5")]
    configs[start] = (blocked_mc(out, mc_L, args.fixed_point) if args.fixed_point
                      else TempSlice(files[0]["L16/configs"], 0))
    L = 2 * start
    while L <= args.target:
        configs[L] = TempSlice(files[1][f"L{L}/configs"], 0)
        L *= 2
    levels = levels_observables(configs, 2, TC)
    ex = critical_exponents(levels)
    for f in files:
        f.close()
    return {"seed": seed, **{k: v for k, v in ex.as_dict().items() if not isinstance(v, dict)},
            "levels": [lv.as_dict() for lv in levels]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--target", type=int, default=512)
    p.add_argument("--samples", type=int, default=2000, help="16x16 configurations at T_c")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--gamma", type=float, default=2.0, help="train.energy_weight")
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--np", type=int, default=2)
    p.add_argument("--consistent", action="store_true",
                   help="upscale.consistent: every block drawn from its pre-images")
    p.add_argument("--two-pass", dest="two_pass", action="store_true",
                   help="train.network.two_pass: sublattice A, then B given A")
    p.add_argument("--train-L", dest="train_L", type=int, default=16, choices=(16, 32),
                   help="train on L x L Monte Carlo (16: the paper's 8 -> 16 network)")
    p.add_argument("--fixed-point", dest="fixed_point", type=int, default=0, metavar="K",
                   help="train.target_blockings: Monte Carlo at (16 * 2**K)², targets and "
                        "chain inputs blocked K times (0: the paper's mode)")
    p.add_argument("--mc-L", dest="mc_L", type=int, default=0,
                   help="--fixed-point: the Monte Carlo size (default 16 * 2**K); the chain "
                        "starts at mc_L / 2**K")
    p.add_argument("--upscale-samples", dest="upscale_samples", type=int, default=0,
                   help="upscale.samples: configurations taken up the chain (0: all)")
    p.add_argument("--seed0", type=int, default=1000,
                   help="repeat k uses seed seed0 + k (Monte Carlo and training)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--root", default=str(REPO / "runs" / "exponents"))
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.target, args.samples, args.epochs = 2, 128, 1000, 15
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = [run_repeat(args.seed0 + k, args, root) for k in range(args.repeats)]
    names = ("gamma_nu", "beta_nu", "eta_quarter", "eta_half")
    exact = {"gamma_nu": ISING2D_EXPONENTS["gamma_nu"], "beta_nu": ISING2D_EXPONENTS["beta_nu"],
             "eta_quarter": ISING2D_EXPONENTS["eta"], "eta_half": ISING2D_EXPONENTS["eta"]}
    print(f"# 2D Ising exponents from SR chain to {args.target}, {args.repeats} repeats, "
          f"{args.samples} configs each, network depth {args.depth} width {args.width}, "
          f"gamma {args.gamma}, two_pass {args.two_pass}, consistent {args.consistent}, "
          + (f"fixed-point mode: {args.mc_L or 16 * 2 ** args.fixed_point}² Monte Carlo blocked "
             f"{args.fixed_point} time(s)" if args.fixed_point else
             f"trained on {args.train_L}²") + f" ({time.time() - t0:.0f} s)")
    print(f"{'exponent':12s} {'SR mean':>10s} {'stderr':>8s} {'exact':>8s} {'dev %':>7s}  per repeat")
    summary = {}
    for n in names:
        mean, err = combine_repeats([r[n] for r in results])
        dev = 100 * (mean - exact[n]) / exact[n]
        summary[n] = {"mean": float(mean), "stderr": float(err), "exact": exact[n], "dev_pct": dev}
        per = " ".join(f"{r[n]:.4f}" for r in results)
        print(f"{n:12s} {mean:10.4f} {err:8.4f} {exact[n]:8.4f} {dev:7.2f}  {per}")
    # per-step magnetization ratio log2(<|m|>_L / <|m|>_2L), mean over repeats: the chain
    # multiplies <|m|> by 2^-R each level, so every step should show R = beta/nu
    steps = {}
    for r in results:
        lv = sorted(r["levels"], key=lambda d: d["L"])
        for a, b in zip(lv, lv[1:]):
            steps.setdefault(f"{a['L']}->{b['L']}", []).append(
                math.log2(a["abs_m"] / b["abs_m"]))
    print("per-step R = log2(<|m|>_L/<|m|>_2L): " + "  ".join(
        f"{k} {sum(v) / len(v):.4f}" for k, v in steps.items()))
    summary["step_ratio"] = {k: [float(x) for x in v] for k, v in steps.items()}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"exponents-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "summary": summary, "repeats": results},
                              indent=1, default=float))
    print(f"# wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
