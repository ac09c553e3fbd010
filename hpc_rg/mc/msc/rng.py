"""Random words of the multi-spin-coded sweep: a counter-based 64-bit hash (torch and Python).

Every lane (bit) of every word draws its own bits; the word ``R_j`` used for binary digit j
of the uniforms at one site is a pure function of (seed, global word id, global site id,
counter, j), so a slab that passes its global site ids, or a rank that holds a chunk of the
words and passes their global word ids, draws exactly the bits of the undivided run (the
design of :class:`hpc_rg.rng.CounterRNG`).

Definition (all arithmetic modulo 2**64; ``mix`` is the splitmix64 finalizer, Stafford's
Mix13, a bijection of 64-bit words)::

    mix(z)          = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27;
                      z *= 0x94D049BB133111EB; z ^= z >> 31
    seed_key        = mix(seed ^ S_SEED)
    word_key(w)     = mix(seed_key ^ mix(w * G + S_WORD))
    counter_key(c)  = mix((c + 1) * G ^ S_CTR)              c = 2 * sweep + colour
    site_key(x, c)  = mix(mix(x * G + S_SITE) ^ counter_key(c))
    key(w, x, c)    = mix(word_key(w) ^ site_key(x, c))
    R_j(w, x, c)    = mix(key(w, x, c) + j * G)             j = 1 .. 32

with ``G = 0x9E3779B97F4A7C15`` (the splitmix64 increment) and the salts below. The compiled
kernel (``msc_kernel.cpp``) implements the same formulas.

torch has no unsigned 64-bit arithmetic: words are int64, multiplication wraps (two's
complement), and right shifts are arithmetic, so :func:`mix64` masks after shifting.
"""

from __future__ import annotations

import torch

__all__ = ["M64", "GAMMA", "mix64", "mix64_int", "seed_key", "word_keys", "counter_key",
           "site_keys", "signed64"]

M64 = (1 << 64) - 1
GAMMA = 0x9E3779B97F4A7C15
C1, C2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
S_SEED, S_WORD = 0x243F6A8885A308D3, 0x13198A2E03707344
S_SITE, S_CTR = 0xA4093822299F31D0, 0x082EFA98EC4E6C89


def signed64(x: int) -> int:
    """The int64 value with the bits of ``x mod 2**64``."""
    x &= M64
    return x - (1 << 64) if x >> 63 else x


def mix64_int(z: int) -> int:
    """:func:`mix64` on a Python int (result in ``[0, 2**64)``)."""
    z &= M64
    z = ((z ^ (z >> 30)) * C1) & M64
    z = ((z ^ (z >> 27)) * C2) & M64
    return z ^ (z >> 31)


_C1, _C2, _G = signed64(C1), signed64(C2), signed64(GAMMA)


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 words."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """splitmix64 finalizer of int64 words (elementwise, any device)."""
    z = z ^ _srl(z, 30)
    z = z * _C1
    z = z ^ _srl(z, 27)
    z = z * _C2
    return z ^ _srl(z, 31)


def seed_key(seed: int) -> int:
    """``mix(seed ^ S_SEED)`` in ``[0, 2**64)`` (any Python int seed, reduced mod 2**64)."""
    return mix64_int((int(seed) & M64) ^ S_SEED)


def word_keys(seed: int, word_ids) -> torch.Tensor:
    """``word_key(w)`` for global word ids ``w`` (int64 tensor, shape of ``word_ids``)."""
    w = torch.as_tensor(word_ids, dtype=torch.int64)
    inner = mix64(w * _G + signed64(S_WORD))
    return mix64(inner ^ signed64(seed_key(seed)))


def counter_key(counter: int) -> int:
    """``counter_key(c)`` as a signed int64 Python int."""
    return signed64(mix64_int((((int(counter) + 1) * GAMMA) & M64) ^ S_CTR))


def site_keys(site_ids: torch.Tensor, counter: int) -> torch.Tensor:
    """``site_key(x, c)`` for global site ids ``x`` (int64 tensor, same shape)."""
    x = torch.as_tensor(site_ids, dtype=torch.int64)
    return mix64(mix64(x * _G + signed64(S_SITE)) ^ counter_key(counter))


def digit_word(key: torch.Tensor, j: int) -> torch.Tensor:
    """``R_j = mix(key + j * G)``: the j-th binary digit (j = 1 .. 32) of every lane's uniform."""
    return mix64(key + signed64(j * GAMMA))
