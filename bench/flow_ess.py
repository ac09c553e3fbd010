"""ESS/N of φ⁴ flow super-resolution levels against the volume (issue #17, items 1-2).

One level ``L → 2L`` (a local, translation-equivariant flow: convolutions with circular
padding, no size-dependent weights) is trained by reverse KL on coarse Monte Carlo fields of
one size and then evaluated, unchanged, on coarse Monte Carlo fields of every size
``L_c ∈ {4, 8, 16, 32, 64}`` (fine 8² … 128²). The coarse inputs are exact samples of
``p_{L_c}`` (checkerboard Metropolis + embedded Wolff), so the importance weights
``log w = log p~_2L(fine) − log p~_L(coarse) − log q(fine|coarse)`` are those of the level
inside a chain whose lower levels are exact (MH-corrected), as in docs/validation.md.

Reported per size: ESS/N (Bauer eq. 12) of ``n_eval`` proposals, ``Var(log w) / V_fine``
(for a local flow this per-site variance is size-independent once ``L ≫ ξ``, and
``ESS/N ≈ exp(−Var log w)`` for log-normal weights), and the KL estimate ``log mean w −
mean log w`` per fine site. CPU time is ``time.process_time`` of this one-thread process.

Usage::

    OMP_NUM_THREADS=1 python bench/flow_ess.py --kappa 0.2 --train-L 8 --cpu-minutes 5 \
        [--layers 6 --width 16 --kernel 3 --batch 32 --lr 3e-3] [--eval-L 4 8 16 32 64]
        [--out bench/results/flow-ess-<tag>.json] [--save model.pt] [--load model.pt]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hpc_rg.flows.mh import ess_per_n  # noqa: E402
from hpc_rg.flows.modelfile import build_level  # noqa: E402
from hpc_rg.flows.objective import LevelObjective  # noqa: E402
from hpc_rg.flows.sampler import FieldModel  # noqa: E402
from hpc_rg.mc.checkerboard import sweep_phi4  # noqa: E402
from hpc_rg.mc.cluster import phi4_wolff_update  # noqa: E402
from hpc_rg.models.lattice import global_site_ids  # noqa: E402
from hpc_rg.rng import CounterRNG, derive_seed  # noqa: E402

LAM = 0.01
CACHE = REPO / "runs" / "flow_ess_mc"


def mc_samples(L: int, kappa: float, n: int, *, chains: int = 64, therm: int = 400,
               thin: int = 4, seed: int = 1, lam: float = LAM) -> torch.Tensor:
    """``n`` φ⁴ fields ``(n, L, L)`` float64 at (κ, λ): checkerboard Metropolis (width 1.5)
    with one embedded-Wolff update per sweep, ``chains`` chains, ``therm`` sweeps of
    thermalisation, one field per chain every ``thin`` sweeps. Cached under runs/."""
    path = CACHE / f"L{L}-k{kappa:g}-l{lam:g}-n{n}-c{chains}-t{therm}-s{seed}.pt"
    if path.exists():
        return torch.load(path)
    phi = torch.zeros((chains, L, L), dtype=torch.float64)
    rng = CounterRNG(derive_seed(seed, "flow_ess_mc", L), torch.arange(chains),
                     global_site_ids((L, L)))
    g = torch.Generator().manual_seed(derive_seed(seed, "flow_ess_wolff", L))
    out, t = [], 0
    while sum(len(o) for o in out) < n:
        sweep_phi4(phi, kappa, lam, 1.5, rng, t)
        phi, _ = phi4_wolff_update(phi, kappa, g)
        t += 1
        if t > therm and t % thin == 0:
            out.append(phi.clone())
    x = torch.cat(out)[:n]
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(x, path)
    return x


def gaussian_block_kl(kappa: float, Lc: int = 32) -> dict:
    """Free theory (λ = 0, Bauer quadratic form ``2[φ² − κ Σ_μ φ_x φ_{x+μ}·2]``): site
    variance of the block mean of the 2L field, of ``p_L`` at the same κ, and
    KL(blocked p_2L ‖ p_L) per coarse site — what a block-mean-preserving (conditional)
    level cannot remove however good its conditional flow is."""
    L = 2 * Lc
    k = 2 * math.pi * torch.arange(L, dtype=torch.float64) / L
    c_fine = 1 / (2 * (1 - 2 * kappa * (torch.cos(k)[:, None] + torch.cos(k)[None, :])))
    h = ((1 + torch.exp(1j * k))[:, None] * (1 + torch.exp(1j * k))[None, :] / 4).abs() ** 2
    c_b = (h * c_fine).reshape(2, Lc, 2, Lc).sum((0, 2)) / 4   # aliases of each coarse p
    kc = 2 * math.pi * torch.arange(Lc, dtype=torch.float64) / Lc
    c_l = 1 / (2 * (1 - 2 * kappa * (torch.cos(kc)[:, None] + torch.cos(kc)[None, :])))
    r = c_b / c_l
    return dict(kappa=kappa, var_blocked=float(c_b.mean()), var_coarse=float(c_l.mean()),
                kl_per_coarse_site=float(0.5 * (r - 1 - torch.log(r)).mean()))


def field_model(kappa: float) -> FieldModel:
    return FieldModel("phi4", 2, kappa, SimpleNamespace(parametrization="bauer", lam=LAM))


def default_spec(**kw) -> dict:
    spec = dict(method="flow_rg", dims=2, layers=6, width=16, depth=2, kernel=3, sigma=0.5,
                learn_sigma=True, z2=True, conditional=False, scale_bound=2.0,
                local_flow="coupling", n_freq=4, n_time=3, ode_steps=16, linear_kernel=0)
    spec.update(kw)
    return spec


@torch.no_grad()
def evaluate(level, kappa: float, Lc: int, n_eval: int, batch: int = 64, seed: int = 7) -> dict:
    """Proposals for ``n_eval`` Monte Carlo coarse fields of size ``Lc``: ESS/N, per-site
    Var(log w) and KL estimate, CPU seconds per proposal."""
    fm = field_model(kappa)
    x = mc_samples(Lc, kappa, n_eval, seed=11)
    g = torch.Generator().manual_seed(seed)
    lws = []
    t0 = time.process_time()
    for i in range(0, n_eval, batch):
        c = x[i:i + batch]
        fine, log_q = level.sample(c.float(), g)
        lws.append((fm.log_p(fine) - fm.log_p(c) - log_q.double()))
    dt = time.process_time() - t0
    lw = torch.cat(lws)
    v = (2 * Lc) ** 2
    kl = float(torch.logsumexp(lw, 0) - math.log(len(lw)) - lw.mean())
    return dict(L_fine=2 * Lc, n=len(lw), ess=ess_per_n(lw), var_per_site=float(lw.var()) / v,
                kl_per_site=kl / v, cpu_s_per_proposal=dt / len(lw))


def train(level, kappa: float, Lc: int, *, cpu_seconds: float, batch: int, lr: float,
          pool: int = 4096, seed: int = 3, log_every: int = 100, lr_final: float | None = None):
    """Reverse KL on Monte Carlo coarse fields of size ``Lc`` for ``cpu_seconds`` of this
    process's CPU time (cosine decay to ``lr_final`` over the budget if given)."""
    fm = field_model(kappa)
    x = mc_samples(Lc, kappa, pool, seed=seed).float()
    lpc = fm.log_p(x)
    obj = LevelObjective([level], [fm])
    opt = torch.optim.Adam(obj.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    t0, step, hist, ema = time.process_time(), 0, [], None
    while (el := time.process_time() - t0) < cpu_seconds:
        if lr_final is not None:
            f = min(el / cpu_seconds, 1.0)
            for pg in opt.param_groups:
                pg["lr"] = lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * f))
        idx = torch.randint(0, len(x), (batch,), generator=g)
        loss, lw = obj(x[idx][None], lpc[idx][None], 0.0, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        v = float(lw[0].var()) / (2 * Lc) ** 2
        ema = v if ema is None else 0.98 * ema + 0.02 * v
        if step % log_every == 0:
            hist.append(dict(step=step, cpu_s=round(el, 1), loss=float(loss.detach()),
                             var_per_site_ema=ema))
            print(f"  step {step} cpu {el:.0f}s loss {float(loss.detach()):.5f} "
                  f"var/site(ema) {ema:.2e}", flush=True)
    return dict(steps=step, cpu_s=time.process_time() - t0, history=hist)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kappa", type=float, default=0.2)
    p.add_argument("--train-L", type=int, default=8, help="coarse size trained on (fine 2L)")
    p.add_argument("--cpu-minutes", type=float, default=5.0)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--kernel", type=int, default=3)
    p.add_argument("--sigma", type=float, default=0.5)
    p.add_argument("--local-flow", default="coupling")
    p.add_argument("--conditional", action="store_true")
    p.add_argument("--linear-kernel", type=int, default=0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--lr-final", type=float, default=None)
    p.add_argument("--eval-L", type=int, nargs="+", default=[4, 8, 16, 32])
    p.add_argument("--n-eval", type=int, default=1024)
    p.add_argument("--n-eval-64", type=int, default=256,
                   help="proposals at coarse size 64 (fine 128^2)")
    p.add_argument("--load", default=None)
    p.add_argument("--save", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--tag", default="")
    p.add_argument("--gaussian-kl", action="store_true",
                   help="print the free theory's coarse-marginal KL (no training) and exit")
    a = p.parse_args(argv)
    if a.gaussian_kl:
        r = gaussian_block_kl(a.kappa)
        print(json.dumps(r))
        return r
    torch.set_num_threads(1)
    torch.manual_seed(0)
    spec = default_spec(layers=a.layers, width=a.width, depth=a.depth, kernel=a.kernel,
                        sigma=a.sigma, local_flow=a.local_flow, conditional=a.conditional,
                        linear_kernel=a.linear_kernel)
    level = build_level(spec)
    if a.load:
        level.load_state_dict(torch.load(a.load))
    res = dict(tag=a.tag, kappa=a.kappa, lam=LAM, spec=spec, train_L_coarse=a.train_L,
               batch=a.batch, lr=a.lr, lr_final=a.lr_final,
               machine="AMD EPYC Zen 3, 2 vCPU (shared), AVX2, 1 torch thread")
    t_mc = time.process_time()
    n_ev = {Lc: (a.n_eval_64 if Lc >= 64 else a.n_eval) for Lc in a.eval_L}
    for Lc in a.eval_L:
        mc_samples(Lc, a.kappa, n_ev[Lc], seed=11)
    if a.cpu_minutes > 0:
        mc_samples(a.train_L, a.kappa, 4096, seed=3)
    res["mc_cpu_s"] = time.process_time() - t_mc
    if a.cpu_minutes > 0:
        print(f"train kappa={a.kappa} on {a.train_L}->{2 * a.train_L}, {a.cpu_minutes} CPU-min",
              flush=True)
        res["train"] = train(level, a.kappa, a.train_L, cpu_seconds=60 * a.cpu_minutes,
                             batch=a.batch, lr=a.lr, lr_final=a.lr_final)
    if a.save:
        torch.save(level.state_dict(), a.save)
    res["eval"] = []
    for Lc in a.eval_L:
        r = evaluate(level, a.kappa, Lc, n_ev[Lc])
        res["eval"].append(r)
        print(f"  eval {Lc}->{2 * Lc}: ESS/N {r['ess']:.3f}  var(log w)/V {r['var_per_site']:.2e}"
              f"  KL/V {r['kl_per_site']:.2e}", flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
