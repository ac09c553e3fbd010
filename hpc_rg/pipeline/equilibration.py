"""The sample stage's equilibration certificate of an Edwards–Anderson size group.

At the end of a size every replica group's slab rank 0 reads back the energies and
overlaps it wrote (its disorder samples; both writers can read a rank's own slices),
computes the per-sample diagnostics (:func:`hpc_rg.analysis.equilibration.sample_diagnostics`)
and rank 0 gathers them, adds the tempering round trips and the disorder-averaged tests
(:func:`~hpc_rg.analysis.equilibration.certify`) and writes the datasets; the names are in
:mod:`hpc_rg.io.schema`, the layout in docs/hdf5-layout.md.
"""

from __future__ import annotations

import logging

import numpy as np

from ..analysis.equilibration import (DRIFT_OBSERVABLES, Certificate, SampleDiagnostics,
                                      certify, sample_diagnostics)
from ..io import schema

log = logging.getLogger("hpc_rg")

ADVICE = ("sample longer (sample.thermalize, and sample.samples x sample.thin: the tests "
          "compare the last half of the kept configurations with the quarter before it) or "
          "over more temperatures (sample.temperatures: pairs with low acceptance stop the "
          "round trips); the datasets equilibrated, drift_z_* and round_trips say which "
          "samples and temperatures fail")


def write_certificate(h5, g: str, cfg, ens, comms) -> Certificate | None:
    """Collective over ``comms.world``: certify the disorder samples of group ``g`` (all
    chunks written) and store the result; logs the summary line on rank 0.

    Returns the :class:`~hpc_rg.analysis.equilibration.Certificate` on rank 0, else None.
    """
    m, eq = cfg.model, cfg.sample.equilibration
    temps = np.asarray(cfg.parameter_grid, dtype=np.float64)
    part = None
    if comms.slab_rank == 0 and len(ens.d_indices):
        sel = (slice(int(ens.d_indices[0]), int(ens.d_indices[-1]) + 1),)
        read = {name: h5.read(f"{g}/{name}", sel)
                for name in (schema.ENERGY, schema.OVERLAP, schema.LINK_OVERLAP)}
        part = sample_diagnostics(ens.d_indices, read[schema.ENERGY], read[schema.OVERLAP],
                                  read[schema.LINK_OVERLAP], temps, int(m.dims), eq.sigma)
    parts = comms.world.gather(part, root=0)
    stats = ens.tempering_stats()  # identical on every rank
    cert, data = None, None
    if comms.is_root:
        diag = SampleDiagnostics.concatenate([p for p in parts if p is not None])
        D = len(diag.d_indices)
        rt = (np.asarray(stats["round_trips"], dtype=np.int64).reshape(D, -1).sum(axis=1)
              if stats else np.full(D, -1, dtype=np.int64))
        cert = certify(diag, temps, rt, m.disorder == "gaussian", eq.sigma, eq.min_round_trips)
        data = _datasets(cert)
    shapes = comms.bcast_root(None if data is None else
                              {k: (v.shape, v.dtype, axes) for k, (v, axes) in data.items()})
    for name, (shape, dtype, axes) in shapes.items():
        if not h5.has(f"{g}/{name}"):  # a resumed run may have made them already
            h5.create_dataset(f"{g}/{name}", shape, dtype,
                              attrs={schema.DATASET_ATTR_AXES: axes})
    if comms.is_root:
        for name, (values, _) in data.items():
            h5.put(f"{g}/{name}", (), values)
    h5.set_attrs(g, comms.bcast_root(None if cert is None else _attrs(cert, cfg, ens.L)))
    if comms.is_root:
        _log(cert, int(ens.L))
    return cert


def _datasets(cert: Certificate) -> dict:
    """name -> (array, axes attribute) of the certificate's datasets."""
    dg, dt = cert.diagnostics, "disorder,temperature"
    out = {schema.EQUILIBRATED: (cert.equilibrated.astype(bool), "disorder"),
           schema.EQUILIBRATION_PASSED: (cert.passed.astype(bool), dt),
           schema.SAMPLE_ROUND_TRIPS: (cert.round_trips.astype(np.int64), "disorder"),
           schema.IDENTITY_RESIDUAL: (dg.identity_residual.astype(np.float64), dt)}
    for name in DRIFT_OBSERVABLES:
        out[schema.DRIFT_PREFIX + name] = (dg.drift[name].astype(np.float64), dt)
        out[schema.DRIFT_Z_PREFIX + name] = (dg.z[name].astype(np.float64), dt)
    return out


def _attrs(cert: Certificate, cfg, L: int) -> dict:
    eq = cfg.sample.equilibration
    return {schema.GROUP_ATTR_EQUILIBRATION: cert.summary(int(L)),
            schema.GROUP_ATTR_EQUILIBRATED_COUNT: int(cert.equilibrated.sum()),
            schema.GROUP_ATTR_DRIFT_LIMIT: float(cert.diagnostics.limit),
            schema.GROUP_ATTR_IDENTITY_Z: np.asarray(cert.identity_z, dtype=np.float64),
            schema.GROUP_ATTR_IDENTITY_LIMIT: float(cert.identity_limit),
            schema.GROUP_ATTR_EQUILIBRATION_SIGMA: float(eq.sigma),
            schema.GROUP_ATTR_MIN_ROUND_TRIPS: int(eq.min_round_trips),
            schema.GROUP_ATTR_ENSEMBLE_DRIFT: float(cert.ensemble_drift),
            schema.GROUP_ATTR_ENSEMBLE_DRIFT_Z: float(cert.ensemble_drift_z),
            schema.GROUP_ATTR_ENSEMBLE_DRIFT_LIMIT: float(cert.ensemble_drift_limit)}


def _log(cert: Certificate, L: int) -> None:
    log.info(f"[sample] {cert.summary(L)}")
    bad = int((~cert.equilibrated).sum())
    if bad:
        log.warning(f"[sample] L={L}: {bad} of {len(cert.equilibrated)} disorder samples are "
                    f"NOT certified as equilibrated; results that average over them may be "
                    f"biased. To fix: {ADVICE}")
    if cert.ensemble_drifting:
        log.warning(f"[sample] L={L}: the disorder average [q^2] still changes between the "
                    f"two halves of the kept configurations: {100 * cert.ensemble_drift:+.1f} % "
                    f"(z = {cert.ensemble_drift_z:+.1f} over the samples, warning limit "
                    f"{cert.ensemble_drift_limit:.2f}; averaged over the colder half of the "
                    f"temperatures) although the per-sample tests pass or are too noisy to "
                    f"tell: this ensemble is probably not in equilibrium there, chi_SG and g "
                    f"are biased low. To fix: {ADVICE}")
