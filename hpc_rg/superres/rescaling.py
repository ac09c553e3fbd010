"""Measure the temperature flow of the blocking from ``samples.h5`` (collective).

Curves: observables (:func:`~hpc_rg.superres.observables.curve_names`) of the L/2
Monte Carlo reference ensemble (group ``/L<L/2>``) and of the size-L ensemble blocked
to L/2, both on the run's temperature grid; :func:`hpc_rg.rg.flow.fit_flow` turns them
into f(T). Each rank reads its share in slices of 256 configurations; sums travel by MPI.
Errors are naive standard errors of the mean (autocorrelations ignored; thin enough).
"""

from __future__ import annotations

import logging

import numpy as np

from ..io import schema
from ..rg.blocking import block
from ..rg.flow import TemperatureFlow, fit_flow
from ..rng import torch_generator
from .ensemble_io import coarse_blocking, ensemble_size, grid, read_runs, take_share
from .observables import curve_names, observables

log = logging.getLogger("hpc_rg")

_SLICE = 256


def _curve_sums(group, comms, device, field, dims, blocking=None, seed=0):
    """(sum, sum of squares, count) per observable and temperature over all ranks."""
    import torch
    from mpi4py import MPI
    N = ensemble_size(group)
    names = curve_names(field)
    n_T = len(grid(group))
    s1 = {k: np.zeros(n_T) for k in names}
    s2 = {k: np.zeros(n_T) for k in names}
    count = 0
    gen = torch_generator(seed, "flow-blocking", comms.rank, device=device)
    for a, b in take_share([(0, N)], comms.rank, comms.size):
        for c in range(a, b, _SLICE):
            x = torch.from_numpy(read_runs(group, [(c, min(c + _SLICE, b))])).to(device)
            if blocking is not None:
                x = block(x, coarse_blocking(blocking), dims, generator=gen)
            for k in range(n_T):
                obs = observables(x[k], field, dims)
                for name in names:
                    v = obs[name].cpu().numpy()
                    s1[name][k] += v.sum()
                    s2[name][k] += (v * v).sum()
            count += x.shape[1]
    for name in names:
        s1[name] = comms.world.allreduce(s1[name], op=MPI.SUM)
        s2[name] = comms.world.allreduce(s2[name], op=MPI.SUM)
    count = comms.world.allreduce(count, op=MPI.SUM)
    means = {k: s1[k] / count for k in names}
    errs = {k: np.sqrt(np.maximum(s2[k] / count - means[k] ** 2, 0) / max(count - 1, 1))
            for k in names}
    return means, errs


def measure_flow(cfg, f, L: int, field: str, blocking: str, comms, device) -> TemperatureFlow | None:
    """f(T) from ``/L<L>`` blocked vs ``/L<L/2>``; None (with a warning) when impossible."""
    small = schema.size_group(L // 2)
    warn = log.warning if comms.is_root else log.debug
    if small not in f:
        warn(f"[train] no /{small} Monte Carlo reference in {f.filename}: temperature "
                    f"rescaling is off (add sample.reference_sizes: [{L // 2}] to measure it)")
        return None
    dims = cfg.model.dims
    big = f[schema.size_group(L)]
    T = grid(big)
    mc, mc_err = _curve_sums(f[small], comms, device, field, dims)
    ds, ds_err = _curve_sums(big, comms, device, field, dims, blocking, cfg.run.seed)
    try:
        flow = fit_flow(T, mc, ds, mc_errors=mc_err, blocked_errors=ds_err,
                        T_small=grid(f[small]))
    except ValueError as e:
        warn(f"[train] temperature flow could not be fitted ({e}); rescaling off. "
                    f"Use a denser temperature grid around T_c")
        return None
    rows = ", ".join(f"{t:.4f}->{v:.4f}" for t, v, ok in zip(flow.T, flow.f, flow.valid) if ok)
    outside = [f"{t:.4f}" for t, ok in zip(flow.T, flow.valid) if not ok]
    log.info(f"[train] blocking flow f(T) from /L{L} vs /{small}: {rows}")
    if outside:
        log.info(f"[train] outside the measured flow (no f(T)): T = {', '.join(outside)}; "
                 f"the blocked /L{L} observables leave the range of the /{small} Monte Carlo "
                 f"curve there, so super-resolved levels from these temperatures keep their "
                 f"nominal temperature; widen the /{small} temperatures to measure them")
    return flow


def flow_to_meta(flow: TemperatureFlow | None):
    """Plain (JSON-like) form for the model file."""
    if flow is None:
        return None
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in flow.to_attrs().items()}


def flow_from_meta(meta) -> TemperatureFlow | None:
    if not meta:
        return None
    return TemperatureFlow.from_attrs({k: (np.asarray(v) if isinstance(v, list) else v)
                                       for k, v in meta.items()})
