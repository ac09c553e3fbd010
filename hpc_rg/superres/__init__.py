"""CNN super-resolution (inverse RG): load a trained model and upscale configurations.

>>> import hpc_rg.superres as sr
>>> model = sr.load("runs/ising2d/model.pt")            # safe: tensors only
>>> fine = model.upscale(coarse, k=1, levels=2, seed=7)  # coarse (B, 16, 16) -> (B, 64, 64)

Random numbers come from a counter-based stream keyed by (seed, level, configuration id,
site), so a configuration's output does not depend on its batch or on the rank that
computes it (pass the configuration's global ``ids``).
"""

from __future__ import annotations

import math

import torch

from ..rg.rescaling import flow_from_meta, superresolved_temperature
from ..rng import CounterRNG, derive_seed
from .modelfile import load_model
from .network import NetworkBank, sample_output, sublattice_a

__all__ = ["load", "SuperResolver"]


class SuperResolver:
    """A trained :class:`NetworkBank` with its metadata (blocking, temperatures, flow)."""

    def __init__(self, bank: NetworkBank, meta: dict, device="cpu"):
        self.bank, self.meta = bank, meta
        self.spec = bank.spec
        self.dims, self.field = self.spec.dims, self.spec.field
        self.temperatures = self.spec.temperatures
        self.blocking = meta.get("blocking")
        self.flow = flow_from_meta(meta.get("flow"))
        self.device = torch.device(device)

    @property
    def rescales(self) -> bool:
        """True when a temperature flow (measured or exact) is attached."""
        return self.flow is not None or bool(self.meta.get("exact_flow"))

    def effective_temperature(self, k: int, level: int, rescale: bool = True) -> float:
        """Temperature attached to level ``level`` (0 = input) of inputs at grid point ``k``:
        f^{-level}(T_k) when ``rescale`` and the flow is known — exactly for the 1D Ising
        decimation (K' = ½ ln cosh 2K inverted), else the measured flow — otherwise T_k."""
        T = self.temperatures[k]
        if not rescale or level == 0:
            return float(T)
        exact = self.meta.get("exact_flow")
        if exact and exact.get("name") == "ising1d_decimation":
            for _ in range(level):
                T = superresolved_temperature(T, exact["J"])
            return float(T)
        if self.flow is None:
            return float(T)
        return float(self.flow.iterate_inverse(T, level, out_of_range="nan"))

    def network_for(self, k: int, level: int, rescale: bool = True):
        """Which network makes level ``level`` from inputs of grid point ``k``.

        A network trained at T expects inputs distributed like blocked T configurations,
        i.e. at f(T), and returns configurations at T. So level n (input at T_{n-1},
        output at T_n = f^{-1}(T_{n-1})) uses the network trained nearest to T_n, or the
        conditioned network at T_n. Without a flow (or outside it) the network of T_k.

        Returns (network index, conditioning temperature or None, effective temperature).
        """
        T_eff = self.effective_temperature(k, level, rescale)
        known = T_eff == T_eff and rescale and self.rescales
        if self.spec.conditioned:
            return 0, (T_eff if known else float(self.temperatures[k])), T_eff
        if not known:
            return k, None, T_eff
        temps = torch.tensor(self.temperatures, dtype=torch.float64)
        return int(torch.argmin((temps - T_eff).abs())), None, T_eff

    @torch.no_grad()
    def step(self, x: torch.Tensor, k: int, level: int, seed: int, ids,
             t_out: float | None = None, consistent: bool = False) -> torch.Tensor:
        """One L -> 2L step with network ``k``. ``x`` (B, *lattice) ±1 floats or φ;
        ``ids`` (B,) global configuration ids. ``consistent``: draw every block from its
        pre-images under the blocking (:mod:`.consistent`), so block(output) = x.

        ``level`` (1 for the first doubling) keys the random stream. Returns (B, *2L) float32.
        """
        x = x.to(self.device, torch.float32)
        out = self._bounded(self.bank.forward_one(k, x, t_out))
        lat = out.shape[2:]
        sites = torch.arange(int(torch.tensor(lat).prod()), device=self.device).reshape(lat)
        rng = CounterRNG(derive_seed(seed, "upscale", level), torch.as_tensor(ids), sites,
                         self.device)
        u = rng.uniform(0)
        normal = None
        if self.field == "phi4":
            u2 = rng.uniform(1).clamp_min(2.0**-25)
            normal = torch.sqrt(-2.0 * torch.log(u2)) * torch.cos(2 * torch.pi * u)
        if consistent:
            from .consistent import sample_consistent
            if self.field != "spin" or self.spec.two_pass or self.blocking not in (
                    "majority", "overlap", "decimation"):
                raise ValueError("consistent sampling needs a one-pass spin network with "
                                 "majority, overlap or decimation blocking")
            rule = "decimation" if self.blocking == "decimation" else "majority"
            return sample_consistent(out[:, 0], x, u, self.dims, rule)
        y = sample_output(out, self.field, u, normal)
        if self.spec.two_pass:  # sublattice B given the sampled A (same per-site numbers)
            out_b = self._bounded(self.bank.forward_one(k, x, t_out, known=y))
            y = torch.where(sublattice_a(lat, self.device), y,
                            sample_output(out_b, self.field, u, normal))
        return y

    def _bounded(self, out: torch.Tensor) -> torch.Tensor:
        """φ⁴: clamp the predicted mean to ±``field_bound`` and the noise scale to at most
        ``field_bound`` (model meta: 1.5 × the largest |φ| trained on), so an iterated
        chain cannot run away outside the field range it was trained on."""
        bound = self.meta.get("field_bound")
        if self.field != "phi4" or not bound:
            return out
        return torch.stack([out[:, 0].clamp(-bound, bound),
                            out[:, 1].clamp(max=math.log(bound))], dim=1)

    def upscale(self, x, k: int, levels: int = 1, seed: int = 0, ids=None,
                rescale: bool = True, consistent: bool = False) -> list[torch.Tensor]:
        """Apply ``levels`` doublings to inputs at temperature index ``k``; every level's output.

        Each level uses :meth:`network_for` (the network matching its effective temperature).
        """
        x = torch.as_tensor(x)
        if ids is None:
            ids = torch.arange(x.shape[0])
        outs = []
        for level in range(1, levels + 1):
            net, t_out, _ = self.network_for(k, level, rescale)
            x = self.step(x, net, level, seed, ids, t_out, consistent)
            outs.append(x)
        return outs


def load(path, device="cpu") -> SuperResolver:
    """Load ``model.pt`` written by the train stage (``weights_only=True``: no code runs)."""
    bank, meta = load_model(path, device)
    return SuperResolver(bank, meta, device)
