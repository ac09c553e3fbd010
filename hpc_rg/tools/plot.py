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

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from ..analysis import observables as obs
from ..analysis.correlation import two_point_profile
from ..analysis.stats import jackknife
from ..errors import HpcRgError, InputFileError
from ..io import schema
from .common import (ToolParser, open_output, require_dataset, run_tool, select_sizes,
                     size_groups, temperature_grid)

TOOL = "plot"
KINDS = ("histograms", "curves", "binder", "phi4", "snapshots", "correlation", "tempering", "ess")
ALL_MODELS = ("ising", "edwards_anderson", "phi4")
APPLIES = {"histograms": ("ising",), "curves": ("ising",), "binder": ("edwards_anderson",),
           "phi4": ("phi4",), "snapshots": ALL_MODELS, "correlation": ALL_MODELS,
           "tempering": ALL_MODELS, "ess": ALL_MODELS}
#: files a kind needs: "samples", "upscaled", "both" or "any"
NEEDS = {"histograms": "both", "curves": "any", "binder": "samples", "phi4": "any",
         "snapshots": "upscaled", "correlation": "any", "tempering": "samples", "ess": "upscaled"}
STAGE_ROLE = {"sample": "samples", "upscale": "upscaled"}
ROLE_FILE = {"samples": schema.SAMPLES_FILE, "upscaled": schema.UPSCALED_FILE}
ROLE_STAGE = {"samples": "sample", "upscaled": "upscale"}
SR_MARKERS = ("s", "^", "D", "v", "P", "X", "*")
DPI = 130
#: colours of the two spin values −1, +1 in ``snapshots``
SPIN_COLOURS = ("#1b2a49", "#f2c14e")
#: critical points used to pick the default temperature: (model, dims, disorder) -> T_c
CRITICAL = {("ising", 2, None): 2.0 / math.log(1.0 + math.sqrt(2.0)),  # Onsager
            ("ising", 3, None): 4.5115,  # Talapov & Bloete 1996
            ("edwards_anderson", 3, "gaussian"): 0.951,  # Katzgraber, Koerner & Young 2006
            ("edwards_anderson", 3, "pm1"): 1.120}
SYMBOLS = {"mu2": "μ²", "lam": "λ", "lambda": "λ", "kappa": "κ", "beta": "β", "K": "K"}


class Skip(HpcRgError):
    """A kind that does not apply to these files: an error when asked for, else skipped."""


# ---------------------------------------------------------------- opening the inputs

class Inputs:
    """The opened files of one plot: ``samples`` and/or ``upscaled`` (h5py Files or None)."""

    def __init__(self, samples=None, upscaled=None, default_out=None, sizes=None):
        self.samples, self.upscaled = samples, upscaled
        self.default_out = default_out
        self.sizes = None if sizes is None else set(sizes)
        files = [f for f in (samples, upscaled) if f is not None]
        models = {str(size_groups(f)[0][1].attrs.get(schema.GROUP_ATTR_MODEL, "")) for f in files}
        if len(models) != 1:
            raise InputFileError(f"{samples.filename} and {upscaled.filename} hold different "
                                 f"models ({', '.join(sorted(models))}); give files of one run")
        self.model = models.pop()
        g = size_groups(files[0])[0][1]
        self.dims = int(g.attrs.get(schema.GROUP_ATTR_DIMS, 2))

    def close(self):
        for f in (self.samples, self.upscaled):
            if f is not None:
                f.close()

    def first(self):
        return self.samples if self.samples is not None else self.upscaled

    def need(self, role, kind):
        """The file of ``role``; Skip naming what is missing if it was not given."""
        f = getattr(self, role)
        if f is None:
            where = (f"{self.default_out.parent / ROLE_FILE[role]} is missing" if self._run_dir
                     else f"no {ROLE_FILE[role]} among the files given")
            raise Skip(f"--kind {kind} needs the {ROLE_STAGE[role]} stage's output ({where})")
        return f

    _run_dir = False

    # -- groups
    def _keep(self, groups):
        return [(L, g) for L, g in groups if self.sizes is None or L in self.sizes]

    def mc(self):
        """[(L, group)] of the Monte Carlo sizes (after ``--sizes``), smallest first."""
        return self._keep(size_groups(self.samples)) if self.samples is not None else []

    def levels(self, filtered=True):
        """[(L, group)] of the super-resolved levels ordered by level (after ``--sizes``)."""
        if self.upscaled is None:
            return []
        groups = sorted(size_groups(self.upscaled), key=lambda p: int(p[1].attrs.get("level", p[0])))
        return self._keep(groups) if filtered else groups

    def input_group(self, kind):
        """(L, group) of the Monte Carlo input of the super-resolution (level 1 ``input_L``);
        without upscaled.h5 the smallest sampled size."""
        samples = self.need("samples", kind)
        if self.upscaled is None:
            return size_groups(samples)[0]
        _, g1 = self.levels(filtered=False)[0]
        if "input_L" not in g1.attrs:
            raise InputFileError(f"{self.upscaled.filename}: group {g1.name} has no attribute "
                                 f"'input_L' (the Monte Carlo size it was made from)")
        L = int(g1.attrs["input_L"])
        if schema.size_group(L) not in samples:
            raise InputFileError(f"{samples.filename}: no group /L{L} (the input size of "
                                 f"{self.upscaled.filename}); give the samples.h5 of the same run")
        return L, samples[schema.size_group(L)]

    def chains(self):
        """Independent series concatenated along the sample axis of the input ensemble."""
        if self.samples is None or self.upscaled is None:
            return 1
        _, g = self.input_group("curves")
        if self.model == "edwards_anderson":
            return int(g.attrs.get("disorder_samples", 1))
        return int(g.attrs.get("chains", 1))

    def scan_grid(self):
        """Nominal temperatures (couplings) of the super-resolution inputs."""
        if self.upscaled is not None:
            _, g1 = self.levels(filtered=False)[0]
            if "nominal_temperatures" in g1:
                return read(g1, "nominal_temperatures")
            return grid(g1)
        return grid(size_groups(self.samples)[0][1])

    def scanned(self):
        """Name of the scan variable: 'T' or the φ⁴ coupling's symbol."""
        if self.model != "phi4":
            return "T"
        for f in (self.samples, self.upscaled):
            if f is not None:
                for _, g in size_groups(f):
                    if "scanned" in g.attrs:
                        name = str(g.attrs["scanned"])
                        return SYMBOLS.get(name, name)
        return "coupling"


def _check_file(f):
    """Raise InputFileError unless ``f`` is a complete schema-1 hpc_rg output with size groups."""
    v = int(f.attrs[schema.ATTR_SCHEMA])
    if v != schema.SCHEMA_VERSION:
        raise InputFileError(f"{f.filename}: schema_version {v} is not supported "
                             f"(this hpc_rg reads {schema.SCHEMA_VERSION})")
    select_sizes(f)  # raises when there are no /L<size> groups
    if not bool(f.attrs.get(schema.ATTR_COMPLETE, False)):
        raise InputFileError(f"{f.filename}: incomplete (root attribute complete is false; "
                             f"the stage has not finished)")


def _role(f):
    stage = str(f.attrs.get(schema.ATTR_STAGE, ""))
    if stage in STAGE_ROLE:
        return STAGE_ROLE[stage]
    sources = {str(g.attrs.get(schema.GROUP_ATTR_SOURCE, "")) for _, g in size_groups(f)}
    if any(s.startswith("superres") for s in sources):
        return "upscaled"
    raise InputFileError(f"{f.filename}: written by stage '{stage}'; plot reads 'sample' "
                         f"({schema.SAMPLES_FILE}) and 'upscale' ({schema.UPSCALED_FILE}) outputs")


def open_inputs(paths, sizes=None) -> Inputs:
    """Open a run directory (one path) or HDF5 files; checks them; returns :class:`Inputs`."""
    paths = [Path(p) for p in paths]
    run_dir = len(paths) == 1 and paths[0].is_dir()
    if run_dir:
        run = paths[0]
        paths = [run / ROLE_FILE[r] for r in ("samples", "upscaled") if (run / ROLE_FILE[r]).is_file()]
        if not paths:
            raise InputFileError(f"{run}: no {schema.SAMPLES_FILE} or {schema.UPSCALED_FILE} "
                                 f"(not a finished run directory; give its run.output)")
    else:
        for p in paths:
            if p.is_dir():
                raise InputFileError(f"{p}: is a directory; give one run directory alone, "
                                     f"or HDF5 files")
    opened, files = {}, []
    try:
        for p in paths:
            f = open_output(p)
            files.append(f)
            _check_file(f)
            role = _role(f)
            if role in opened:
                raise InputFileError(f"{p}: a second {ROLE_STAGE[role]}-stage output (also "
                                     f"{opened[role].filename}); give at most one of each")
            opened[role] = f
        inputs = Inputs(opened.get("samples"), opened.get("upscaled"),
                        default_out=(run / "plots" if run_dir else paths[0].parent / "plots"),
                        sizes=sizes)
        inputs._run_dir = run_dir
    except BaseException:
        for f in files:
            f.close()
        raise
    if sizes is not None:
        have = {L for f in (inputs.samples, inputs.upscaled) if f is not None for L, _ in size_groups(f)}
        missing = [L for L in sizes if L not in have]
        if missing:
            names = ", ".join(f.filename for f in (inputs.samples, inputs.upscaled) if f is not None)
            inputs.close()
            raise InputFileError(f"{names}: no group /L{missing[0]} (--sizes; have "
                                 f"{', '.join('/L%d' % L for L in sorted(have))})")
    return inputs


# ---------------------------------------------------------------- reading

def read(group, name):
    """Dataset ``name`` of ``group`` as float64, or InputFileError naming file and group."""
    return np.asarray(require_dataset(group, name)[()], dtype=np.float64)


def grid(group):
    """Temperatures (spin models) or couplings (phi4) of a group."""
    return np.asarray(temperature_grid(group)[1], dtype=np.float64)


def nominal(group, fallback):
    """Nominal temperatures/couplings of a super-resolved level (``fallback`` if absent)."""
    return read(group, "nominal_temperatures") if "nominal_temperatures" in group else fallback


def ensemble_size(group) -> int:
    """Configurations per temperature of a size group (EA Monte Carlo: overlap configurations
    ρ of disjoint replica pairs, D × S × ⌊R/2⌋)."""
    ds = require_dataset(group, schema.CONFIGS)
    if _is_ea_mc(group):
        D, _, S, R = ds.shape[:4]
        return D * S * (R // 2)
    return ds.shape[1]


def _is_ea_mc(group) -> bool:
    return (str(group.attrs.get(schema.GROUP_ATTR_MODEL, "")) == "edwards_anderson"
            and str(group.attrs.get(schema.GROUP_ATTR_SOURCE, "monte_carlo")) == "monte_carlo")


def read_configs(group, t: int, a: int, b: int, step: int = 1) -> np.ndarray:
    """Configurations ``a, a+step, … < b`` of temperature index ``t``: (n, L, …, L), stored dtype.

    EA Monte Carlo groups give the overlap configurations ρ = s·s' of the disjoint replica
    pairs (0, 1), (2, 3), … with flat index ``n = (d·S + k)·⌊R/2⌋ + p`` (disorder slowest),
    the ensemble the super-resolution starts from (hpc_rg.superres.ensemble_io).
    """
    ds = require_dataset(group, schema.CONFIGS)
    if not _is_ea_mc(group):
        return np.asarray(ds[t, a:b:step])
    D, _, S, R = ds.shape[:4]
    P = R // 2
    per_d = S * P
    parts = []
    for d in range(a // per_d, (max(b, a + 1) - 1) // per_d + 1):
        lo, hi = max(a, d * per_d) - d * per_d, min(b, (d + 1) * per_d) - d * per_d
        if hi <= lo:
            continue
        k0, k1 = lo // P, (hi - 1) // P + 1
        x = np.asarray(ds[d, t, k0:k1, : 2 * P])  # (k, 2P, *lat)
        rho = x[:, 0::2] * x[:, 1::2]
        rho = rho.reshape(((k1 - k0) * P,) + rho.shape[2:])
        parts.append(rho[lo - k0 * P: hi - k0 * P])
    out = np.concatenate(parts, axis=0) if parts else np.zeros((0,) + ds.shape[4:], ds.dtype)
    return out[::step]


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
    if schema.CONFIGS in samples_group:
        _, _, S, R = samples_group[schema.CONFIGS].shape[:4]
    else:
        S, R = read(samples_group, "overlap").shape[2], int(samples_group.attrs["replicas"])
    return int(S) * (int(R) // 2)


def distances(L: int, n_max: int = 16) -> np.ndarray:
    """Distances 1 … L/2 for G(r): all of them up to ``n_max``, else ~``n_max`` log-spaced."""
    half = max(int(L) // 2, 1)
    if half <= n_max:
        return np.arange(1, half + 1)
    return np.unique(np.round(np.geomspace(1, half, n_max)).astype(int))


def correlation_series(group, t: int, rs, dims: int, max_configs: int = 2000,
                       batch_elements: int = 1 << 22) -> np.ndarray:
    """Per-configuration G(r) (n, len(rs)) of temperature index ``t`` of a size group.

    At most ``max_configs`` configurations, every ``step``-th of the ensemble (spread over
    all chains / disorder samples), read in batches of about ``batch_elements`` sites.
    """
    N = ensemble_size(group)
    step = max(1, math.ceil(N / max(int(max_configs), 1)))
    sites = int(np.prod(require_dataset(group, schema.CONFIGS).shape[-dims:]))
    per_batch = max(1, batch_elements // sites) * step
    out = []
    for a in range(0, N, per_batch):
        x = read_configs(group, t, a, min(a + per_batch, N), step)
        out.append(two_point_profile(x, dims, rs))
    return np.concatenate(out, axis=0)[:max_configs]


def jackknife_mean(x, chains=1):
    """Column means of ``x`` (n, k) with jackknife errors."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 4:
        return x.mean(axis=0), np.full(x.shape[1:], np.nan)
    return jackknife(lambda a: a, x, n_bins=n_bins(x.shape[0], chains))


# ---------------------------------------------------------------- figure helpers

def _figure(nrows=1, ncols=1, size=(6.4, 4.8)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


def _save(fig, path):
    fig.savefig(path, dpi=DPI)
    return Path(path)


def _colours(sizes):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    sizes = sorted(set(sizes))
    return {L: cmap(0.85 * i / max(len(sizes) - 1, 1)) for i, L in enumerate(sizes)}


def _dodge(x, i, n, span):
    """x shifted by a small offset for series i of n sharing the same abscissae."""
    return np.asarray(x) + (i - (n - 1) / 2) * 0.008 * span


def cert_tag(group) -> str:
    """Legend suffix saying what a super-resolved level is: '' when certified exact,
    ' [approximate]', ' [NOT CERTIFIED]' or ' [no certificate]' (older files)."""
    from ..analysis.certificate import status
    return {"monte_carlo": "", "certified": "", "not_certified": " [NOT CERTIFIED]",
            "approximate": " [approximate]", "unknown": " [no certificate]"}[status(group)]


def _model_title(inp):
    return {"ising": "Ising", "edwards_anderson": "Edwards–Anderson", "phi4": "φ⁴"}.get(
        inp.model, inp.model) + f" {inp.dims}D"


def _fmt_T(value, sym="T"):
    return f"{sym}={value:.4g}" if np.isfinite(value) else f"{sym} outside the flow"


def _tag(sym, value):
    return f"{'T' if sym == 'T' else 'K'}{value:.4f}"


def default_temperature(inp) -> int:
    """Index of the nominal temperature nearest the known critical one, else the middle."""
    T = inp.scan_grid()
    g = size_groups(inp.first())[0][1]
    disorder = str(g.attrs["disorder"]) if inp.model == "edwards_anderson" and "disorder" in g.attrs else None
    tc = CRITICAL.get((inp.model, inp.dims, disorder))
    if tc is not None and np.isfinite(T).any():
        return int(np.nanargmin(np.abs(T - tc)))
    return len(T) // 2


def _indices(inp, spec, kind, default):
    """Temperature indices from ``--temperature`` (``None``: ``default``; 'all')."""
    n_T = len(inp.scan_grid())
    if spec is None:
        return list(range(n_T)) if default == "all" else [default_temperature(inp)]
    if spec == "all":
        return list(range(n_T))
    bad = [i for i in spec if not 0 <= i < n_T]
    if bad:
        raise InputFileError(f"{inp.first().filename}: --temperature {bad[0]} out of range "
                             f"0..{n_T - 1} ({n_T} temperatures)")
    return list(spec)


def _nearest(T, target):
    T = np.asarray(T, dtype=np.float64)
    return int(np.nanargmin(np.abs(T - target)))


# ---------------------------------------------------------------- the plots

def plot_histograms(inp, out, indices=None):
    """Histograms of |m| and e at each nominal temperature (MC L, SR 2L, MC 2L)."""
    inp.need("upscaled", "histograms")
    L0, g0 = inp.input_group("histograms")
    L1, g1 = inp.levels(filtered=False)[0]
    T0, T_eff = grid(g0), grid(g1)
    T_nom = nominal(g1, T0)
    ref = inp.samples[f"L{L1}"] if f"L{L1}" in inp.samples else None
    T_ref = grid(ref) if ref is not None else None
    data = {name: (read(g0, name), read(g1, name), read(ref, name) if ref is not None else None)
            for name in ("magnetization", "energy")}
    paths = []
    for t in _indices(inp, indices, "histograms", "all"):
        fig, axes = _figure(1, 2, (11, 4.5))
        series = [(f"MC L={L0}, T={T0[t]:.4g}", t, 0)]
        series.append((f"SR L={L1}, {_fmt_T(T_eff[t], 'T_eff')} (nominal T={T_nom[t]:.4g})", t, 1))
        if ref is not None:
            target = T_eff[t] if np.isfinite(T_eff[t]) else T_nom[t]
            r = _nearest(T_ref, target)
            series.append((f"MC L={L1}, T={T_ref[r]:.4g}", r, 2))
        for ax, (name, xlabel) in zip(axes, (("magnetization", "|m| (magnetization per site)"),
                                             ("energy", "e = E/N (energy per site, units of J)"))):
            values = [np.abs(data[name][k][i]) if name == "magnetization" else data[name][k][i]
                      for _, i, k in series]
            edges = hist_edges(values)
            for (label, _, k), v in zip(series, values):
                ax.hist(v, bins=edges, density=True, histtype="step", lw=1.8, label=label,
                        color=("C0", "C3", "k")[k], ls=("-", "-", "--")[k])
            ax.set_xlabel(xlabel)
            ax.set_ylabel("probability density")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{_model_title(inp)}: MC L={L0} → SR L={L1} at nominal T={T_nom[t]:.4g}")
        paths.append(_save(fig, Path(out) / f"histograms_t{t:02d}_T{T_nom[t]:.4f}.png"))
    return paths


def plot_curves(inp, out):
    """<|m|>, <e>, chi and C vs temperature: MC sizes as lines, SR levels as markers."""
    chains = inp.chains()
    mc, sr = inp.mc(), inp.levels()
    if not mc and not sr:
        raise Skip("--kind curves: no sizes left after --sizes")
    colours = _colours([L for L, _ in mc + sr])
    fig, axes = _figure(2, 2, (11, 8.5))
    names = (("abs_m", "⟨|m|⟩ (per site)"), ("e", "⟨e⟩ (energy per site, J)"),
             ("chi", "χ = N(⟨m²⟩ − ⟨|m|⟩²)/T"), ("C", "C = N(⟨e²⟩ − ⟨e⟩²)/T²"))
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
            print(f"plot: curves: SR L={L} has no finite effective temperature; skipped", file=sys.stderr)
            continue
        r = thermo(read(g, "energy")[ok], read(g, "magnetization")[ok], T[ok],
                   L ** int(g.attrs["dims"]), chains)
        for ax, (key, _) in zip(axes, names):
            ax.errorbar(T[ok], *r[key], fmt=SR_MARKERS[i % len(SR_MARKERS)], ms=6, mfc="none",
                        capsize=2, color=colours[L], label=f"SR L={L} (at T_eff){cert_tag(g)}")
    for ax, (_, ylabel) in zip(axes, names):
        ax.set_xlabel("T (units of J/k_B)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{_model_title(inp)}: Monte Carlo (lines) and super-resolution (markers)")
    return [_save(fig, Path(out) / "curves.png")]


def plot_binder(inp, out):
    """Overlap Binder ratio g vs temperature for the MC sizes and the SR levels."""
    _, g0 = inp.input_group("binder")
    block = disorder_block(g0)
    mc, sr = inp.mc(), inp.levels()
    colours = _colours([L for L, _ in mc + sr])
    span = np.ptp(grid(g0)) if len(grid(g0)) > 1 else 1.0
    fig, axes = _figure(size=(7, 5))
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
            print(f"plot: binder: SR L={L} has no finite effective temperature; skipped", file=sys.stderr)
            continue
        g_err = np.array([binder_ratio(sr_overlaps(q, t, block)) for t in ts])
        ax.errorbar(_dodge(T[ts], i, len(sr), span), g_err[:, 0], g_err[:, 1],
                    fmt=SR_MARKERS[i % len(SR_MARKERS)], ms=6,
                    mfc="none", capsize=2, color=colours[L], label=f"SR L={L}{cert_tag(g)}")
    ax.set_xlabel("T (units of J/k_B)")
    ax.set_ylabel("g = (3 − [⟨q⁴⟩]/[⟨q²⟩]²)/2")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{_model_title(inp)}: overlap Binder ratio")
    return [_save(fig, Path(out) / "binder.png")]


def plot_phi4(inp, out):
    """<|phi|> vs coupling per size (MC lines, SR markers; hollow = nominal coupling); where a
    super-resolved level has the size of a Monte Carlo ensemble, a second panel compares the
    two at the nominal coupling and marks where they cross (Bachtis et al.'s original vs
    inversely renormalized system of one size: the crossing estimates the critical coupling)."""
    sym = inp.scanned()
    chains = inp.chains()
    mc, sr = inp.mc(), inp.levels()
    if not mc and not sr:
        raise Skip("--kind phi4: no sizes left after --sizes")
    colours = _colours([L for L, _ in mc + sr])
    base = inp.scan_grid()
    span = np.ptp(base) if len(base) > 1 else 1.0
    pairs = phi4_same_size(inp)
    fig, axes = _figure(ncols=2 if pairs else 1, size=(12, 5) if pairs else (7, 5))
    ax = axes[0]
    for L, g in mc:
        v, err = _abs_phi(g, int(g.attrs.get("chains", 1)))
        ax.errorbar(grid(g), v, err, fmt="-o", ms=3, capsize=2, color=colours[L], label=f"MC L={L}")
    note = False
    for i, (L, g) in enumerate(sr):
        v, err = _abs_phi(g, chains)
        k_eff = grid(g)
        ok = np.isfinite(k_eff)
        k = _dodge(np.where(ok, k_eff, nominal(g, base)), i, len(sr), span)
        marker = SR_MARKERS[i % len(SR_MARKERS)]
        if ok.any():
            ax.errorbar(k[ok], v[ok], err[ok], fmt=marker, ms=6, capsize=2, color=colours[L],
                        label=f"SR L={L} (effective {sym}){cert_tag(g)}")
        if (~ok).any():
            note = True
            ax.errorbar(k[~ok], v[~ok], err[~ok], fmt=marker, ms=6, mfc="none", capsize=2,
                        color=colours[L], label=f"SR L={L} (nominal {sym}){cert_tag(g)}")
    ax.set_xlabel(f"{sym} (lattice units)")
    ax.set_ylabel("⟨|φ̄|⟩  (φ̄ = spatial mean of φ)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    title = f"{_model_title(inp)}: ⟨|φ|⟩ vs {sym}"
    if note:
        title += "\n(hollow: no finite effective coupling, drawn at the nominal one)"
    ax.set_title(title, fontsize=10)
    if pairs:
        ax = axes[1]
        srg = dict(sr)
        for L, k, (m, me), (s_, se), cross in pairs:
            L_in = int(srg[L].attrs.get("input_L", L // 2))
            ax.errorbar(k, m, me, fmt="-o", ms=3, capsize=2, color=colours[L], label=f"MC L={L}")
            ax.errorbar(k, s_, se, fmt="--s", ms=5, mfc="none", capsize=2, color=colours[L],
                        label=f"SR L={L} (from MC L={L_in})")
            for x0, e in cross:
                ax.axvspan(x0 - e, x0 + e, color=colours[L], alpha=0.15)
                ax.axvline(x0, color=colours[L], lw=0.8,
                           label=f"crossing {sym} = {x0:.4f} ± {e:.4f}")
        ax.set_xlabel(f"nominal {sym} (lattice units)")
        ax.set_ylabel("⟨|φ̄|⟩")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_title("original vs inversely renormalized system of one size", fontsize=10)
    return [_save(fig, Path(out) / "phi4.png")]


def _abs_phi(g, chains: int):
    """Jackknife ⟨|φ̄|⟩ and its error per grid point of a size group."""
    phi = np.abs(read(g, "phi_mean")).T
    return obs.mean(phi, n_bins(phi.shape[0], chains))


def phi4_same_size(inp):
    """For every super-resolved level whose size has a Monte Carlo ensemble on the same
    coupling grid: ``(L, couplings, (MC ⟨|φ|⟩, err), (SR ⟨|φ|⟩, err), crossings)`` at the
    nominal couplings, crossings as :func:`hpc_rg.analysis.crossing.crossings` returns them."""
    from ..analysis.crossing import crossings
    mc = dict(inp.mc())
    base = inp.scan_grid()
    out = []
    for L, g in inp.levels():
        if L not in mc:
            continue
        k_mc, k_sr = grid(mc[L]), nominal(g, base)
        if len(k_mc) != len(k_sr) or not np.allclose(k_mc, k_sr):
            continue
        m = _abs_phi(mc[L], int(mc[L].attrs.get("chains", 1)))
        s_ = _abs_phi(g, inp.chains())
        out.append((L, k_mc, m, s_, crossings(k_mc, m[0], m[1], s_[0], s_[1])))
    return out


def snapshot_panels(inp, t: int, n: int):
    """The arrays ``snapshots`` draws for temperature index ``t``, configuration ``n``.

    Returns [(label, L, value, array)] — label ``"MC"`` (the input, when samples.h5 is
    given) or ``"SR"``; ``value`` its temperature (T_eff for SR); ``array`` the full
    configuration (EA: overlap ρ) as stored, (L,)*dims.
    """
    inp.need("upscaled", "snapshots")
    levels = inp.levels(filtered=False)
    N = require_dataset(levels[0][1], schema.CONFIGS).shape[1]
    if not 0 <= n < N:
        raise InputFileError(f"{inp.upscaled.filename}: --config {n} out of range 0..{N - 1} "
                             f"({N} configurations per temperature)")
    panels = []
    if inp.samples is not None:
        L0, g0 = inp.input_group("snapshots")
        if inp.sizes is None or L0 in inp.sizes:
            # upscale.samples < all: row n descends from input n·C // N (hdf5-layout.md)
            src = n * int(levels[0][1].attrs.get("input_count", N)) // N
            panels.append(("MC", L0, float(grid(g0)[t]), read_configs(g0, t, src, src + 1)[0]))
    for L, g in inp.levels():
        panels.append(("SR", L, float(grid(g)[t]), np.asarray(require_dataset(g, schema.CONFIGS)[t, n])))
    return panels


def _middle_slice(a, dims):
    """2D view of a configuration: the array itself (2D), a row (1D), the middle z slice (3D+)."""
    a = np.asarray(a)
    if dims == 1:
        return a[None, :]
    while a.ndim > 2:
        a = a[..., a.shape[-1] // 2]
    return a


def plot_snapshots(inp, out, indices=None, n=0):
    """One configuration across the super-resolution levels, side by side."""
    from matplotlib.colors import ListedColormap

    sym = inp.scanned()
    paths = []
    nominal_T = inp.scan_grid()
    for t in _indices(inp, indices, "snapshots", None):
        panels = snapshot_panels(inp, t, n)
        if not panels:
            raise Skip("--kind snapshots: no sizes left after --sizes")
        field = inp.model == "phi4"
        ea = inp.model == "edwards_anderson"
        w = 3.3 if inp.dims != 1 else 4.5
        fig, axes = _figure(1, len(panels), (w * len(panels) + (1.0 if field else 0.6),
                                             4.0 if inp.dims != 1 else 2.2))
        if field:
            vmax = max(float(np.max(np.abs(a))) for *_, a in panels) or 1.0
            cmap, vmin = "RdBu_r", -vmax
        else:
            cmap, vmin, vmax = ListedColormap(SPIN_COLOURS), -1, 1
        im = None
        for ax, (src, L, value, a) in zip(axes, panels):
            img = _middle_slice(a, inp.dims)
            im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                           aspect="equal" if inp.dims != 1 else "auto")
            ax.set_xticks([])
            ax.set_yticks([])
            what = f"{sym}_eff" if src == "SR" else sym
            ax.set_title(f"{'Monte Carlo' if src == 'MC' else 'super-resolved'} L={L}\n"
                         f"{_fmt_T(value, what)}", fontsize=10)
        cb = fig.colorbar(im, ax=list(axes), shrink=0.8, pad=0.02)
        if field:
            cb.set_label("φ")
        else:
            cb.set_ticks([-0.5, 0.5])
            cb.set_ticklabels(["−1", "+1"])
            cb.set_label("ρ = s·s′ (overlap)" if ea else "spin s")
        extra = f", middle slice z={panels[-1][1] // 2} of the largest" if inp.dims >= 3 else ""
        fig.suptitle(f"{_model_title(inp)}: configuration {n} at nominal {sym}={nominal_T[t]:.4g}"
                     f" across the levels{extra}", fontsize=11)
        paths.append(_save(fig, Path(out) / f"snapshots_t{t:02d}_{_tag(sym, nominal_T[t])}_n{n}.png"))
    return paths


def correlation_data(inp, t: int, max_configs: int = 2000):
    """G(r) drawn by ``correlation`` at nominal temperature index ``t``.

    Returns [(label, L, value, rs, G (n_r,), err (n_r,), n_configs)] for every Monte Carlo
    size (at its temperature nearest the nominal one) and super-resolved level (at index t).
    """
    T_nom = inp.scan_grid()[t]
    chains = inp.chains()
    rows = []
    for L, g in inp.mc():
        T = grid(g)
        tt = _nearest(T, T_nom)
        rs = distances(L)
        x = correlation_series(g, tt, rs, inp.dims, max_configs)
        ch = int(g.attrs.get("disorder_samples" if inp.model == "edwards_anderson" else "chains", 1))
        step_one = ensemble_size(g) <= max_configs
        G, err = jackknife_mean(x, ch if step_one else 1)
        rows.append(("MC", L, float(T[tt]), rs, G, err, x.shape[0]))
    for L, g in inp.levels():
        rs = distances(L)
        x = correlation_series(g, t, rs, inp.dims, max_configs)
        step_one = ensemble_size(g) <= max_configs
        G, err = jackknife_mean(x, chains if step_one else 1)
        rows.append(("SR", L, float(grid(g)[t]), rs, G, err, x.shape[0]))
    return rows


def plot_correlation(inp, out, indices=None, max_configs=2000):
    """G(r) vs r (log-log) per size at the chosen temperature(s)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    sym = inp.scanned()
    nominal_T = inp.scan_grid()
    paths = []
    what = {"edwards_anderson": "ρ(x) ρ(x+r)", "phi4": "φ(x) φ(x+r)"}.get(inp.model, "s(x) s(x+r)")
    for t in _indices(inp, indices, "correlation", None):
        rows = correlation_data(inp, t, max_configs)
        if not rows:
            raise Skip("--kind correlation: no sizes left after --sizes")
        colours = _colours([L for _, L, *_ in rows])
        fig, axes = _figure(size=(7.5, 5.5))
        ax = axes[0]
        hidden = False
        i_sr = 0
        for src, L, value, rs, G, err, n in rows:
            pos = G > 0
            hidden |= not pos.all()
            if src == "MC":
                kw = dict(fmt="-o", ms=3, label=f"MC L={L}, {_fmt_T(value, sym)} ({n} configs)")
            else:
                kw = dict(fmt="--" + SR_MARKERS[i_sr % len(SR_MARKERS)], ms=5, mfc="none",
                          label=f"SR L={L}, {_fmt_T(value, sym + '_eff')} ({n} configs)")
                i_sr += 1
            if pos.any():
                ax.errorbar(rs[pos], G[pos], np.where(np.isfinite(err[pos]), err[pos], 0),
                            capsize=2, color=colours[L], **kw)
        ax.set_xscale("log")
        ax.set_yscale("log")
        r_max = max(int(rows_[3].max()) for rows_ in rows)
        ax.set_xticks([2 ** k for k in range(int(math.log2(max(r_max, 1))) + 1)])
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("r (lattice spacings)")
        ax.set_ylabel(f"G(r) = ⟨{what}⟩")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        title = f"{_model_title(inp)}: two-point function at nominal {sym}={nominal_T[t]:.4g}"
        if hidden:
            title += "\n(points with G(r) ≤ 0 are not shown on the log scale)"
        ax.set_title(title, fontsize=10)
        paths.append(_save(fig, Path(out) / f"correlation_t{t:02d}_{_tag(sym, nominal_T[t])}.png"))
    return paths


def tempering_data(inp):
    """[(L, temperatures, acceptance (T-1,), round_trips or None, attempts or None)] of the
    Monte Carlo sizes with parallel tempering; Skip if there is none."""
    samples = inp.need("samples", "tempering")
    rows = []
    for L, g in inp.mc():
        if "tempering_acceptance" not in g.attrs:
            continue
        acc = np.atleast_1d(np.asarray(g.attrs["tempering_acceptance"], dtype=np.float64))
        trips = g.attrs.get("tempering_round_trips")
        attempts = g.attrs.get("tempering_attempts")
        rows.append((L, grid(g), acc,
                     None if trips is None else np.atleast_1d(np.asarray(trips)),
                     None if attempts is None else np.atleast_1d(np.asarray(attempts))))
    if not rows:
        raise Skip(f"{samples.filename}: no parallel-tempering data (group attribute "
                   f"'tempering_acceptance'); the run did not use sample.tempering")
    return rows


def plot_tempering(inp, out):
    """Replica-exchange acceptance per neighbouring temperature pair (and round trips)."""
    rows = tempering_data(inp)
    has_trips = any(r[3] is not None for r in rows)
    colours = _colours([r[0] for r in rows])
    fig, axes = _figure(1, 2 if has_trips else 1, (12 if has_trips else 7, 4.8))
    ax = axes[0]
    n_pairs = max(len(r[2]) for r in rows)
    width = 0.8 / len(rows)
    for i, (L, T, acc, _, attempts) in enumerate(rows):
        x = np.arange(len(acc))
        label = f"L={L}" + (f" ({int(attempts[0])} attempts/pair)" if attempts is not None else "")
        if n_pairs > 12:
            ax.plot(x, acc, "-o", ms=3, color=colours[L], label=label)
        else:
            ax.bar(x + (i - (len(rows) - 1) / 2) * width, acc, width, color=colours[L], label=label)
    T = rows[0][1]
    ticks = np.arange(n_pairs)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{T[k]:.3g}↔{T[k + 1]:.3g}" if k + 1 < len(T) else str(k) for k in ticks],
                       rotation=45 if n_pairs > 4 else 0, ha="right" if n_pairs > 4 else "center",
                       fontsize=8)
    ax.set_xlabel("neighbouring temperature pair Tᵢ ↔ Tᵢ₊₁")
    ax.set_ylabel("exchange acceptance")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    ax.set_title("parallel-tempering acceptance per pair", fontsize=10)
    if has_trips:
        ax = axes[1]
        with_trips = [r for r in rows if r[3] is not None]
        w2 = 0.8 / len(with_trips)
        for i, (L, _, _, trips, _) in enumerate(with_trips):
            x = np.arange(len(trips))
            ax.bar(x + (i - (len(with_trips) - 1) / 2) * w2, trips, w2, color=colours[L],
                   label=f"L={L}: {int(trips.sum())} in all, {trips.mean():.3g} per ladder")
        ax.set_xlabel("ladder" + (" (disorder × replica)" if inp.model == "edwards_anderson" else ""))
        ax.set_ylabel("round trips (lowest → highest → lowest T)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        ax.set_title("round trips per temperature ladder", fontsize=10)
    fig.suptitle(f"{_model_title(inp)}: parallel tempering")
    return [_save(fig, Path(out) / "tempering.png")]


def _level_value(g, name):
    """Attribute or dataset ``name`` of a group as a float64 array, or None."""
    if name in g.attrs:
        return np.atleast_1d(np.asarray(g.attrs[name], dtype=np.float64))
    if name in g and not hasattr(g[name], "keys"):
        return np.atleast_1d(np.asarray(g[name][()], dtype=np.float64))
    return None


def ess_data(inp):
    """[(L, level, source, temperatures, ess_per_n, acceptance or None)] of the levels with
    ``ess_per_n``; Skip if there is none."""
    up = inp.need("upscaled", "ess")
    rows = []
    for L, g in inp.levels():
        ess = _level_value(g, "ess_per_n")
        if ess is None:
            continue
        rows.append((L, int(g.attrs.get("level", 0)), str(g.attrs.get(schema.GROUP_ATTR_SOURCE, "")),
                     nominal(g, grid(g)) if ess.size > 1 else None, ess, _level_value(g, "acceptance")))
    if not rows:
        raise Skip(f"{up.filename}: no ESS data (attribute or dataset 'ess_per_n' in any level "
                   f"group; written by source = superres_mh levels)")
    return rows


def plot_ess(inp, out):
    """ESS/N (and acceptance) per super-resolved level."""
    rows = ess_data(inp)
    has_acc = any(r[5] is not None for r in rows)
    fig, axes = _figure(1, 2 if has_acc else 1, (12 if has_acc else 7, 4.8))
    colours = _colours([r[0] for r in rows])
    sym = inp.scanned()
    per_T = any(r[4].size > 1 for r in rows)
    for ax, idx, ylabel in ((axes[0], 4, "ESS / N"), (axes[-1], 5, "acceptance")):
        if idx == 5 and not has_acc:
            continue
        for L, level, source, T, ess, acc in rows:
            v = ess if idx == 4 else acc
            if v is None:
                continue
            label = f"L={L} (level {level}{', ' + source if source else ''})"
            if per_T and T is not None and len(T) == v.size:
                ax.plot(T, v, "-o", ms=4, color=colours[L], label=label)
            else:
                ax.plot([L] * v.size, v, "o", ms=7, color=colours[L], label=label)
        if per_T:
            ax.set_xlabel(f"nominal {sym}")
        else:
            ax.set_xscale("log", base=2)
            ax.set_xlabel("L (super-resolved size)")
            ax.set_xticks([r[0] for r in rows])
            ax.set_xticklabels([str(r[0]) for r in rows])
        ax.set_ylabel(ylabel)
        vals = np.concatenate([r[idx] for r in rows if r[idx] is not None])
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if idx == 4 and vals.size and vals.min() < 0.02:  # small ESS/N: spread over decades
            ax.set_yscale("log")
            ax.set_ylim(10 ** np.floor(np.log10(vals.min())), 1.5)
        else:
            top = float(vals.max()) if vals.size else np.nan
            ax.set_ylim(0, max(1.05, 1.05 * top) if np.isfinite(top) else 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("effective sample size per configuration", fontsize=10)
    if has_acc:
        hmc = {c for _, g in inp.levels() for c in [str(g.attrs.get("correction", ""))]} \
            == {"latent_hmc"}
        axes[-1].set_title("latent-HMC trajectory acceptance" if hmc else
                           "Metropolis–Hastings acceptance", fontsize=10)
    fig.suptitle(f"{_model_title(inp)}: flow diagnostics per level")
    return [_save(fig, Path(out) / "ess.png")]


# ---------------------------------------------------------------- driver

def make_plots(inp, out, kinds=("all",), indices=None, config=0, max_configs=2000, verbose=False,
               echo=True):
    """Write the plots of ``kinds`` for ``inp``; returns the PNG paths (each printed on
    stdout as it is written when ``echo``).

    A kind asked for by name that does not apply (model, missing file or data) raises
    InputFileError; with ``all`` it is skipped (a note on stderr with ``verbose``).
    """
    explicit = "all" not in kinds
    todo = [k for k in KINDS if k in kinds] if explicit else list(KINDS)
    plotters = {"histograms": lambda: plot_histograms(inp, out, indices),
                "curves": lambda: plot_curves(inp, out),
                "binder": lambda: plot_binder(inp, out),
                "phi4": lambda: plot_phi4(inp, out),
                "snapshots": lambda: plot_snapshots(inp, out, indices, config),
                "correlation": lambda: plot_correlation(inp, out, indices, max_configs),
                "tempering": lambda: plot_tempering(inp, out),
                "ess": lambda: plot_ess(inp, out)}
    files = ", ".join(f.filename for f in (inp.samples, inp.upscaled) if f is not None)
    paths = []
    made_dir = False
    for k in todo:
        try:
            if inp.model not in APPLIES[k]:
                raise Skip(f"{files}: --kind {k} needs model "
                           f"{' or '.join(APPLIES[k])}, the data are {inp.model}")
            need = NEEDS[k]
            if need in ("samples", "both"):
                inp.need("samples", k)
            if need in ("upscaled", "both"):
                inp.need("upscaled", k)
            if not made_dir:
                Path(out).mkdir(parents=True, exist_ok=True)
                made_dir = True
            new = plotters[k]()
        except Skip as e:
            if explicit:
                raise InputFileError(str(e)) from None
            if verbose:
                print(f"plot: skipped {k}: {e}", file=sys.stderr)
            continue
        if echo:
            for p in new:
                print(p, flush=True)
        paths += new
    return paths


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
