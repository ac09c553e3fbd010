"""UV matching (Bauer et al. 2024, appendix A): learnable *fine* hopping parameters, for φ⁴
in the Bauer parametrization.

The coarse couplings stay fixed (the Monte Carlo ensemble's); each level L → 2L learns, with
its flow, the hopping parameter κ_2L of the fine action it samples, starting from the
previous level's value (level 1: the grid's κ). The target moves towards the flow's
push-forward, so the chain L → 2L → 4L … samples p_2L[κ_2L], p_4L[κ_4L], … — couplings that
the training chose, recorded per level (near a transition they move towards the critical
coupling: Bauer Fig. 10b). With ``S[κ] = S[κ₀] + (κ − κ₀) ∂S/∂κ`` the reverse KL
``E_q[log q + S_2L[κ](φ)] + log Z_2L[κ]`` has the per-configuration terms

    ``(κ − κ₀) · ∂S/∂κ(φ) − κ · stopgrad(E_{p[κ]}[∂S/∂κ])``

on top of the fixed-κ₀ loss, the second the eq. (34) surrogate for ``+log Z_2L[κ]``. Its
expectation comes from a reference set of exact fine-lattice samples (HMC, thermalised from
the naively upsampled coarse pool at κ₀), reweighted and resampled as in
:class:`hpc_rg.flows.couplings.LearnableKappa`.
"""

from __future__ import annotations

import torch

from .couplings import LearnableKappa, dS_dkappa, hmc_thermalise
from .upsample import upsample

__all__ = ["FineCouplings", "fine_reference"]


class FineCouplings(LearnableKappa):
    """Learnable fine hopping parameters κ_2L of one level, one per parameter point.

    ``kappas`` are the initial values κ₀ (at which the level's fine target ``log p~`` is
    evaluated, :class:`hpc_rg.flows.sampler.FieldModel` at size 2L); other parameters as in
    :class:`~hpc_rg.flows.couplings.LearnableKappa`.
    """

    purpose = "uv-reference"

    def __init__(self, kappas, lam, reference=None, reweight_ess: float = 0.85,
                 hmc_trajectories: int = 20, seed: int = 0, stream: int = 0, eps=None):
        super().__init__(kappas, lam, reference, reweight_ess, hmc_trajectories, seed, stream,
                         eps)
        self.register_buffer("kappa0", torch.tensor([float(k) for k in kappas],
                                                    dtype=torch.float64))

    def loss_terms(self, t: int, fine: torch.Tensor) -> torch.Tensor:
        """Per-configuration ``(κ − κ₀)·∂S/∂κ(φ) − κ·stopgrad(E_{p[κ]}[∂S/∂κ])``, (B,)."""
        kappa = self.kappa[t].to(torch.float64)
        return (kappa - self.kappa0[t]) * dS_dkappa(fine) - kappa * self.expected_dS(t, fine)

    def log_p_shift(self, t: int, fine: torch.Tensor) -> torch.Tensor:
        """``log p~[κ](φ) − log p~[κ₀](φ) = −(κ − κ₀)·∂S/∂κ(φ)``, (B,), no gradient."""
        with torch.no_grad():
            return -(self.kappa[t].double() - self.kappa0[t]) * dS_dkappa(fine)


@torch.no_grad()
def fine_reference(coarse: torch.Tensor, kappas, lam, trajectories: int, seed: int,
                   level: int):
    """Exact samples of p_2L[κ₀[t]] for every point t: the coarse fields ``(n_T, M, *L)``
    naively upsampled and thermalised by ``trajectories`` HMC trajectories with an adapted
    leapfrog step (:func:`~hpc_rg.flows.couplings.hmc_thermalise`: a fixed step of 0.1 is
    almost never accepted from upsampled fields at 64², and the set then keeps the
    upsampled fields' short-range order, biasing κ). The same on every rank (random numbers
    keyed by (seed, level, point)).

    Returns ``(fields (n_T, M, *2L) float64, steps [n_T], last acceptances [n_T])``."""
    from ..rng import torch_generator
    out, steps, accs = [], [], []
    for t in range(coarse.shape[0]):
        gen = torch_generator(seed, "uv-reference-init", level, t, device=coarse.device)
        x, step, acc = hmc_thermalise(upsample(coarse[t].to(torch.float64)), float(kappas[t]),
                                      float(lam[t]), trajectories, gen)
        out.append(x)
        steps.append(step)
        accs.append(acc)
    return torch.stack(out), steps, accs
