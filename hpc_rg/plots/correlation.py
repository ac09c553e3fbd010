"""``correlation``: the two-point function G(r) vs r (log-log) of every Monte Carlo size and
super-resolved level at the chosen temperature(s), jackknife errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..analysis.correlation import correlation_series, distances
from ..analysis.ensemble_stats import jackknife_mean
from ..io.outputs import ensemble_size, grid
from ..io import schema
from .common import (SR_MARKERS, Skip, file_tag, fmt_value, model_title, nearest_index,
                     new_figure, save_png, size_colours, temperature_indices)


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
        tt = nearest_index(T, T_nom)
        rs = distances(L)
        ids = inp.disorder_ids(g)
        x = correlation_series(g, tt, rs, inp.dims, max_configs, disorder=ids)
        ch = (len(ids) if ids is not None else
              int(g.attrs.get("disorder_samples" if inp.spec.disordered
                              else schema.GROUP_ATTR_CHAINS, 1)))
        step_one = ensemble_size(g, ids) <= max_configs
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
    what = ("ρ(x) ρ(x+r)" if inp.spec.disordered else "φ(x) φ(x+r)" if inp.spec.continuous
            else "s(x) s(x+r)")
    for t in temperature_indices(inp, indices, "correlation", None):
        rows = correlation_data(inp, t, max_configs)
        if not rows:
            raise Skip("--kind correlation: no sizes left after --sizes")
        colours = size_colours([L for _, L, *_ in rows])
        fig, axes = new_figure(size=(7.5, 5.5))
        ax = axes[0]
        hidden = False
        i_sr = 0
        for src, L, value, rs, G, err, n in rows:
            pos = G > 0
            hidden |= not pos.all()
            if src == "MC":
                kw = dict(fmt="-o", ms=3, label=f"MC L={L}, {fmt_value(value, sym)} ({n} configs)")
            else:
                kw = dict(fmt="--" + SR_MARKERS[i_sr % len(SR_MARKERS)], ms=5, mfc="none",
                          label=f"SR L={L}, {fmt_value(value, sym + '_eff')} ({n} configs)")
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
        title = f"{model_title(inp)}: two-point function at nominal {sym}={nominal_T[t]:.4g}"
        if hidden:
            title += "\n(points with G(r) ≤ 0 are not shown on the log scale)"
        ax.set_title(title, fontsize=10)
        paths.append(save_png(fig, Path(out) / f"correlation_t{t:02d}_{file_tag(sym, nominal_T[t])}.png"))
    return paths
