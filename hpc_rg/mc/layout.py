"""Which Markov chains of the sample stage a replica group holds, by global chain id.

The world is split into replica groups of S = ``sample.ranks_per_replica`` ranks
(:class:`hpc_rg.parallel.comms.Comms`); every rank of a group holds the same chains, each
its own slab of them. Chains are distributed over groups:

* clean models (ising, phi4): chain id ``u = c*T + t0`` for chain c of ``sample.chains``
  and initial parameter index t0 (T = number of temperatures/couplings); ladder id c;
  group g holds ``block_range(chains*T, n_groups, g)``;
* disordered models (Edwards-Anderson): ``u = (d*R + r)*T + t0`` for disorder sample d and
  replica r; ladder id ``d*R + r``; group g holds every chain of the disorder samples
  ``block_range(D, n_groups, g)`` (so replica overlaps are local to the group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hpc_rg.parallel.distribute import block_range

__all__ = ["ChainLayout", "chain_layout"]


@dataclass(frozen=True)
class ChainLayout:
    """The chains of one replica group.

    Attributes
    ----------
    chain_ids : int64 array, shape (B,)
        Global chain ids, ascending.
    d_indices : int64 array, shape (D_local,)
        Disordered models: the group's disorder samples (empty otherwise).
    n_ladders : int
        Tempering ladders in the whole run (chains per grid point, or disorder samples x
        replicas).
    replicas : int
        R, replicas per disorder sample (1 for clean models).
    """

    chain_ids: np.ndarray
    d_indices: np.ndarray
    n_ladders: int
    replicas: int


def chain_layout(cfg, n_points: int, n_groups: int, group: int) -> ChainLayout:
    """The chains of replica group ``group`` of ``n_groups``, for ``n_points`` grid points
    and the validated config ``cfg`` (``model``, ``sample.chains``)."""
    m, T = cfg.model, n_points
    if m.spec.disordered:
        R = int(m.replicas)
        drange = block_range(int(m.disorder_samples), n_groups, group)
        d_indices = np.arange(drange.start, drange.stop, dtype=np.int64)
        dr = (d_indices[:, None] * R + np.arange(R)[None, :]).reshape(-1)
        ids = (dr[:, None] * T + np.arange(T)[None, :]).reshape(-1)
        return ChainLayout(ids.astype(np.int64), d_indices, int(m.disorder_samples) * R, R)
    urange = block_range(int(cfg.sample.chains) * T, n_groups, group)
    ids = np.arange(urange.start, urange.stop, dtype=np.int64)
    return ChainLayout(ids.astype(np.int64), np.zeros(0, dtype=np.int64),
                       int(cfg.sample.chains), 1)
