"""rescale: temperature-rescaling curves of the blocking, and the fitted flow f(T).

Usage::

    tools/rescale run/samples.h5 [--L 16] [--blocking majority] [--json OUT.json]
                  [--plot curves.png]

Needs the Monte Carlo groups ``/L<L>`` and ``/L<L/2>`` of ``samples.h5`` (sample with
``reference_sizes: [L/2]``). Prints, per temperature, the observables of L/2 Monte Carlo
and of the L ensemble blocked to L/2 (<|m|> and the nearest-neighbour energy; φ⁴: <|φ|>,
<φ²>; EA: of the overlap ρ), with standard errors, and the flow f(T) fitted by
hpc_rg.rg.rescaling.fit_flow (the temperature at which L/2 Monte Carlo matches the blocked L
ensemble; the train stage stores the same flow in model.pt). --plot writes a PNG of both
curves and of f(T) with the identity line. Default L: the run's sample.L; default
blocking: majority (ising, 1D: decimation), overlap (EA), sign_mean (φ⁴). Runs under MPI
(configurations shared out, sums reduced); rank 0 prints.

Exit codes: 0 done; 2 bad input (missing file, not samples.h5, no /L or /L<L/2> group).
"""

from __future__ import annotations

import argparse
import sys

from ..io.outputs import open_output
from .common import ToolParser, run_tool

BLOCKINGS = ("majority", "majority_random", "decimation", "sign_mean", "overlap")


def parser() -> argparse.ArgumentParser:
    p = ToolParser(prog="rescale", description=__doc__.split("\n\n")[0],
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="samples.h5 with /L<L> and /L<L/2>")
    p.add_argument("--L", type=int, help="the larger size L (default: the run's sample.L)")
    p.add_argument("--blocking", choices=BLOCKINGS, help="blocking transform (default by model)")
    p.add_argument("--json", metavar="OUT.json", help="write JSON ('-' for stdout)")
    p.add_argument("--plot", metavar="OUT.png", help="write a PNG of the curves and f(T)")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    import json

    from mpi4py import MPI

    from ..analysis.report import _clean, write_json
    from ..analysis.rescale import default_size, flow_curves, format_curves
    from ..errors import HpcRgError
    from ..plots.rescaling import plot_flow_curves
    comm = MPI.COMM_WORLD  # program entry point
    rank = comm.Get_rank()
    try:
        with open_output(args.file, kinds=("sample",)) as f:
            L = default_size(f) if args.L is None else args.L
            curves = flow_curves(f, L, args.blocking, comm)
    except HpcRgError as e:
        if rank != 0:
            return e.exit_code
        raise
    if rank != 0:
        return 0
    text = json.dumps(_clean(curves.as_dict()), indent=1)
    if args.json == "-":
        print(text)
    else:
        print(format_curves(curves))
        if args.json:
            write_json(args.json, text)
    if args.plot:
        plot_flow_curves(curves, args.plot)
    return 0


def cli() -> int:
    return run_tool("rescale", main)


if __name__ == "__main__":
    sys.exit(cli())
