"""Observables per lattice size and temperature of an hpc_rg output, with jackknife errors.

The computation behind ``tools/observables``, ``tools/exponents`` and the ``analyze`` stage.
One size group (``/L16`` of ``samples.h5`` or ``upscaled.h5``) gives a :class:`GroupTable`.

Streaming and MPI
-----------------
Per temperature the configurations are cut into jackknife blocks (clean models: ``n_bins``
consecutive blocks, a multiple of the chain count so that no block straddles two chains;
Edwards-Anderson: one block per disorder sample, so block means are the thermal averages
of each sample and the jackknife runs over disorder samples). The (temperature, block)
units are dealt to the ranks of ``comm`` in contiguous runs; a rank reads its units in
batches of configurations (never a whole dataset), reduces every per-configuration series
to block sums, and the block sums are summed over ranks (``Allreduce``; every block is
summed by exactly one rank, the others add zeros, so the result does not depend on the
number of ranks, bit for bit). Only block sums travel, never configurations.

Observables (k_B = 1, N = L^d sites, beta = 1/T)
------------------------------------------------
Clean models (ising; phi4 with m = phi_mean and beta = 1, the coupling sits in the action):
``abs_m`` <|m|>, ``m2`` <m^2>, ``e`` <e> (energy, φ⁴ action, per site), ``chi``
= beta N (<m^2> - <|m|>^2), ``C`` = beta^2 N (<e^2> - <e>^2), ``U4`` = 1 - <m^4>/(3<m^2>^2),
``phi2`` <phi^2> (φ⁴), ``xi`` (below), ``two_point`` G(r) of
:func:`hpc_rg.analysis.correlation.two_point`.

Edwards-Anderson (overlap fields rho = s^a s^b of the replica pairs: all pairs for Monte
Carlo groups, the stored overlap configurations for super-resolved ones): ``g`` =
(3 - [<q^4>]/[<q^2>]^2)/2, ``chi_SG`` = N [<q^2>], ``abs_q`` [<|q|>], ``q_l`` [<q_l>],
``e`` [<e>] (Monte Carlo only), ``xi`` and ``two_point`` of rho (spin-glass correlation
length and function). [.] is the disorder average of the thermal averages, over the disorder
samples :func:`hpc_rg.io.equilibrated.usable_disorder_samples` admits (Monte Carlo groups;
super-resolved groups were made from the samples they record).

Second-moment correlation length (Cooper, Freedman & Preston 1982; Ballesteros et al.,
PRB 62, 14237 (2000) for spin glasses)::

    xi = sqrt(chi(0) / chi(k_min) - 1) / (2 sin(k_min / 2)),   k_min = 2 pi / L,

with ``chi(k) = <|sum_x s_x e^{i k x}|^2> / N`` averaged over the d directions of k_min
(NaN where ``chi(0) < chi(k_min)``). Errors: jackknife over the blocks of every ratio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from ..errors import InputFileError
from ..io import schema
from ..io.equilibrated import only_passed_of, usable_disorder_samples
from ..models.spec import SPECS, spec_for
from ..parallel.distribute import block_range
from .correlation import fourier_moments
from .stats import jackknife_sums
from .summary import _bins

__all__ = ["GroupTable", "group_table", "file_tables", "open_reader", "CLEAN_OBSERVABLES", "EA_OBSERVABLES",
           "LABELS", "BATCH_BYTES"]

# names in analysis.h5 (per group /<source label>/L<size>)
TWO_POINT = "two_point"
DISTANCES = "r"
N_CONFIGS = "n_configs"
NOMINAL = schema.NOMINAL
ERR = "_err"

CLEAN_OBSERVABLES = ("abs_m", "m2", "e", "chi", "C", "U4", "phi2", "xi")
EA_OBSERVABLES = ("g", "chi_SG", "abs_q", "q_l", "e", "xi")
#: column titles for tables on screen
LABELS = {"abs_m": "<|m|>", "m2": "<m^2>", "e": "<e>", "chi": "chi", "C": "C", "U4": "U4",
          "phi2": "<phi^2>", "xi": "xi_2", "g": "g", "chi_SG": "chi_SG", "abs_q": "[<|q|>]",
          "q_l": "[<q_l>]"}
#: memory for one batch of configurations as float64 plus its FFT (bytes)
BATCH_BYTES = 64 * 2**20


@dataclass
class GroupTable:
    """Observables of one size group on its temperature (coupling) grid.

    ``values[name]`` / ``errors[name]``: float64 (T,); ``two_point``: (T, len(r)).
    """

    label: str  #: source label, e.g. "samples" or "upscaled"
    path: str  #: file analysed
    L: int
    dims: int
    model: str
    source: str  #: monte_carlo | superres | ...
    grid_name: str  #: "temperatures" or "couplings"
    grid: np.ndarray
    nominal: np.ndarray | None  #: super-resolved groups: nominal (input) temperatures
    r: np.ndarray
    values: dict = field(default_factory=dict)
    errors: dict = field(default_factory=dict)
    two_point: np.ndarray | None = None
    two_point_err: np.ndarray | None = None
    n_configs: np.ndarray | None = None  #: samples per temperature (EA Monte Carlo: D x S)
    n_bins: int = 0  #: jackknife blocks
    disorder: int = 1  #: EA disorder samples (the jackknife blocks when > 1)
    attrs: dict = field(default_factory=dict)  #: extra group attributes (level, ...)

    @property
    def spec(self):
        """The :class:`~hpc_rg.models.spec.ModelSpec` of the table's model."""
        return spec_for(self.model)

    @property
    def disordered(self) -> bool:
        return self.spec.disordered

    @property
    def observables(self) -> tuple[str, ...]:
        return tuple(self.values)

    def two_point_at(self, r: int):
        """(G(r), err) arrays (T,) at distance r, or None if r was not measured."""
        hit = np.flatnonzero(self.r == int(r))
        if hit.size == 0:
            return None
        return self.two_point[:, hit[0]], self.two_point_err[:, hit[0]]


# ------------------------------------------------------------------------------ readers
def _need(group, name):
    if name not in group:
        raise InputFileError(f"{group.file.filename}: group {group.name} has no dataset "
                             f"'{name}'")
    return group[name]


def run_config(f) -> dict:
    """The run's resolved deck from the root attribute ``config_yaml`` ({} if absent)."""
    import yaml
    text = f.attrs.get(schema.ATTR_CONFIG, "")
    if isinstance(text, bytes):
        text = text.decode()
    try:
        d = yaml.safe_load(str(text)) if text else {}
    except yaml.YAMLError:
        return {}
    return d if isinstance(d, dict) else {}


class _Reader:
    """Flat view of a size group: per temperature, samples n = 0 .. N-1 (EA Monte Carlo:
    n = d * S + s, d counting the used disorder samples ``ids``), each with ``fields``
    lattice fields (EA Monte Carlo: the replica-pair overlaps) and per-sample scalars;
    blocks never straddle disorder samples."""

    def __init__(self, group, cfg: dict, n_bins: int | None, only_passed: bool = True,
                 warn: bool = True):
        self.g = group
        a = group.attrs
        self.model = str(a.get(schema.GROUP_ATTR_MODEL, ""))
        if self.model not in SPECS:
            raise InputFileError(f"{group.file.filename}: group {group.name} has no valid "
                                 f"'model' attribute (got {self.model!r})")
        self.dims = int(a[schema.GROUP_ATTR_DIMS])
        self.L = int(a[schema.GROUP_ATTR_L])
        self.source = str(a.get(schema.GROUP_ATTR_SOURCE, ""))
        self.configs = _need(group, schema.CONFIGS)
        self.spec = spec_for(self.model)
        self.ea_mc = self.spec.disordered and self.configs.ndim == self.dims + 4
        lat = self.configs.shape[-self.dims:]
        if tuple(lat) != (self.L,) * self.dims:
            raise InputFileError(f"{group.file.filename}: {group.name}/configs has lattice "
                                 f"shape {tuple(lat)}, expected {(self.L,) * self.dims}")
        self.used = usable_disorder_samples(group, only_passed, warn=warn, stage="analyze")
        if self.ea_mc:
            D, T, S, R = self.configs.shape[:4]
            self.ids = self.used.ids if self.used.ids is not None else np.arange(D)
            D = len(self.ids)
            self.disorder, self.S, self.R = D, S, R
            self.pairs = list(combinations(range(R), 2))
            self.n_T, self.N, self.fields = T, D * S, len(self.pairs)
            per_block = S
        else:
            self.n_T, self.N = self.configs.shape[:2]
            self.fields = 1
            self.disorder = 1
            if self.spec.disordered:  # the samples the level was made from, if recorded
                D = int((cfg.get("model") or {}).get("disorder_samples", 1) or 1)
                if schema.ATTR_DISORDER_SAMPLES_USED in a:
                    D = len(np.atleast_1d(a[schema.ATTR_DISORDER_SAMPLES_USED]))
                self.disorder = D if D >= 1 and self.N % D == 0 else 1
            per_block = self.N // self.disorder
        if self.N < 2:
            raise InputFileError(f"{group.file.filename}: {group.name} has {self.N} "
                                 f"configuration(s) per temperature; need at least 2")
        if self.disorder >= 2:
            self.edges = np.arange(self.disorder + 1) * per_block
        else:
            chains = int(a.get(schema.GROUP_ATTR_CHAINS, (cfg.get("sample") or {}).get("chains", 1)) or 1)
            nb = _bins(self.N, chains) if not n_bins else max(2, min(int(n_bins), self.N))
            self.edges = np.array([(i * self.N) // nb for i in range(nb + 1)])
        self.n_bins = len(self.edges) - 1
        if self.spec.disordered:
            for name in (schema.OVERLAP, schema.LINK_OVERLAP):
                _need(group, name)
        else:
            _need(group, schema.MAGNETIZATION)
        site_bytes = 8 * 3 * self.fields * self.L ** self.dims
        self.batch = int(max(1, min(256, BATCH_BYTES // site_bytes)))

    def series_names(self) -> list[str]:
        if self.spec.disordered:
            names = ["abs_q", "q2", "q4", "q_l"]
            if self.ea_mc and schema.ENERGY in self.g:
                names += ["e"]
            return names
        names = ["abs_m", "m2", "m4"]
        if schema.ENERGY in self.g:
            names += ["e", "e2"]
        if self.spec.continuous and schema.PHI2_MEAN in self.g:
            names += ["phi2"]
        return names

    def read_fields(self, t: int, a: int, b: int) -> np.ndarray:
        """(b - a, fields, *lattice) for samples [a, b) of temperature t (one disorder)."""
        if not self.ea_mc:
            return np.asarray(self.configs[t, a:b])[:, None]
        d, s0 = divmod(a, self.S)
        x = np.asarray(self.configs[self.ids[d], t, s0:s0 + (b - a)])  # (k, R, *lat)
        return np.stack([x[:, i] * x[:, j] for i, j in self.pairs], axis=1)

    def read_scalars(self, t: int, a: int, b: int) -> dict[str, np.ndarray]:
        g = self.g
        if self.spec.disordered:
            if self.ea_mc:
                d, s0 = divmod(a, self.S)
                sel = (int(self.ids[d]), t, slice(s0, s0 + (b - a)))
                q = np.asarray(g[schema.OVERLAP][sel], dtype=np.float64)  # (k, P)
                ql = np.asarray(g[schema.LINK_OVERLAP][sel], dtype=np.float64)
                out = {"abs_q": np.abs(q).mean(1), "q2": (q * q).mean(1),
                       "q4": (q ** 4).mean(1), "q_l": ql.mean(1)}
                if schema.ENERGY in g:
                    out["e"] = np.asarray(g[schema.ENERGY][sel], dtype=np.float64).mean(1)
                return out
            q = np.asarray(g[schema.OVERLAP][t, a:b], dtype=np.float64)
            return {"abs_q": np.abs(q), "q2": q * q, "q4": q ** 4,
                    "q_l": np.asarray(g[schema.LINK_OVERLAP][t, a:b], dtype=np.float64)}
        m = np.asarray(g[schema.MAGNETIZATION][t, a:b], dtype=np.float64)
        m2 = m * m
        out = {"abs_m": np.abs(m), "m2": m2, "m4": m2 * m2}
        if schema.ENERGY in g:
            e = np.asarray(g[schema.ENERGY][t, a:b], dtype=np.float64)
            out["e"], out["e2"] = e, e * e
        if self.spec.continuous and schema.PHI2_MEAN in g:
            out["phi2"] = np.asarray(g[schema.PHI2_MEAN][t, a:b], dtype=np.float64)
        return out


def open_reader(group, cfg: dict | None = None, only_passed: bool | None = None) -> _Reader:
    """The flat per-temperature view of a size group that :func:`group_table` reads: its
    ``n_T``, ``edges`` (jackknife blocks; EA: one per disorder sample), ``ids`` (EA Monte
    Carlo: the file ids of the used samples), ``spec`` and ``ea_mc``."""
    cfg = run_config(group.file) if cfg is None else cfg
    only = only_passed_of(cfg) if only_passed is None else bool(only_passed)
    return _Reader(group, cfg, None, only, warn=False)


# ------------------------------------------------------------------------- computation
def default_distances(L: int) -> list[int]:
    return list(range(1, L // 2 + 1))


def group_table(group, comm=None, rs=None, n_bins: int | None = None, label: str = "",
                cfg: dict | None = None, only_passed: bool | None = None) -> GroupTable:
    """Observables of one size group (collective over ``comm``; None: this process alone).

    Parameters
    ----------
    group : h5py.Group, an ``/L<size>`` group of ``samples.h5`` or ``upscaled.h5``
    comm : mpi4py communicator or None
        Every rank of ``comm`` must call with the same arguments; all get the result.
    rs : sequence of int, optional
        Distances of G(r); default 1 .. L/2. Distances above L/2 are dropped.
    n_bins : int, optional
        Jackknife blocks for clean models (default: about 32, a multiple of the chains).
    label : str, the source label stored with the result
    cfg : dict, the run's deck (:func:`run_config`; needed for EA super-resolved groups)
    only_passed : bool, optional
        EA Monte Carlo groups: only the disorder samples certified as equilibrated
        (``sample.equilibration.only_passed``; default: the value in ``cfg``, else True).
    """
    cfg = run_config(group.file) if cfg is None else cfg
    only = only_passed_of(cfg) if only_passed is None else bool(only_passed)
    rd = _Reader(group, cfg, n_bins, only, warn=comm is None or comm.Get_rank() == 0)
    L, dims, nT, nb = rd.L, rd.dims, rd.n_T, rd.n_bins
    rs = default_distances(L) if rs is None else sorted({int(r) for r in rs if 0 <= int(r) <= L // 2})
    names = rd.series_names() + ["s0", "s_kmin"]
    n_r = len(rs)
    # block sums: scalars (names, T, nb), G (T, nb, n_r), counts (T, nb)
    sums = np.zeros((len(names), nT, nb))
    gsum = np.zeros((nT, nb, n_r))
    counts = np.zeros((nT, nb))
    units = [(t, b) for t in range(nT) for b in range(nb)]
    rank, size = (0, 1) if comm is None else (comm.Get_rank(), comm.Get_size())
    for u in block_range(len(units), size, rank):
        t, b = units[u]
        lo, hi = int(rd.edges[b]), int(rd.edges[b + 1])
        for a in range(lo, hi, rd.batch):
            e = min(a + rd.batch, hi)
            fm = fourier_moments(rd.read_fields(t, a, e), dims, rs)
            per = rd.read_scalars(t, a, e)
            per["s0"] = fm["s0"].mean(axis=1)
            per["s_kmin"] = fm["s_kmin"].mean(axis=1)
            for i, name in enumerate(names):
                sums[i, t, b] += per[name].sum()
            gsum[t, b] += fm["two_point"].mean(axis=1).sum(axis=0)
            counts[t, b] += e - a
    if comm is not None and size > 1:
        from mpi4py import MPI
        packed = np.concatenate([sums.ravel(), gsum.ravel(), counts.ravel()])
        total = np.empty_like(packed)
        comm.Allreduce(packed, total, op=MPI.SUM)
        sums = total[:sums.size].reshape(sums.shape)
        gsum = total[sums.size:sums.size + gsum.size].reshape(gsum.shape)
        counts = total[sums.size + gsum.size:].reshape(counts.shape)
    S = dict(zip(names, sums))
    grid_name = schema.COUPLINGS if schema.COUPLINGS in group else schema.TEMPERATURES
    grid = np.asarray(_need(group, grid_name)[()], dtype=np.float64)
    nominal = np.asarray(group[NOMINAL][()], dtype=np.float64) if NOMINAL in group else None
    N = L ** dims
    k_fac = 2.0 * math.sin(math.pi / L)
    values = {}
    errors = {}

    def xi(s0, sk):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(s0 / sk - 1.0) / k_fac

    for name in (EA_OBSERVABLES if rd.spec.disordered else CLEAN_OBSERVABLES):
        vals, errs = np.full(nT, np.nan), np.full(nT, np.nan)
        for t in range(nT):
            beta = 1.0 / grid[t] if rd.spec.has_temperature else 1.0
            f = _formula(name, S, t, beta, N, xi)
            if f is None:
                break
            fn, series = f
            vals[t], errs[t] = jackknife_sums(fn, series, counts[t])
        else:
            values[name], errors[name] = vals, errs
    gval, gerr = np.zeros((nT, n_r)), np.zeros((nT, n_r))
    for t in range(nT):
        gval[t], gerr[t] = jackknife_sums(lambda g: g, [gsum[t]], counts[t])
    extra = {k: group.attrs[k] for k in (schema.GROUP_ATTR_LEVEL, schema.GROUP_ATTR_INPUT_L,
                                         schema.GROUP_ATTR_INPUT_BLOCKINGS,
                                         schema.GROUP_ATTR_TARGET_BLOCKINGS,
                                         schema.GROUP_ATTR_TRAIN_L, schema.GROUP_ATTR_BLOCKING,
                                         schema.GROUP_ATTR_RESCALED,
                                         "algorithm", "sampler", "exact", "certified",
                                         "certified_points", "certificate",
                                         schema.ATTR_DISORDER_SAMPLES_USED,
                                         schema.ATTR_EQUILIBRATED_ONLY) if k in group.attrs}
    extra.update(rd.used.attrs())  # EA Monte Carlo: the disorder samples averaged
    return GroupTable(label=label, path=str(group.file.filename), L=L, dims=dims,
                      model=rd.model, source=rd.source, grid_name=grid_name, grid=grid,
                      nominal=nominal, r=np.asarray(rs, dtype=np.int64), values=values,
                      errors=errors, two_point=gval, two_point_err=gerr,
                      n_configs=counts.sum(axis=1).astype(np.int64),
                      n_bins=nb, disorder=rd.disorder, attrs=extra)


def _formula(name, S, t, beta, N, xi):
    """(f, [block sums]) of observable ``name`` at temperature index t, or None if the
    group lacks the series it needs."""
    def need(*keys):
        return None if any(k not in S for k in keys) else [S[k][t] for k in keys]

    table = {
        "abs_m": (lambda a: a, ("abs_m",)),
        "m2": (lambda a: a, ("m2",)),
        "e": (lambda a: a, ("e",)),
        "chi": (lambda a, b: beta * N * (b - a * a), ("abs_m", "m2")),
        "C": (lambda a, b: beta * beta * N * (b - a * a), ("e", "e2")),
        "U4": (lambda b, c: 1.0 - c / (3.0 * b * b), ("m2", "m4")),
        "phi2": (lambda a: a, ("phi2",)),
        "xi": (xi, ("s0", "s_kmin")),
        "g": (lambda b, c: 0.5 * (3.0 - c / (b * b)), ("q2", "q4")),
        "chi_SG": (lambda b: N * b, ("q2",)),
        "abs_q": (lambda a: a, ("abs_q",)),
        "q_l": (lambda a: a, ("q_l",)),
    }
    fn, keys = table[name]
    series = need(*keys)
    return None if series is None else (fn, series)


def file_tables(f, comm=None, sizes=None, rs=None, n_bins: int | None = None,
                label: str | None = None, only_passed: bool | None = None) -> list[GroupTable]:
    """:func:`group_table` for the size groups of an open file (``sizes``: None = all;
    a size the file lacks is an InputFileError). ``label`` defaults to the file's stem;
    ``only_passed`` as in :func:`group_table`."""
    from pathlib import Path

    from ..io.outputs import select_sizes
    label = Path(f.filename).name.split(".")[0] if label is None else label
    cfg = run_config(f)
    return [group_table(g, comm, rs=rs, n_bins=n_bins, label=label, cfg=cfg,
                        only_passed=only_passed)
            for _, g in select_sizes(f, sizes)]
