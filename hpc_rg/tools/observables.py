"""observables: per lattice size and temperature, the observables of an hpc_rg output with
jackknife errors; table on screen, CSV, JSON and ``analysis.h5``.

Usage::

    tools/observables FILE [--L 16 32] [--r 1 2 4] [--csv OUT.csv] [--json OUT.json]
                      [--h5 analysis.h5] [--bins N] [--quiet]
    mpirun -n 4 tools/observables run/upscaled.h5 --h5 run/analysis.h5

FILE is ``samples.h5`` or ``upscaled.h5`` (also a VDS master). Per size group ``/L<n>``
and temperature (φ⁴: coupling):

* ising / phi4: <|m|>, <m^2>, <e>, chi = N(<m^2> - <|m|>^2)/T, C = N(<e^2> - <e>^2)/T^2,
  Binder U4, <phi^2> (φ⁴; T = 1, the coupling is in the action), the second-moment
  correlation length xi_2 = sqrt(chi(0)/chi(k_min) - 1) / (2 sin(k_min/2)) with
  k_min = 2 pi/L, and G(r) (r = 1 .. L/2 unless --r is given);
* edwards_anderson: the overlap Binder ratio g, chi_SG = N [<q^2>], [<|q|>], link
  overlap [<q_l>], [<e>] (Monte Carlo), and xi_2, G(r) of the overlap field rho = s^a s^b
  (all replica pairs; super-resolved groups store rho). Thermal averages per disorder
  sample first, jackknife over disorder samples; Monte Carlo groups average only the
  samples certified as equilibrated unless the run's deck sets
  sample.equilibration.only_passed: false (one warning names those left out).

Errors: jackknife over blocks of configurations (clean models, blocks within chains) or
over disorder samples. Energies and magnetizations come from the stored per-sample
datasets, G(r) and xi_2 from the configurations, read in batches of at most 256.
Under MPI the (temperature, block) units are dealt to the ranks and block sums are
reduced; results equal the one-rank results. Rank 0 prints and writes.
See hpc_rg/analysis/tables.py (definitions) and hpc_rg/analysis/report.py (analysis.h5).

Exit codes: 0 done; 2 bad input (missing file, not an hpc_rg output, no group /L<n>).
"""

from __future__ import annotations

import argparse
import sys

from ..io.outputs import open_output
from .common import ToolParser, run_tool


def parser() -> argparse.ArgumentParser:
    p = ToolParser(prog="observables", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="samples.h5 or upscaled.h5 of an hpc_rg run")
    p.add_argument("--L", type=int, nargs="+", metavar="L", help="lattice sizes (default: all)")
    p.add_argument("--r", type=int, nargs="+", metavar="R",
                   help="distances of G(r) (default 1 .. L/2; values above L/2 are skipped)")
    p.add_argument("--bins", type=int, metavar="N",
                   help="jackknife blocks for clean models (default: ~32, a multiple of the chains)")
    p.add_argument("--csv", metavar="OUT.csv", help="write a CSV table (one row per L and T)")
    p.add_argument("--json", metavar="OUT.json", help="write JSON ('-' for stdout)")
    p.add_argument("--h5", metavar="analysis.h5", help="write an hpc_rg analysis file")
    p.add_argument("--quiet", action="store_true", help="no table on screen")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.r is not None and any(r < 0 for r in args.r):
        parser().error("--r: distances must be >= 0")
    if args.bins is not None and args.bins < 2:
        parser().error("--bins: need at least 2 jackknife blocks")
    from mpi4py import MPI

    from ..analysis import report
    from ..analysis.tables import file_tables
    from ..errors import HpcRgError
    comm = MPI.COMM_WORLD  # this is a program entry point: the one place that takes the world
    rank = comm.Get_rank()
    try:
        with open_output(args.file, kinds=("sample", "upscale")) as f:
            tables = file_tables(f, comm if comm.Get_size() > 1 else None, sizes=args.L,
                                 rs=args.r, n_bins=args.bins)
            prov = report.tool_provenance(f, comm.Get_size()) if rank == 0 else None
    except HpcRgError as e:
        if rank != 0:  # every rank meets the same error; rank 0 reports it
            return e.exit_code
        raise
    if rank != 0:
        return 0
    if args.json == "-":
        print(report.to_json(tables))
    elif not args.quiet:
        print(report.format_tables(tables))
    if args.json and args.json != "-":
        report.write_json(args.json, report.to_json(tables))
    if args.csv:
        report.write_csv(args.csv, tables)
    if args.h5:
        report.write_h5(args.h5, tables, prov)
    return 0


def cli() -> int:
    return run_tool("observables", main)


if __name__ == "__main__":
    sys.exit(cli())
