"""IR matching (Bauer et al. 2024, sec. V–VI): a learnable hopping parameter on the coarse
lattice, for φ⁴ in the Bauer parametrization.

The flow maps coarse fields φ ~ p_L[κ_L] to the fine lattice whose action keeps its own
couplings; κ_L is trained together with the first level so that the coarse distribution is
the one the level maps best (the RG moves couplings, so the best κ_L is not the fine κ). The
model density of a fine field is ``log q = log p_L[κ_L](φ) + log q_level``, and with
``log p_L[κ] = −S_L[κ](φ) − log Z_L[κ]`` the reverse KL splits (Bauer eqs. 31–33) into

* D_KL^(I) = E_{φ ~ p_L[κ_L]}[−S_L[κ_L](φ) + log q_level − log p̃_fine(T(φ))], differentiated
  path-wise through the coarse sampler: the fields are moved to κ_L by Langevin dynamics
  (eq. 37) whose last steps are back-propagated through;
* D_KL^(II) = log Z_fine − log Z_L[κ_L], with ∇ log Z_L = −E_{p_L[κ_L]}[∂S_L/∂κ] (eq. 34):
  a surrogate term ``κ_L · stopgrad(E[∂S_L/∂κ])`` gives that gradient. The expectation is
  taken over a separate *reference set* of exact samples of p_L[κ_ref] (at first the stored
  Monte Carlo fields at the fine κ), reweighted to the current κ_L (eq. 36; the action is
  linear in κ, so log w = −(κ_L − κ_ref)·∂S/∂κ); when the reweighting's ESS/N falls under
  R_W the set is moved to κ_L by HMC and κ_ref := κ_L (Bauer app. C: R_W = 0.85).

The pathwise term uses Langevin fields (biased by the finite step; they only steer the
optimisation).
Exactness later needs coarse fields exactly from p_L[κ_L]: :func:`resample_coarse` moves
stored Monte Carlo fields there by HMC (:func:`hpc_rg.mc.hmc.hmc_update`), which leaves
p_L[κ_L] invariant.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..mc.hmc import hmc_update
from ..models import phi4
from ..models.lattice import forward_bond_sum

__all__ = ["CoarseCouplings", "resample_coarse", "dS_dkappa"]


def dS_dkappa(phi: torch.Tensor) -> torch.Tensor:
    """``∂S/∂κ = −2 Σ_x Σ_μ φ_x φ_{x+μ}`` per configuration (Bauer eq. 35), shape (B,)."""
    p = phi.to(torch.float64)
    return -2.0 * (p * forward_bond_sum(p)).sum(dim=tuple(range(1, p.dim())))


class CoarseCouplings(nn.Module):
    """Learnable coarse hopping parameters κ_L, one per parameter point of the run's grid.

    Parameters
    ----------
    kappas : sequence of float
        Initial values (the fine couplings: training starts with equal couplings).
    lam : sequence of float
        Quartic couplings, kept fixed on both lattices (as in Bauer et al.'s results).
    langevin_steps, grad_steps : int
        Langevin steps per training step, of which the last ``grad_steps`` are
        back-propagated through.
    tau : float
        Langevin step (fictitious time) τ of eq. (37).
    reference : Tensor (n_T, M, *L), optional
        Exact samples of p_L[κ] at the initial couplings for the log Z gradient (eq. 36);
        identical on every rank (the resampling is keyed by (seed, point, refresh count), not
        by rank), kept in buffers so a DeepSpeed checkpoint restores them. Without it the
        expectation is the mean over the Langevin fields of the step.
    reweight_ess : float
        R_W: resample the reference set when the reweighting's ESS/N drops below it.
    hmc_trajectories : int
        HMC trajectories that move the reference set to the current κ_L.
    seed : int
        Run seed for the resampling's random numbers.
    """

    def __init__(self, kappas, lam, langevin_steps: int = 40, grad_steps: int = 5,
                 tau: float = 0.05, reference=None, reweight_ess: float = 0.85,
                 hmc_trajectories: int = 20, seed: int = 0):
        super().__init__()
        self.kappa = nn.Parameter(torch.tensor([float(k) for k in kappas], dtype=torch.float32))
        self.register_buffer("lam", torch.tensor([float(x) for x in lam], dtype=torch.float32))
        self.langevin_steps, self.grad_steps = int(langevin_steps), int(grad_steps)
        self.tau = float(tau)
        self.reweight_ess, self.hmc_trajectories, self.seed = float(reweight_ess), \
            int(hmc_trajectories), int(seed)
        if reference is not None:
            n_T = len(self.kappa)
            self.register_buffer("ref_phi", reference.detach().to(torch.float64).clone())
            self.register_buffer("ref_kappa", self.kappa.detach().to(torch.float64).clone())
            self.register_buffer("refreshes", torch.zeros(n_T, dtype=torch.int64))
        else:
            self.ref_phi = None

    def _langevin(self, phi, kappa, lam, n, generator):
        for _ in range(n):
            noise = torch.randn(phi.shape, generator=generator, dtype=phi.dtype,
                                device=phi.device)
            phi = phi + self.tau * phi4.force(phi, kappa, lam) + math.sqrt(2 * self.tau) * noise
        return phi

    def move(self, t: int, phi: torch.Tensor, generator=None) -> torch.Tensor:
        """Langevin-evolve coarse fields ``phi (B, *L)`` at κ_L[t]; differentiable in κ_L[t]
        through the last ``grad_steps`` steps."""
        kappa, lam = self.kappa[t].to(phi.dtype), self.lam[t].to(phi.dtype)
        with torch.no_grad():
            phi = self._langevin(phi, kappa.detach(), lam, self.langevin_steps - self.grad_steps,
                                 generator)
        return self._langevin(phi, kappa, lam, self.grad_steps, generator)

    def reweighting(self, t: int) -> tuple[float, float]:
        """(E_{p_L[κ_L]}[∂S/∂κ], ESS/N) of the reference set reweighted from κ_ref to the
        current κ_L[t] (eq. 36)."""
        with torch.no_grad():
            d = dS_dkappa(self.ref_phi[t])
            log_w = -(self.kappa[t].double() - self.ref_kappa[t]) * d
            w = torch.softmax(log_w, 0)
            return float((w * d).sum()), float(1.0 / (w * w).sum() / len(w))

    def refresh(self, t: int) -> bool:
        """Move the reference set of point ``t`` to κ_L by HMC when the reweighting's ESS/N
        is below R_W; returns whether it did. Same result on every rank."""
        if self.ref_phi is None or self.reweighting(t)[1] >= self.reweight_ess:
            return False
        from ..rng import torch_generator
        gen = torch_generator(self.seed, "ir-reference", t, int(self.refreshes[t]),
                              device=self.ref_phi.device)
        kappa = float(self.kappa[t])
        self.ref_phi[t] = resample_coarse(self.ref_phi[t], kappa, float(self.lam[t]),
                                          self.hmc_trajectories, gen)
        self.ref_kappa[t] = kappa
        self.refreshes[t] += 1
        return True

    def loss_terms(self, t: int, phi: torch.Tensor) -> torch.Tensor:
        """Per-configuration ``−S_L[κ_L](φ) + κ_L · stopgrad(E[∂S/∂κ])``, shape (B,): the
        coarse part of D_KL^(I) and the eq. (34) surrogate of D_KL^(II). E[∂S/∂κ] from the
        reweighted reference set when there is one (after :meth:`refresh`), else the mean over
        ``phi``."""
        kappa = self.kappa[t].to(torch.float64)
        if self.ref_phi is not None:
            self.refresh(t)
            d = torch.tensor(self.reweighting(t)[0], dtype=torch.float64, device=phi.device)
        else:
            d = dS_dkappa(phi).mean().detach()
        return -phi4.action(phi, kappa, self.lam[t].to(torch.float64)) + kappa * d

    def values(self) -> list[float]:
        return [float(k) for k in self.kappa.detach().cpu()]


@torch.no_grad()
def resample_coarse(phi: torch.Tensor, kappa: float, lam: float, trajectories: int,
                    generator, eps: float = 0.1, n_steps: int = 10) -> torch.Tensor:
    """Move coarse fields to p_L[κ] exactly (in the limit of many trajectories) by HMC
    trajectories that leave p_L[κ] invariant; float64, shape of ``phi``."""
    x = phi.to(torch.float64)
    for _ in range(int(trajectories)):
        x = hmc_update(x, float(kappa), float(lam), eps, n_steps, generator).phi
    return x
