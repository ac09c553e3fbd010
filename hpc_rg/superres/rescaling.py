"""Measure the temperature flow of the blocking from ``samples.h5`` (collective).

Binds the ensemble reader (:mod:`hpc_rg.io.ensemble`) to the measured curves of
:mod:`hpc_rg.rg.rescaling` (the home of the temperature rescaling): the L/2 Monte Carlo
reference ensemble (group ``/L<L/2>``) and the size-L ensemble blocked to L/2, each on its
temperature grid; :func:`~hpc_rg.rg.rescaling.fit_flow` turns them into f(T).
"""

from __future__ import annotations

import logging

from ..io import schema
from ..rg.rescaling import TemperatureFlow, fit_flow, flow_from_meta, flow_to_meta
from ..io.ensemble import coarse_blocking, ensemble_size, grid, read_runs
from ..io.equilibrated import usable_disorder_samples

__all__ = ["ensemble_curves", "blocked_curves", "measure_flow", "flow_to_meta", "flow_from_meta"]

log = logging.getLogger("hpc_rg")


def ensemble_curves(group, comm, device, field: str, dims: int, blocking: str | None = None,
                    seed: int = 0, disorder=None):
    """(means, errors) per temperature of a size group, blocked first with ``blocking``
    (a run's blocking name; EA overlaps are already formed), over the ranks of ``comm``;
    EA: of the disorder samples ``disorder`` (file ids; None: all)."""
    from ..rg.rescaling.curves import curve_stats
    return curve_stats(lambda a, b: read_runs(group, [(a, b)], disorder=disorder),
                       ensemble_size(group, disorder),
                       len(grid(group)), comm, field, dims, device,
                       None if blocking is None else coarse_blocking(blocking), seed)


def blocked_curves(f, L: int, field: str, dims: int, blocking: str, comm, device, seed: int,
                   disorder=(None, None)):
    """Curves of ``/L<L/2>`` Monte Carlo and of ``/L<L>`` blocked to L/2 (collective);
    EA: of the disorder samples ``disorder = (ids of /L<L>, ids of /L<L/2>)`` (None: all).

    Returns ``(T, T_small, mc, mc_err, blocked, blocked_err)``: the grids of ``/L<L>`` and
    ``/L<L/2>``, and dicts name -> (n,) of means and standard errors on them.
    """
    big, small = f[schema.size_group(L)], f[schema.size_group(L // 2)]
    mc, mc_err = ensemble_curves(small, comm, device, field, dims, disorder=disorder[1])
    ds, ds_err = ensemble_curves(big, comm, device, field, dims, blocking, seed,
                                 disorder=disorder[0])
    return grid(big), grid(small), mc, mc_err, ds, ds_err


def measure_flow(cfg, f, L: int, field: str, blocking: str, comms, device,
                 disorder=None) -> TemperatureFlow | None:
    """f(T) from ``/L<L>`` blocked vs ``/L<L/2>``; None (with a warning) when impossible.

    EA: ``/L<L>`` over the disorder samples ``disorder`` (file ids, the ones trained on),
    ``/L<L/2>`` over its samples that ``sample.equilibration.only_passed`` admits."""
    small = schema.size_group(L // 2)
    warn = log.warning if comms.is_root else log.debug
    if small not in f:
        warn(f"[train] no /{small} Monte Carlo reference in {f.filename}: temperature "
             f"rescaling is off (add sample.reference_sizes: [{L // 2}] to measure it)")
        return None
    ref = usable_disorder_samples(f[small], cfg.sample.equilibration.only_passed,
                                  warn=comms.is_root, stage="train")
    T, T_small, mc, mc_err, ds, ds_err = blocked_curves(f, L, field, cfg.model.dims, blocking,
                                                         comms.world, device, cfg.run.seed,
                                                         disorder=(disorder, ref.ids))
    try:
        flow = fit_flow(T, mc, ds, mc_errors=mc_err, blocked_errors=ds_err, T_small=T_small)
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
