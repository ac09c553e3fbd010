"""Learnable φ⁴ hopping parameters and the log Z gradient of their action (Bauer et al. 2024,
sec. V, eqs. 34–36), shared by IR matching (coarse κ_L, :mod:`hpc_rg.flows.ir_matching`) and
UV matching (fine κ, :mod:`hpc_rg.flows.uv_matching`).

With ``log p[κ] = −S[κ](φ) − log Z[κ]`` and ``∇_κ log Z = −E_{p[κ]}[∂S/∂κ]`` (eq. 34), the
κ-gradient of a loss containing ``± log Z[κ]`` is supplied by a surrogate term
``κ · stopgrad(E[∂S/∂κ])``. The expectation comes from a *reference set* of exact samples of
p[κ_ref], reweighted to the current κ (eq. 36; S is linear in κ, so
``log w = −(κ − κ_ref) ∂S/∂κ``); when the reweighting's ESS/N drops below R_W the set is moved
to the current κ by HMC (which leaves p[κ] invariant) and κ_ref := κ. The set is identical on
every rank — its random numbers are keyed by (seed, purpose, point, refresh count), never by
rank — and lives in buffers, so a DeepSpeed checkpoint (written by rank 0) restores it.
"""

from __future__ import annotations

import torch
from torch import nn

from ..mc.hmc import hmc_update
from ..models.lattice import forward_bond_sum

__all__ = ["dS_dkappa", "hmc_resample", "hmc_thermalise", "LearnableKappa"]


def dS_dkappa(phi: torch.Tensor) -> torch.Tensor:
    """``∂S/∂κ = −2 Σ_x Σ_μ φ_x φ_{x+μ}`` per configuration (Bauer eq. 35), shape (B,)."""
    p = phi.to(torch.float64)
    return -2.0 * (p * forward_bond_sum(p)).sum(dim=tuple(range(1, p.dim())))


def unit_trajectory_steps(eps: float) -> int:
    """Leapfrog steps of a trajectory of length ≈ 1 at step ``eps``."""
    return max(1, round(1.0 / float(eps)))


@torch.no_grad()
def hmc_resample(phi: torch.Tensor, kappa: float, lam: float, trajectories: int,
                 generator, eps: float = 0.1) -> torch.Tensor:
    """Move fields ``phi (B, *L)`` to p[κ] by ``trajectories`` HMC trajectories of length ≈ 1
    (exact in the limit of many; each leaves p[κ] invariant); float64."""
    x = phi.to(torch.float64)
    for _ in range(int(trajectories)):
        x = hmc_update(x, float(kappa), float(lam), eps, unit_trajectory_steps(eps), generator).phi
    return x


@torch.no_grad()
def hmc_thermalise(phi: torch.Tensor, kappa: float, lam: float, trajectories: int,
                   generator, eps: float = 0.1, low: float = 0.6, high: float = 0.9):
    """:func:`hmc_resample` from a start far from p[κ] (e.g. naively upsampled fields, where a
    fixed leapfrog step of 0.1 is accepted in under 1 % of the trajectories at 64²): the step
    is adapted between trajectories — ×0.7 while the batch acceptance is below ``low``,
    ×1.15 (at most ``eps``) above ``high`` — at a trajectory length of about 1.
    Returns ``(fields (B, *L) float64, final step, acceptance of the last trajectory)``."""
    x, step, acc = phi.to(torch.float64), float(eps), float("nan")
    for _ in range(int(trajectories)):
        r = hmc_update(x, float(kappa), float(lam), step, unit_trajectory_steps(step),
                       generator)
        x, acc = r.phi, float(r.accepted.double().mean())
        if acc < low:
            step *= 0.7
        elif acc > high:
            step = min(step * 1.15, float(eps))
    return x, step, acc


class LearnableKappa(nn.Module):
    """Hopping parameters κ[t], one per parameter point t of the run's grid, learnable, with
    the reference set for E_{p[κ]}[∂S/∂κ].

    Parameters
    ----------
    kappas, lam : sequences of float (n_T,)
        Initial κ; quartic couplings λ (fixed).
    reference : Tensor (n_T, M, *L), optional
        Exact samples of p[κ] at the initial κ, the same on every rank. Without it the
        expectation falls back to the caller's fields (:meth:`expected_dS`).
    reweight_ess : float  R_W
    hmc_trajectories : int  HMC trajectories of a resampling
    seed, stream : int  run seed and a stream index (the level); with the class's ``purpose``
        they key the resampling's random numbers
    eps : sequence of float (n_T,), optional
        Leapfrog step of the resampling per point (default 0.1; trajectory length ≈ 1), e.g.
        the one :func:`hmc_thermalise` arrived at
    """

    purpose = "reference"

    def __init__(self, kappas, lam, reference=None, reweight_ess: float = 0.85,
                 hmc_trajectories: int = 20, seed: int = 0, stream: int = 0, eps=None):
        super().__init__()
        self.kappa = nn.Parameter(torch.tensor([float(k) for k in kappas], dtype=torch.float32))
        self.register_buffer("lam", torch.tensor([float(x) for x in lam], dtype=torch.float32))
        self.reweight_ess, self.hmc_trajectories = float(reweight_ess), int(hmc_trajectories)
        self.seed, self.stream = int(seed), int(stream)
        if reference is not None:
            self.register_buffer("ref_phi", reference.detach().to(torch.float64).clone())
            self.register_buffer("ref_kappa", torch.tensor([float(k) for k in kappas],
                                                           dtype=torch.float64))
            self.register_buffer("refreshes", torch.zeros(len(self.kappa), dtype=torch.int64))
            self.register_buffer("ref_eps", torch.tensor(
                [float(e) for e in (eps if eps is not None else [0.1] * len(self.kappa))],
                dtype=torch.float64))
        else:
            self.ref_phi = None

    def reweighting(self, t: int) -> tuple[float, float]:
        """(E_{p[κ]}[∂S/∂κ], ESS/N) of the reference set reweighted from κ_ref to the current
        κ[t] (eq. 36)."""
        with torch.no_grad():
            d = dS_dkappa(self.ref_phi[t])
            log_w = -(self.kappa[t].double() - self.ref_kappa[t]) * d
            w = torch.softmax(log_w, 0)
            return float((w * d).sum()), float(1.0 / (w * w).sum() / len(w))

    def refresh(self, t: int) -> bool:
        """Move the reference set of point ``t`` to the current κ by HMC when the reweighting's
        ESS/N is below R_W; returns whether it did. Same result on every rank."""
        return self.ref_phi is not None and self._refreshed_reweighting(t)[2]

    def _refreshed_reweighting(self, t: int) -> tuple[float, float, bool]:
        """:meth:`reweighting` after resampling the set if its ESS/N is below R_W, and
        whether it resampled."""
        est, ess = self.reweighting(t)
        if ess >= self.reweight_ess:
            return est, ess, False
        from ..rng import torch_generator
        gen = torch_generator(self.seed, self.purpose, self.stream, t, int(self.refreshes[t]),
                              device=self.ref_phi.device)
        kappa, eps = float(self.kappa[t].detach()), float(self.ref_eps[t])
        self.ref_phi[t] = hmc_resample(self.ref_phi[t], kappa, float(self.lam[t]),
                                       self.hmc_trajectories, gen, eps)
        self.ref_kappa[t] = kappa
        self.refreshes[t] += 1
        return (*self.reweighting(t), True)

    def expected_dS(self, t: int, fallback: torch.Tensor) -> torch.Tensor:
        """E_{p[κ[t]]}[∂S/∂κ] as a float64 scalar without gradient: the reweighted reference
        set (refreshed first if needed), else the mean over ``fallback (B, *L)``."""
        if self.ref_phi is None:
            return dS_dkappa(fallback).mean().detach()
        est = self._refreshed_reweighting(t)[0]
        return torch.tensor(est, dtype=torch.float64, device=fallback.device)

    def values(self) -> list[float]:
        return [float(k) for k in self.kappa.detach().cpu()]
