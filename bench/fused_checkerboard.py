"""Prototype: the checkerboard Metropolis sweep as ONE fused, compiled kernel.

Not part of the package: a measurement aid for bench/README.md ("what would fix the CPU
speed"). Superseded by the library's hand-written kernel :mod:`hpc_rg.mc.compiled`
(``sample.kernel: compiled``, 1.3-6x faster than this; why torch.compile stalls here:
bench/README.md, section 4); kept as the torch.compile reference (``--fused``).

It reproduces :func:`hpc_rg.mc.checkerboard.sweep` (Metropolis, +-1 spins,
Ising with J = 1, h = 0 or Edwards-Anderson couplings) with the same counter-based random
stream (``CounterRNG`` key, counter ``2*sweep + parity(x)``) and the same arithmetic
(``exp2``, ``a(0) = 1/2``, the ``u < p`` decision), written as pure tensor expressions with
no Python-side caches so that ``torch.compile`` (inductor) can fuse hash + neighbour sum
+ acceptance into one loop per colour instead of ~40 separate passes over memory.

Two variants:

* :class:`FusedSweep`: batch-first ``(B, *L)`` spins like the library; reads the stored
  ``CounterRNG`` keys.
* :class:`FusedSweepBatchLast`: ``(*L, B)`` layout (chains innermost, so the vectorised
  loop runs over chains and neighbour loads are affine) and the keys recomputed from
  (chain, site) inside the kernel. This is the one ``bench_checkerboard.py --fused`` times.

Usage::

    fs = FusedSweep(rng, spins.shape[1:], model="ising")      # or model="ea", J=J
    for k in range(n):
        fs.sweep(spins, beta, k)                                # in place, like cb.sweep

Both reproduce the library sweep bit for bit (:func:`check`; checked for 2D Ising and
3D Gaussian EA, 4 sweeps of 16 chains, with torch 2.13 CPU).
"""

from __future__ import annotations

import math

import torch

from hpc_rg.models.lattice import parity
from hpc_rg.rng import _to_i32, mix32

_C1 = 0x7FEB352D
_C2 = 0x846CA68B - (1 << 32)
_TWO_OVER_LN2 = 2.0 / math.log(2.0)


def _mix(x):
    """lowbias32 on int32 (logical shifts emulated), out of place: fusable."""
    x = x ^ ((x >> 16) & 0xFFFF)
    x = x * _C1
    x = x ^ ((x >> 15) & 0x1FFFF)
    x = x * _C2
    return x ^ ((x >> 16) & 0xFFFF)


def _counter_mix(c: int) -> int:
    """CounterRNG's counter mix ``m(c)`` as a signed int32 (Python side, once per sweep)."""
    c &= (1 << 64) - 1
    return _to_i32(mix32(mix32((c & 0xFFFFFFFF) ^ 0x85EBCA6B) ^ (c >> 32) ^ 0x2545F491))


def _uniform(key, key2, cm):
    x = _mix(key ^ cm)
    x = _mix(x ^ key2)
    return ((x >> 8).to(torch.float32) + 2.0 ** 23) * 2.0 ** -24


def _ising_field(s, ax0=1, d=None):
    """Neighbour sum; lattice axes ax0 .. ax0+d-1 (batch first: ax0=1; batch last: ax0=0)."""
    d = s.dim() - 1 if d is None else d
    f = torch.roll(s, -1, ax0) + torch.roll(s, 1, ax0)
    for mu in range(1, d):
        f = f + torch.roll(s, -1, ax0 + mu) + torch.roll(s, 1, ax0 + mu)
    return f


def _ea_field(s, J, Jm, ax0=1, d=None):
    """J[mu] couples x and x+e_mu; Jm[mu] = roll(J[mu], 1, mu) couples x and x-e_mu.

    Batch first: J, Jm of shape (1, d, *L); batch last: (d, *L, 1).
    """
    d = s.dim() - 1 if d is None else d
    Jmu = (lambda A, mu: A[:, mu]) if ax0 == 1 else (lambda A, mu: A[mu])
    f = Jmu(J, 0) * torch.roll(s, -1, ax0)
    f = f + Jmu(Jm, 0) * torch.roll(s, 1, ax0)
    for mu in range(1, d):
        f = f + Jmu(J, mu) * torch.roll(s, -1, ax0 + mu)
        f = f + Jmu(Jm, mu) * torch.roll(s, 1, ax0 + mu)
    return f


def _half(s, field, u, bexp, on_half):
    d = s * field
    g = on_half + on_half * (d != 0).to(s.dtype)  # on colour: 1 (1/2 if dE = 0); off: 0
    p = torch.exp2(torch.clamp(d * bexp, max=0.0)) * g
    return torch.where(u < p, -s, s)


def _sweep_ising(s, key, key2, par, cm2, bexp, h0, h1):
    u = _uniform(key, key2, torch.where(par, cm2[1], cm2[0]))
    s = _half(s, _ising_field(s), u, bexp, h0)
    return _half(s, _ising_field(s), u, bexp, h1)


def _sweep_ea(s, key, key2, par, cm2, bexp, h0, h1, J, Jm):
    u = _uniform(key, key2, torch.where(par, cm2[1], cm2[0]))
    s = _half(s, _ea_field(s, J, Jm), u, bexp, h0)
    return _half(s, _ea_field(s, J, Jm), u, bexp, h1)


class FusedSweep:
    """Compiled single-domain checkerboard Metropolis sweep (prototype).

    Parameters
    ----------
    rng : hpc_rg.rng.CounterRNG
        Same object the library sweep would use (its ``key``/``key2`` are read).
    lattice_shape : tuple of int
    model : {"ising", "ea"}
    J : Tensor (d, *L), EA couplings (shared by the batch), float32
    compile : bool
        ``torch.compile`` the sweep (default); False runs the same code eagerly.
    """

    def __init__(self, rng, lattice_shape, model="ising", J=None, compile=True):
        dev = rng.device
        self.rng, self.model = rng, model
        par = parity(lattice_shape, 0, dev)
        self._par = par.bool()
        on0 = (par == 0).to(torch.float32)
        self._h0, self._h1 = on0 * 0.5, (1.0 - on0) * 0.5
        fn = _sweep_ising if model == "ising" else _sweep_ea
        self._extra = ()
        if model == "ea":
            d = len(lattice_shape)
            J = J.to(device=dev, dtype=torch.float32)
            Jm = torch.stack([torch.roll(J[mu], 1, mu) for mu in range(d)])
            self._extra = (J.unsqueeze(0), Jm.unsqueeze(0))
        self._fn = torch.compile(fn, dynamic=False) if compile else fn

    def sweep(self, spins, beta, sweep_index: int):
        """One sweep of ``spins`` (B, *L) float32 in place; ``beta`` float or (B,)."""
        b = torch.as_tensor(beta, dtype=torch.float32, device=spins.device)
        b = b.reshape((-1,) + (1,) * (spins.dim() - 1)) if b.dim() else b
        bexp = -_TWO_OVER_LN2 * b
        c0 = 2 * int(sweep_index)
        cm2 = torch.tensor([_counter_mix(c0), _counter_mix(c0 + 1)], dtype=torch.int32, device=spins.device)
        out = self._fn(spins, self.rng.key, self.rng.key2, self._par, cm2, bexp, self._h0, self._h1,
                       *self._extra)
        spins.copy_(out)
        return spins


# ---------------------------------------------------------------------------------------
# Variant 2: batch axis LAST ((*L, B) layout, the B chains of one site contiguous, so the
# vectorised inner loop runs over chains and every neighbour access is an affine index),
# and the CounterRNG key recomputed in the kernel from (chain, site) instead of being read
# from the two stored (B, *L) int32 key tensors (8 bytes/site/sweep of memory traffic
# traded for 4 more multiply-xorshift rounds, which are nearly free when vectorised).
# ---------------------------------------------------------------------------------------

def _key_from_ids(cpart, slo, shi):
    return _mix(_mix(cpart ^ slo) ^ shi)


def _uniform_last(c1, c2, slo, shi, par, cm2):
    k1 = _key_from_ids(c1, slo, shi)
    k2 = _key_from_ids(c2, slo, shi)
    return _uniform(k1, k2, torch.where(par, cm2[1], cm2[0]))


def _sweep_ising_last(s, c1, c2, slo, shi, par, cm2, bexp, h0, h1):
    d = s.dim() - 1
    u = _uniform_last(c1, c2, slo, shi, par, cm2)
    s = _half(s, _ising_field(s, 0, d), u, bexp, h0)
    return _half(s, _ising_field(s, 0, d), u, bexp, h1)


def _sweep_ea_last(s, c1, c2, slo, shi, par, cm2, bexp, h0, h1, J, Jm):
    d = s.dim() - 1
    u = _uniform_last(c1, c2, slo, shi, par, cm2)
    s = _half(s, _ea_field(s, J, Jm, 0, d), u, bexp, h0)
    return _half(s, _ea_field(s, J, Jm, 0, d), u, bexp, h1)


def _chain_parts(seed: int, chain_ids: torch.Tensor, device):
    """The per-chain halves of CounterRNG's key (same code as CounterRNG.__init__)."""
    from hpc_rg.rng import _hi32, _lo32, _mix32_
    s = int(seed) & ((1 << 64) - 1)
    out = []
    for salt in (0x9E3779B9, 0x632BE5AB):
        k0 = mix32(mix32((s & 0xFFFFFFFF) ^ salt) ^ (s >> 32))
        c = torch.full(chain_ids.shape, _to_i32(k0), dtype=torch.int32, device=device)
        c.bitwise_xor_(_lo32(chain_ids))
        _mix32_(c)
        c.bitwise_xor_(_hi32(chain_ids))
        _mix32_(c)
        out.append(c)
    return out


class FusedSweepBatchLast:
    """Compiled sweep on a batch-LAST configuration ``(*L, B)`` float32 (prototype).

    Same random stream and arithmetic as the library sweep on the batch-first tensor
    (``to_batch_last`` / ``to_batch_first`` convert; :func:`check` verifies bit equality).

    Parameters
    ----------
    seed : int
        The CounterRNG seed.
    chain_ids : LongTensor (B,)
    lattice_shape : tuple of int (full lattice, origin 0)
    model, J, compile : as :class:`FusedSweep`
    """

    def __init__(self, seed, chain_ids, lattice_shape, model="ising", J=None, compile=True,
                 device="cpu"):
        from hpc_rg.models.lattice import global_site_ids
        from hpc_rg.rng import _hi32, _lo32
        dev = torch.device(device)
        chain_ids = torch.as_tensor(chain_ids, dtype=torch.int64, device=dev)
        self.c1, self.c2 = _chain_parts(seed, chain_ids, dev)
        sid = global_site_ids(lattice_shape, device=dev)
        self.slo = _lo32(sid).unsqueeze(-1).contiguous()
        self.shi = _hi32(sid).unsqueeze(-1).contiguous()
        par = parity(lattice_shape, 0, dev)
        self._par = par.bool().unsqueeze(-1)
        on0 = (par == 0).to(torch.float32).unsqueeze(-1)
        self._h0, self._h1 = on0 * 0.5, (1.0 - on0) * 0.5
        self._extra = ()
        if model == "ea":
            d = len(lattice_shape)
            J = J.to(device=dev, dtype=torch.float32)
            Jm = torch.stack([torch.roll(J[mu], 1, mu) for mu in range(d)])
            self._extra = (J.unsqueeze(-1).contiguous(), Jm.unsqueeze(-1).contiguous())
        fn = _sweep_ising_last if model == "ising" else _sweep_ea_last
        self._fn = torch.compile(fn, dynamic=False) if compile else fn

    @staticmethod
    def to_batch_last(x):
        return x.movedim(0, -1).contiguous()

    @staticmethod
    def to_batch_first(x):
        return x.movedim(-1, 0).contiguous()

    def sweep(self, spins, beta, sweep_index: int):
        """One sweep of batch-last ``spins`` (*L, B) float32, in place."""
        b = torch.as_tensor(beta, dtype=torch.float32, device=spins.device).reshape(-1)
        bexp = -_TWO_OVER_LN2 * b
        c0 = 2 * int(sweep_index)
        cm2 = torch.tensor([_counter_mix(c0), _counter_mix(c0 + 1)], dtype=torch.int32, device=spins.device)
        out = self._fn(spins, self.c1, self.c2, self.slo, self.shi, self._par, cm2, bexp,
                       self._h0, self._h1, *self._extra)
        spins.copy_(out)
        return spins


def check(model="ising", shape=(64, 64), B=16, sweeps=4, compile=True) -> bool:
    """Library sweep vs both prototypes, bit for bit; returns True if all three agree."""
    import functools

    from hpc_rg.mc import checkerboard as cb
    from hpc_rg.models import edwards_anderson as ea
    from hpc_rg.models import ising
    from hpc_rg.models.lattice import global_site_ids
    from hpc_rg.rng import CounterRNG

    rng = CounterRNG(7, torch.arange(B), global_site_ids(shape))
    s0 = torch.where(rng.uniform(12345) < 0.5, -1.0, 1.0)
    beta = torch.linspace(0.3, 0.6, B)
    J = ea.couplings(shape[0], len(shape), "gaussian", 1, 0) if model == "ea" else None
    field = (functools.partial(ising.local_field, J=1.0, h=0.0) if model == "ising"
             else functools.partial(ea.local_field, J=J))
    f1 = FusedSweep(rng, shape, model, J, compile=compile)
    f2 = FusedSweepBatchLast(7, torch.arange(B), shape, model, J, compile=compile)
    a, b, c = s0.clone(), s0.clone(), FusedSweepBatchLast.to_batch_last(s0)
    for k in range(sweeps):
        cb.sweep(a, field, beta, rng, k)
        f1.sweep(b, beta, k)
        f2.sweep(c, beta, k)
    return torch.equal(a, b) and torch.equal(a, FusedSweepBatchLast.to_batch_first(c))


if __name__ == "__main__":
    for m, shp in (("ising", (64, 64)), ("ising", (16, 16, 16)), ("ea", (16, 16, 16))):
        print(m, shp, "bit-identical to hpc_rg.mc.checkerboard.sweep:", check(m, shp))
