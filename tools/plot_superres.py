"""Plots of super-resolved ensembles against Monte Carlo, from a finished hpc_rg run.

Usage::

    python tools/plot_superres.py RUN_DIR [--out DIR] [--kind KIND] [--temperature I ...]

Reads ``RUN_DIR/samples.h5`` and ``RUN_DIR/upscaled.h5`` read-only (plain h5py, no MPI,
never the configurations) and writes PNG files to ``--out`` (default ``RUN_DIR/plots``),
printing the path of each. ``--kind`` (default ``all``: every plot that applies to the
model):

* ``histograms`` (ising): per nominal temperature (or the indices given with
  ``--temperature``), density histograms (20 bins) of |m| and of the energy per site for
  Monte Carlo at the input size L, the first super-resolved level 2L, and Monte Carlo at
  2L when ``samples.h5`` has that size (at its temperature nearest to the level's T_eff)
  — Efthymiou, Beach & Melko, PRB 99, 075113 (2019), Fig. 5.
* ``curves`` (ising): <|m|>, <e>, chi = N(<m^2> - <|m|>^2)/T and C = N(<e^2> - <e>^2)/T^2
  vs temperature; lines for each Monte Carlo size, markers for each super-resolved level
  at its effective temperature (NaN ones skipped); jackknife errors (their Fig. 4).
* ``binder`` (edwards_anderson): g = (3 - [<q^4>]/[<q^2>]^2)/2 vs temperature, thermal
  averages per disorder sample first, jackknife over disorder samples.
* ``phi4`` (phi4): <|phi|> vs the scanned coupling per size (Bachtis et al.); a
  super-resolved point without a finite effective coupling is drawn hollow at its
  nominal coupling.

In ``binder`` and ``phi4`` the super-resolved levels are shifted sideways by 0.8 % of the
grid's span per level so that markers at the same abscissa stay readable.

Exit status: 0 done; 2 bad input (one line on stderr naming the file).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

try:
    from hpc_rg.analysis import observables as obs
    from hpc_rg.analysis.stats import jackknife
except ImportError:  # run from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from hpc_rg.analysis import observables as obs
    from hpc_rg.analysis.stats import jackknife

KINDS = ("histograms", "curves", "binder", "phi4")
APPLIES = {"histograms": "ising", "curves": "ising", "binder": "edwards_anderson",
           "phi4": "phi4"}
STAGES = {"samples.h5": "sample", "upscaled.h5": "upscale"}
SR_MARKERS = ("s", "^", "D", "v", "P", "X", "*")


class InputError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


# ---------------------------------------------------------------- reading the files

def open_run(run_dir):
    """Open and check ``samples.h5`` and ``upscaled.h5`` of a run; returns both h5py Files."""
    import h5py

    run = Path(run_dir)
    if not run.is_dir():
        raise InputError(f"{run}: no such run directory")
    files = []
    for name, stage in STAGES.items():
        path = run / name
        if not path.is_file():
            raise InputError(f"{path}: missing (run the {stage} stage first)")
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(f"{path}: not a readable HDF5 file ({exc})") from None
        files.append(f)
        try:
            _check_file(f, stage)
        except InputError:
            for g in files:
                g.close()
            raise
    models = {_model(f) for f in files}
    if len(models) != 1:
        raise InputError(f"{run}: samples.h5 and upscaled.h5 hold different models {sorted(models)}")
    return files


def _check_file(f, stage):
    """Raise InputError unless ``f`` is a complete hpc_rg output of ``stage``."""
    a = f.attrs
    if "schema_version" not in a or not size_groups(f):
        raise InputError(f"{f.filename}: not an hpc_rg output (no schema_version or /L<size> groups)")
    if int(a["schema_version"]) != 1:
        raise InputError(f"{f.filename}: schema_version {a['schema_version']} is not supported (1)")
    if str(a.get("stage", stage)) != stage:
        raise InputError(f"{f.filename}: written by the {a['stage']} stage, expected {stage}")
    if not bool(a.get("complete", False)):
        raise InputError(f"{f.filename}: incomplete (root attribute complete is false)")


def size_groups(f):
    """[(L, group)] of the /L<size> groups of an open file, sorted by L."""
    out = [(int(k[1:]), f[k]) for k in f if re.fullmatch(r"L\d+", k)]
    return sorted((p for p in out if "model" in p[1].attrs), key=lambda p: p[0])


def _model(f):
    return str(size_groups(f)[0][1].attrs["model"])


def read(group, name):
    """Dataset ``name`` of ``group`` as float64, or InputError naming file and path."""
    if name not in group:
        raise InputError(f"{group.file.filename}: {group.name}/{name} is missing")
    return np.asarray(group[name][()], dtype=np.float64)


def levels(upscaled):
    """[(L, group)] of the super-resolved levels, ordered by level."""
    return sorted(size_groups(upscaled), key=lambda p: int(p[1].attrs.get("level", p[0])))


def input_group(samples, upscaled):
    """(L, group) of the Monte Carlo input of the super-resolution (level 1 ``input_L``)."""
    _, g1 = levels(upscaled)[0]
    if "input_L" not in g1.attrs:
        raise InputError(f"{upscaled.filename}: {g1.name} has no input_L attribute")
    L = int(g1.attrs["input_L"])
    if f"L{L}" not in samples:
        raise InputError(f"{samples.filename}: no /L{L} group (the upscale input size)")
    return L, samples[f"L{L}"]


def grid(group):
    """Temperatures (spin models) or couplings (phi4) of a group."""
    return read(group, "couplings" if "couplings" in group else "temperatures")


def nominal(group, fallback):
    """Nominal temperatures/couplings of a super-resolved level (``fallback`` if absent)."""
    return read(group, "nominal_temperatures") if "nominal_temperatures" in group else fallback


# ---------------------------------------------------------------- numbers

def n_bins(n, chains=1):
    """Jackknife blocks: a multiple of ``chains`` leaving >= 8 samples per block (<= 32)."""
    chains = max(int(chains), 1)
    per_chain = max(1, min(32 // chains, n // chains // 8))
    return max(2, min(chains * per_chain, n // 2))


def thermo(e, m, temps, N, chains=1):
    """<|m|>, <e>, chi and C per temperature with jackknife errors.

    Parameters
    ----------
    e, m : array (T, S), energy and signed magnetization per site
    temps : array (T,), temperatures
    N : int, number of sites L^d
    chains : int, independent chains concatenated along S (for the blocking)

    Returns
    -------
    dict name -> (value (T,), err (T,)) for ``abs_m``, ``e``, ``chi``, ``C``; with
    ``chi = N (<m^2> - <|m|>^2) / T`` and ``C = N (<e^2> - <e>^2) / T^2``.
    """
    e, m = np.asarray(e, dtype=np.float64).T, np.asarray(m, dtype=np.float64).T
    beta = 1.0 / np.asarray(temps, dtype=np.float64)
    nb = n_bins(e.shape[0], chains)
    return {"abs_m": obs.mean(np.abs(m), nb), "e": obs.mean(e, nb),
            "chi": obs.susceptibility(m, beta, N, nb), "C": obs.specific_heat(e, beta, N, nb)}


def binder_ratio(q):
    """Binder ratio g = (3 - [<q^4>]/[<q^2>]^2)/2 of overlaps ``q`` (S, D) with jackknife error.

    Thermal averages over axis 0 per disorder sample (axis 1) first, then the disorder
    average; the error is the jackknife over disorder samples. With one disorder sample,
    the jackknife runs over blocks of the thermal series instead.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape[1] >= 2:
        return tuple(float(v) for v in obs.spin_glass_binder(q))
    q2 = q[:, 0] ** 2
    if q2.size < 4:
        return 0.5 * (3.0 - (q2 * q2).mean() / q2.mean() ** 2), float("nan")
    v, err = jackknife(lambda a2, a4: 0.5 * (3.0 - a4 / (a2 * a2)), q2, q2 * q2,
                       n_bins=n_bins(q2.size))
    return float(v), float(err)


def lattice_step(x):
    """Spacing of the value grid of a discrete series (smallest gap of its distinct values;
    0 for a constant series)."""
    u = np.unique(np.round(np.asarray(x, dtype=np.float64), 9))
    return float(np.diff(u).min()) if u.size > 1 else 0.0


def hist_edges(series, bins=20):
    """Common bin edges for several series: ``bins`` equal bins over their range, widened
    to a whole number of steps of the coarsest value grid (|m| and e of a small lattice
    take few values; bins narrower than a few steps would alias into empty bins)."""
    x = np.concatenate([np.ravel(s) for s in series])
    lo, hi = float(x.min()), float(x.max())
    step = max(lattice_step(s) for s in series)
    width = (hi - lo) / bins
    if step <= 0 or width <= 0 or width >= 10 * step:
        return np.histogram_bin_edges(x, bins=bins)
    width = np.ceil(width / step - 1e-9) * step
    n = int(np.ceil((hi - lo + step) / width - 1e-9))
    return lo - step / 2 + width * np.arange(n + 1)


def mc_overlaps(q, t):
    """Monte Carlo overlaps (D, T, S, P) at temperature index t as (S*P, D)."""
    q = np.asarray(q[:, t])
    return q.reshape(q.shape[0], -1).T


def sr_overlaps(q, t, block):
    """Super-resolved overlaps (T, N) at index t as (block, D'): disorder is the slowest
    index of N with ``block`` inputs per disorder sample; a trailing partial disorder
    sample (``upscale.samples`` < all) is dropped unless it is the only one."""
    row = np.asarray(q[t])
    d = max(row.size // block, 1)
    size = block if row.size >= block else row.size
    return row[: d * size].reshape(d, size).T


def disorder_block(samples_group):
    """Super-resolution inputs per disorder sample: S * (R // 2) overlaps of disjoint
    replica pairs (0,1), (2,3), ... (see hpc_rg.superres.ensemble_io)."""
    ds = samples_group["configs"] if "configs" in samples_group else None
    if ds is not None:
        _, _, S, R = ds.shape[:4]
    else:
        S, R = read(samples_group, "overlap").shape[2], int(samples_group.attrs["replicas"])
    return int(S) * (int(R) // 2)


# ---------------------------------------------------------------- plots

def _figure(nrows=1, ncols=1, size=(6.4, 4.8)):
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg canvas on save

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


def _save(fig, path):
    fig.savefig(path, dpi=110)
    return path


def _colours(sizes):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    sizes = sorted(set(sizes))
    return {L: cmap(0.85 * i / max(len(sizes) - 1, 1)) for i, L in enumerate(sizes)}


def _dodge(x, i, n, span):
    """x shifted by a small offset for series i of n sharing the same abscissae."""
    return np.asarray(x) + (i - (n - 1) / 2) * 0.008 * span


def plot_histograms(samples, upscaled, out, indices=None):
    """Histograms of |m| and e at each nominal temperature (MC L, SR 2L, MC 2L)."""
    L0, g0 = input_group(samples, upscaled)
    L1, g1 = levels(upscaled)[0]
    T0, T_eff = grid(g0), grid(g1)
    T_nom = nominal(g1, T0)
    ref = samples[f"L{L1}"] if f"L{L1}" in samples else None
    T_ref = grid(ref) if ref is not None else None
    data = {name: (read(g0, name), read(g1, name), read(ref, name) if ref is not None else None)
            for name in ("magnetization", "energy")}
    paths = []
    for t in range(len(T_nom)) if indices is None else indices:
        fig, axes = _figure(1, 2, (10, 4))
        series = [(f"MC {L0}, T={T0[t]:.4g}", t, 0)]
        t_eff = f"T_eff={T_eff[t]:.4g}" if np.isfinite(T_eff[t]) else "T_eff outside the flow"
        series.append((f"SR {L1}, {t_eff} (nominal T={T_nom[t]:.4g})", t, 1))
        if ref is not None:
            target = T_eff[t] if np.isfinite(T_eff[t]) else T_nom[t]
            r = int(np.argmin(np.abs(T_ref - target)))
            series.append((f"MC {L1}, T={T_ref[r]:.4g}", r, 2))
        for ax, (name, xlabel) in zip(axes, (("magnetization", "|m|"), ("energy", "e = E/N"))):
            values = [np.abs(data[name][k][i]) if name == "magnetization" else data[name][k][i]
                      for _, i, k in series]
            edges = hist_edges(values)
            for (label, _, k), v in zip(series, values):
                ax.hist(v, bins=edges, density=True, histtype="step", lw=1.8, label=label,
                        color=("C0", "C3", "k")[k], ls=("-", "-", "--")[k])
            ax.set_xlabel(xlabel)
            ax.set_ylabel("density")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"Ising {int(g0.attrs['dims'])}D: MC {L0} → SR {L1} at T={T_nom[t]:.4g}")
        paths.append(_save(fig, Path(out) / f"histograms_t{t:02d}_T{T_nom[t]:.4f}.png"))
    return paths


def plot_curves(samples, upscaled, out):
    """<|m|>, <e>, chi and C vs temperature: MC sizes as lines, SR levels as markers."""
    _, g0 = input_group(samples, upscaled)
    chains = int(g0.attrs.get("chains", 1))
    mc, sr = size_groups(samples), levels(upscaled)
    colours = _colours([L for L, _ in mc + sr])
    fig, axes = _figure(2, 2, (10, 8))
    names = (("abs_m", "<|m|>"), ("e", "<e>"), ("chi", "χ"), ("C", "C"))
    for L, g in mc:
        r = thermo(read(g, "energy"), read(g, "magnetization"), grid(g),
                   L ** int(g.attrs["dims"]), int(g.attrs.get("chains", 1)))
        for ax, (key, _) in zip(axes, names):
            ax.errorbar(grid(g), *r[key], fmt="-o", ms=3, capsize=2, color=colours[L],
                        label=f"MC L={L}")
    for i, (L, g) in enumerate(sr):
        T = grid(g)
        ok = np.isfinite(T)
        if not ok.any():
            print(f"curves: SR L={L} has no finite effective temperature; skipped", file=sys.stderr)
            continue
        r = thermo(read(g, "energy")[ok], read(g, "magnetization")[ok], T[ok],
                   L ** int(g.attrs["dims"]), chains)
        for ax, (key, _) in zip(axes, names):
            ax.errorbar(T[ok], *r[key], fmt=SR_MARKERS[i % len(SR_MARKERS)], ms=6, mfc="none",
                        capsize=2, color=colours[L], label=f"SR L={L} (T_eff)")
    for ax, (_, ylabel) in zip(axes, names):
        ax.set_xlabel("T")
        ax.set_ylabel(ylabel)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Ising {int(g0.attrs['dims'])}D: Monte Carlo (lines) and super-resolution (markers)")
    return [_save(fig, Path(out) / "curves.png")]


def plot_binder(samples, upscaled, out):
    """Overlap Binder ratio g vs temperature for the MC sizes and the SR levels."""
    _, g0 = input_group(samples, upscaled)
    block = disorder_block(g0)
    mc, sr = size_groups(samples), levels(upscaled)
    colours = _colours([L for L, _ in mc + sr])
    span = np.ptp(grid(g0)) if len(grid(g0)) > 1 else 1.0
    fig, axes = _figure()
    ax = axes[0]
    for L, g in mc:
        q, T = read(g, "overlap"), grid(g)
        g_err = np.array([binder_ratio(mc_overlaps(q, t)) for t in range(len(T))])
        ax.errorbar(T, g_err[:, 0], g_err[:, 1], fmt="-o", ms=3, capsize=2, color=colours[L],
                    label=f"MC L={L} (D={q.shape[0]})")
    for i, (L, g) in enumerate(sr):
        q, T = read(g, "overlap"), grid(g)
        ts = [t for t in range(len(T)) if np.isfinite(T[t])]
        if not ts:
            print(f"binder: SR L={L} has no finite effective temperature; skipped", file=sys.stderr)
            continue
        g_err = np.array([binder_ratio(sr_overlaps(q, t, block)) for t in ts])
        ax.errorbar(_dodge(T[ts], i, len(sr), span), g_err[:, 0], g_err[:, 1],
                    fmt=SR_MARKERS[i % len(SR_MARKERS)], ms=6,
                    mfc="none", capsize=2, color=colours[L], label=f"SR L={L}")
    ax.set_xlabel("T")
    ax.set_ylabel("g = (3 − [⟨q⁴⟩]/[⟨q²⟩]²)/2")
    ax.legend(fontsize=8)
    ax.set_title(f"Edwards–Anderson {int(g0.attrs['dims'])}D: overlap Binder ratio")
    return [_save(fig, Path(out) / "binder.png")]


def plot_phi4(samples, upscaled, out):
    """<|phi|> vs coupling per size (MC lines, SR markers; hollow = nominal coupling)."""
    _, g0 = input_group(samples, upscaled)
    scanned = str(g0.attrs.get("scanned", "coupling"))
    chains = int(g0.attrs.get("chains", 1))
    mc, sr = size_groups(samples), levels(upscaled)
    colours = _colours([L for L, _ in mc + sr])
    span = np.ptp(grid(g0)) if len(grid(g0)) > 1 else 1.0
    fig, axes = _figure()
    ax = axes[0]
    for L, g in mc:
        phi = np.abs(read(g, "phi_mean")).T
        v, err = obs.mean(phi, n_bins(phi.shape[0], int(g.attrs.get("chains", 1))))
        ax.errorbar(grid(g), v, err, fmt="-o", ms=3, capsize=2, color=colours[L], label=f"MC L={L}")
    note = False
    for i, (L, g) in enumerate(sr):
        phi = np.abs(read(g, "phi_mean")).T
        v, err = obs.mean(phi, n_bins(phi.shape[0], chains))
        k_eff = grid(g)
        ok = np.isfinite(k_eff)
        k = _dodge(np.where(ok, k_eff, nominal(g, grid(g0))), i, len(sr), span)
        marker = SR_MARKERS[i % len(SR_MARKERS)]
        if ok.any():
            ax.errorbar(k[ok], v[ok], err[ok], fmt=marker, ms=6, capsize=2, color=colours[L],
                        label=f"SR L={L} (effective {scanned})")
        if (~ok).any():
            note = True
            ax.errorbar(k[~ok], v[~ok], err[~ok], fmt=marker, ms=6, mfc="none", capsize=2,
                        color=colours[L], label=f"SR L={L} (nominal {scanned})")
    ax.set_xlabel(scanned)
    ax.set_ylabel("⟨|φ|⟩")
    ax.legend(fontsize=8)
    title = f"φ⁴ {int(g0.attrs['dims'])}D: ⟨|φ|⟩ vs {scanned}"
    if note:
        title += "\n(hollow: no finite effective coupling, drawn at the nominal one)"
    ax.set_title(title, fontsize=10)
    return [_save(fig, Path(out) / "phi4.png")]


# ---------------------------------------------------------------- command line

def parse_args(argv):
    p = argparse.ArgumentParser(prog="plot_superres.py",
                                description="Plot super-resolved ensembles against Monte Carlo.")
    p.add_argument("run_dir", help="run directory holding samples.h5 and upscaled.h5")
    p.add_argument("--out", help="output directory for the PNGs (default RUN_DIR/plots)")
    p.add_argument("--kind", choices=("all",) + KINDS, default="all")
    p.add_argument("--temperature", type=int, nargs="+", metavar="I",
                   help="histograms: nominal temperature indices (default all)")
    return p.parse_args(argv)


def make_plots(samples, upscaled, out, kind="all", indices=None):
    """Write the plots of ``kind`` that apply to the run's model; returns the PNG paths."""
    model = _model(samples)
    kinds = KINDS if kind == "all" else (kind,)
    if kind != "all" and APPLIES[kind] != model:
        raise InputError(f"{samples.filename}: --kind {kind} needs model {APPLIES[kind]}, "
                         f"the run is {model}")
    if indices is not None:
        n_T = len(grid(input_group(samples, upscaled)[1]))
        bad = [i for i in indices if not 0 <= i < n_T]
        if bad:
            raise InputError(f"{samples.filename}: --temperature {bad} out of range 0..{n_T - 1}")
    Path(out).mkdir(parents=True, exist_ok=True)
    plotters = {"histograms": lambda: plot_histograms(samples, upscaled, out, indices),
                "curves": lambda: plot_curves(samples, upscaled, out),
                "binder": lambda: plot_binder(samples, upscaled, out),
                "phi4": lambda: plot_phi4(samples, upscaled, out)}
    paths = []
    for k in kinds:
        if APPLIES[k] != model:
            print(f"skipped {k}: applies to {APPLIES[k]}, the run is {model}", file=sys.stderr)
            continue
        paths += plotters[k]()
    return paths


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    files = []
    try:
        files = open_run(args.run_dir)
        out = Path(args.out) if args.out else Path(args.run_dir) / "plots"
        for path in make_plots(*files, out, args.kind, args.temperature):
            print(path)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        for f in files:
            f.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
