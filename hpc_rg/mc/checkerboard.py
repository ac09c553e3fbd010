"""Checkerboard (red-black) single-site updates: Metropolis and heat-bath.

On a periodic hypercubic lattice with even side lengths the sites split into two colours
by the parity of the sum of their GLOBAL coordinates; sites of one colour have all their
neighbours in the other colour, so a whole colour is updated at once, vectorised over the
lattice and the batch (chain) axis. One sweep = colour 0, then colour 1.

Random numbers come from :class:`hpc_rg.rng.CounterRNG` with counter ``2*sweep + colour``
(``4*sweep + 2*colour + k``, ``k = 0, 1``, for phi^4 which needs two numbers per site), so a
run decomposed into slabs, each drawing with its global site ids and computing colours
from its global origin, is bit-identical to the undecomposed run. The single-domain sweeps
draw once per sweep with the per-site counter ``2*sweep + parity(x)``
(:func:`sweep_uniforms`), which gives every site exactly the number that
``uniform(2*sweep + colour)`` would give it (half the hashing work). Uniforms are float64 for float64 fields and float32 otherwise; a
decomposed sampler must use the same dtype to stay bit-identical.

Layers:

* :func:`update_colour` / :func:`update_colour_phi4` -- elementwise kernels. They take the
  local field (or neighbour sum) computed by the model, possibly in halo mode by the
  domain-decomposed sampler, and the uniforms; no lattice geometry inside.
* :func:`sweep` / :func:`sweep_phi4` -- one full single-domain sweep.
* :class:`CheckerboardSampler` -- holds masks and the RNG for the single-domain case.

Spins: ``float32`` and ``int8`` are both fast (int8: the Ising neighbour sum runs in
int8 with 4x less memory traffic, the update converts to float32 and back; measured
within ~10% of float32 on CPU). ``float64`` works too. Everything is elementwise torch
code on the input's device (CPU or CUDA). Lattice sides must be even globally (callers
of the low-level kernels check; :func:`sweep` checks its own lattice).

Performance notes (CPU, eager mode): comparisons, ``torch.where`` and bool tensors are
several times slower than float arithmetic, and ``exp`` is ~3x slower than ``exp2``, so
the kernels are branch-free float code built on ``copysign`` and ``exp2``; one hash draw
serves both colours of a sweep.
"""

from __future__ import annotations

import math

import torch

from hpc_rg.models.lattice import checkerboard_mask, neighbour_sum, parity, per_chain
from hpc_rg.models.phi4 import delta_action

__all__ = [
    "RULES",
    "update_colour",
    "update_colour_phi4",
    "colour_masks",
    "sweep",
    "sweep_phi4",
    "CheckerboardSampler",
    "spin_counter",
    "phi4_counter",
    "sweep_uniforms",
]

RULES = ("metropolis", "heatbath")

_TWO_OVER_LN2 = 2.0 / math.log(2.0)
_INV_LN2 = 1.0 / math.log(2.0)

_MASK_CACHE: dict = {}


def spin_counter(sweep_index: int, colour: int) -> int:
    """RNG counter of a spin-model half sweep: ``2*sweep + colour``."""
    return 2 * int(sweep_index) + int(colour)


def phi4_counter(sweep_index: int, colour: int, k: int) -> int:
    """RNG counter of a phi^4 half sweep: ``4*sweep + 2*colour + k`` (k=0 proposal, 1 accept)."""
    return 4 * int(sweep_index) + 2 * int(colour) + int(k)


def sweep_uniforms(rng, sweep_index: int, origin=0, dtype=torch.float32, k=None) -> torch.Tensor:
    """All uniforms one sweep needs, from a single hash draw (both colours at once).

    Site ``x`` of colour ``c`` gets exactly ``rng.uniform(2*sweep + c)[x]`` (``k=None``,
    spin models) or ``rng.uniform(4*sweep + 2*c + k)[x]`` (``k`` = 0 proposal, 1 accept,
    phi^4), so the result can replace the two per-colour draws bit for bit.

    Parameters
    ----------
    rng : CounterRNG
        Its ``local_shape`` is the block's lattice shape; ``origin`` its global offset.
    sweep_index : int
    origin : int or tuple, global offset of the block (first lattice axis)
    dtype : torch.float32 or torch.float64
    k : None, 0 or 1

    Returns
    -------
    Tensor, shape (B, *local_shape)
    """
    par = _parity(rng.local_shape, origin, rng.device)
    if k is None:
        return rng.uniform(spin_counter(sweep_index, 0) + par, dtype=dtype)
    return rng.uniform(phi4_counter(sweep_index, 0, k) + 2 * par, dtype=dtype)


def colour_masks(local_shape, origin=0, device="cpu"):
    """Both checkerboard masks ``(mask0, mask1)``, bool tensors of shape ``local_shape``.

    Cached per (shape, origin, device). ``origin`` is the slab's global offset along the
    first lattice axis (or a tuple for all axes), see
    :func:`hpc_rg.models.lattice.checkerboard_mask`.
    """
    key = (tuple(int(n) for n in local_shape), origin if isinstance(origin, int) else tuple(origin),
           str(torch.device(device)))
    if key not in _MASK_CACHE:
        if len(_MASK_CACHE) > 64:
            _MASK_CACHE.clear()
        _MASK_CACHE[key] = tuple(checkerboard_mask(key[0], c, origin, device) for c in (0, 1))
    return _MASK_CACHE[key]


def _parity(local_shape, origin, device) -> torch.Tensor:
    """Cached int64 parity (0/1) of the local block from global coordinates."""
    key = ("parity", tuple(int(n) for n in local_shape),
           origin if isinstance(origin, int) else tuple(origin), str(torch.device(device)))
    if key not in _MASK_CACHE:
        _MASK_CACHE[key] = parity(key[1], origin, device)
    return _MASK_CACHE[key]


def _check_even(shape):
    if any(int(n) % 2 for n in shape):
        raise ValueError(f"checkerboard updates need even lattice sides, got {tuple(shape)}")


def _mask_terms(mask: torch.Tensor, dtype: torch.dtype):
    """Float forms of a colour mask: ``(on, off, half_on)`` (1|0, 0|1, 0.5|0 on|off colour)."""
    key = ("terms", mask.data_ptr(), tuple(mask.shape), str(mask.device), dtype, mask._version)
    hit = _MASK_CACHE.get(key)
    if hit is None or hit[0] is not mask:
        on = mask.to(dtype)
        hit = (mask, on, 1.0 - on, on * 0.5)
        if len(_MASK_CACHE) > 64:
            _MASK_CACHE.clear()
        _MASK_CACHE[key] = hit
    return hit[1:]


def update_colour(spins: torch.Tensor, field: torch.Tensor, beta, u: torch.Tensor,
                  mask: torch.Tensor, rule: str = "metropolis") -> torch.Tensor:
    """Update the sites of one colour in place (Metropolis or heat-bath, +-1 spins).

    Parameters
    ----------
    spins : Tensor, shape (B, *L), +-1, float or int8
        Modified in place (only where ``mask``) and returned.
    field : Tensor, shape (B, *L), floating
        Local field ``f_x`` with ``E = -s_x f_x + (terms without s_x)``, i.e. from
        ``ising.local_field`` or ``edwards_anderson.local_field`` (units of energy).
    beta : float or Tensor of shape (B,)
        Inverse temperature per chain.
    u : Tensor, shape (B, *L), uniforms in [0, 1)
        Only the entries on masked sites are used.
    mask : bool Tensor, shape (*L) or (B, *L)
        Sites to update (one colour: no two masked sites may be neighbours).
    rule : {"metropolis", "heatbath"}

    Returns
    -------
    Tensor
        ``spins`` (the same object).

    Notes
    -----
    Metropolis: flip iff ``u < a(Delta E)`` with ``Delta E = 2 s_x f_x`` and
    ``a = min(1, exp(-beta Delta E))`` for ``Delta E != 0``, ``a(0) = 1/2``.
    Heat-bath (Glauber): ``s_x = +1`` iff ``u <= 1 / (1 + exp(-2 beta f_x))``, else ``-1``.
    Both satisfy detailed balance w.r.t. ``exp(-beta E)`` (``a(x)/a(-x) = exp(-beta x)``).

    Why ``a(0) = 1/2``: with the textbook ``a(0) = 1`` the synchronous sublattice update
    moves zero-cost domain walls deterministically. In d = 1 every wall then travels
    ballistically, left- or right-moving according to the parity of its bond, and pairs
    are created and annihilated only as one left- plus one right-mover, so
    ``#left - #right`` is conserved and the chain is not ergodic: from an ordered start
    the N = 32 ring at T = 1 equilibrates to ``e = -0.789`` instead of the exact
    ``-0.762`` (tests/mc/test_checkerboard.py). Accepting zero-cost moves with probability
    1/2 (as heat-bath does) makes walls random-walk; any factor symmetric in
    ``Delta E`` keeps detailed balance. It only affects discrete models (Ising, +-J EA),
    where ``Delta E = 0`` occurs exactly.

    Implementation: branch-free float arithmetic (``torch.where`` and comparisons are
    slow on CPU). The decision is the sign of ``u - p`` (IEEE subtraction has the exact
    sign, +0 on ties), applied with ``copysign``. Off-colour sites get ``p = 0``
    (Metropolis: never flip) or the decision variable ``s`` (heat-bath: keep ``s``),
    exactly. The Metropolis exponent is clamped at 0 (``min(1, .)``), so no ``inf``
    arises. (Ties ``u == p`` have probability ~2**-24 and are resolved as stated.)
    """
    wd = field.dtype
    b = per_chain(beta, field)
    on, off, half_on = _mask_terms(mask, wd)
    s = spins if spins.dtype == wd else spins.to(wd)
    u = u if u.dtype == wd else u.to(wd)
    if rule == "metropolis":
        d = s * field  # Delta E / 2
        g = torch.sign(d).abs_()
        torch.addcmul(half_on, g, half_on, out=g)  # 1 on colour (1/2 if Delta E = 0), 0 off
        # acceptance exp(-beta dE) = 2**(-2 beta t / ln 2): exp2 is ~3x faster than exp on CPU
        p = d.mul_(-_TWO_OVER_LN2 * b).clamp_(max=0.0).exp2_().mul_(g)
        torch.sub(u, p, out=d)  # < 0 iff flip (+0 on ties: no flip)
        d.mul_(s)  # sign of the new spin; off colour: u * s (p = 0)
    elif rule == "heatbath":
        d = field * (2.0 * b)
        d.sigmoid_()  # P(s = +1)
        torch.sub(d, u, out=d)  # > 0 (or +0 on ties): up
        d.mul_(on).addcmul_(s, off)  # off colour: sign of s
    else:
        raise ValueError(f"unknown update rule {rule!r}; expected one of {RULES}")
    if s is spins:
        torch.copysign(s, d, out=spins)
    else:
        spins.copy_(torch.copysign(s, d))
    return spins


def update_colour_phi4(phi: torch.Tensor, nn: torch.Tensor, kappa, lam, width, u_prop: torch.Tensor,
                       u_acc: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Metropolis update of one colour of a phi^4 field, in place.

    Parameters
    ----------
    phi : Tensor, shape (B, *L), floating; modified in place where accepted.
    nn : Tensor, shape (B, *L)
        Neighbour sum ``sum_{y nn x} phi_y`` (``phi4.neighbour_sum``, halo mode allowed).
    kappa, lam : float or Tensor (B,)
        Bauer couplings (:mod:`hpc_rg.models.phi4`).
    width : float or Tensor (B,)
        Proposal half-width: ``phi' = phi + width * (2 u_prop - 1)``.
    u_prop, u_acc : Tensor, shape (B, *L), uniforms in [0, 1)
    mask : bool Tensor, shape (*L) or (B, *L)

    Returns
    -------
    Tensor, shape (B,), float64
        Fraction of the masked sites accepted, per chain.

    Notes
    -----
    Accept with probability ``min(1, exp(-Delta S))`` (``u_acc < exp(-Delta S)``),
    ``Delta S`` from :func:`hpc_rg.models.phi4.delta_action`; the proposal is symmetric.
    """
    on = _mask_terms(mask, phi.dtype)[0]
    step = u_prop.to(phi.dtype).mul(2.0).sub_(1.0).mul_(per_chain(width, phi)).mul_(on)
    dS = delta_action(phi, phi + step, nn, kappa, lam)
    acc = torch.lt(u_acc.to(phi.dtype), dS.mul_(-_INV_LN2).exp2_())  # exp(-dS)
    phi.addcmul_(step, acc)  # step is 0 off-colour
    acc.logical_and_(mask)
    axes = tuple(range(1, phi.dim()))
    n_sites = float(mask.sum()) if mask.dim() == phi.dim() - 1 else mask.sum(dim=axes, dtype=torch.float64)
    return acc.sum(dim=axes, dtype=torch.float64) / n_sites


def sweep(spins: torch.Tensor, field_fn, beta, rng, sweep_index: int, rule: str = "metropolis",
          origin=0) -> torch.Tensor:
    """One checkerboard sweep (colour 0 then colour 1) of a single-domain lattice, in place.

    Parameters
    ----------
    spins : Tensor, shape (B, *L), +-1
    field_fn : callable
        ``field_fn(spins) -> Tensor (B, *L)``: the model's local field, e.g.
        ``functools.partial(ising.local_field, J=1.0, h=0.0)`` or
        ``functools.partial(edwards_anderson.local_field, J=J)``.
    beta : float or Tensor (B,)
    rng : CounterRNG
        Built with this lattice's global site ids; counter ``2*sweep_index + colour``.
    sweep_index : int
        Global sweep number (must never repeat within a run).
    rule : {"metropolis", "heatbath"}
    origin : int
        Global offset of ``spins`` along the first lattice axis (0 for a full lattice).

    Returns
    -------
    Tensor
        ``spins``.
    """
    _check_even(spins.shape[1:])
    masks = colour_masks(spins.shape[1:], origin, spins.device)
    u = None
    for colour in (0, 1):
        field = field_fn(spins)
        if u is None:  # one draw serves both colours: site x uses counter 2*sweep + colour(x)
            u = sweep_uniforms(rng, sweep_index, origin, dtype=_u_dtype(field))
        update_colour(spins, field, beta, u, masks[colour], rule)
    return spins


def sweep_phi4(phi: torch.Tensor, kappa, lam, width, rng, sweep_index: int, origin=0) -> torch.Tensor:
    """One checkerboard Metropolis sweep of a single-domain phi^4 field, in place.

    Parameters as :func:`update_colour_phi4` and :func:`sweep`.

    Returns
    -------
    Tensor, shape (B,), float64
        Acceptance rate of the sweep per chain.
    """
    _check_even(phi.shape[1:])
    masks = colour_masks(phi.shape[1:], origin, phi.device)
    acc = torch.zeros(phi.shape[0], dtype=torch.float64, device=phi.device)
    dt = _u_dtype(phi)
    u_prop = sweep_uniforms(rng, sweep_index, origin, dtype=dt, k=0)
    u_acc = sweep_uniforms(rng, sweep_index, origin, dtype=dt, k=1)
    for colour in (0, 1):
        nn = neighbour_sum(phi)
        acc += 0.5 * update_colour_phi4(phi, nn, kappa, lam, width, u_prop, u_acc, masks[colour])
    return acc


def _u_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


class CheckerboardSampler:
    """Single-domain checkerboard sampler for +-1 spin models (Ising, Edwards-Anderson).

    Parameters
    ----------
    field_fn : callable
        ``field_fn(spins) -> field`` (see :func:`sweep`).
    rng : CounterRNG
    rule : {"metropolis", "heatbath"}

    Examples
    --------
    >>> rng = CounterRNG(seed, torch.arange(B), global_site_ids((L, L)))
    >>> sampler = CheckerboardSampler(partial(ising.local_field, J=1.0), rng)
    >>> for t in range(n): sampler.sweep(spins, beta, t)
    """

    def __init__(self, field_fn, rng, rule: str = "metropolis"):
        if rule not in RULES:
            raise ValueError(f"unknown update rule {rule!r}; expected one of {RULES}")
        self.field_fn = field_fn
        self.rng = rng
        self.rule = rule

    def sweep(self, spins: torch.Tensor, beta, sweep_index: int) -> torch.Tensor:
        """One sweep in place; returns ``spins``."""
        return sweep(spins, self.field_fn, beta, self.rng, sweep_index, self.rule)
