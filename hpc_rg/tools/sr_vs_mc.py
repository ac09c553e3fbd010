"""sr_vs_mc: super-resolved levels against independent Monte Carlo of the same size.

Usage::

    tools/sr_vs_mc UPSCALED.h5 MC.h5 [MC.h5 ...] [--L 16 32] [--observables g chi_SG xi]
                   [--match effective|nominal] [--tolerance 4] [--pq-bins 16]
                   [--json OUT.json] [--plot DIR]
    tools/sr_vs_mc runs/ea3d_vs_mc/upscaled.h5 runs/ea3d_vs_mc/samples.h5 runs/ea3d_mc32/samples.h5

For every level of UPSCALED.h5 whose size has a Monte Carlo group in one of the MC files
(the first file that has it), the observables of ``tools/observables`` (Edwards-Anderson:
overlap Binder ratio g, chi_SG, xi_2 of the overlap field, [<|q|>], [<q_l>]; clean models:
<|m|>, chi, U4, xi_2, <e>) with jackknife errors over disorder samples (EA; Monte Carlo:
only the certified samples unless the run says otherwise) or blocks, side by side per
temperature with ``z = (SR - MC) / sqrt(err_SR^2 + err_MC^2)``, and P(q) (EA overlap,
clean models magnetisation) on ``--pq-bins`` bins of [-1, 1] with per-bin jackknife errors:
chi^2 = sum of the per-bin z^2 over the non-empty bins, and the largest |z|.

Temperatures (``--match``): ``effective`` (default) puts each super-resolved row at its
effective temperature (the measured RG flow) and interpolates the Monte Carlo curve there
(rows outside the Monte Carlo grid, or without an effective temperature, are listed and
skipped); ``nominal`` does the same at the input temperature T_in (the diagnosis "is it
the temperature rescaling?"). See hpc_rg/analysis/versus_mc.py.

``--plot DIR`` writes ``sr_vs_mc_<observable>.png`` (per size: Monte Carlo curve and SR
points, and the z-scores) and ``sr_vs_mc_pq_L<size>.png`` (P(q) at up to 6 temperatures).
``--json OUT`` writes every number ('-' for stdout, which replaces the table).

The Monte Carlo references are checked against each other first (``tools/size_check``:
in equilibrium chi_SG, or N<m^2>, cannot fall with L): a reference size below a smaller
one is not in equilibrium, and its comparisons are marked "REFERENCE FAILS THE SIZE
CHECK" (JSON: ``reference_check``).

Exit codes: 0 every |z| <= tolerance (default 4) on the observables and the references
pass the size check; 1 some exceed it, or a reference fails the size check (listed); 2 bad
input: a missing file, not an hpc_rg file, no level with Monte Carlo of
its size, different models, an unknown observable.
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
    p = ToolParser(prog="sr_vs_mc", description=__doc__.split("\n\n")[0],
                   epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                   formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("upscaled", help="upscaled.h5 of an hpc_rg run")
    p.add_argument("mc", nargs="+", help="samples.h5 file(s) with Monte Carlo of the levels' sizes")
    p.add_argument("--L", type=int, nargs="+", metavar="L", help="level sizes (default: every "
                   "level with Monte Carlo of its size)")
    p.add_argument("--observables", nargs="+", metavar="NAME",
                   help="EA: g chi_SG xi abs_q q_l; clean models: abs_m m2 chi U4 xi e C")
    p.add_argument("--match", choices=("effective", "nominal"), default="effective")
    p.add_argument("--tolerance", type=float, default=4.0, metavar="Z")
    p.add_argument("--pq-bins", type=int, default=16, metavar="N")
    p.add_argument("--json", metavar="OUT.json")
    p.add_argument("--plot", metavar="DIR")
    return p


def compare_files(upscaled: str, mc_paths, sizes=None, observables=None,
                  match: str = "effective", pq_bins: int = 16):
    """[(Comparison, SR GroupTable, MC GroupTable)] for the levels of ``upscaled`` with Monte
    Carlo of their size in ``mc_paths`` (InputFileError when there is none)."""
    from ..analysis.tables import EA_OBSERVABLES, CLEAN_OBSERVABLES, group_table, run_config
    from ..analysis.versus_mc import compare_histograms, compare_tables
    from ..io.outputs import open_output, size_groups
    out = []
    with open_output(upscaled, kinds=("upscale",)) as fs:
        cfg_sr = run_config(fs)
        levels = dict(size_groups(fs))
        wanted = sorted(levels) if sizes is None else list(sizes)
        for L in wanted:
            if L not in levels:
                raise InputFileError(f"{upscaled}: no level /L{L} (has "
                                     f"{', '.join('/L%d' % k for k in sorted(levels))})")
        model = str(levels[wanted[0]].attrs.get("model", "")) if wanted else ""
        known = EA_OBSERVABLES if model == "edwards_anderson" else CLEAN_OBSERVABLES
        bad = [o for o in observables or () if o not in known]
        if bad:
            raise InputFileError(f"--observables: unknown {bad[0]!r} for {model}; accepted: "
                                 f"{' '.join(known)}")
        for L in wanted:
            found = False
            for path in mc_paths:
                with open_output(path, kinds=("sample",)) as fm:
                    groups = dict(size_groups(fm))
                    if L not in groups:
                        continue
                    gm = groups[L]
                    if str(gm.attrs.get("model", "")) != model:
                        raise InputFileError(f"{path}: /L{L} is {gm.attrs.get('model')!r}, "
                                             f"the levels are {model!r}")
                    cfg_mc = run_config(fm)
                    tm = group_table(gm, None, label="monte_carlo", cfg=cfg_mc)
                    ts = group_table(levels[L], None, label="superres", cfg=cfg_sr)
                    c = compare_tables(tm, ts, observables, match)
                    compare_histograms(c, gm, levels[L], pq_bins, cfg_mc, cfg_sr)
                    c.mc_path = str(path)
                    out.append((c, ts, tm))
                    found = True
                    break
            if not found and sizes is not None:
                raise InputFileError(f"no Monte Carlo /L{L} in {', '.join(mc_paths)}")
    if not out:
        raise InputFileError(f"none of the levels of {upscaled} ({', '.join(map(str, wanted))}) "
                             f"has Monte Carlo of its size in {', '.join(mc_paths)}")
    return out


def failing_references(pairs) -> set[int]:
    """Sizes that are the larger member of a pair failing the size check."""
    return {p.large.L for p in pairs if not p.passed}


def format_comparisons(results, tolerance: float, pairs=()) -> str:
    lines = []
    bad_refs = failing_references(pairs)
    if pairs:
        lines.append("# Monte Carlo references across sizes (tools/size_check):")
        lines.extend(f"#   {p.summary()}" for p in pairs)
        lines.append("")
    for c, ts, tm in results:
        a = ts.attrs
        what = (f"level {a.get('level', '?')} of input L={a.get('input_L', '?')} "
                f"(network trained at L={a.get('train_L', '?')})")
        cert = "APPROXIMATE (CNN)" if not a.get("exact", False) else "certified exact"
        lines.append(f"# L={c.L}: super-resolved {what}, {cert}, {ts.disorder} disorder "
                     f"sample(s); vs Monte Carlo {c.mc_path} ({tm.disorder} sample(s)); "
                     f"match={c.match}")
        if c.L in bad_refs:
            lines.append(f"# REFERENCE FAILS THE SIZE CHECK: the Monte Carlo L={c.L} is not in "
                         f"equilibrium; these z-scores do not judge the level")
        head = f"{'T_in':>8s} {'T_sr':>8s}"
        for name in c.z:
            head += f" | {name + ' MC':>16s} {name + ' SR':>16s} {'z':>6s}"
        head += " | P(q) chi2/dof max|z|"
        lines.append(head)
        for i in range(len(c.row)):
            row = f"{c.T_in[i]:8.4f} {c.T_sr[i]:8.4f}"
            for name in c.z:
                row += (f" | {value_error(c.mc[name][i], c.mc_err[name][i]):>16s} "
                        f"{value_error(c.sr[name][i], c.sr_err[name][i]):>16s} {c.z[name][i]:6.2f}")
            if c.pq:
                row += f" | {c.pq['chi2'][i]:6.1f}/{int(c.pq['dof'][i]):<3d} {c.pq['max_abs_z'][i]:5.2f}"
            lines.append(row)
        for k, t_in, why in c.skipped:
            lines.append(f"  skipped row {k} (T_in={t_in:.4f}): {why}")
        worst = c.worst(tolerance)
        lines.append(f"  {len(worst)} of {sum(len(z) for z in c.z.values())} comparisons with "
                     f"|z| > {tolerance:g}" + (": " + ", ".join(
                         f"{n} at T={t:.4f} (z={z:+.1f})" for n, t, z in worst[:8]) if worst else ""))
        lines.append("")
    return "\n".join(lines)


def to_json(results, pairs=()) -> dict:
    def arr(x):
        return np.asarray(x, dtype=np.float64).tolist()
    out = []
    for c, ts, tm in results:
        out.append({"L": c.L, "match": c.match, "monte_carlo": c.mc_path,
                    "level": int(ts.attrs.get("level", 0)), "input_L": int(ts.attrs.get("input_L", 0)),
                    "disorder_samples": {"superres": ts.disorder, "monte_carlo": tm.disorder},
                    "T_in": arr(c.T_in), "T_sr": arr(c.T_sr),
                    "observables": {n: {"mc": arr(c.mc[n]), "mc_err": arr(c.mc_err[n]),
                                        "sr": arr(c.sr[n]), "sr_err": arr(c.sr_err[n]),
                                        "z": arr(c.z[n])} for n in c.z},
                    "pq": {k: arr(v) for k, v in c.pq.items()},
                    "skipped": [{"row": k, "T_in": t, "reason": r} for k, t, r in c.skipped]})
    from .size_check import to_json as pairs_json
    bad_refs = failing_references(pairs)
    for entry in out:
        entry["reference_fails_size_check"] = entry["L"] in bad_refs
    return {"comparisons": out, "reference_check": pairs_json(pairs)["pairs"]}


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.pq_bins < 2:
        parser().error("--pq-bins: need at least 2 bins")
    for path in [args.upscaled, *args.mc]:
        if not Path(path).is_file():
            raise InputFileError(f"{path}: no such file")
    results = compare_files(args.upscaled, args.mc, args.L, args.observables, args.match,
                            args.pq_bins)
    from .size_check import reference_check
    pairs = reference_check(args.mc)
    if args.json == "-":
        print(json.dumps(to_json(results, pairs), indent=1))
    else:
        print(format_comparisons(results, args.tolerance, pairs))
        if args.json:
            Path(args.json).write_text(json.dumps(to_json(results, pairs), indent=1))
    if args.plot:
        from ..plots.versus_mc import plot_comparisons
        for p in plot_comparisons(results, args.plot):
            print(f"sr_vs_mc: wrote {p}", file=sys.stderr)
    worst = [w for c, _, _ in results for w in c.worst(args.tolerance)]
    return 1 if worst or failing_references(pairs) else 0


def cli() -> int:
    return run_tool("sr_vs_mc", main)


if __name__ == "__main__":
    sys.exit(cli())
