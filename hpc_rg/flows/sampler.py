"""MH-corrected flow super-resolution chains ``L → 2L → … → 2^k L`` for one batch at a time.

:class:`FieldModel` translates between the configurations stored in ``samples.h5`` /
``upscaled.h5`` and the field the flow acts on, and supplies the target at every size:

* φ⁴: the flow field is the Bauer field φ (``Φ_stored = scale · φ``; scale = 1 for the Bauer
  parametrization, :func:`hpc_rg.models.phi4.deck_couplings` for Bachtis decks); the target
  at size ``L`` is :class:`~hpc_rg.flows.targets.Phi4Target` with the deck's couplings.
* Ising: the flow field is the relaxation variable x (Shiina eqs. 1-3); coarse spins s are
  turned into ``x ~ p(x|s)`` exactly, so x is distributed by the relaxed Boltzmann density at
  size L; fine x is turned back into spins ``s ~ p(s|x)`` exactly.

:func:`mh_step` runs one level for a batch: proposals ``fine ~ q(·|coarse)`` with
``log w = log p~_2L(fine) − log p~_L(coarse) − log_q(fine|coarse)`` and independence
Metropolis-Hastings (Bauer eq. 10) continuing the chain state of that level. Since the coarse
configurations follow ``p_L`` (Monte Carlo at level 1, the level-k chain at level k+1), the
proposal density of the fine field is ``q(fine) = p_L(coarse) q(fine|coarse)`` and the chain
samples ``p_2L`` (exactly for independent coarse inputs; with correlated inputs — a Markov
chain — the stationary distribution is the same but errors must account for correlations).
:func:`hmc_step` corrects a level by HMC in the flow's latent space instead (Shiina et al. 2021
sec. III C, after Li & Wang): the latent variables of a level are the coarse field and its
noise, ``z = (φ, ζ')``, the target is the pullback ``p~_2L(T(z)) |det ∂T/∂z|``; every output
row is an independent HMC chain started at the flow's proposal for its coarse input.
:class:`LevelStats` accumulates acceptance, ESS/N (eq. 12), the reverse-KL estimate
``log mean w − mean log w`` and can be merged over chains and ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..models.phi4 import deck_couplings
from ..models.spec import SPECS
from .mh import independence_mh, latent_hmc, make_pullback
from .targets import IsingRelaxation, Phi4Target

__all__ = ["FieldModel", "LevelStats", "ChainState", "mh_step", "hmc_step", "propose"]


class FieldModel:
    """Stored configurations ↔ flow field, and the targets, of one parameter point.

    Parameters
    ----------
    model : str  ``model.name``: ``"phi4"`` or ``"ising"`` (the models with flow levels)
    dims : int
    param : float
        The grid value: φ⁴ coupling (kappa or mu2), Ising temperature T.
    model_cfg : ModelConfig (J; phi4 parametrization, kappa, lam)
    alpha : float  Ising relaxation shift (0: automatic, ``2 d β|J| + 0.1``)
    """

    def __init__(self, model: str, dims: int, param: float, model_cfg, alpha: float = 0.0):
        self.model, self.dims, self.param = model, int(dims), float(param)
        self.spec = SPECS.get(model)
        if self.spec is None or not self.spec.flow_scalars:
            raise ValueError(f"flows support phi4 and ising, not {model}")
        self._targets = {}
        self._kappa_at = {}  # φ⁴ IR/UV matching: learned hopping parameter per lattice size
        if self.spec.continuous:
            self.kappa, self.lam, self.scale = deck_couplings(model_cfg, param, self.dims)
        else:  # the Ising relaxation
            self.beta, self.J = 1.0 / float(param), float(model_cfg.J)
            self.alpha = float(alpha) if alpha > 0 else 2 * self.dims * self.beta * abs(self.J) + 0.1

    def set_kappa(self, L: int, kappa: float) -> None:
        """φ⁴: the lattice of size ``L`` has its own hopping parameter (the learned κ_L of IR
        matching, :mod:`hpc_rg.flows.ir_matching`, or a level's fine κ of UV matching,
        :mod:`hpc_rg.flows.uv_matching`); the other sizes keep ``kappa``."""
        if not self.spec.continuous:
            raise ValueError("couplings are learned for phi4 only")
        self._kappa_at[int(L)] = float(kappa)
        self._targets.pop(int(L), None)

    def kappa_at(self, L: int) -> float:
        """φ⁴ hopping parameter of the action at size ``L``."""
        return self._kappa_at.get(int(L), self.kappa)

    def target(self, L: int):
        """The unnormalised target density at linear size ``L`` (cached)."""
        if L not in self._targets:
            if self.spec.continuous:
                self._targets[L] = Phi4Target(self.kappa_at(L), self.lam, self.dims, L)
            else:
                self._targets[L] = IsingRelaxation(L, self.dims, self.beta, self.J, alpha=self.alpha)
        return self._targets[L]

    def log_p(self, x: torch.Tensor) -> torch.Tensor:
        """``log p~`` of flow fields ``x (B, *L)`` at their own size, float64 (B,)."""
        return self.target(x.shape[-1]).log_prob_unnormalised(x.to(torch.float64))

    def to_flow(self, stored: torch.Tensor, generator=None) -> torch.Tensor:
        """Stored configurations → flow field (Ising: exact draw ``x ~ p(x|s)``), float64."""
        if self.spec.continuous:
            return stored.to(torch.float64) / self.scale
        return self.target(stored.shape[-1]).x_from_spins(stored.to(torch.float64), generator)

    def from_flow(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """Flow field → configurations as stored (Ising: exact draw ``s ~ p(s|x)``)."""
        if self.spec.continuous:
            return x.detach().to(torch.float64) * self.scale
        return self.target(x.shape[-1]).spins_from_x(x.detach().to(torch.float64), generator)

    def scalars(self, stored: torch.Tensor, x: torch.Tensor) -> dict:
        """Per-configuration observables (names of the HDF5 contract), float64 (B,)."""
        axes = tuple(range(1, stored.dim()))
        s = stored.to(torch.float64)
        if self.spec.continuous:
            from ..models.phi4 import action
            m = s.mean(axes)
            return {"phi_mean": m, "phi2_mean": (s * s).mean(axes), "magnetization": m,
                    "action": action(x.detach().to(torch.float64), self.kappa_at(x.shape[-1]),
                                     self.lam)}
        t = self.target(s.shape[-1])
        return {"magnetization": s.mean(axes), "energy": t.energy(s)}

    def chain_observable(self, scalars: dict) -> str:
        """The scalar whose integrated autocorrelation time is reported."""
        return self.spec.chain_observable


@dataclass
class LevelStats:
    """Running MH / importance-weight statistics of one level (mergeable)."""

    n_prop: int = 0      # accept/reject decisions
    n_acc: int = 0       # accepted
    n: int = 0           # proposals (weights) seen
    sum_lw: float = 0.0
    lse1: float = -math.inf  # log sum w
    lse2: float = -math.inf  # log sum w^2

    def add(self, log_w: torch.Tensor, n_prop: int = 0, n_acc: int = 0) -> None:
        lw = log_w.detach().to(torch.float64).cpu()
        self.n += lw.numel()
        self.sum_lw += float(lw.sum())
        self.lse1 = float(torch.logaddexp(torch.tensor(self.lse1, dtype=torch.float64),
                                          torch.logsumexp(lw, 0)))
        self.lse2 = float(torch.logaddexp(torch.tensor(self.lse2, dtype=torch.float64),
                                          torch.logsumexp(2 * lw, 0)))
        self.n_prop += int(n_prop)
        self.n_acc += int(n_acc)

    def merge(self, other: "LevelStats") -> "LevelStats":
        lae = lambda a, b: float(torch.logaddexp(torch.tensor(a, dtype=torch.float64),  # noqa: E731
                                                 torch.tensor(b, dtype=torch.float64)))
        return LevelStats(self.n_prop + other.n_prop, self.n_acc + other.n_acc, self.n + other.n,
                          self.sum_lw + other.sum_lw, lae(self.lse1, other.lse1),
                          lae(self.lse2, other.lse2))

    @property
    def acceptance(self) -> float:
        return self.n_acc / self.n_prop if self.n_prop else float("nan")

    @property
    def ess_per_n(self) -> float:
        """``(Σw)² / (N Σw²)`` (Bauer eq. 12)."""
        if not self.n or not math.isfinite(self.lse1):
            return float("nan")
        return math.exp(2 * self.lse1 - self.lse2 - math.log(self.n))

    @property
    def reverse_kl(self) -> float:
        """``log mean w − mean log w``: a consistent estimate of KL(q‖p) ≥ 0 (nats)."""
        if not self.n:
            return float("nan")
        return self.lse1 - math.log(self.n) - self.sum_lw / self.n

    def to_list(self) -> list:
        return [self.n_prop, self.n_acc, self.n, self.sum_lw, self.lse1, self.lse2]

    @classmethod
    def from_list(cls, v) -> "LevelStats":
        return cls(int(v[0]), int(v[1]), int(v[2]), float(v[3]), float(v[4]), float(v[5]))


@dataclass
class ChainState:
    """Independence-MH chain state of one level (None before the first proposal)."""

    x: torch.Tensor | None = None
    logw: float | None = None
    index: int = -1
    stats: LevelStats = field(default_factory=LevelStats)

    def to_dict(self) -> dict:
        return {"x": None if self.x is None else self.x.detach().cpu().clone(),
                "logw": self.logw, "index": self.index, "stats": self.stats.to_list()}

    @classmethod
    def from_dict(cls, d: dict) -> "ChainState":
        return cls(d["x"], d["logw"], int(d["index"]), LevelStats.from_list(d["stats"]))


def propose(level, coarse: torch.Tensor, log_p_coarse: torch.Tensor, fm: FieldModel,
            generator=None):
    """Fine proposals and their log weights: ``(fine, log_w, log_p_fine)``."""
    with torch.no_grad():
        par = next(level.parameters())
        fine, log_q = level.sample(coarse.to(par.dtype), generator)
        log_p = fm.log_p(fine)
        log_w = log_p - log_p_coarse.to(torch.float64) - log_q.to(torch.float64)
    return fine, log_w, log_p


def mh_step(level, coarse: torch.Tensor, log_p_coarse: torch.Tensor, fm: FieldModel,
            state: ChainState, generator=None, index_offset: int = 0, mh: bool = True):
    """One level for one batch of coarse fields.

    Returns ``(fine_chain (B, *2L), log_p_chain (B,), accepted (B,) bool)``: the chain state
    after each step (with ``mh=False`` simply the proposals) and its target log density,
    which is the coarse density of the next level. ``state`` is updated in place.
    """
    fine, log_w, log_p = propose(level, coarse, log_p_coarse, fm, generator)
    if not mh:
        state.stats.add(log_w)
        return fine, log_p, torch.ones(fine.shape[0], dtype=torch.bool)
    kw = {} if state.logw is None else {"x0": state.x, "logw0": state.logw, "index0": state.index}
    res = independence_mh(fine, -log_w.new_zeros(log_w.shape), log_w, generator,
                          index_offset=index_offset, **kw)
    state.stats.add(log_w, res.n_proposed, res.n_accepted)
    state.x, state.logw, state.index = res.x_last, res.logw_last, res.index_last
    samples = res.samples
    # log p of the chain states: the carried state is recomputed, the rest gathered
    log_p_chain = fm.log_p(samples)
    return samples, log_p_chain, res.accepted


def hmc_step(level, coarse: torch.Tensor, log_p_coarse: torch.Tensor, fm: FieldModel,
             state: ChainState, trajectories: int, leapfrog_steps: int, step_size: float,
             generator=None):
    """One level for one batch by latent-space HMC (one independent chain per row).

    Row ``i`` starts at the flow's proposal ``T(coarse_i, ζ'_i)`` (fresh noise) and runs
    ``trajectories`` HMC trajectories of ``leapfrog_steps`` leapfrog steps of size
    ``step_size`` on ``z = (φ, ζ')`` with the pullback target ``log p~_2L(T(z)) +
    log|det ∂T/∂z|`` (:func:`hpc_rg.flows.mh.latent_hmc`); the coarse input is only the
    starting point, so the output is distributed by ``p_2L`` up to the chains' relaxation
    from the flow's distribution, which decays with the number of trajectories. The
    proposals' importance weights (ESS/N, reverse KL of the flow) and the trajectories'
    acceptance go to ``state.stats``.

    Parameters
    ----------
    level : a flow level (parameters need no gradient). Its dtype is the dynamics' dtype:
        float32 is exact for HMC too (the accept/reject uses the same deterministic pullback
        in both directions, accumulated in float64) and 4-5x faster than float64 on CPU
    coarse : (B, *L) flow field; log_p_coarse : (B,) its ``log p~_L``
    trajectories, leapfrog_steps : int; step_size : float (latent units)

    Returns
    -------
    (fine (B, *2L), log_p (B,), accepted (B,) float64 fraction of accepted trajectories)
    """
    par = next(level.parameters())
    c = coarse.to(par.dtype)
    with torch.no_grad():
        zeta, log_pz = level.noise.sample(c.shape, generator)
        fine, logdet = level.transform(c, zeta)
        log_w = fm.log_p(fine) - log_p_coarse.to(torch.float64) - (log_pz - logdet).to(torch.float64)
    B, nc = c.shape[0], c[0].numel()
    c_shape, z_shape = c.shape[1:], zeta.shape[1:]

    def to_fine(z):
        return level.transform(z[:, :nc].reshape(-1, *c_shape), z[:, nc:].reshape(-1, *z_shape))

    z0 = torch.cat([c.reshape(B, -1), zeta.reshape(B, -1)], 1)
    res = latent_hmc(make_pullback(fm.log_p, to_fine), z0, trajectories, step_size,
                     leapfrog_steps, generator, keep_samples=False)
    with torch.no_grad():
        fine, _ = to_fine(res.z)
    accepted = res.accepted.to(torch.float64).mean(0) if trajectories else \
        torch.zeros(B, dtype=torch.float64)
    state.stats.add(log_w, res.accepted.numel(), int(res.accepted.sum()))
    return fine, fm.log_p(fine), accepted.cpu()
