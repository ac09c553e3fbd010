"""Probe of Bauer et al.'s IR matching (sec. VI) on one φ⁴ level 4 → 8, outside the pipeline.

Not a feature of the pipeline yet (issue #5): this script trains one ``flow_rg`` level with a
learnable coarse hopping parameter κ_L, the coarse fields moved to κ_L by Langevin dynamics
that is back-propagated through (the last ``--grad-steps`` of ``--langevin`` steps, step τ),
and the log Z_L gradient of eq. (34) as a surrogate term κ_L · E[∂S/∂κ]; and, for comparison,
the same level without it (κ_L = κ). Every ``--every`` steps it reports κ_L and the ESS/N of
1024 proposals whose coarse fields were moved exactly to p_L[κ_L] by 60 HMC trajectories.

Usage::

    python bench/ir_matching_probe.py [--kappa 0.25] [--steps 1500] [--no-ir]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from physics_helpers import run_phi4  # noqa: E402

from hpc_rg.flows.mh import ess_per_n  # noqa: E402
from hpc_rg.flows.modelfile import build_level  # noqa: E402
from hpc_rg.flows.sampler import FieldModel  # noqa: E402
from hpc_rg.flows.targets import Phi4Target  # noqa: E402
from hpc_rg.mc.hmc import hmc_update  # noqa: E402
from hpc_rg.models import phi4  # noqa: E402
from hpc_rg.models.lattice import forward_bond_sum  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kappa", type=float, default=0.25)
    p.add_argument("--lam", type=float, default=0.01)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--langevin", type=int, default=40, help="Langevin steps per training step")
    p.add_argument("--grad-steps", type=int, default=5, help="of which back-propagated")
    p.add_argument("--tau", type=float, default=0.05)
    p.add_argument("--no-ir", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    Lc, lam = 4, a.lam
    conf, _ = run_phi4((Lc, Lc), a.kappa, lam, 1.5, B=64, n_therm=300, n_meas=320, seed=1,
                       obs=lambda x: x.clone())
    pool = torch.as_tensor(conf[::4]).reshape(-1, Lc, Lc).double()
    fm = FieldModel("phi4", 2, a.kappa, SimpleNamespace(parametrization="bauer", lam=lam))
    torch.manual_seed(0)
    level = build_level(dict(method="flow_rg", dims=2, layers=6, width=16, depth=2, kernel=3,
                             sigma=0.5, learn_sigma=True, z2=True, conditional=False,
                             scale_bound=2.0, local_flow="coupling"))
    kc = torch.nn.Parameter(torch.tensor(a.kappa))
    opt = torch.optim.Adam(list(level.parameters()) + ([] if a.no_ir else [kc]), lr=3e-3)
    g = torch.Generator().manual_seed(1)

    def langevin(phi, k, n):
        for _ in range(n):
            phi = phi + a.tau * phi4.force(phi, k, lam) + math.sqrt(2 * a.tau) * torch.randn(
                phi.shape, generator=g, dtype=phi.dtype)
        return phi

    t0 = time.time()
    for step in range(a.steps):
        phi = pool[torch.randint(0, len(pool), (64,), generator=g)].float()
        if not a.no_ir:
            with torch.no_grad():
                phi = langevin(phi, kc.detach(), a.langevin - a.grad_steps)
            phi = langevin(phi, kc, a.grad_steps)
        fine, log_q = level.sample(phi, g)
        loss = (log_q.double() - fm.log_p(fine)).mean()
        if not a.no_ir:  # D_KL^(I) term -S_L[κ_L](φ), and eq. (34) for -log Z_L
            hop = (phi.double() * forward_bond_sum(phi.double())).sum((1, 2))
            loss = loss - phi4.action(phi, kc, lam).mean() + kc.double() * (-2 * hop).mean().detach()
        loss = loss / fine[0].numel()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % a.every == 0:
            with torch.no_grad():
                c = pool[:1024].clone()
                for _ in range(60):
                    c = hmc_update(c, float(kc), lam, 0.1, 10, g).phi
                fine, log_q = level.double().sample(c, g)
                level.float()
                lw = fm.log_p(fine) - Phi4Target(float(kc), lam, 2, Lc).log_prob_unnormalised(c) - log_q
            print(f"step {step + 1}: kappa_L {float(kc):.4f} ESS/N {ess_per_n(lw):.4f} "
                  f"({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
