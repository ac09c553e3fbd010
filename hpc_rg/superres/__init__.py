"""CNN super-resolution (inverse RG): load a trained model and upscale configurations.

>>> import hpc_rg.superres as sr
>>> model = sr.load("runs/ising2d/model.pt")            # safe: tensors only
>>> fine = model.upscale(coarse, k=1, levels=2, seed=7)  # coarse (B, 16, 16) -> (B, 64, 64)

Random numbers come from a counter-based stream keyed by (seed, level, configuration id,
site), so a configuration's output does not depend on its batch or on the rank that
computes it (pass the configuration's global ``ids``).
"""

from __future__ import annotations

import torch

from ..rng import CounterRNG, derive_seed
from .modelfile import load_model
from .network import NetworkBank, sample_output

__all__ = ["load", "SuperResolver"]


class SuperResolver:
    """A trained :class:`NetworkBank` with its metadata (blocking, temperatures, flow)."""

    def __init__(self, bank: NetworkBank, meta: dict, device="cpu"):
        from .rescaling import flow_from_meta
        self.bank, self.meta = bank, meta
        self.spec = bank.spec
        self.dims, self.field = self.spec.dims, self.spec.field
        self.temperatures = self.spec.temperatures
        self.blocking = meta.get("blocking")
        self.flow = flow_from_meta(meta.get("flow"))
        self.device = torch.device(device)

    def effective_temperature(self, k: int, level: int, rescale: bool = True) -> float:
        """Temperature attached to level ``level`` (0 = input) of inputs at grid point ``k``:
        f^{-level}(T_k) when a flow was measured and ``rescale``, else T_k."""
        T = self.temperatures[k]
        if not rescale or self.flow is None or level == 0:
            return float(T)
        return float(self.flow.iterate_inverse(T, level, out_of_range="nan"))

    @torch.no_grad()
    def step(self, x: torch.Tensor, k: int, level: int, seed: int, ids,
             t_out: float | None = None) -> torch.Tensor:
        """One L -> 2L step. ``x`` (B, *lattice) ±1 floats or φ; ``ids`` (B,) global ids.

        ``level`` (1 for the first doubling) keys the random stream. Returns (B, *2L) float32.
        """
        x = x.to(self.device, torch.float32)
        out = self.bank.forward_one(k, x, t_out)
        lat = out.shape[2:]
        sites = torch.arange(int(torch.tensor(lat).prod()), device=self.device).reshape(lat)
        rng = CounterRNG(derive_seed(seed, "upscale", level), torch.as_tensor(ids), sites,
                         self.device)
        u = rng.uniform(0)
        normal = None
        if self.field == "phi4":
            u2 = rng.uniform(1).clamp_min(2.0**-25)
            normal = torch.sqrt(-2.0 * torch.log(u2)) * torch.cos(2 * torch.pi * u)
        return sample_output(out, self.field, u, normal)

    def upscale(self, x, k: int, levels: int = 1, seed: int = 0, ids=None,
                rescale: bool = True) -> list[torch.Tensor]:
        """Apply ``levels`` doublings to inputs at temperature index ``k``; every level's output.

        A temperature-conditioned network is conditioned on each level's effective
        temperature (see :meth:`effective_temperature`).
        """
        x = torch.as_tensor(x)
        if ids is None:
            ids = torch.arange(x.shape[0])
        outs = []
        for level in range(1, levels + 1):
            t_out = None
            if self.spec.conditioned:
                t_out = self.effective_temperature(k, level, rescale)
                if t_out != t_out:  # NaN: outside the measured flow
                    t_out = self.temperatures[k]
            x = self.step(x, k, level, seed, ids, t_out)
            outs.append(x)
        return outs


def load(path, device="cpu") -> SuperResolver:
    """Load ``model.pt`` written by the train stage (``weights_only=True``: no code runs)."""
    bank, meta = load_model(path, device)
    return SuperResolver(bank, meta, device)
