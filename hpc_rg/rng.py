"""Reproducible random numbers: derived seeds and a counter-based per-site stream.

Two tools:

* :func:`derive_seed` / :func:`torch_generator` turn a user seed plus a purpose string
  and integer indices (replica, disorder sample, rank, ...) into an independent 63-bit
  seed. The result depends only on the arguments, never on the process, rank count or
  Python's hash randomisation.
* :class:`CounterRNG` is a stateless, counter-based generator: the uniform drawn for
  (chain, site, counter) is a hash of those three numbers and the seed. A rank that owns
  a slab of the lattice and passes its slab's *global* site indices draws exactly the
  numbers the undecomposed run would draw on those sites, so a domain-decomposed Monte
  Carlo run is bit-identical to the single-domain run.

:func:`chain_rand`, :func:`chain_randn` and :func:`chain_randint` let batched update
rules take either one ``torch.Generator`` for the whole batch or one generator per chain
(so a chain's stream does not depend on which chains share its batch).
"""

from __future__ import annotations

import hashlib
from typing import Sequence, Union

import torch

__all__ = ["derive_seed", "torch_generator", "CounterRNG", "mix32", "Generators",
           "chain_rand", "chain_randn", "chain_randint"]

Generators = Union[torch.Generator, Sequence[torch.Generator]]
"""One generator for a whole batch, or one per chain (see :func:`chain_rand`)."""

_M32 = 0xFFFFFFFF


def derive_seed(seed: int, purpose: str, *index: int) -> int:
    """Derive an independent 63-bit seed from a base seed, a purpose and indices.

    Parameters
    ----------
    seed : int
        User seed (any Python int, negative allowed).
    purpose : str
        What the stream is for, e.g. ``"disorder"``, ``"init"``, ``"mc"``.
    *index : int
        Further integers (disorder sample, replica, temperature, ...).

    Returns
    -------
    int
        A seed in ``[0, 2**63)``.

    Notes
    -----
    BLAKE2b over the canonical text ``"seed|purpose|i0|i1|..."``. Deterministic across
    processes, machines and Python versions (unlike ``hash``).
    """
    text = "|".join([str(int(seed)), str(purpose)] + [str(int(i)) for i in index])
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def torch_generator(seed: int, purpose: str, *index: int, device="cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`derive_seed` (same arguments)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, purpose, *index))
    return gen


def _chain_draw(draw, shape, generators: Generators, axis: int, **kw) -> torch.Tensor:
    """``draw(shape, generator=...)`` with one generator, or chain by chain (see chain_rand)."""
    shape = tuple(int(n) for n in shape)
    if isinstance(generators, torch.Generator):
        return draw(shape, generator=generators, **kw)
    gens = list(generators)
    if len(gens) != shape[axis]:
        raise ValueError(f"got {len(gens)} per-chain generators for a batch of {shape[axis]} "
                         f"chains (axis {axis} of shape {shape}); pass one generator per chain")
    one = shape[:axis] + (1,) + shape[axis + 1:]
    if not gens:
        return draw(shape, generator=None, **kw)
    return torch.cat([draw(one, generator=g, **kw) for g in gens], dim=axis)


def chain_rand(shape, generators: Generators, dtype=None, device=None,
               axis: int = 0) -> torch.Tensor:
    """Uniform numbers in [0, 1) with the batch (chain) axis at ``axis``.

    Parameters
    ----------
    shape : tuple of int
        Full shape of the draw; ``shape[axis]`` is the number of chains B.
    generators : torch.Generator or sequence of B torch.Generator
        One generator: exactly ``torch.rand(shape, generator=...)``. A sequence: chain b
        draws the slice of shape ``shape`` with ``shape[axis] = 1`` from ``generators[b]``
        (exactly what a batch of one would draw) and the slices are concatenated along
        ``axis``.
    dtype, device
        As for :func:`torch.rand` (each generator must live on ``device``).
    axis : int
        The batch axis of ``shape``.

    Returns
    -------
    torch.Tensor, shape ``shape``
    """
    return _chain_draw(torch.rand, shape, generators, axis, dtype=dtype, device=device)


def chain_randn(shape, generators: Generators, dtype=None, device=None,
                axis: int = 0) -> torch.Tensor:
    """Standard normal numbers; like :func:`chain_rand` with :func:`torch.randn`."""
    return _chain_draw(torch.randn, shape, generators, axis, dtype=dtype, device=device)


def chain_randint(low: int, high: int, shape, generators: Generators, device=None,
                  axis: int = 0) -> torch.Tensor:
    """Integers in [low, high), int64; like :func:`chain_rand` with :func:`torch.randint`."""
    def draw(sh, generator=None, device=None):
        return torch.randint(low, high, sh, generator=generator, device=device)
    return _chain_draw(draw, shape, generators, axis, device=device)


# ---------------------------------------------------------------------------------------
# 32-bit integer hashing on int32 tensors.
#
# torch has no usable uint32 arithmetic (no shifts on CPU), so the hash runs on int32
# tensors: multiplication wraps modulo 2**32 (two's complement, as on every CPU and GPU
# torch supports) and logical right shifts are emulated by an arithmetic shift followed
# by a mask. The bit pattern is identical to the textbook uint32 function.
# ---------------------------------------------------------------------------------------

# lowbias32 (C. Wellons, "hash-prospector"): x ^= x>>16; x *= 0x7feb352d; x ^= x>>15;
# x *= 0x846ca68b; x ^= x>>16.  The constants as signed int32:
_C1 = 0x7FEB352D
_C2 = 0x846CA68B - (1 << 32)


def _to_i32(v: int) -> int:
    """Python int -> the signed int32 with the same low 32 bits."""
    v &= _M32
    return v - (1 << 32) if v >= (1 << 31) else v


def mix32(v: int) -> int:
    """lowbias32 on a Python int (low 32 bits); returns an unsigned 32-bit int."""
    v &= _M32
    v ^= v >> 16
    v = (v * 0x7FEB352D) & _M32
    v ^= v >> 15
    v = (v * 0x846CA68B) & _M32
    v ^= v >> 16
    return v


def _mix32_(x: torch.Tensor) -> torch.Tensor:
    """In-place lowbias32 on an int32 tensor (bit-identical to :func:`mix32`)."""
    x.bitwise_xor_(torch.bitwise_right_shift(x, 16).bitwise_and_(0xFFFF))
    x.mul_(_C1)
    x.bitwise_xor_(torch.bitwise_right_shift(x, 15).bitwise_and_(0x1FFFF))
    x.mul_(_C2)
    x.bitwise_xor_(torch.bitwise_right_shift(x, 16).bitwise_and_(0xFFFF))
    return x


class CounterRNG:
    """Counter-based uniform random numbers keyed by (seed, chain, global site, counter).

    Parameters
    ----------
    seed : int
        Base seed (e.g. ``derive_seed(run_seed, "mc", replica)``).
    chain_ids : LongTensor, shape (B,)
        Global identifiers of the chains in the batch (e.g. temperature index, or a
        global chain number); chains with different ids draw independent streams.
    site_ids : LongTensor, shape local_shape
        GLOBAL linear site index of every local site (see
        :func:`hpc_rg.models.lattice.global_site_ids`). A slab passes the slice of the
        global index array it owns.
    device : torch.device or str, optional
        Where the numbers are produced; defaults to ``site_ids.device``.

    Notes
    -----
    A 64-bit key ``(k1, k2) = H(seed, chain, site)`` (two independent 32-bit halves, full
    lowbias32 rounds over the 64-bit seed, chain and site ids) is computed once. A call
    with counter ``c`` returns ``lowbias32(lowbias32(k1 XOR m(c)) XOR k2)``, where
    ``m(c)`` mixes the 64-bit counter (a Python-side scalar, or a small tensor for
    per-site counters), i.e. four multiply rounds per number; the top 24 (float32) or all
    32 (float64) bits give the uniform in ``[0, 1)``. The second half of the key matters:
    with a 32-bit key, birthday collisions (about ``(B N)^2 / 2^33`` pairs, ~100 for
    16 x 256^2) would give pairs of sites identical streams for ever. A counter-based
    generator in the spirit of Salmon et al., SC'11, "Parallel random numbers: as easy
    as 1, 2, 3". The key costs 8 bytes per (chain, site).
    """

    def __init__(self, seed: int, chain_ids, site_ids, device=None):
        site_ids = torch.as_tensor(site_ids, dtype=torch.int64)
        chain_ids = torch.as_tensor(chain_ids, dtype=torch.int64).reshape(-1)
        device = torch.device(device) if device is not None else site_ids.device
        site_ids = site_ids.to(device)
        chain_ids = chain_ids.to(device)
        self.seed = int(seed)
        self.local_shape = tuple(site_ids.shape)
        self.device = device
        s = self.seed & ((1 << 64) - 1)
        keys = []
        for salt in (0x9E3779B9, 0x632BE5AB):  # two independent 32-bit halves of the key
            k0 = mix32(mix32((s & _M32) ^ salt) ^ (s >> 32))
            c = torch.full(chain_ids.shape, _to_i32(k0), dtype=torch.int32, device=device)
            c.bitwise_xor_(_lo32(chain_ids))
            _mix32_(c)
            c.bitwise_xor_(_hi32(chain_ids))
            _mix32_(c)  # chain part, (B,)
            view = (-1,) + (1,) * site_ids.dim()
            key = c.view(view) ^ _lo32(site_ids).unsqueeze(0)
            _mix32_(key)
            key.bitwise_xor_(_hi32(site_ids).unsqueeze(0))
            _mix32_(key)
            keys.append(key.contiguous())
        self.key, self.key2 = keys

    @property
    def shape(self) -> tuple:
        """Shape of one draw: (B, *local_shape)."""
        return tuple(self.key.shape)

    def bits(self, counter) -> torch.Tensor:
        """Raw 32-bit hashes as an int32 tensor of shape (B, *local_shape).

        ``counter`` is an int, or an integer tensor broadcastable to ``local_shape``
        giving a per-site counter (e.g. ``2*sweep + parity`` to serve both checkerboard
        colours from one draw); equal counters give equal bits either way.
        """
        if torch.is_tensor(counter):
            c = counter.to(device=self.device, dtype=torch.int64)
            cm = torch.bitwise_xor(_lo32(c), _to_i32(0x85EBCA6B))
            _mix32_(cm)
            cm.bitwise_xor_(_hi32(c)).bitwise_xor_(_to_i32(0x2545F491))
            _mix32_(cm)
            x = torch.bitwise_xor(self.key, cm)
        else:
            counter = int(counter) & ((1 << 64) - 1)
            cm = mix32(mix32((counter & _M32) ^ 0x85EBCA6B) ^ (counter >> 32) ^ 0x2545F491)
            x = torch.bitwise_xor(self.key, _to_i32(cm))
        _mix32_(x)
        x.bitwise_xor_(self.key2)
        return _mix32_(x)

    def uniform(self, counter, dtype=torch.float32) -> torch.Tensor:
        """Uniform numbers in [0, 1) for one counter value.

        Parameters
        ----------
        counter : int or integer Tensor broadcastable to ``local_shape``
            Non-negative stream position (e.g. ``2*sweep + colour``); each counter value
            gives a fresh, independent array. A tensor gives each site its own counter.
        dtype : torch.dtype
            ``torch.float32`` (24 random bits, multiples of 2**-24) or ``torch.float64``
            (32 random bits, multiples of 2**-32).

        Returns
        -------
        Tensor, shape (B, *local_shape), dtype ``dtype``
        """
        x = self.bits(counter)
        if dtype == torch.float64:
            return x.to(torch.float64).add_(2.0**31).mul_(2.0**-32)
        if dtype != torch.float32:
            raise TypeError(f"CounterRNG.uniform: dtype must be float32 or float64, got {dtype}")
        return torch.bitwise_right_shift(x, 8).to(torch.float32).add_(2.0**23).mul_(2.0**-24)


def _lo32(v: torch.Tensor) -> torch.Tensor:
    """Low 32 bits of an int64 tensor as int32 (bit pattern preserved)."""
    return _wrap_i32(v & _M32)


def _hi32(v: torch.Tensor) -> torch.Tensor:
    """Bits 32..63 of an int64 tensor as int32 (bit pattern preserved)."""
    return _wrap_i32(torch.bitwise_right_shift(v, 32) & _M32)


def _wrap_i32(v: torch.Tensor) -> torch.Tensor:
    """int64 in [0, 2**32) -> int32 with the same bit pattern."""
    return torch.where(v >= (1 << 31), v - (1 << 32), v).to(torch.int32)
