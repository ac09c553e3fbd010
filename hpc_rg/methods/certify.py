"""Certificates of super-resolved levels, from the upscale stage's data (rank 0).

Glue between the stage and :mod:`hpc_rg.analysis.certificate`: reads the per-configuration
observables of a level and, where ``samples.h5`` holds a Monte Carlo ensemble of the same
size, that ensemble's; computes means with errors (MH chains: autocorrelation-corrected per
chain; Monte Carlo: binning in blocks of whole chains) and the certificate attributes.
"""

from __future__ import annotations

import logging

import numpy as np

from ..analysis import certificate as cert
from ..analysis.stats import integrated_autocorr_time
from ..io import schema

log = logging.getLogger("hpc_rg")

#: model -> observable name -> (dataset, transform): the z-scores of the certificate
OBSERVABLES = {
    "ising": {"e": (schema.ENERGY, None), "abs_m": (schema.MAGNETIZATION, np.abs)},
    "phi4": {"abs_phi": (schema.PHI_MEAN, np.abs), "phi2": (schema.PHI2_MEAN, None)},
}


def chain_mean_error(x, chains: int):
    """Mean and standard error of ``x`` (N,) made of ``chains`` consecutive Markov chains.

    Each chain's variance of the mean is ``var * 2 tau_int / n`` (tau of that chain; a
    chain that never changed counts as one configuration); chains are independent.
    """
    x = np.asarray(x, np.float64)
    N = len(x)
    var = 0.0
    for c in range(chains):
        s = x[c * N // chains:(c + 1) * N // chains]
        n = len(s)
        if n == 0:
            continue
        if n < 4 or np.ptp(s) == 0:
            tau = 0.5 if n < 4 else n / 2.0
        else:
            try:
                tau = float(np.asarray(integrated_autocorr_time(s)[0]).reshape(-1)[0])
            except (ValueError, FloatingPointError):
                tau = n / 2.0
            tau = tau if np.isfinite(tau) else n / 2.0
        var += (n / N) ** 2 * s.var() * 2.0 * max(tau, 0.5) / n
    return float(x.mean()), float(np.sqrt(var))


def level_means(h5, group: str, model: str, chains: int) -> dict:
    """name -> (mean (T,), err (T,)) of the certificate's observables of level ``group``
    of the open output ``h5`` (rows: ``chains`` consecutive Markov chains per point)."""
    out = {}
    for name, (ds, fn) in OBSERVABLES.get(model, {}).items():
        if h5.has(f"{group}/{ds}"):
            x = h5.read(f"{group}/{ds}")
            stats = [chain_mean_error(row, chains) for row in (fn(x) if fn is not None else x)]
            out[name] = (np.array([m for m, _ in stats]), np.array([e for _, e in stats]))
    return out


def read_series(group, model: str) -> dict:
    """name -> (T, N) per-configuration observables of an open level group."""
    out = {}
    for name, (ds, fn) in OBSERVABLES.get(model, {}).items():
        if ds in group:
            x = group[ds][()]
            out[name] = fn(x) if fn is not None else x
    return out


def reference(samples_path, L: int, model: str):
    """(grid (T,), {name: (mean, err)}, label) of the Monte Carlo group /L<L> of
    ``samples_path``, or None when it has none."""
    import h5py

    from ..analysis.stats import binning_error
    try:
        f = h5py.File(samples_path, "r")
    except OSError:
        return None
    with f:
        g = f.get(schema.size_group(L))
        if g is None or str(g.attrs.get(schema.GROUP_ATTR_SOURCE, "")) != "monte_carlo":
            return None
        grid_name = schema.COUPLINGS if schema.COUPLINGS in g else schema.TEMPERATURES
        grid = g[grid_name][()]
        chains = max(1, int(g.attrs.get(schema.GROUP_ATTR_CHAINS, 1)))
        stats = {}
        for name, x in read_series(g, model).items():
            S = x.shape[1]
            bins = chains * max(1, min(32 // chains, S // chains // 8))
            bins = max(2, min(bins, S // 2))
            stats[name] = (x.mean(axis=1), np.array([float(binning_error(row, bins)[1])
                                                     for row in x]))
        return grid, stats, f"{samples_path.name} /L{L}"


def level_attrs(cfg, h5, L: int, certificate, grid, grid_label: str, chains: int,
                interpolate: bool) -> dict:
    """The certificate attributes of level ``L`` (rank 0): ``certificate``'s own, after the
    z-scores against Monte Carlo of size L in samples.h5 (if any) have failed the points
    beyond Z_MAX. ``chains``: consecutive Markov chains per grid point of the level's rows;
    ``interpolate``: compare at effective temperatures off the Monte Carlo grid (CNN)."""
    attrs = {}
    means = level_means(h5, schema.size_group(L), cfg.model.name, chains)
    ref = reference(cfg.output_dir / schema.SAMPLES_FILE, L, cfg.model.name)
    if ref is not None and means:
        mc_grid, mc, label = ref
        attrs.update(cert.compare_to_reference(certificate, means, mc, mc_grid, grid,
                                               interpolate))
        attrs["reference"] = label + (" (interpolated to T_eff)" if interpolate else "")
    attrs.update(certificate.attrs(L, grid_label, grid))
    return attrs


def report(certs: list, grid_label: str, compared: bool = True) -> None:
    """Log the certificates: one info line for the approximate levels, one per certified
    level, and a warning listing every uncertified point of an exact method.
    ``compared``: the levels were compared with same-size Monte Carlo where it exists."""
    approx = [(L, c) for L, c, _ in certs if not c.exact]
    if approx:
        where = ("where samples.h5 has Monte Carlo of a level's size its bias is in the file "
                 "(bias_*, z_*; tools/h5info, tools/compare)" if compared else
                 "the chain started from blocked Monte Carlo, so no level is compared with "
                 "same-size nearest-neighbour Monte Carlo (attribute 'reference')")
        log.info(f"[upscale] L={', '.join(str(L) for L, _ in approx)}: {approx[0][1].sampler} "
                 f"super-resolution is approximate (exact = false, not certified); {where}")
    for L, c, grid in certs:
        if not c.exact:
            continue
        if c.certified:
            log.info(f"[upscale] L={L}: certified ({c.sampler}; effectively independent "
                     f"configurations {', '.join(f'{x:.0f}' for x in c.n_effective)})")
        else:
            log.warning(f"[upscale] L={L}: NOT CERTIFIED ({c.sampler}) -- not equilibrium "
                        f"samples at the points below, do not use them as exact:\n"
                        + c.text(L, grid_label, grid))
