"""A super-resolved level against independent Monte Carlo of the same size: z-scores.

The computation behind ``tools/sr_vs_mc``. Both sides are :class:`~.tables.GroupTable`
observables (Edwards-Anderson: g, chi_SG, xi, [<|q|>], [<q_l>]; clean models: |m|, chi,
U4, xi, ...) with jackknife errors over disorder samples (EA) or blocks (clean models),
plus the overlap (magnetisation) distribution P(q) as a histogram with per-bin jackknife
errors over the same blocks.

Temperature matching
--------------------
A super-resolved row made from Monte Carlo at T_in carries an *effective* temperature T_eff
(the measured RG flow, :mod:`hpc_rg.rg.rescaling`; NaN where unknown). ``match="effective"``
(default) compares it with the Monte Carlo curve linearly interpolated to T_eff between the
two neighbouring grid points (rows whose T_eff is NaN or outside the Monte Carlo grid are
skipped and listed); ``match="nominal"`` does the same at the input temperature T_in. The interpolated error is ``w e_1 + (1 - w) e_2``, an upper bound for
any correlation between the two points (they share disorder samples). Every comparison
``z = (SR - MC) / sqrt(e_SR^2 + e_MC^2)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..io import schema
from .stats import jackknife_sums
from .tables import GroupTable, open_reader

__all__ = ["Comparison", "compare_tables", "match_rows", "overlap_histogram",
           "compare_histograms", "DEFAULT_OBSERVABLES"]

#: what is compared by default, per model family
DEFAULT_OBSERVABLES = {True: ("g", "chi_SG", "xi", "abs_q", "q_l"),
                       False: ("abs_m", "chi", "U4", "xi", "e")}
REL_TOL = 1e-9


@dataclass
class Comparison:
    """One size: SR rows matched to Monte Carlo, observables side by side.

    Arrays are per matched row (``n``): ``T_sr`` the row's (effective or nominal)
    temperature, ``T_in`` the nominal input temperature, ``row`` the SR row index.
    ``mc[name]``, ``mc_err[name]``, ``sr[name]``, ``sr_err[name]``, ``z[name]``: (n,).
    ``skipped``: (row, T_in, reason) of SR rows without a Monte Carlo partner;
    ``weights``: per matched row the Monte Carlo (i0, i1, w) of :func:`match_rows`.
    """

    L: int
    match: str
    row: np.ndarray
    T_sr: np.ndarray
    T_in: np.ndarray
    mc: dict = field(default_factory=dict)
    mc_err: dict = field(default_factory=dict)
    sr: dict = field(default_factory=dict)
    sr_err: dict = field(default_factory=dict)
    z: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    weights: list = field(default_factory=list)
    mc_path: str = ""  #: the Monte Carlo file compared with (set by the tool)
    pq: dict = field(default_factory=dict)  #: P(q): edges, mc, mc_err, sr, sr_err, z (n, bins)

    def worst(self, tolerance: float) -> list[tuple[str, float, float]]:
        """(observable, T_sr, z) of every comparison with |z| > tolerance."""
        return [(name, float(self.T_sr[i]), float(z[i])) for name, z in self.z.items()
                for i in range(len(z)) if np.isfinite(z[i]) and abs(z[i]) > tolerance]


def match_rows(mc_grid: np.ndarray, sr_T: np.ndarray, sr_nominal: np.ndarray, match: str):
    """Per SR row: (row, T used, T_in, (i0, i1, w) weights of the Monte Carlo rows) or a
    (row, T_in, reason) skip. The MC value is ``w * mc[i0] + (1 - w) * mc[i1]``."""
    mc_grid = np.asarray(mc_grid, dtype=np.float64)
    order = np.argsort(mc_grid)
    g = mc_grid[order]
    pairs, skipped = [], []
    for k, (t_eff, t_in) in enumerate(zip(sr_T, sr_nominal)):
        t = t_in if match == "nominal" else t_eff
        if not np.isfinite(t):
            skipped.append((k, float(t_in), "no effective temperature (outside the measured flow)"))
            continue
        hit = np.flatnonzero(np.abs(g - t) <= REL_TOL * max(abs(t), 1.0))
        if hit.size:
            i = int(order[hit[0]])
            pairs.append((k, float(t), float(t_in), (i, i, 1.0)))
            continue
        j = int(np.searchsorted(g, t))
        if j == 0 or j == len(g):
            which = "T_in" if match == "nominal" else "T_eff"
            skipped.append((k, float(t_in), f"{which}={t:.4g} outside the Monte Carlo grid "
                                            f"[{g[0]:.4g}, {g[-1]:.4g}]"))
            continue
        w = float((g[j] - t) / (g[j] - g[j - 1]))
        pairs.append((k, float(t), float(t_in), (int(order[j - 1]), int(order[j]), w)))
    return pairs, skipped


def _at(values: np.ndarray, errors: np.ndarray, weights):
    i0, i1, w = weights
    return (w * values[i0] + (1.0 - w) * values[i1], w * errors[i0] + (1.0 - w) * errors[i1])


def compare_tables(mc: GroupTable, sr: GroupTable, observables=None, match: str = "effective",
                   ) -> Comparison:
    """Observables of ``sr`` against ``mc`` (same L) row by row (see the module docstring)."""
    if mc.L != sr.L:
        raise ValueError(f"compare_tables: sizes differ ({mc.L} vs {sr.L})")
    nominal = sr.nominal if sr.nominal is not None else sr.grid
    pairs, skipped = match_rows(mc.grid, sr.grid, nominal, match)
    names = [n for n in (observables or DEFAULT_OBSERVABLES[sr.disordered])
             if n in mc.values and n in sr.values]
    c = Comparison(L=sr.L, match=match, row=np.array([p[0] for p in pairs], dtype=np.int64),
                   T_sr=np.array([p[1] for p in pairs]), T_in=np.array([p[2] for p in pairs]),
                   skipped=skipped, weights=[p[3] for p in pairs])
    for name in names:
        m = [_at(mc.values[name], mc.errors[name], w) for w in c.weights]
        c.mc[name] = np.array([v for v, _ in m])
        c.mc_err[name] = np.array([e for _, e in m])
        c.sr[name] = sr.values[name][c.row]
        c.sr_err[name] = sr.errors[name][c.row]
        with np.errstate(invalid="ignore", divide="ignore"):
            c.z[name] = (c.sr[name] - c.mc[name]) / np.hypot(c.sr_err[name], c.mc_err[name])
    return c


# ------------------------------------------------------------------------- P(q)
def overlap_histogram(group, edges: np.ndarray, cfg: dict | None = None,
                      only_passed: bool | None = None):
    """P(q) (EA: the replica overlap; clean models: the magnetisation) of a size group.

    Returns ``(p, err, n)``: ``p`` and ``err`` (T, bins), the fraction of configurations
    (EA Monte Carlo: of overlaps, every pair) per bin of ``edges`` (density = p / bin width)
    and its jackknife error over the group's blocks (EA: disorder samples, thermal
    histogram per sample first); ``n`` (T,) the values histogrammed. Monte Carlo EA groups use
    every replica pair and the certified samples (``only_passed`` as in
    :func:`~.tables.group_table`)."""
    rd = open_reader(group, cfg, only_passed)
    name = schema.OVERLAP if rd.spec.disordered else schema.MAGNETIZATION
    ds = group[name]
    nb, bins = rd.n_bins, len(edges) - 1
    p, err, n = np.zeros((rd.n_T, bins)), np.zeros((rd.n_T, bins)), np.zeros(rd.n_T)
    for t in range(rd.n_T):
        sums, counts = np.zeros((nb, bins)), np.zeros(nb)
        for b in range(nb):
            lo, hi = int(rd.edges[b]), int(rd.edges[b + 1])
            if rd.ea_mc:  # block b = used disorder sample b: (S, pairs) overlaps
                q = np.asarray(ds[int(rd.ids[b]), t], dtype=np.float64).ravel()
            else:
                q = np.asarray(ds[t, lo:hi], dtype=np.float64)
            sums[b] = np.histogram(np.clip(q, edges[0], edges[-1]), edges)[0]
            counts[b] = q.size
        p[t], err[t] = jackknife_sums(lambda x: x, [sums], counts)
        n[t] = counts.sum()
    return p, err, n


def compare_histograms(c: Comparison, mc_group, sr_group, bins: int = 16,
                       cfg_mc: dict | None = None, cfg_sr: dict | None = None,
                       only_passed: bool | None = None) -> None:
    """Fill ``c.pq`` with P(q) of both groups on ``bins`` equal bins of [-1, 1] at the
    matched rows (Monte Carlo interpolated like the observables), per-bin z-scores, and
    chi2 = sum of z^2 over the bins where either side is non-zero (``chi2``, ``dof``).

    Each side's per-bin error is at least the binomial error sqrt(p (1 - p) / n) of the
    pooled fraction p of both sides and that side's n values: a jackknife over a few
    disorder samples can put zero error on a bin that is empty by chance, and values within
    a sample are correlated, so the true error is never smaller than the binomial one."""
    edges = np.linspace(-1.0, 1.0, int(bins) + 1)
    edges[-1] += 1e-12  # q = 1 falls in the last bin
    pm, em, nm = overlap_histogram(mc_group, edges, cfg_mc, only_passed)
    ps, es, ns = overlap_histogram(sr_group, edges, cfg_sr)
    mc_rows = [_at(pm, em, w) for w in c.weights]  # the rows matched by compare_tables
    mc = np.array([v for v, _ in mc_rows]).reshape(len(c.weights), -1)
    mc_err = np.array([e for _, e in mc_rows]).reshape(len(c.weights), -1)
    sr, sr_err, n_sr = ps[c.row], es[c.row], ns[c.row]
    n_mc = np.array([min(nm[w[0]], nm[w[1]]) for w in c.weights])
    pooled = (mc * n_mc[:, None] + sr * n_sr[:, None]) / (n_mc + n_sr)[:, None]
    floor = np.sqrt(pooled * (1.0 - pooled))
    mc_err = np.maximum(mc_err, floor / np.sqrt(n_mc)[:, None])
    sr_err = np.maximum(sr_err, floor / np.sqrt(n_sr)[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (sr - mc) / np.hypot(sr_err, mc_err)
    live = (mc > 0) | (sr > 0)
    z = np.where(live, z, 0.0)
    bad = live & ~np.isfinite(z)  # zero error on both sides but different values
    z[bad] = np.copysign(math.inf, (sr - mc)[bad])
    c.pq = {"edges": edges, "mc": mc, "mc_err": mc_err, "sr": sr, "sr_err": sr_err, "z": z,
            "chi2": (np.where(np.isfinite(z), z, 0.0) ** 2).sum(axis=1),
            "dof": live.sum(axis=1), "max_abs_z": np.abs(z).max(axis=1, initial=0.0)}

