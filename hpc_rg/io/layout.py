"""Shapes of a size group's datasets and where each chain's samples go (the HDF5 contract).

Clean models (ising, phi4)::

    configs[temperature, sample, x, y, ...]      sample = chain * samples + k

Edwards-Anderson::

    configs[disorder, temperature, sample, replica, x, y, ...]
    overlap[disorder, temperature, sample, pair]  pairs (a < b) in lexicographic order

Global chain ids follow the sampler: clean ``u = c*T + t0``, EA ``u = (d*R + r)*T + t0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import schema


@dataclass(frozen=True)
class SizeLayout:
    """Dataset shapes of one lattice-size group for a run configuration."""

    model: str
    dims: int
    L: int
    n_params: int  #: temperatures or couplings
    samples: int  #: kept configurations per chain
    chains: int = 1  #: clean models: chains per temperature
    disorder: int = 1  #: EA: disorder samples
    replicas: int = 1  #: EA: replicas

    @classmethod
    def from_config(cls, cfg, L: int | None = None) -> "SizeLayout":
        m, s = cfg.model, cfg.sample
        ea = m.name in schema.DISORDERED_MODELS
        return cls(model=m.name, dims=m.dims, L=L or s.L, n_params=len(cfg.parameter_grid),
                   samples=s.samples, chains=1 if ea else s.chains,
                   disorder=m.disorder_samples if ea else 1, replicas=m.replicas if ea else 1)

    @property
    def disordered(self) -> bool:
        return self.model in schema.DISORDERED_MODELS

    @property
    def lattice(self) -> tuple[int, ...]:
        return (self.L,) * self.dims

    @property
    def axes(self) -> tuple[str, ...]:
        return schema.DISORDERED_AXES if self.disordered else schema.CLEAN_AXES

    @property
    def leading(self) -> tuple[int, ...]:
        if self.disordered:
            return (self.disorder, self.n_params, self.samples, self.replicas)
        return (self.n_params, self.chains * self.samples)

    @property
    def n_pairs(self) -> int:
        return self.replicas * (self.replicas - 1) // 2

    @property
    def config_dtype(self):
        return np.float32 if self.model in schema.CONTINUOUS_MODELS else np.int8

    def scalar_names(self) -> tuple[str, ...]:
        names = (schema.ENERGY, schema.MAGNETIZATION)
        if self.model in schema.CONTINUOUS_MODELS:
            names += (schema.PHI_MEAN, schema.PHI2_MEAN, schema.ACTION)
        return names

    def pair_names(self) -> tuple[str, ...]:
        return (schema.OVERLAP, schema.LINK_OVERLAP) if self.disordered else ()

    def datasets(self) -> dict[str, tuple[tuple, object, tuple | None, str]]:
        """name -> (shape, dtype, chunks, axes attribute) for every dataset of the group."""
        lead = self.leading
        out = {schema.CONFIGS: (lead + self.lattice, self.config_dtype,
                                (1,) * len(lead) + self.lattice,
                                ",".join(self.axes + tuple("xyz"[: self.dims])))}
        for name in self.scalar_names():
            out[name] = (lead, np.float64, None, ",".join(self.axes))
        if self.disordered:
            pshape = (self.disorder, self.n_params, self.samples, self.n_pairs)
            for name in self.pair_names():
                out[name] = (pshape, np.float64, None, ",".join(schema.PAIR_AXES))
        return out

    # ------------------------------------------------------------- chain -> slots
    def chain_slot(self, chain_id: int, t: int, k0: int, k1: int) -> tuple:
        """Leading-axes selection for samples ``k0:k1`` of chain ``chain_id`` at temperature ``t``."""
        T = self.n_params
        if self.disordered:
            dr = chain_id // T
            d, r = divmod(dr, self.replicas)
            return (d, t, slice(k0, k1), r)
        c = chain_id // T
        return (t, slice(c * self.samples + k0, c * self.samples + k1))
