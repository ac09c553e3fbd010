"""size_check: are Monte Carlo ensembles of different sizes consistent with equilibrium?

Usage::

    tools/size_check samples.h5 [samples.h5 ...] [--limit 4] [--combined-limit 3]
                     [--all-samples] [--json OUT.json]
    tools/size_check runs/ea3d_mc32_100k/samples.h5 runs/ea3d_mc64/samples.h5

In equilibrium the full susceptibility (Edwards-Anderson: chi_SG = N [<q^2>]; Ising and
phi4: N <m^2>) cannot decrease with L at any temperature. For every pair of neighbouring
sizes in the files (a size in several files: the first), per model, the larger size's
curve is compared with the smaller one's at the larger size's temperatures inside the
smaller grid: per temperature z = (chi_L - chi_small) / sqrt(err_L^2 + err_small^2)
(flagged below -LIMIT), and over all those temperatures the mean of ln(chi_L / chi_small)
with jackknife errors (flagged when its z is below -COMBINED_LIMIT).
Edwards-Anderson sizes use their certified disorder samples (``--all-samples``: every
sample). See hpc_rg/analysis/size_consistency.py. The sample stage runs the same check on
the sizes of one run (attributes ``size_check*`` of the larger group).

A larger size below a smaller one is not in equilibrium (a run still coarsening from a
random start), whatever its per-sample certificate says; do not use it as a reference.
A pass says only that nothing contradicts equilibrium.

Exit codes: 0 every pair consistent; 1 some pair is not (listed); 2 bad input (a missing
file, not a samples.h5, fewer than two sizes of one model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from .common import ToolParser, run_tool, value_error


def parser() -> argparse.ArgumentParser:
    p = ToolParser(prog="size_check", description=__doc__.split("\n\n")[0],
                   epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="samples.h5 file(s) of hpc_rg runs")
    p.add_argument("--limit", type=float, default=4.0, metavar="Z",
                   help="per-temperature one-sided limit (default 4)")
    p.add_argument("--combined-limit", type=float, default=3.0, metavar="Z",
                   help="limit of the mean log ratio over the temperatures (default 3)")
    p.add_argument("--all-samples", action="store_true",
                   help="EA: use every disorder sample, not only the certified ones")
    p.add_argument("--json", metavar="OUT.json", help="every number ('-': stdout)")
    return p


def file_curves(paths, only_passed: bool = True) -> list:
    """Size curves of every Monte Carlo size group in ``paths`` (InputFileError on a bad
    file)."""
    from ..io.outputs import open_output
    from ..pipeline.size_check import file_size_curves
    curves = []
    for path in paths:
        if not Path(path).is_file():
            raise InputFileError(f"{path}: no such file")
        with open_output(path, kinds=("sample",)) as f:
            curves.extend(file_size_curves(f, only_passed, str(path)))
    return curves


def reference_check(paths, only_passed: bool = True, limit: float = 4.0,
                    combined_limit: float = 3.0) -> list:
    """The pairs of :func:`hpc_rg.analysis.size_consistency.check_sizes` over ``paths``."""
    from ..analysis.size_consistency import check_sizes
    return check_sizes(file_curves(paths, only_passed), limit, combined_limit)


def format_pairs(pairs) -> str:
    lines = []
    for p in pairs:
        lines.append(f"# {p.summary()}")
        lines.append(f"#   L={p.small.L}: {p.small.path}; L={p.large.L}: {p.large.path}")
        lines.append(f"{'T':>8s} {'L=%d' % p.small.L:>14s} {'L=%d' % p.large.L:>14s} {'z':>7s}")
        for i in range(len(p.T)):
            flag = "  <-- below" if p.failed[i] else ""
            lines.append(f"{p.T[i]:8.4f} {value_error(p.chi_small[i], p.err_small[i]):>14s} "
                         f"{value_error(p.chi_large[i], p.err_large[i]):>14s} {p.z[i]:7.2f}{flag}")
        lines.append("")
    return "\n".join(lines)


def to_json(pairs) -> dict:
    def arr(x):
        return np.asarray(x, dtype=np.float64).tolist()
    return {"pairs": [{"model": p.large.model, "observable": p.large.observable,
                       "small": {"L": p.small.L, "path": p.small.path},
                       "large": {"L": p.large.L, "path": p.large.path},
                       "T": arr(p.T), "chi_small": arr(p.chi_small), "err_small": arr(p.err_small),
                       "chi_large": arr(p.chi_large), "err_large": arr(p.err_large),
                       "z": arr(p.z), "log_ratio": p.log_ratio, "log_ratio_err": p.log_ratio_err,
                       "log_ratio_z": p.log_ratio_z, "limit": p.limit,
                       "combined_limit": p.combined_limit, "passed": p.passed,
                       "summary": p.summary()} for p in pairs]}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    pairs = reference_check(args.files, not args.all_samples, args.limit, args.combined_limit)
    if not pairs:
        raise InputFileError(f"{', '.join(args.files)}: need Monte Carlo of at least two sizes "
                             f"of one model to compare")
    if args.json == "-":
        print(json.dumps(to_json(pairs), indent=1))
    else:
        print(format_pairs(pairs))
        if args.json:
            Path(args.json).write_text(json.dumps(to_json(pairs), indent=1))
    return 0 if all(p.passed for p in pairs) else 1


def cli() -> int:
    return run_tool("size_check", main)


if __name__ == "__main__":
    sys.exit(cli())
