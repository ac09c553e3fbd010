"""exponents: finite-size-scaling exponents over the chain of lattice sizes in hpc_rg outputs.

Usage::

    tools/exponents run/samples.h5 run/upscaled.h5 [--from-L 8] [--T 2.269185]
                    [--match nominal|effective] [--json OUT.json] [--bins N]

Every size group of the files (Monte Carlo sizes of ``samples.h5``, super-resolved levels
of ``upscaled.h5``; a size present in several files is taken from the first file listed)
gives, per temperature, chi, <|m|> and G(L/4), G(L/2) with jackknife errors
(hpc_rg/analysis/tables.py). Straight-line fits in log-log over the sizes give::

    chi ~ L^(gamma/nu)    <|m|> ~ L^(-beta/nu)    G(L/4), G(L/2) ~ L^(-(d-2+eta))

with the fit error and chi^2/dof of each (weighted by the jackknife errors; unweighted
when an error is zero). Edwards-Anderson: chi_SG and the overlap correlator (no beta/nu).
Default temperature: for the 2D Ising model the grid temperature nearest T_c = 2.269185
(if within 0.01), else every temperature. Super-resolved levels are matched by their
nominal (input) temperature unless --match effective.

Exit codes: 0 done; 2 bad input (missing file, not an hpc_rg output, mixed models).
"""

from __future__ import annotations

import argparse
import sys

from ..io.outputs import open_output
from .common import ToolParser, run_tool


def parser() -> argparse.ArgumentParser:
    p = ToolParser(prog="exponents", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="samples.h5 and/or upscaled.h5")
    p.add_argument("--from-L", dest="from_L", type=int, metavar="L",
                   help="smallest lattice size in the fits (corrections to scaling)")
    p.add_argument("--T", type=float, nargs="+", metavar="T",
                   help="temperatures (φ⁴: couplings) to fit at (default: see above)")
    p.add_argument("--match", choices=("nominal", "effective"), default="nominal",
                   help="temperature of super-resolved levels to match (default nominal)")
    p.add_argument("--tol", type=float, default=1e-3,
                   help="relative tolerance of the temperature match (default 1e-3)")
    p.add_argument("--bins", type=int, metavar="N", help="jackknife blocks (clean models)")
    p.add_argument("--json", metavar="OUT.json", help="write JSON ('-' for stdout)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.bins is not None and args.bins < 2:
        parser().error("--bins: need at least 2 jackknife blocks")
    import json

    from mpi4py import MPI

    from ..analysis.fss import fit_exponents, format_exponents
    from ..analysis.report import _clean, write_json
    from ..analysis.tables import file_tables
    from ..errors import HpcRgError
    comm = MPI.COMM_WORLD  # program entry point
    rank = comm.Get_rank()
    try:
        tables = []
        for path in args.files:
            with open_output(path, kinds=("sample", "upscale")) as f:
                tables += file_tables(f, comm if comm.Get_size() > 1 else None,
                                      n_bins=args.bins)
        results = fit_exponents(tables, args.T, args.from_L, args.match, args.tol)
    except HpcRgError as e:
        if rank != 0:
            return e.exit_code
        raise
    if rank != 0:
        return 0
    text = json.dumps(_clean({"files": args.files, "match": args.match, "fits": results}), indent=1)
    if args.json == "-":
        print(text)
    else:
        print(format_exponents(results))
        if args.json:
            write_json(args.json, text)
    return 0


def cli() -> int:
    return run_tool("exponents", main)


if __name__ == "__main__":
    sys.exit(cli())
