"""Measured curves of the temperature flow: observables per temperature of an ensemble,
optionally blocked first (collective).

The ensemble is given by a reader, so this module knows nothing of the file layout
(:func:`hpc_rg.superres.rescaling.ensemble_curves` binds it to ``samples.h5``). Each rank
takes the block ``[rank N / size, (rank + 1) N / size)`` of the N configurations and reads
it in slices of 256; sums travel by MPI. Errors are naive standard errors of the mean
(autocorrelations ignored; thin enough).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ...rng import torch_generator
from ..blocking import block
from ..observables import curve_names, observables

__all__ = ["curve_stats"]

_SLICE = 256


def curve_stats(read: Callable[[int, int], np.ndarray], n_configs: int, n_T: int, comm,
                field: str, dims: int, device, blocking: str | None = None, seed: int = 0):
    """Means and standard errors of :func:`~hpc_rg.rg.observables.curve_names` per temperature.

    Parameters
    ----------
    read : callable ``(a, b) -> ndarray (n_T, b - a, *lattice)``
        Configurations ``a .. b-1`` of every temperature (float32 spins or φ).
    n_configs, n_T : configurations per temperature, temperatures
    comm : MPI communicator over which the configurations are shared
    field : "spin" or "phi4"; dims: lattice dimension
    blocking : rule of :func:`hpc_rg.rg.blocking.block` applied first, or None
    seed : run seed of the blocking's random numbers (stream "flow-blocking", per rank)

    Returns
    -------
    (means, errors) : dicts name -> ndarray (n_T,), float64, equal on every rank
    """
    import torch
    from mpi4py import MPI
    rank, size = comm.Get_rank(), comm.Get_size()
    names = curve_names(field)
    s1 = {k: np.zeros(n_T) for k in names}
    s2 = {k: np.zeros(n_T) for k in names}
    count = 0
    gen = torch_generator(seed, "flow-blocking", rank, device=device)
    lo, hi = rank * n_configs // size, (rank + 1) * n_configs // size
    for c in range(lo, hi, _SLICE):
        x = torch.from_numpy(read(c, min(c + _SLICE, hi))).to(device)
        if blocking is not None:
            x = block(x, blocking, dims, generator=gen)
        for k in range(n_T):
            obs = observables(x[k], field, dims)
            for name in names:
                v = obs[name].cpu().numpy()
                s1[name][k] += v.sum()
                s2[name][k] += (v * v).sum()
        count += x.shape[1]
    for name in names:
        s1[name] = comm.allreduce(s1[name], op=MPI.SUM)
        s2[name] = comm.allreduce(s2[name], op=MPI.SUM)
    count = comm.allreduce(count, op=MPI.SUM)
    means = {k: s1[k] / count for k in names}
    errs = {k: np.sqrt(np.maximum(s2[k] / count - means[k] ** 2, 0) / max(count - 1, 1))
            for k in names}
    return means, errs
