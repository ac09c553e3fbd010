"""One trained φ⁴ level reused unchanged at every level of a chain 4² → 8² → … (issue #17).

Coarse 4 × 4 Monte Carlo fields (bench/flow_ess.py's sampler) go through ``--levels``
applications of the *same* level (weights from ``bench/flow_ess.py --save``), each corrected
by independence Metropolis–Hastings (:func:`hpc_rg.flows.sampler.mh_step`): ``--chains``
independent chains, chain ``c`` owning its rows at every level, so the coarse input of level
``k + 1`` is level ``k``'s MH chain (distributed by ``p_L``). Per level: ESS/N and acceptance
of the proposals, ⟨|φ̄|⟩ and χ = V(⟨φ̄²⟩ − ⟨|φ̄|⟩²) with errors from the spread of the
chains (jackknife), and z-scores against Monte Carlo of the same size (64 chains,
jackknife over chains) where ``--mc-sizes`` has it.

Usage::

    OMP_NUM_THREADS=1 python bench/flow_ess_chain.py --kappa 0.2 --model runs/flow_ess/X.pt \
        --linear-kernel 5 --levels 4 --chains 16 --rows 256 --mc-sizes 16 32 64 \
        --out bench/results/flow-ess-chain-k0.2.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.flow_ess import default_spec, field_model, mc_samples  # noqa: E402
from hpc_rg.flows.mh import ess_per_n  # noqa: E402
from hpc_rg.flows.modelfile import build_level  # noqa: E402
from hpc_rg.flows.sampler import ChainState, mh_step  # noqa: E402


def jackknife(per_chain_fn, groups):
    """Estimate and jackknife error of ``per_chain_fn(rows)`` over groups of rows."""
    full = per_chain_fn(torch.cat(groups))
    n = len(groups)
    loo = torch.tensor([float(per_chain_fn(torch.cat(groups[:i] + groups[i + 1:])))
                        for i in range(n)], dtype=torch.float64)
    err = float(((n - 1) / n * ((loo - loo.mean()) ** 2).sum()).sqrt())
    return float(full), err


def observables(groups, V):
    absm = lambda m: m.abs().mean()  # noqa: E731
    chi = lambda m: V * ((m * m).mean() - m.abs().mean() ** 2)  # noqa: E731
    return {"abs_phi": jackknife(absm, groups), "chi": jackknife(chi, groups)}


def mc_reference(L, kappa, n, chains=64):
    x = mc_samples(L, kappa, n, seed=21, chains=chains, therm=1000, thin=8)
    m = x.mean((1, 2)).reshape(-1, chains)            # (sweeps, chains)
    return observables([m[:, c] for c in range(chains)], L * L)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kappa", type=float, default=0.2)
    p.add_argument("--model", required=True)
    p.add_argument("--linear-kernel", type=int, default=0)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--rows", type=int, default=256, help="rows per chain and level")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--mc-sizes", type=int, nargs="*", default=[16, 32])
    p.add_argument("--mc-n", type=int, default=4096)
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    spec = default_spec(layers=a.layers, width=a.width, linear_kernel=a.linear_kernel)
    level = build_level(spec)
    level.load_state_dict(torch.load(a.model))
    level = level.double().eval()
    fm = field_model(a.kappa)
    n = a.chains * a.rows
    x = mc_samples(4, a.kappa, n, seed=5)
    lp = fm.log_p(x)
    g = torch.Generator().manual_seed(17)
    res = dict(kappa=a.kappa, model=a.model, spec=spec, chains=a.chains, rows=a.rows,
               levels=[])
    L = 4
    for k in range(a.levels):
        t0 = time.process_time()
        outs, lps, lws, acc = [], [], [], 0
        for c in range(a.chains):
            st = ChainState()
            for i in range(c * a.rows, (c + 1) * a.rows, a.batch):
                f, lpf, ok = mh_step(level, x[i:i + a.batch], lp[i:i + a.batch], fm, st, g,
                                     index_offset=i)
                outs.append(f)
                lps.append(lpf)
            lws.append(st.stats)
            acc += st.stats.n_acc
        stats = lws[0]
        for s in lws[1:]:
            stats = stats.merge(s)
        x, lp, L = torch.cat(outs), torch.cat(lps), 2 * L
        m = x.mean((1, 2))
        obs = observables([m[c * a.rows:(c + 1) * a.rows] for c in range(a.chains)], L * L)
        row = dict(L=L, ess=stats.ess_per_n, acceptance=stats.acceptance,
                   cpu_s=time.process_time() - t0, **obs)
        if L in a.mc_sizes:
            ref = mc_reference(L, a.kappa, a.mc_n)
            row["mc"] = ref
            for key in ("abs_phi", "chi"):
                (v, e), (rv, re) = obs[key], ref[key]
                row[f"z_{key}"] = (v - rv) / (e * e + re * re) ** 0.5
        res["levels"].append(row)
        print(json.dumps(row), flush=True)
        if a.out:
            Path(a.out).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
