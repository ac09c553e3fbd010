"""Plots of Monte Carlo and super-resolved ensembles from hpc_rg output files.

Usage::

    python -m hpc_rg.tools.plot RUN_DIR [options]          # samples.h5 + upscaled.h5 of a run
    python -m hpc_rg.tools.plot FILE [FILE] [options]      # samples.h5 and/or upscaled.h5
    tools/plot ...                                          # the same, via the checkout's venv

Reads the files read-only with plain h5py (no MPI) and writes PNG files to ``--out``
(default ``RUN_DIR/plots``, or ``plots/`` beside the first FILE), printing the path of each.
A run directory needs at least one of ``samples.h5`` and ``upscaled.h5``; each kind says
which it needs. ``--kind`` (repeatable; default ``all``: every plot that applies to the
model and the data at hand, the others skipped without a word unless ``--verbose``):

* ``histograms`` (ising; samples + upscaled): per nominal temperature (default all, or the
  indices given with ``--temperature``), density histograms of |m| and of the energy per
  site for Monte Carlo at the input size L, the first super-resolved level 2L, and Monte
  Carlo at 2L when ``samples.h5`` has that size (at its temperature nearest to the level's
  T_eff) — Efthymiou, Beach & Melko, PRB 99, 075113 (2019), Fig. 5.
* ``curves`` (ising): <|m|>, <e>, χ = N(<m²> − <|m|>²)/T and C = N(<e²> − <e>²)/T² vs
  temperature; lines for each Monte Carlo size, markers for each super-resolved level at
  its effective temperature (NaN ones skipped); jackknife errors (their Fig. 4).
* ``binder`` (edwards_anderson; samples): g = (3 − [<q⁴>]/[<q²>]²)/2 vs temperature,
  thermal averages per disorder sample first, jackknife over disorder samples.
* ``phi4`` (phi4): <|φ|> vs the scanned coupling per size (Bachtis et al.); a
  super-resolved point without a finite effective coupling is drawn hollow at its
  nominal coupling. When a super-resolved level has a Monte Carlo ensemble of its size on
  the same grid, a second panel compares the two at the nominal coupling and marks their
  crossing (linear interpolation, error from Gaussian resampling of both curves), the
  original-vs-inversely-renormalized estimate of the critical coupling.
* ``snapshots`` (every model; upscaled, plus samples for the input): configuration
  ``--config`` (default 0) of one temperature across the levels — the Monte Carlo input at
  L and its descendants at 2L, 4L, … (configuration n of temperature t at every level
  descends from input [t, n·C // N], C = attribute input_count, docs/hdf5-layout.md), Efthymiou Fig. 1 style. Spins (and EA
  overlaps ρ) in two colours, φ⁴ fields on a diverging colour map; 3D: the middle slice.
* ``correlation`` (every model): G(r) = <s_x s_{x+r}> vs r on log-log axes for every Monte
  Carlo size and super-resolved level (EA: of the overlap ρ of replica pairs (0,1), (2,3),
  …), jackknife errors; at most ``--max-configs`` configurations per size, read in
  batches, spread evenly over the ensemble.
* ``tempering`` (samples with parallel tempering): replica-exchange acceptance per
  neighbouring temperature pair (group attribute ``tempering_acceptance``) per size, and
  the round trips per ladder (``tempering_round_trips``) when present.
* ``ess`` (upscaled with ESS data): ESS/N (attribute or dataset ``ess_per_n``) and, when
  present, the acceptance (``acceptance``) per super-resolved level, e.g. of ``source =
  superres_mh`` groups.

``snapshots`` and ``correlation`` draw one temperature by default: the one nearest the
known critical temperature (2D/3D Ising, 3D EA) or else the middle of the grid;
``--temperature`` takes indices (``0 2``, ``0,2``) or ``all``. In ``binder`` and ``phi4``
the super-resolved levels are shifted sideways by 0.8 % of the grid's span per level so
that markers at the same abscissa stay readable.

Exit status: 0 done; 2 bad input (one line on stderr naming the file, group or option).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import HpcRgError
from ..plots import KINDS, make_plots, open_inputs
from .common import ToolParser, run_tool

TOOL = "plot"


def _temperature_spec(values):
    if values is None:
        return None
    tokens = [t for v in values for t in str(v).split(",") if t.strip()]
    if [t.strip().lower() for t in tokens] == ["all"]:
        return "all"
    try:
        return [int(t) for t in tokens]
    except ValueError:
        raise HpcRgError(f"--temperature takes indices into the temperature grid (0 2, 0,2) "
                         f"or 'all', got {' '.join(values)}") from None


def _sizes_spec(text):
    if text is None:
        return None
    try:
        return [int(s) for s in str(text).replace("L", "").split(",") if s.strip()]
    except ValueError:
        raise HpcRgError(f"--sizes takes lattice sizes like 16,32, got {text}") from None


def parse_args(argv):
    p = ToolParser(prog=TOOL, description=(
        "Plot Monte Carlo and super-resolved ensembles of an hpc_rg run: histograms SR vs MC, "
        "observables vs T, EA Binder ratio, phi4 <|phi|>, configuration snapshots across the "
        "levels, two-point functions G(r), parallel-tempering acceptance, ESS/N per level."),
        epilog="Kinds: " + ", ".join(KINDS) + ". Exit status 0 done, 2 bad input.")
    p.add_argument("inputs", nargs="+", metavar="RUN_DIR|FILE",
                   help="a run directory (its run.output, holding samples.h5 and/or upscaled.h5) "
                        "or one or more HDF5 files written by hpc_rg")
    p.add_argument("--out", help="directory for the PNGs (default RUN_DIR/plots, or plots/ beside "
                                 "the first FILE)")
    p.add_argument("--kind", action="append", choices=("all",) + KINDS,
                   help="plot to make; repeat for several (default all that apply)")
    p.add_argument("--temperature", nargs="+", metavar="I",
                   help="temperature (coupling) indices, e.g. '0 2' or '0,2', or 'all' (default: "
                        "histograms all; snapshots and correlation the one nearest T_c, else the "
                        "middle of the grid)")
    p.add_argument("--config", type=int, default=0, metavar="N",
                   help="snapshots: configuration index within the temperature (default 0)")
    p.add_argument("--sizes", metavar="L,L,...", help="only these lattice sizes (e.g. 16,32)")
    p.add_argument("--max-configs", type=int, default=2000, metavar="N",
                   help="correlation: at most N configurations per size and temperature, "
                        "spread evenly over the ensemble (default 2000)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="say on stderr which kinds were skipped and why")
    args = p.parse_args(argv)
    if args.max_configs < 1:
        p.error(f"--max-configs must be >= 1, got {args.max_configs}")
    if args.config < 0:
        p.error(f"--config must be >= 0, got {args.config}")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    indices = _temperature_spec(args.temperature)
    inp = open_inputs(args.inputs, _sizes_spec(args.sizes))
    try:
        out = Path(args.out) if args.out else inp.default_out
        make_plots(inp, out, tuple(args.kind or ("all",)), indices, args.config,
                   args.max_configs, args.verbose)
    finally:
        inp.close()
    return 0


def cli() -> int:
    return run_tool(TOOL, main)


if __name__ == "__main__":
    sys.exit(cli())
