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
  a surrogate term ``κ_L · stopgrad(E[∂S_L/∂κ])`` gives that gradient, the expectation from
  the reweighted reference set of :class:`hpc_rg.flows.couplings.LearnableKappa` (at first
  the stored Monte Carlo fields at the fine κ).

The pathwise term uses Langevin fields (biased by the finite step; they only steer the
optimisation) started from rows of the reference set, which is exact at a κ_ref close to
κ_L: chains started from the stored fields at the fine κ would lag behind κ_L, and the
explicit −∂S/∂κ of D_KL^(I) on lagging fields against the exact E[∂S/∂κ] of D_KL^(II)
pushes κ_L further the way it moved (measured: κ = 0.30, broken, ran to 0.16).
Exactness later needs coarse fields exactly from p_L[κ_L]: :func:`resample_coarse` moves
stored Monte Carlo fields there by HMC (:func:`hpc_rg.mc.hmc.hmc_update`), which leaves
p_L[κ_L] invariant.
"""

from __future__ import annotations

import math

import torch

from ..models import phi4
from .couplings import LearnableKappa, dS_dkappa, hmc_resample

__all__ = ["CoarseCouplings", "resample_coarse", "dS_dkappa"]

#: Move stored coarse fields to p_L[κ_L] (HMC; see :func:`hpc_rg.flows.couplings.hmc_resample`).
resample_coarse = hmc_resample


class CoarseCouplings(LearnableKappa):
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
    reference, reweight_ess, hmc_trajectories, seed
        The log Z reference set of :class:`~hpc_rg.flows.couplings.LearnableKappa`.
    """

    purpose = "ir-reference"

    def __init__(self, kappas, lam, langevin_steps: int = 40, grad_steps: int = 5,
                 tau: float = 0.05, reference=None, reweight_ess: float = 0.85,
                 hmc_trajectories: int = 20, seed: int = 0):
        super().__init__(kappas, lam, reference, reweight_ess, hmc_trajectories, seed)
        self.langevin_steps, self.grad_steps = int(langevin_steps), int(grad_steps)
        self.tau = float(tau)

    def _langevin(self, phi, kappa, lam, n, generator):
        for _ in range(n):
            noise = torch.randn(phi.shape, generator=generator, dtype=phi.dtype,
                                device=phi.device)
            phi = phi + self.tau * phi4.force(phi, kappa, lam) + math.sqrt(2 * self.tau) * noise
        return phi

    def move(self, t: int, phi: torch.Tensor, generator=None) -> torch.Tensor:
        """Coarse fields near p_L[κ_L[t]], differentiable in κ_L[t] through the last
        ``grad_steps`` Langevin steps. With a reference set the chains start from its rows
        (exact at κ_ref, which the refresh keeps close to κ_L: Bauer's persistent,
        re-thermalised Langevin chains), drawn with ``generator``; else from ``phi (B, *L)``."""
        if self.ref_phi is not None:
            self.refresh(t)
            idx = torch.randint(0, self.ref_phi.shape[1], (phi.shape[0],), generator=generator,
                                device=phi.device)
            phi = self.ref_phi[t][idx].to(phi.dtype)
        kappa, lam = self.kappa[t].to(phi.dtype), self.lam[t].to(phi.dtype)
        with torch.no_grad():
            phi = self._langevin(phi, kappa.detach(), lam, self.langevin_steps - self.grad_steps,
                                 generator)
        return self._langevin(phi, kappa, lam, self.grad_steps, generator)

    def loss_terms(self, t: int, phi: torch.Tensor) -> torch.Tensor:
        """Per-configuration ``−S_L[κ_L](φ) + κ_L · stopgrad(E[∂S/∂κ])``, shape (B,): the
        coarse part of D_KL^(I) and the eq. (34) surrogate of D_KL^(II)."""
        kappa = self.kappa[t].to(torch.float64)
        d = self.expected_dS(t, phi)
        return -phi4.action(phi, kappa, self.lam[t].to(torch.float64)) + kappa * d
