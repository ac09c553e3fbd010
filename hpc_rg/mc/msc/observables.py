"""Observables of multi-spin-coded chains from their per-chain bit strings (exact integer counts).

The bit strings are :meth:`hpc_rg.mc.msc.chains.MscChains.bits` ``(B, 1 + d, M)`` uint64:
plane 0 the spins (bit 1: s = -1), plane 1 + mu the forward bonds ``s_x s_{x+e_mu}`` (bit 1:
product -1), zero beyond the slab's sites. Every function returns counts over the slab's
sites; summed over the slab ranks and turned into magnetisations / overlaps by the caller they
are the same numbers the float path computes (integers in float64 are exact). Energies come
from the unsatisfied-bond counts of :meth:`hpc_rg.mc.msc.chains.MscChains.unsatisfied`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["down_spins", "pair_differences"]


def _count(a: np.ndarray) -> np.ndarray:
    """Set bits of uint64 ``a`` summed over its last axis, int64."""
    return np.bitwise_count(a).sum(axis=-1, dtype=np.int64)


def down_spins(bits: np.ndarray) -> np.ndarray:
    """Number of s = -1 sites of every chain, ``(B,)`` int64."""
    return _count(bits[:, 0])


def pair_differences(bits: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(2, n)`` int64: sites where chains ``a[k]`` and ``b[k]`` differ (row 0) and forward
    bonds whose products differ (row 1): q = 1 - 2 row0 / N, q_l = 1 - 2 row1 / (d N)."""
    x = bits[a] ^ bits[b]
    return np.stack([_count(x[:, 0]), _count(x[:, 1:]).sum(axis=-1)])
