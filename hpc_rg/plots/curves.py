"""``curves`` (Ising ⟨|m|⟩, ⟨e⟩, χ, C vs T) and ``binder`` (Edwards–Anderson overlap Binder
ratio vs T): Monte Carlo sizes as lines, super-resolved levels as markers."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from ..analysis.ensemble_stats import binder_ratio, disorder_block, mc_overlaps, sr_overlaps, thermo
from ..io.outputs import grid, read
from ..io import schema
from .common import (SR_MARKERS, Skip, cert_tag, dodge, model_title, new_figure, save_png,
                     size_colours)


def plot_curves(inp, out):
    """<|m|>, <e>, chi and C vs temperature: MC sizes as lines, SR levels as markers."""
    chains = inp.chains()
    mc, sr = inp.mc(), inp.levels()
    if not mc and not sr:
        raise Skip("--kind curves: no sizes left after --sizes")
    colours = size_colours([L for L, _ in mc + sr])
    fig, axes = new_figure(2, 2, (11, 8.5))
    names = (("abs_m", "⟨|m|⟩ (per site)"), ("e", "⟨e⟩ (energy per site, J)"),
             ("chi", "χ = N(⟨m²⟩ − ⟨|m|⟩²)/T"), ("C", "C = N(⟨e²⟩ − ⟨e⟩²)/T²"))
    for L, g in mc:
        r = thermo(read(g, "energy"), read(g, "magnetization"), grid(g),
                   L ** int(g.attrs["dims"]), int(g.attrs.get(schema.GROUP_ATTR_CHAINS, 1)))
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
    fig.suptitle(f"{model_title(inp)}: Monte Carlo (lines) and super-resolution (markers)")
    return [save_png(fig, Path(out) / "curves.png")]


def plot_binder(inp, out):
    """Overlap Binder ratio g vs temperature for the MC sizes and the SR levels."""
    _, g0 = inp.input_group("binder")
    block = disorder_block(g0)
    mc, sr = inp.mc(), inp.levels()
    colours = size_colours([L for L, _ in mc + sr])
    span = np.ptp(grid(g0)) if len(grid(g0)) > 1 else 1.0
    fig, axes = new_figure(size=(7, 5))
    ax = axes[0]
    for L, g in mc:
        q, T = read(g, "overlap"), grid(g)
        ids = inp.disorder_ids(g)  # the certified disorder samples, as analyze
        q = q if ids is None else q[ids]
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
        ax.errorbar(dodge(T[ts], i, len(sr), span), g_err[:, 0], g_err[:, 1],
                    fmt=SR_MARKERS[i % len(SR_MARKERS)], ms=6,
                    mfc="none", capsize=2, color=colours[L], label=f"SR L={L}{cert_tag(g)}")
    ax.set_xlabel("T (units of J/k_B)")
    ax.set_ylabel("g = (3 − [⟨q⁴⟩]/[⟨q²⟩]²)/2")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{model_title(inp)}: overlap Binder ratio")
    return [save_png(fig, Path(out) / "binder.png")]
