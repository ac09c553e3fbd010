"""Write ``levels_v1.pt``: levels as the code built them before ``_Level`` and
``build_level`` shared one coupling construction (commit ae0f8be, issue #17).

For each spec: the seeded initial state_dict, a perturbed state_dict (float32, what a model
file holds) and one float64 forward/inverse pass with it. ``tests/flows/test_flows_linear.py``
checks that today's ``build_level`` draws the same initial weights from the same seed, loads
the old state_dict strictly (same key names) and reproduces the pass. Run from the repo root:
``.venv/bin/python tests/flows/data/make_levels_v1.py`` (only to regenerate from old code:
it was run in a worktree of ae0f8be with ``PYTHONPATH`` set to it).
"""

from pathlib import Path

import torch

from hpc_rg.flows.modelfile import build_level

BASE = dict(method="flow_rg", dims=2, layers=3, width=4, depth=2, kernel=3, sigma=0.7,
            learn_sigma=True, z2=True, conditional=False, scale_bound=2.0,
            local_flow="coupling", n_freq=3, n_time=2, ode_steps=4, linear_kernel=0)
CASES = {
    "rg": {},
    "rg_conditional": dict(conditional=True, layers=4),
    "rg_no_z2_learn_sigma_off": dict(z2=False, learn_sigma=False, kernel=1, depth=1),
    "checkerboard": dict(method="flow_checkerboard"),
    "checkerboard_conditional": dict(method="flow_checkerboard", conditional=True, layers=4),
    "checkerboard_conditional_1d": dict(method="flow_checkerboard", conditional=True, dims=1),
    "rg_3d": dict(dims=3, layers=2),
    "rg_linear": dict(linear_kernel=3),
    "checkerboard_linear": dict(method="flow_checkerboard", linear_kernel=1),
    "rg_continuous": dict(local_flow="continuous"),
    "rg_continuous_linear": dict(local_flow="continuous", linear_kernel=3),
}


def main():
    out = {}
    for i, (name, change) in enumerate(CASES.items()):
        spec = dict(BASE, **change)
        torch.manual_seed(100 + i)
        level = build_level(spec)
        init = {k: v.detach().clone() for k, v in level.state_dict().items()}
        g = torch.Generator().manual_seed(200 + i)
        with torch.no_grad():
            for p in level.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g))
        trained = {k: v.detach().clone() for k, v in level.state_dict().items()}
        level = level.double()
        d, L = spec["dims"], 4
        coarse = torch.randn((2,) + (L,) * d, generator=g, dtype=torch.float64)
        zeta, _ = level.noise.sample(coarse.shape, g)
        with torch.no_grad():
            fine, logdet = level.transform(coarse, zeta)
            back, log_q = level.log_prob(fine)
        out[name] = dict(spec=spec, seed=100 + i, init=init, state_dict=trained, coarse=coarse,
                         zeta=zeta, fine=fine, logdet=logdet, back=back, log_q=log_q)
    torch.save(out, Path(__file__).with_name("levels_v1.pt"))


if __name__ == "__main__":
    main()
