"""Flow super-resolution speed on this machine (CPU or GPU).

* time to reach ESS/N >= 0.5 (batch of 256 weights) when training one flow_rg level
  L/2 -> L by reverse KL for phi^4 (kappa = 0.2, lambda = 0.02, Bauer parametrization),
  coarse inputs from checkerboard Metropolis at L/2, for L = 16 and 32;
* accepted configurations per second of the MH-corrected sampler producing 64^2 and 128^2
  (one level from 32^2 / 64^2 coarse fields, float64 as in the upscale stage);
* configurations per second of the latent-HMC-corrected level at 64^2 and 128^2 (float32 as
  in the upscale stage; 60 trajectories x 10 leapfrog steps per configuration, the settings
  validated for the relaxed Ising chain in docs/validation.md).

Usage: python bench/bench_flows.py [--quick] [--limit SECONDS] [--device cpu|cuda]
``--quick`` caps training at 60 s per size and uses small batches; ``--limit`` sets the
training cap per size (default 3600 s).
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch

from hpc_rg.flows.mh import ess_per_n
from hpc_rg.flows.modelfile import build_level
from hpc_rg.flows.sampler import ChainState, FieldModel, hmc_step, mh_step
from hpc_rg.flows.objective import LevelObjective
from hpc_rg.mc.checkerboard import sweep_phi4
from hpc_rg.models.lattice import global_site_ids
from hpc_rg.rng import CounterRNG, derive_seed

KAPPA, LAM = 0.2, 0.02


def spec(width=16, layers=6):
    return dict(method="flow_rg", dims=2, layers=layers, width=width, depth=2, kernel=3,
                sigma=0.5, learn_sigma=True, z2=True, conditional=False, scale_bound=2.0,
                local_flow="coupling")


def coarse_mc(L, n_chains=64, n_meas=64, device="cpu"):
    phi = torch.zeros((n_chains, L, L), dtype=torch.float64)
    rng = CounterRNG(derive_seed(1, "mc"), torch.arange(n_chains), global_site_ids((L, L)))
    out = []
    for t in range(200 + 4 * n_meas):
        sweep_phi4(phi, KAPPA, LAM, 1.5, rng, t)
        if t >= 200 and t % 4 == 0:
            out.append(phi.clone())
    return torch.cat(out).to(device)


def time_to_ess(L, limit, batch, device):
    fm = FieldModel("phi4", 2, KAPPA, SimpleNamespace(parametrization="bauer", lam=LAM))
    x = coarse_mc(L // 2, device=device)
    lpc = fm.log_p(x)
    torch.manual_seed(0)
    level = build_level(spec()).to(device)
    obj = LevelObjective([level], [fm])
    opt = torch.optim.Adam(obj.parameters(), lr=1e-3)
    g = torch.Generator(device=device).manual_seed(1)
    t0, step, ess = time.perf_counter(), 0, 0.0
    while time.perf_counter() - t0 < limit:
        idx = torch.randint(0, len(x), (batch,), generator=g, device=device)
        loss, lw = obj(x[idx].float()[None], lpc[idx][None], 0.0, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 20 == 0:
            with torch.no_grad():
                idx = torch.randint(0, len(x), (256,), generator=g, device=device)
                _, lw = obj(x[idx].float()[None], lpc[idx][None], 0.0, g)
            ess = ess_per_n(lw[0])
            if ess >= 0.5:
                break
    return time.perf_counter() - t0, step, ess


def mh_rate(L, batch, rounds, device):
    fm = FieldModel("phi4", 2, KAPPA, SimpleNamespace(parametrization="bauer", lam=LAM))
    level = build_level(spec()).to(device).double().eval()
    g = torch.Generator(device=device).manual_seed(2)
    st = ChainState()
    x = 0.5 * torch.randn((batch, L // 2, L // 2), dtype=torch.float64, device=device)
    lp = fm.log_p(x)
    mh_step(level, x, lp, fm, st, g)  # warm-up
    t0 = time.perf_counter()
    for r in range(rounds):
        mh_step(level, x, lp, fm, st, g, index_offset=(r + 1) * batch)
    dt = time.perf_counter() - t0
    acc = st.stats.n_acc
    return rounds * batch / dt, acc / dt


def hmc_rate(L, batch, trajectories, device):
    """Latent-HMC-corrected configurations per second of one level (float32)."""
    fm = FieldModel("phi4", 2, KAPPA, SimpleNamespace(parametrization="bauer", lam=LAM))
    level = build_level(spec()).to(device).float().eval().requires_grad_(False)
    g = torch.Generator(device=device).manual_seed(2)
    x = 0.5 * torch.randn((batch, L // 2, L // 2), dtype=torch.float64, device=device)
    lp = fm.log_p(x)
    hmc_step(level, x, lp, fm, ChainState(), 1, 10, 0.05, g)  # warm-up
    t0 = time.perf_counter()
    st = ChainState()
    hmc_step(level, x, lp, fm, st, trajectories, 10, 0.05, g)
    dt = time.perf_counter() - t0
    return batch / dt, st.stats.acceptance


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--limit", type=float, default=None, help="training seconds per size")
    a = p.parse_args()
    limit = a.limit or (60.0 if a.quick else 3600.0)
    for L in (16, 32):
        dt, steps, ess = time_to_ess(L, limit, 64 if a.quick else 256, a.device)
        print(f"train L={L}: ESS/N {ess:.3f} after {steps} steps, {dt:.1f} s "
              f"({'reached 0.5' if ess >= 0.5 else 'did not reach 0.5'})")
    for L in (64, 128):
        props, accs = mh_rate(L, 16 if a.quick else 64, 3 if a.quick else 10, a.device)
        print(f"MH L={L}: {props:.1f} proposals/s, {accs:.1f} accepted/s (untrained level)")
    for L in (64, 128):
        traj = 5 if a.quick else 60
        rate, acc = hmc_rate(L, 8 if a.quick else 32, traj, a.device)
        print(f"latent HMC L={L}: {rate:.2f} configurations/s ({traj} trajectories x 10 "
              f"leapfrog steps each, acceptance {acc:.2f}, untrained level)")


if __name__ == "__main__":
    main()
