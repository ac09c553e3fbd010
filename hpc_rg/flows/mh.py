"""Exact-likelihood corrections for flow samples: independence Metropolis-Hastings,
importance-weight diagnostics and Hamiltonian Monte Carlo in the flow's latent space.

Notation: proposals ``x ~ q`` (the flow, normalised, ``log_q`` exact) and an unnormalised
target ``p~ = Z p`` (``log_p = -S``). Log importance weights ``log w = log_p - log_q``.

* :func:`independence_mh` - Bauer et al. (2024) eq. (10): accept ``x'`` with probability
  ``min(1, w(x') / w(x))``; a chain of any length is built batch after batch.
* :func:`ess_per_n` - Bauer eq. (12), ``ESS/N = (sum w)^2 / (N sum w^2)``.
* :func:`reverse_kl_estimate` - Bauer eq. (32) without the Jacobian split:
  ``mean(log q - log p~) = KL(q || p) - log Z``.
* :func:`log_z_estimate` - ``log mean w``, an unbiased-in-``Z`` estimate of ``log Z``
  (the estimate of ``log Z`` itself is biased low by Jensen).
* :func:`latent_hmc` - Shiina et al. (2021) sec. III C (after Li & Wang): HMC on the latent
  energy ``E_z(z) = -log p~(f(z)) - log |det df/dz|``, whose ``f``-image is distributed
  as ``p``.

All log-weight functions accept torch tensors or NumPy arrays and work in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
import torch

from hpc_rg.analysis.stats import integrated_autocorr_time

__all__ = ["MHResult", "independence_mh", "ess_per_n", "reverse_kl_estimate", "log_z_estimate",
           "chain_autocorr_time", "HMCResult", "latent_hmc", "make_pullback"]


def _f64(a) -> torch.Tensor:
    if torch.is_tensor(a):
        return a.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
    return torch.as_tensor(np.asarray(a, dtype=np.float64)).reshape(-1)


# ----------------------------------------------------------------------------------------
# independence Metropolis-Hastings
# ----------------------------------------------------------------------------------------

@dataclass
class MHResult:
    """Result of :func:`independence_mh` over one batch of ``B`` proposals.

    Attributes
    ----------
    index : LongTensor (B,)
        Chain state after each step as a global proposal index (``index_offset`` + position
        in this batch); the carried-over state keeps its own index (``index0``, -1 if
        unknown).
    accepted : BoolTensor (B,)
        Whether step ``i`` accepted proposal ``i`` (the first proposal of a fresh chain is
        taken as the start and counted as accepted, but not in ``acceptance_rate``).
    log_w : Tensor (B,), float64
        Log weight of the chain state after each step.
    samples : Tensor (B, ...) or None
        Chain configurations (``x_prop`` gathered; ``x0`` where the carried state stays).
        None if ``x_prop`` was None.
    n_proposed, n_accepted : int
        Accept/reject decisions made in this batch and how many accepted.
    x_last, logw_last, index_last :
        The chain state to continue with (pass as ``x0``, ``logw0``, ``index0``).
    """

    index: torch.Tensor
    accepted: torch.Tensor
    log_w: torch.Tensor
    samples: Optional[torch.Tensor]
    n_proposed: int
    n_accepted: int
    x_last: Optional[torch.Tensor]
    logw_last: float
    index_last: int

    @property
    def acceptance_rate(self) -> float:
        """``n_accepted / n_proposed`` (nan if no decision was made)."""
        return self.n_accepted / self.n_proposed if self.n_proposed else float("nan")

    def continue_kwargs(self) -> dict:
        """``dict(x0=..., logw0=..., index0=...)`` for the next :func:`independence_mh` call."""
        return {"x0": self.x_last, "logw0": self.logw_last, "index0": self.index_last}


def independence_mh(x_prop: Optional[torch.Tensor], log_q, log_p, generator: Optional[torch.Generator] = None,
                    x0: Optional[torch.Tensor] = None, logw0: Optional[float] = None, *,
                    index0: int = -1, index_offset: int = 0) -> MHResult:
    """Independence Metropolis-Hastings chain over a batch of proposals taken in order.

    Step ``i`` proposes ``x_prop[i]`` and accepts with probability
    ``min(1, w_i / w_cur)``, ``log w = log_p - log_q`` (Bauer et al. 2024, eq. 10).

    Parameters
    ----------
    x_prop : Tensor (B, ...) or None
        Proposals (i.i.d. from ``q``). May be None: then only indices/weights are returned.
    log_q : (B,) exact log density of the proposals under the flow.
    log_p : (B,) unnormalised target log density, ``-S(x_prop)``.
    generator : torch.Generator, optional
        Source of the uniforms: exactly ``B`` float64 uniforms are drawn per call (the first
        is unused for a fresh chain), on the generator's device. With a CPU generator a
        chain built from several batches is bit-identical to one call on the concatenated
        batch.
    x0, logw0 : chain state to continue (from :attr:`MHResult.x_last`, ``logw_last``).
        If ``logw0`` is None the chain starts fresh at ``x_prop[0]``.
    index0 : int
        Global index of the carried state (``MHResult.index_last``).
    index_offset : int
        Global index of ``x_prop[0]``.

    Returns
    -------
    MHResult
    """
    lw = _f64(log_p) - _f64(log_q)
    n = lw.numel()
    if n == 0:
        raise ValueError("independence_mh: empty batch")
    if x_prop is not None and x_prop.shape[0] != n:
        raise ValueError(f"independence_mh: {x_prop.shape[0]} proposals but {n} log weights")
    dev = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(n, generator=generator, dtype=torch.float64, device=dev).cpu()
    log_u = torch.log(u).tolist()
    lwn = lw.tolist()

    fresh = logw0 is None  # local chain index below: -1 = the carried state
    if fresh:
        cur_i, cur_lw = 0, float(lwn[0])
        start = 1
    else:
        cur_i, cur_lw = -1, float(logw0)
        start = 0
    n_acc = 0
    idx_l, lw_l, acc_l = [0] * n, [0.0] * n, [False] * n
    if fresh:
        idx_l[0], lw_l[0], acc_l[0] = 0, cur_lw, True
    for i in range(start, n):
        li = lwn[i]
        # accept iff log u < log w_i - log w_cur; NaN weights are rejected; a current state
        # with log w = -inf accepts any finite proposal
        d = li - cur_lw if li != cur_lw else 0.0
        if log_u[i] < d:
            cur_i, cur_lw = i, li
            acc_l[i] = True
            n_acc += 1
        idx_l[i] = cur_i
        lw_l[i] = cur_lw
    idx = np.asarray(idx_l, dtype=np.int64)
    acc = np.asarray(acc_l, dtype=bool)
    chain_lw = np.asarray(lw_l, dtype=np.float64)

    idx_t = torch.from_numpy(idx)
    glob = torch.where(idx_t >= 0, idx_t + int(index_offset), torch.full_like(idx_t, int(index0)))
    samples = None
    x_last = x0
    if x_prop is not None:
        gather = idx_t.clamp(min=0).to(x_prop.device)
        samples = x_prop.index_select(0, gather)
        if (idx_t < 0).any():
            if x0 is None:
                raise ValueError("independence_mh: continuing a chain with x_prop needs x0")
            keep = (idx_t < 0).to(x_prop.device)
            samples[keep] = x0.to(device=samples.device, dtype=samples.dtype).unsqueeze(0).expand_as(samples[keep])
        x_last = x_prop[cur_i].clone() if cur_i >= 0 else x0
    index_last = int(cur_i + index_offset) if cur_i >= 0 else int(index0)
    return MHResult(index=glob, accepted=torch.from_numpy(acc), log_w=torch.from_numpy(chain_lw),
                    samples=samples, n_proposed=n - start, n_accepted=n_acc, x_last=x_last,
                    logw_last=cur_lw, index_last=index_last)


def chain_autocorr_time(observable, c: float = 6.0):
    """Integrated autocorrelation time of an observable along an MH/HMC chain.

    ``observable`` has the chain steps along axis 0 (further axes: independent series,
    e.g. HMC chains, each getting its own tau). Wraps
    :func:`hpc_rg.analysis.stats.integrated_autocorr_time`; returns ``(tau, err, window)``
    with ``var(mean) = 2 tau var / n``. For an independence sampler with acceptance
    ``a`` (roughly) ``tau ~ 1/a - 1/2``.
    """
    if torch.is_tensor(observable):
        observable = observable.detach().cpu().to(torch.float64).numpy()
    return integrated_autocorr_time(np.asarray(observable, dtype=np.float64), axis=0, c=c)


# ----------------------------------------------------------------------------------------
# weight diagnostics
# ----------------------------------------------------------------------------------------

def ess_per_n(log_w) -> float:
    """Normalised effective sample size ``(sum w)^2 / (N sum w^2)`` (Bauer eq. 12).

    Computed from log weights with log-sum-exp (no overflow for any scale). Non-finite
    weights of ``-inf`` count as zero weight; NaN gives NaN.
    """
    lw = _f64(log_w)
    n = lw.numel()
    if n == 0:
        return float("nan")
    a = torch.logsumexp(lw, 0)
    b = torch.logsumexp(2.0 * lw, 0)
    if not torch.isfinite(a):
        return float("nan")
    return float(torch.exp(2.0 * a - b - math.log(n)))


def log_z_estimate(log_w) -> float:
    """``log( (1/N) sum_i w_i )``: the log of the importance-sampling estimate of
    ``Z = int p~`` (normalised ``q``)."""
    lw = _f64(log_w)
    return float(torch.logsumexp(lw, 0) - math.log(lw.numel()))


def reverse_kl_estimate(log_q, log_p) -> float:
    """``mean(log q - log p~)`` over samples ``x ~ q``.

    Equals ``KL(q || p) - log Z`` in expectation (``p = p~ / Z``); since ``KL >= 0`` it is an
    upper bound on ``-log Z`` (the variational free energy), and it is the reverse-KL loss of
    Bauer eq. (32) up to the constant ``log Z``.
    """
    return float((_f64(log_q) - _f64(log_p)).mean())


# ----------------------------------------------------------------------------------------
# HMC in latent space
# ----------------------------------------------------------------------------------------

def make_pullback(log_prob: Callable[[torch.Tensor], torch.Tensor],
                  flow: Callable[[torch.Tensor], tuple]) -> Callable[[torch.Tensor], torch.Tensor]:
    """Latent log density ``z -> log p~(f(z)) + log|det df/dz|``.

    ``flow(z)`` must return ``(x, logdet)`` with ``logdet`` of shape (B,). This is
    ``-E_z(z)`` of Shiina et al. sec. III B/C (there written with the latent prior and the
    model density, ``-ln p_g(z) - ln p~(f(z)) + ln q(f(z))``, which reduces to the same).
    """
    def pullback(z: torch.Tensor) -> torch.Tensor:
        x, logdet = flow(z)
        return log_prob(x) + logdet
    return pullback


@dataclass
class HMCResult:
    """Result of :func:`latent_hmc`.

    Attributes
    ----------
    z : Tensor (B, ...)
        Final states.
    log_prob : Tensor (B,)
        Pullback log density of the final states.
    samples : Tensor (T, B, ...) or None
        State after every trajectory (if ``keep_samples``).
    observables : Tensor (T, B, ...) or None
        ``observable(z)`` after every trajectory (if given).
    accepted : BoolTensor (T, B)
    acceptance_rate : float
        Mean over trajectories and chains.
    """

    z: torch.Tensor
    log_prob: torch.Tensor
    samples: Optional[torch.Tensor]
    observables: Optional[torch.Tensor]
    accepted: torch.Tensor
    acceptance_rate: float


def _logp_and_grad(f, z):
    with torch.enable_grad():
        zz = z.detach().requires_grad_(True)
        lp = f(zz)
        if lp.dim() != 1 or lp.shape[0] != z.shape[0]:
            raise ValueError(f"pullback_log_prob must return shape (B,), got {tuple(lp.shape)}")
        g, = torch.autograd.grad(lp.sum(), zz)
    return lp.detach(), g.detach()


def latent_hmc(pullback_log_prob: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor,
               n_trajectories: int, step_size: Union[float, torch.Tensor], n_steps: int,
               generator: Optional[torch.Generator] = None, *,
               observable: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
               keep_samples: bool = True) -> HMCResult:
    """Hamiltonian Monte Carlo on ``pullback_log_prob`` (one independent chain per row).

    Each trajectory draws momenta ``p ~ N(0, 1)``, runs ``n_steps`` leapfrog steps of size
    ``step_size`` with the force ``grad_z log pi(z)`` from autograd, and accepts per chain
    with probability ``min(1, exp(-dH))``, ``H = -log pi(z) + p^2/2``. Trajectories with a
    non-finite ``H`` are rejected.

    Parameters
    ----------
    pullback_log_prob : callable ``(B, ...) -> (B,)``
        Latent log density, e.g. from :func:`make_pullback`. Rows must not interact
        (the gradient of the batch sum is used), so networks must be in eval mode.
    z0 : Tensor (B, ...)
        Initial states (any floating dtype; float64 recommended for the energy test).
    n_trajectories, n_steps : int
    step_size : float or Tensor (B,)
        Per-chain step sizes allowed.
    generator : torch.Generator, optional
        Momenta and accept uniforms (drawn on ``z0``'s device).
    observable : callable ``(B, ...) -> (B, ...)``, optional
        Recorded after every trajectory (e.g. ``lambda z: flow(z)[0].pow(2).mean(...)``).
    keep_samples : bool
        Keep every state (memory ``T * B * N``).

    Returns
    -------
    HMCResult
    """
    z = z0.detach().clone()
    B = z.shape[0]
    bshape = (B,) + (1,) * (z.dim() - 1)
    eps = step_size
    if torch.is_tensor(eps):
        eps = eps.to(device=z.device, dtype=z.dtype).reshape(bshape)
    axes = tuple(range(1, z.dim()))
    lp, g = _logp_and_grad(pullback_log_prob, z)
    samples, obs, accs = [], [], []
    for _ in range(int(n_trajectories)):
        p = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
        h0 = -lp.to(torch.float64) + 0.5 * (p.to(torch.float64) ** 2).sum(dim=axes)
        zn, gn = z, g
        pn = p + 0.5 * eps * gn
        for k in range(int(n_steps)):
            zn = zn + eps * pn
            lpn, gn = _logp_and_grad(pullback_log_prob, zn)
            if k < n_steps - 1:
                pn = pn + eps * gn
        pn = pn + 0.5 * eps * gn
        if n_steps == 0:
            lpn = lp
        h1 = -lpn.to(torch.float64) + 0.5 * (pn.to(torch.float64) ** 2).sum(dim=axes)
        dh = h1 - h0
        u = torch.rand(B, generator=generator, dtype=torch.float64, device=z.device)
        acc = torch.isfinite(dh) & (torch.log(u) < -dh)
        m = acc.reshape(bshape)
        z = torch.where(m, zn, z)
        g = torch.where(m, gn, g)
        lp = torch.where(acc, lpn, lp)
        accs.append(acc)
        if keep_samples:
            samples.append(z.clone())
        if observable is not None:
            with torch.no_grad():
                obs.append(observable(z).detach())
    accepted = torch.stack(accs) if accs else torch.zeros((0, B), dtype=torch.bool)
    return HMCResult(z=z, log_prob=lp, samples=torch.stack(samples) if samples else None,
                     observables=torch.stack(obs) if obs else None, accepted=accepted,
                     acceptance_rate=float(accepted.to(torch.float64).mean()) if accs else float("nan"))
