"""compare: Monte Carlo vs super-resolved (or any two) ensembles, size by size and row by row.

Usage::

    tools/compare A.h5 B.h5 [--L 16 32] [--observables abs_m e] [--match nominal]
                  [--tolerance 4] [--bins 32] [--json OUT.json] [--require-certified]
    python -m hpc_rg.tools.compare run/samples.h5 run/upscaled.h5

For every lattice size present in both files (or the ones given with ``--L``) the rows of
the two groups are matched by temperature (φ⁴: coupling), equal within 1e-9 relative:
by the group's ``temperatures`` / ``couplings`` (for super-resolved groups the *effective*
temperature, NaN where the flow is unknown), or with ``--match nominal`` by
``nominal_temperatures`` where a group has them. Rows without a partner are listed and
skipped.

Observables (per configuration; choose with ``--observables``):

=================  ==================================================
ising              ``abs_m`` |m|, ``m2`` m², ``e`` energy per site
phi4               ``abs_phi`` |φ̄|, ``phi2`` mean φ²
edwards_anderson   ``abs_q`` |q|, ``q2`` q², ``ql`` link overlap
=================  ==================================================

Monte Carlo Edwards–Anderson data (disorder, temperature, sample, replica/pair) are
flattened over disorder, sample and pair; super-resolved data are (temperature, N).

For each (L, T, observable) it prints both means with binning errors (at most ``--bins``
blocks, each holding whole samples; for Monte Carlo a multiple of the number of chains or
disorder samples, so that no block straddles two), the z-score
``(mean_B - mean_A) / sqrt(err_A² + err_B²)``, the two-sample Kolmogorov–Smirnov statistic
and the total-variation distance of 20-bin histograms on common edges (both 0 for equal
distributions, at most 1). ``--json OUT`` also writes all of it (``-`` for stdout, which
replaces the table).

Each compared group is labelled with what it is: Monte Carlo (exact), or a super-resolved
level's certificate (certified, NOT CERTIFIED with the reason, APPROXIMATE for the CNN and
uncorrected flows, or none for files written before certificates);
``--require-certified`` refuses every super-resolved level that is not certified exact.

Exit codes: 0 every |z| <= tolerance (default 4); 1 some exceed it (they are listed);
2 bad input: a missing file, not an hpc_rg ensemble file, no common size, a size given
with ``--L`` missing, different models, no temperature in common, an unknown observable.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..io.outputs import open_output, select_sizes, size_groups, temperature_grid
from ..analysis.stats import binning_error
from ..errors import InputFileError, OutputError
from ..io import schema
from .common import ToolParser, run_tool

# model -> (name, label, dataset, per-configuration transform)
OBSERVABLES = {
    "ising": [("abs_m", "|m|", "magnetization", np.abs), ("m2", "m^2", "magnetization", np.square),
              ("e", "e", "energy", None)],
    "phi4": [("abs_phi", "|phi|", "phi_mean", np.abs), ("phi2", "phi^2", "phi2_mean", None)],
    "edwards_anderson": [("abs_q", "|q|", "overlap", np.abs), ("q2", "q^2", "overlap", np.square),
                         ("ql", "q_l", "link_overlap", None)],
}
REL_TOL = 1e-9
HIST_BINS = 20


# ------------------------------------------------------------------------------ statistics
def choose_bins(n_units: int, groups: int = 1, max_bins: int = 32) -> int:
    """Number of blocks: the largest divisor of ``n_units`` <= ``max_bins`` (and >= 2), a
    multiple of ``groups`` (chains) when one exists; without a divisor, ``min(max_bins, n)``."""
    divisors = [b for b in range(2, min(max_bins, n_units) + 1) if n_units % b == 0]
    good = [b for b in divisors if b % groups == 0] or divisors
    return max(good) if good else min(max_bins, n_units)


def mean_error(x, groups: int = 1, atom: int = 1, max_bins: int = 32):
    """(mean, binning error) of a flattened series whose consecutive ``atom`` values belong to
    one sample (e.g. the replica pairs of one EA sample) and which consists of ``groups``
    independent chains laid end to end."""
    x = np.asarray(x, dtype=np.float64)
    if atom > 1 and x.size % atom == 0:
        x = x.reshape(-1, atom).mean(axis=1)
    if x.size < 4:
        return float(x.mean()) if x.size else float("nan"), float("nan")
    m, e = binning_error(x, choose_bins(x.size, groups, max_bins))
    return float(x.mean()), float(e)


def ks_statistic(a, b) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: max |F_a - F_b| over the pooled values."""
    a, b = np.sort(a), np.sort(b)
    x = np.concatenate([a, b])
    return float(np.max(np.abs(np.searchsorted(a, x, "right") / a.size
                               - np.searchsorted(b, x, "right") / b.size)))


def tv_distance(a, b, bins: int = HIST_BINS) -> float:
    """Total-variation distance ½ Σ |p_a - p_b| of histograms on common edges."""
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if hi <= lo:
        return 0.0
    edges = np.linspace(lo, hi, bins + 1)
    pa = np.histogram(a, edges)[0] / a.size
    pb = np.histogram(b, edges)[0] / b.size
    return float(0.5 * np.abs(pa - pb).sum())


def z_score(ma, ea, mb, eb) -> float:
    err = np.hypot(ea, eb)
    if mb == ma:
        return 0.0
    return float((mb - ma) / err) if err > 0 else float("inf")


# ---------------------------------------------------------------------------- file access
class Ensemble:
    """One size group: its rows (temperatures) and per-row flattened observable series."""

    def __init__(self, group, match: str):
        self.group, self.file = group, group.file.filename
        self.model = str(group.attrs.get("model", ""))
        self.grid, self.values = temperature_grid(group)  # "temperatures" or "couplings"
        if match == "nominal" and schema.NOMINAL in group:
            self.values = group[schema.NOMINAL][...]
        self.values = np.asarray(self.values, dtype=np.float64)
        self.source = str(group.attrs.get("source", "?"))

    def series(self, dataset: str, row: int):
        """(values of row ``row`` flattened, groups, atom) for :func:`mean_error`."""
        ds = self.group[dataset]
        axes = str(ds.attrs.get("axes", "")).split(",")
        t_axis = axes.index("temperature") if "temperature" in axes else (1 if ds.ndim == 4 else 0)
        x = np.take(ds[...], row, axis=t_axis)  # e.g. (D, S, P) or (S,)
        groups = (x.shape[0] if "disorder" in axes
                  else int(self.group.attrs.get(schema.GROUP_ATTR_CHAINS, 1)) if self.source == "monte_carlo" else 1)
        atom = int(np.prod(x.shape[2:])) if "disorder" in axes else 1
        return x.reshape(-1), max(groups, 1), max(atom, 1)


def match_rows(a: np.ndarray, b: np.ndarray):
    """Pairs (i, j) with a[i] == b[j] within REL_TOL, and the unmatched rows of each."""
    pairs = []
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            if np.isfinite(x) and np.isfinite(y) and abs(x - y) <= REL_TOL * max(abs(x), abs(y), 1e-300):
                pairs.append((i, j))
                break
    done_a, done_b = {i for i, _ in pairs}, {j for _, j in pairs}
    return (pairs, [i for i in range(len(a)) if i not in done_a],
            [j for j in range(len(b)) if j not in done_b])


def ensemble_status(group) -> str:
    """What the ensemble of a size group is: Monte Carlo (exact), or a super-resolved level's
    certificate (certified / NOT CERTIFIED / approximate / no certificate)."""
    from ..analysis.certificate import read_certificate, status
    what = status(group)
    if what == "monte_carlo":
        return "Monte Carlo (exact)"
    if what == "unknown":
        return (f"{group.attrs.get('source', '?')}, no certificate (written before "
                f"certificates): exactness unknown")
    c = read_certificate(group)
    if what == "approximate":
        return f"{c['sampler']}, APPROXIMATE (exact=false)"
    if what == "certified":
        return f"{c['sampler']}, certified"
    first = c["certificate"].splitlines()[0] if c["certificate"] else "not certified"
    return f"{c['sampler']}, NOT CERTIFIED ({first})"


def compare_files(fa, fb, sizes=None, observables=None, match="temperature", tolerance=4.0,
                  max_bins=32, require_certified=False) -> dict:
    """All comparisons between two open files (see the module docstring); plain data.
    ``require_certified``: refuse (InputFileError) super-resolved levels that are not
    certified exact."""
    if sizes is None:
        common = sorted({L for L, _ in size_groups(fa)} & {L for L, _ in size_groups(fb)})
        if not common:
            raise InputFileError(
                f"{fa.filename} ({', '.join('/L%d' % L for L, _ in size_groups(fa)) or 'no sizes'}) "
                f"and {fb.filename} ({', '.join('/L%d' % L for L, _ in size_groups(fb)) or 'no sizes'})"
                f" have no lattice size in common")
        sizes = common
    ga, gb = dict(select_sizes(fa, sizes)), dict(select_sizes(fb, sizes))
    results, unmatched, notes, status = [], [], [], []
    for L in sizes:
        A, B = Ensemble(ga[L], match), Ensemble(gb[L], match)
        for side, g in (("A", ga[L]), ("B", gb[L])):
            what = ensemble_status(g)
            status.append(f"{side} /L{L}: {what}")
            if require_certified and not (what.startswith("Monte Carlo") or
                                          what.endswith(", certified")):
                raise InputFileError(f"{g.file.filename}: /L{L} is {what}; --require-certified "
                                     f"refuses it (compare without the flag to see the numbers)")
        if A.model != B.model:
            raise InputFileError(f"/L{L} holds model '{A.model}' in {A.file} but '{B.model}' "
                                 f"in {B.file}: nothing to compare")
        known = OBSERVABLES.get(A.model)
        if known is None:
            raise InputFileError(f"{A.file}: /L{L} has model '{A.model}'; compare knows "
                                 f"{', '.join(OBSERVABLES)}")
        chosen = known
        if observables:
            names = [o[0] for o in known]
            bad = [o for o in observables if o not in names]
            if bad:
                raise InputFileError(f"--observables {bad[0]}: not an observable of "
                                     f"{A.model} (accepted: {', '.join(names)})")
            chosen = [o for o in known if o[0] in observables]
        pairs, ua, ub = match_rows(A.values, B.values)
        for side, ens, rows in (("A", A, ua), ("B", B, ub)):
            unmatched += [{"L": L, "file": side, "row": r, "T": float(ens.values[r])} for r in rows]
        for name, label, dataset, fn in chosen:
            missing = [e.file for e in (A, B) if dataset not in e.group]
            if missing:
                if observables:
                    raise InputFileError(f"{missing[0]}: /L{L} has no dataset '{dataset}' "
                                         f"(needed for {name})")
                notes.append(f"L{L} {label}: skipped, no dataset '{dataset}' in {missing[0]}")
                continue
            for i, j in pairs:
                xa, g_a, at_a = A.series(dataset, i)
                xb, g_b, at_b = B.series(dataset, j)
                if fn is not None:
                    xa, xb = fn(xa), fn(xb)
                ma, ea = mean_error(xa, g_a, at_a, max_bins)
                mb, eb = mean_error(xb, g_b, at_b, max_bins)
                z = z_score(ma, ea, mb, eb)
                results.append({
                    "L": L, "row_a": i, "row_b": j, "T": float(A.values[i]), "grid": A.grid,
                    "observable": name, "label": label, "dataset": dataset,
                    "mean_a": ma, "err_a": ea, "n_a": int(xa.size),
                    "mean_b": mb, "err_b": eb, "n_b": int(xb.size),
                    "z": z, "ks": ks_statistic(xa, xb), "tv": tv_distance(xa, xb),
                    "ok": not abs(z) > tolerance})  # NaN (no error estimate) is not a failure
    if not results and unmatched:
        raise InputFileError(f"{fa.filename} and {fb.filename}: no temperature in common at "
                             f"{', '.join('/L%d' % L for L in sizes)} (matching by {match}; "
                             f"try --match nominal)")
    return {"a": fa.filename, "b": fb.filename, "match": match, "tolerance": tolerance,
            "results": results, "unmatched": unmatched, "notes": notes, "ensembles": status,
            "failed": sum(not r["ok"] for r in results)}


# ---------------------------------------------------------------------------------- output
def _pm(m, e) -> str:
    return f"{m:.6g} ± {e:.2g}" if np.isfinite(e) else f"{m:.6g} ± ?"


def render(rep: dict) -> str:
    col = "coupling" if any(r["grid"] == "couplings" for r in rep["results"]) else "T"
    out = [f"A: {rep['a']}", f"B: {rep['b']}", *rep.get("ensembles", []),
           f"rows matched by {rep['match']}; z = (B - A) / combined error, pass |z| <= "
           f"{rep['tolerance']:g}; KS / TV: distance of the two distributions (0 = equal)",
           f"{'L':>5} {col:>10} {'obs':<6} {'A':>22} {'B':>22} {'z':>7} {'KS':>6} {'TV':>6}"
           f" {'nA':>6} {'nB':>6}"]
    for r in rep["results"]:
        out.append(f"{r['L']:>5} {r['T']:>10.7g} {r['label']:<6} {_pm(r['mean_a'], r['err_a']):>22} "
                   f"{_pm(r['mean_b'], r['err_b']):>22} {r['z']:>7.2f} {r['ks']:>6.3f} "
                   f"{r['tv']:>6.3f} {r['n_a']:>6} {r['n_b']:>6}" + ("" if r["ok"] else "  <-- |z|"))
    for u in rep["unmatched"]:
        out.append(f"unmatched: L{u['L']} {u['file']} row {u['row']} (T={u['T']:.10g}), skipped")
    out += rep["notes"]
    bad = [r for r in rep["results"] if not r["ok"]]
    if bad:
        out.append(f"FAIL: {len(bad)} of {len(rep['results'])} comparisons exceed |z| > "
                   f"{rep['tolerance']:g}: " + ", ".join(
                       f"L{r['L']} T={r['T']:.7g} "
                       f"{r['label']} (z={r['z']:.2f})" for r in bad))
    else:
        out.append(f"OK: all {len(rep['results'])} comparisons within |z| <= {rep['tolerance']:g}")
    return "\n".join(out)


def to_json(rep: dict) -> str:
    """Strict JSON: NaN and infinities (undefined errors and z-scores) become null."""
    def clean(v):
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v
    return json.dumps(clean(rep), indent=1) + "\n"


def main(argv=None) -> int:
    ap = ToolParser(prog="compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", metavar="A.h5")
    ap.add_argument("b", metavar="B.h5")
    ap.add_argument("--L", type=int, nargs="+", help="lattice sizes (default: all in both)")
    ap.add_argument("--observables", nargs="+", metavar="NAME",
                    help="subset, e.g. abs_m m2 e | abs_phi phi2 | abs_q q2 ql")
    ap.add_argument("--match", choices=("temperature", "nominal"), default="temperature",
                    help="match rows by effective temperature (default) or nominal_temperatures")
    ap.add_argument("--tolerance", type=float, default=4.0, metavar="Z",
                    help="largest acceptable |z| (default 4)")
    ap.add_argument("--bins", type=int, default=32, help="most binning blocks (default 32)")
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON ('-': stdout)")
    ap.add_argument("--require-certified", action="store_true",
                    help="refuse super-resolved levels that are not certified exact (exit 2)")
    args = ap.parse_args(argv)
    kinds = ("sample", "upscale")
    with open_output(args.a, kinds) as fa, open_output(args.b, kinds) as fb:
        rep = compare_files(fa, fb, args.L, args.observables, args.match, args.tolerance,
                            max(args.bins, 2), args.require_certified)
    if args.json == "-":
        sys.stdout.write(to_json(rep))
    else:
        print(render(rep))
        if args.json:
            try:
                with open(args.json, "w") as f:
                    f.write(to_json(rep))
            except OSError as e:
                raise OutputError(f"{args.json}: cannot write ({e.strerror or e})") from None
    return 1 if rep["failed"] else 0


def cli() -> int:
    return run_tool("compare", main)


if __name__ == "__main__":
    sys.exit(cli())
