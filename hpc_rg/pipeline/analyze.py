"""The ``analyze`` stage: observables with errors of ``samples.h5`` and ``upscaled.h5``.

Runs the computation of ``tools/observables`` (:mod:`hpc_rg.analysis.tables`) on every size
group of the run's ``samples.h5`` and ``upscaled.h5`` (whichever exist; ``analyze.sizes``
restricts them), collectively over the world (each rank reads its share of the
configurations, block sums are reduced), optionally fits the finite-size-scaling exponents
(:mod:`hpc_rg.analysis.fss`; a size in both files is taken from ``samples.h5``), and rank 0
writes ``analysis.h5`` (``.partial`` then renamed; layout in :mod:`hpc_rg.analysis.report`),
logs the tables and, with ``analyze.plots``, writes the PNGs of ``tools/plot`` to
``run.output/plots/`` and says where they are. No checkpoints: an interrupted analysis starts again.
"""

from __future__ import annotations

import logging

from ..errors import InputFileError, StoppedBySignal
from ..io import schema
from ..io.provenance import provenance

log = logging.getLogger("hpc_rg")

PLOTS_DIR = "plots"  #: PNGs of the analyze stage, inside run.output


def run_analyze(cfg, comms, stop, resume: bool, device) -> None:
    """Analyse the run's outputs and write ``analysis.h5`` (collective over ``comms.world``)."""
    import h5py

    from ..analysis import report
    from ..analysis.fss import fit_exponents, format_exponents
    from ..analysis.tables import file_tables
    from ..io.outputs import size_groups

    out = cfg.output_dir
    a = cfg.analyze
    files = comms.bcast_root([str(out / n) for n in (schema.SAMPLES_FILE, schema.UPSCALED_FILE)
                              if (out / n).is_file()])
    if not files:
        raise InputFileError(f"{out}: no {schema.SAMPLES_FILE} or {schema.UPSCALED_FILE} to "
                             f"analyze; run --stage sample (and upscale) first")
    rs = None
    if a.two_point_r:
        rs = set(a.two_point_r)
        if a.exponents:  # the fits need G(L/4) and G(L/2) of every size
            from ..config import run_sizes
            rs |= {max(1, L // 4) for L in run_sizes(cfg)} | {L // 2 for L in run_sizes(cfg)}
        rs = sorted(rs)
    tables = []
    for path in files:
        if stop.requested(comms):
            raise StoppedBySignal("analyze stage stopped by signal; rerun with --resume")
        with h5py.File(path, "r") as f:
            have = [L for L, _ in size_groups(f)]
            want = None if not a.sizes else [L for L in a.sizes if L in have]
            if want == []:
                continue
            log.info(f"[analyze] {path}: sizes {', '.join(map(str, want or have))}")
            tables += file_tables(f, comms.world, sizes=want, rs=rs,
                                  n_bins=a.jackknife_bins or None,
                                  only_passed=cfg.sample.equilibration.only_passed)
    missing = sorted(set(a.sizes) - {t.L for t in tables})
    if missing:
        raise InputFileError(f"{cfg.source}: analyze.sizes: no group /L{missing[0]} in "
                             f"{', '.join(files)}")
    exps = None
    fit_tables = _fss_tables(cfg, tables, comms.is_root)
    if a.exponents and len({t.L for t in fit_tables}) >= 2:
        exps = fit_exponents(fit_tables)
    final = out / schema.ANALYSIS_FILE
    root = provenance(cfg, comms.size, "analyze", commit=None if comms.is_root else "")
    if comms.is_root:
        report.write_h5(final, tables, root, exponents=exps)
        text = report.format_tables(tables)
        if exps:
            text += "\n\n# finite-size scaling\n" + format_exponents(exps)
        log.info(f"[analyze] wrote {final}\n{text}")
        if a.plots:
            _write_plots(files, out / PLOTS_DIR)
    comms.world.Barrier()


def _write_plots(files, plot_dir) -> None:
    """Every plot kind of ``tools/plot`` that applies to ``files``, into ``plot_dir``
    (rank 0); says where they are. Without matplotlib: one warning, no plots."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log.warning("[analyze] matplotlib is not installed: no plots (pip install matplotlib, "
                    "or analyze.plots: false)")
        return
    from ..plots import make_plots, open_inputs

    inp = open_inputs(files)
    try:
        paths = make_plots(inp, plot_dir, echo=False)
    finally:
        inp.close()
    names = ", ".join(p.name if hasattr(p, "name") else str(p).rsplit("/", 1)[-1] for p in paths)
    log.info(f"[analyze] {len(paths)} plot(s) in {plot_dir}/: {names}")


def _fss_tables(cfg, tables: list, announce: bool) -> list:
    """The tables the finite-size-scaling fits run over: every size, except that a chain
    started from blocked Monte Carlo (``upscale.input_blockings`` > 0, the fixed-point
    mode) is fitted over its own levels only -- the nearest-neighbour Monte Carlo sizes
    are another ensemble (their amplitudes differ by the blocking's ratio)."""
    from ..config import upscale_input_blockings
    if "upscale" not in cfg.present or not upscale_input_blockings(cfg):
        return tables
    levels = [t for t in tables if t.source == "superres"]
    if levels and len(levels) < len(tables) and announce:
        log.info(f"[analyze] finite-size scaling over the super-resolved levels only (L = "
                 f"{', '.join(str(t.L) for t in levels)}): the chain started from Monte "
                 f"Carlo blocked {upscale_input_blockings(cfg)} time(s), a fixed-point "
                 f"ensemble that the nearest-neighbour Monte Carlo sizes are not")
    return levels or tables
