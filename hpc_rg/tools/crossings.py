"""crossings: where a dimensionless observable of sizes L and 2L crosses (T_c estimates).

Usage::

    tools/crossings [--mc samples.h5 ...] [--sr upscaled.h5 ...] [--observables g xi_over_L]
                    [--match effective|nominal] [--Tc 1.102 0.003] [--json OUT.json]
    tools/crossings --mc runs/ea3d_vs_mc/samples.h5 runs/ea3d_mc32/samples.h5 \\
                    --sr runs/ea3d_vs_mc/upscaled.h5 --Tc 1.102 0.003

Per pair of successive sizes (L, 2L): the temperatures where the curves of the
observable cross (Edwards-Anderson: the overlap Binder ratio g and xi/L; clean models:
U4 and xi/L), from the tables of ``tools/observables`` (jackknife errors over disorder
samples), the 2L curve interpolated onto the L temperatures, crossing errors from 2000
Gaussian resamplings of both curves (hpc_rg/analysis/size_crossings.py). Monte Carlo sizes
come from the ``--mc`` files (a size in several: the first); every ``--sr`` file is one
super-resolved chain (one training): with several, each pair's first crossing is also
given as mean, standard deviation and standard error over the trainings. Super-resolved
levels sit at their effective temperatures unless ``--match nominal``. ``--Tc T ERR``
adds the z-score of each crossing against a reference critical temperature (default for
3D ±J Edwards-Anderson: 1.102(3), Janus 2013).

Exit codes: 0 done (also when curves do not cross: listed); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..errors import InputFileError
from .common import ToolParser, run_tool

#: reference critical temperatures: (model, dims, disorder) -> (T_c, error)
REFERENCE_TC = {("edwards_anderson", 3, "pm1"): (1.102, 0.003),  # Baity-Jesi et al. (Janus) 2013
                ("ising", 2, None): (2.269185314, 0.0), ("ising", 3, None): (4.5115, 0.0001)}


def parser() -> argparse.ArgumentParser:
    p = ToolParser(prog="crossings", description=__doc__.split("\n\n")[0],
                   epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mc", nargs="+", default=[], metavar="FILE", help="samples.h5 file(s)")
    p.add_argument("--sr", nargs="+", default=[], metavar="FILE",
                   help="upscaled.h5 file(s), one per independent training")
    p.add_argument("--observables", nargs="+", metavar="NAME")
    p.add_argument("--match", choices=("effective", "nominal"), default="effective")
    p.add_argument("--Tc", nargs=2, type=float, metavar=("T", "ERR"))
    p.add_argument("--json", metavar="OUT.json")
    return p


def _tables(path, kinds):
    from ..analysis.tables import file_tables
    from ..io.outputs import open_output
    with open_output(path, kinds=kinds) as f:
        return file_tables(f, None)


def _reference(tables, given):
    if given:
        return tuple(given)
    from ..analysis.tables import run_config
    t = tables[0]
    disorder = None
    if t.disordered:
        import h5py
        with h5py.File(t.path, "r") as f:
            disorder = (run_config(f).get("model") or {}).get("disorder", "gaussian")
    return REFERENCE_TC.get((t.model, t.dims, disorder))


def main(argv=None) -> int:
    from ..analysis.size_crossings import DIMENSIONLESS, combine_trainings, size_crossings
    args = parser().parse_args(argv)
    if not args.mc and not args.sr:
        parser().error("give --mc and/or --sr files")
    mc = {}
    for path in args.mc:
        for t in _tables(path, ("sample",)):
            mc.setdefault(t.L, t)
    chains = [_tables(path, ("upscale",)) for path in args.sr]
    every = list(mc.values()) + [t for c in chains for t in c]
    if len({t.model for t in every}) > 1:
        raise InputFileError(f"the files hold different models: {sorted({t.model for t in every})}")
    names = args.observables or DIMENSIONLESS[every[0].disordered]
    bad = [n for n in names if n not in DIMENSIONLESS[every[0].disordered]]
    if bad:
        raise InputFileError(f"--observables: {bad[0]!r} is not a dimensionless observable of "
                             f"{every[0].model}; accepted: {' '.join(DIMENSIONLESS[every[0].disordered])}")
    ref = _reference(every, args.Tc)
    result = {"reference_Tc": ref, "match": args.match, "monte_carlo": [], "superres": [],
              "trainings": []}
    lines = [f"# crossings of {', '.join(names)} between sizes L and 2L; super-resolved levels "
             f"at T_{'eff' if args.match == 'effective' else 'in'}" +
             (f"; reference T_c = {ref[0]} ± {ref[1]}" if ref else "")]

    def row(kind, c):
        z = (c.T - ref[0]) / np.hypot(c.err, ref[1]) if ref and c.err > 0 else float("nan")
        lines.append(f"{kind:<14s} {c.observable:<10s} L={c.L:<4d}/{2 * c.L:<4d} "
                     f"T_cross = {c.T:.4f} ± {c.err:.4f}   z vs T_c = {z:+.1f}")
        return {"observable": c.observable, "L": c.L, "T": c.T, "err": c.err, "z": z}

    for name in names:
        for c in size_crossings(list(mc.values()), name):
            result["monte_carlo"].append(row("Monte Carlo", c))
    per_training = []
    for i, chain in enumerate(chains):
        crosses = [c for name in names for c in size_crossings(chain, name, args.match)]
        per_training.append(crosses)
        result["superres"].append([row(f"SR #{i + 1}", c) for c in crosses])
        if not crosses:
            lines.append(f"SR #{i + 1}: no crossing of successive levels on the grid")
    if len(chains) > 1:
        for (name, L), (mean, std, sem, n, err) in sorted(combine_trainings(per_training).items()):
            lines.append(f"{'SR, ' + str(n) + ' trainings':<14s} {name:<10s} L={L:<4d}/{2 * L:<4d} "
                         f"T_cross = {mean:.4f}, sd {std:.4f}, se {sem:.4f} "
                         f"(mean resampling error {err:.4f})")
            result["trainings"].append({"observable": name, "L": L, "mean": mean, "std": std,
                                        "sem": sem, "n": n, "resampling_err": err})
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return 0


def cli() -> int:
    return run_tool("crossings", main)


if __name__ == "__main__":
    sys.exit(cli())
