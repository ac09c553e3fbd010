"""Bit layout of the multi-spin-coded (MSC) ±J kernel: packing, thresholds, energy, overlap.

A *word* holds 64 *lanes*; lane b of word w (bit b) is the independent system ``64 w + b``.

* spins ``(W, *L)`` int64: bit = 1 means s = -1.
* couplings ``(W, d, *L)`` int64 bit planes: bit b of ``J[w, mu, x]`` = 1 means the bond
  (x, x + e_mu) of lane b has J = -1 (periodic boundaries). The Ising ferromagnet is
  ``J = None`` (all planes zero).
* thresholds ``(W, z + 1, 33)`` int64, z = 2d: for each class n = n_sat (number of satisfied
  bonds of the site, ``J s_x s_y = +1``) the flip probability p_n of every lane, as word 0 =
  lanes with p_n = 1 (flip without a random number) and words 1..32 = the binary digits of
  ``floor(p_n 2**32) / 2**32`` (bit b of word j = j-th digit of lane b's p_n).

Recommended use: the lanes of a word are the temperatures × replicas of ONE disorder sample
(e.g. 16 temperatures × 4 replicas), so its coupling planes are broadcast words (0 or ~0) and
parallel-tempering exchanges are label swaps between lanes of one word; several disorder
samples go into several words (the compiled kernel processes 4 (AVX2) or 8 (AVX-512) words
at once, so W a multiple of that is fastest). Lanes never share random bits.

Notes
-----
Both rules flip a spin with a probability that depends only on n_sat and β. With
ΔE = 2 (2 n_sat - z) (units of |J|, H = -Σ J s s):

* Metropolis: p_n = 1 for n ≤ d (ΔE ≤ 0), else exp(-β ΔE).
* Heat bath: the new spin is +1 with probability 1 / (1 + exp(-2 β h)), h = Σ_y J s_y; since
  s_x h = 2 n_sat - z, the probability that it differs from the current one is
  p_n = 1 / (1 + exp(β ΔE)) -- the heat bath, written as a flip probability.
"""

from __future__ import annotations

import torch

__all__ = ["LANES", "RULES", "pack_spins", "unpack_spins", "pack_couplings", "unpack_couplings",
           "lane_counts", "thresholds", "threshold_bits", "energy", "overlap", "chain_bits", "bits_to_spins",
           "unsatisfied"]

LANES = 64
RULES = ("metropolis", "heatbath")
DIGITS = 32


def _lane_shifts(device) -> torch.Tensor:
    return torch.arange(LANES, dtype=torch.int64, device=device)


def _pack_bits(bits: torch.Tensor, axis: int) -> torch.Tensor:
    """Pack a 0/1 tensor whose ``axis`` has length 64 into int64 words (bit b = index b)."""
    bits = bits.movedim(axis, -1).to(torch.int64)
    return (bits << _lane_shifts(bits.device)).sum(-1)  # distinct bits: the sum wraps exactly


def _unpack_bits(words: torch.Tensor) -> torch.Tensor:
    """0/1 int64 tensor ``(*words.shape, 64)``: bit b of every word."""
    return (words.unsqueeze(-1) >> _lane_shifts(words.device)) & 1


def pack_spins(spins: torch.Tensor) -> torch.Tensor:
    """±1 spins ``(64 W, *L)`` (any dtype) -> words ``(W, *L)`` int64; system 64 w + b -> lane b of word w."""
    S = spins.shape[0]
    if S % LANES:
        raise ValueError(f"pack_spins needs a multiple of {LANES} systems, got {S}")
    bits = (spins < 0).reshape(S // LANES, LANES, *spins.shape[1:])
    return _pack_bits(bits, 1)


def unpack_spins(words: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Words ``(W, *L)`` -> ±1 spins ``(64 W, *L)`` of ``dtype`` (inverse of :func:`pack_spins`)."""
    bits = _unpack_bits(words).movedim(-1, 1)  # (W, 64, *L)
    return (1 - 2 * bits).to(dtype).reshape(-1, *words.shape[1:])


def pack_couplings(J: torch.Tensor, words: int | None = None) -> torch.Tensor:
    """±1 couplings -> bit planes ``(W, d, *L)``.

    ``J`` is ``(64 W, d, *L)`` (one realisation per lane) or ``(d, *L)``: one realisation
    shared by all lanes, broadcast to ``words`` words (0 or ~0 words).
    """
    if J.dim() >= 2 and words is not None:
        bits = (J < 0).to(torch.int64)
        return (-bits).unsqueeze(0).expand(words, *J.shape).contiguous()  # 0 or ~0
    return pack_spins(J)


def unpack_couplings(planes: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Bit planes ``(W, d, *L)`` -> ±1 couplings ``(64 W, d, *L)``."""
    return unpack_spins(planes, dtype)


def lane_counts(words: torch.Tensor) -> torch.Tensor:
    """Number of set bits per lane: ``(W, *rest)`` int64 -> ``(W, 64)`` int64 (summed over rest)."""
    W = words.shape[0]
    flat = words.reshape(W, -1)
    out = torch.zeros(W, LANES, dtype=torch.int64, device=words.device)
    for chunk in flat.split(1 << 14, dim=1):
        out += _unpack_bits(chunk).sum(1)
    return out


def thresholds(beta: torch.Tensor, d: int, rule: str) -> torch.Tensor:
    """Per-lane flip thresholds ``(W, 2d + 1, 33)`` int64 of inverse temperatures ``beta (W, 64)``.

    Word 0 of class n: lanes with p_n = 1; words 1..32: binary digits of p_n truncated to
    32 bits (see the module notes for p_n). ``beta`` is float64, β ≥ 0 (units of 1/|J|).
    """
    beta = torch.as_tensor(beta, dtype=torch.float64)
    if beta.dim() != 2 or beta.shape[1] != LANES:
        raise ValueError(f"beta must be (W, {LANES}) float64, got {tuple(beta.shape)}")
    words = threshold_bits(beta, d, rule)  # (W, 64, z+1, 33)
    return _pack_bits(words, 1).contiguous()


def threshold_bits(beta, d: int, rule: str) -> torch.Tensor:
    """The threshold bits of each inverse temperature: ``beta (...)`` float64 ->
    ``(..., 2d + 1, 33)`` int64 0/1 (bit 0: p_n = 1; bits 1..32: the digits of p_n);
    :func:`thresholds` packs them lane by lane."""
    if rule not in RULES:
        raise ValueError(f"unknown update rule {rule!r}; expected one of {RULES}")
    beta = torch.as_tensor(beta, dtype=torch.float64)
    if bool((beta < 0).any()) or not bool(torch.isfinite(beta).all()):
        raise ValueError("beta must be finite and >= 0")
    z = 2 * d
    n = torch.arange(z + 1, dtype=torch.float64, device=beta.device)
    dE = 2.0 * (2.0 * n - z)  # (z+1,)
    x = beta.unsqueeze(-1) * dE  # (..., z+1)
    if rule == "metropolis":
        p = torch.where(dE <= 0, torch.ones_like(x), torch.exp(-x))
    else:
        p = 1.0 / (1.0 + torch.exp(x))
    always = p >= 1.0
    q = torch.where(always, torch.zeros_like(p), torch.floor(p * 2.0 ** DIGITS)).to(torch.int64)
    j = torch.arange(1, DIGITS + 1, dtype=torch.int64, device=beta.device)
    digits = (q.unsqueeze(-1) >> (DIGITS - j)) & 1  # (..., z+1, 32)
    return torch.cat([always.unsqueeze(-1).to(torch.int64), digits], -1)


def _bond_words(spins: torch.Tensor, J: torch.Tensor | None):
    """Unsatisfied-bond words ``s_x ^ s_{x+e_mu} ^ J_mu`` for mu = 0..d-1 (periodic)."""
    d = spins.dim() - 1
    for mu in range(d):
        u = spins ^ torch.roll(spins, -1, mu + 1)
        yield u if J is None else u ^ J[:, mu]


def energy(spins: torch.Tensor, J: torch.Tensor | None = None) -> torch.Tensor:
    """Energy ``H = -Σ_<xy> J s_x s_y`` per lane, ``(W, 64)`` int64 (units of |J|, periodic)."""
    N = spins[0].numel()
    d = spins.dim() - 1
    unsat = sum(lane_counts(u) for u in _bond_words(spins, J))
    return 2 * unsat - d * N


def overlap(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Overlap ``q = (1/N) Σ_x s^a_x s^b_x`` of lane b of ``a`` with lane b of ``b``, ``(W, 64)`` float64."""
    N = a[0].numel()
    return 1.0 - 2.0 * lane_counts(a ^ b).to(torch.float64) / N


def chain_bits(spins: torch.Tensor, above: torch.Tensor | None = None, bonds: bool = True) -> torch.Tensor:
    """Per-lane bit strings ``(64 W, P, M)`` int64 of spin words ``(W, *L)``, M = ceil(N / 64).

    Row 64 w + b is lane b of word w; bit i of ``[., p, m]`` is site 64 m + i (row-major, zero
    beyond N). Plane 0: the spin bits (1 = s is -1); planes 1 + mu (``bonds``): the bond bits
    ``s_x ^ s_{x + e_mu}`` (1 = s_x s_{x+e_mu} = -1), periodic along axes 1.., and along axis 0
    the last plane pairs with ``above`` ``(W, *L[1:])`` when given (a slab), else with plane 0.
    The reference of the compiled ``msc_chain_bits``, bit-identical.
    """
    W, shape = spins.shape[0], tuple(spins.shape[1:])
    N = spins[0].numel()
    planes = [spins]
    if bonds:
        for mu in range(len(shape)):
            nxt = torch.roll(spins, -1, mu + 1)
            if mu == 0 and above is not None:
                nxt = torch.cat([spins[:, 1:], above.unsqueeze(1)], 1)
            planes.append(spins ^ nxt)
    M = -(-N // LANES)
    out = []
    for pl in planes:
        bits = _unpack_bits(pl.reshape(W, N))  # (W, N, 64)
        bits = bits.permute(0, 2, 1).reshape(W * LANES, N)
        bits = torch.nn.functional.pad(bits, (0, M * LANES - N)).reshape(W * LANES, M, LANES)
        out.append(_pack_bits(bits, 2))
    return torch.stack(out, 1)


def bits_to_spins(bits: torch.Tensor, n_sites: int, dtype=torch.int8) -> torch.Tensor:
    """Plane-0 bit strings ``(B, M)`` -> ±1 spins ``(B, n_sites)`` of ``dtype``."""
    b = _unpack_bits(bits).reshape(bits.shape[0], -1)[:, :n_sites]
    return (1 - 2 * b).to(dtype)


def unsatisfied(spins: torch.Tensor, J: torch.Tensor | None = None,
                above: torch.Tensor | None = None) -> torch.Tensor:
    """Unsatisfied forward bonds per lane ``(W, 64)`` int64 (neighbours as :func:`chain_bits`;
    ``J`` bit planes ``(W, d, *L)`` or None); the reference of the compiled count."""
    bits = chain_bits(spins, above)[:, 1:]  # (64 W, d, M)
    if J is not None:
        jb = torch.stack([chain_bits(J[:, mu].contiguous(), bonds=False)[:, 0]
                          for mu in range(J.shape[1])], 1)
        bits = bits ^ jb
    counts = _unpack_bits(bits).sum((1, 2, 3))
    return counts.view(spins.shape[0], LANES)
