"""``phi4``: ⟨|φ̄|⟩ vs the scanned coupling per size, and the original vs inversely
renormalized system of one size with their crossing (Bachtis et al.)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analysis.ensemble_stats import abs_phi
from ..io.outputs import grid, nominal
from ..io import schema
from .common import (SR_MARKERS, Skip, cert_tag, dodge, model_title, new_figure, save_png,
                     size_colours)


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
    colours = size_colours([L for L, _ in mc + sr])
    base = inp.scan_grid()
    span = np.ptp(base) if len(base) > 1 else 1.0
    pairs = phi4_same_size(inp)
    fig, axes = new_figure(ncols=2 if pairs else 1, size=(12, 5) if pairs else (7, 5))
    ax = axes[0]
    for L, g in mc:
        v, err = abs_phi(g, int(g.attrs.get(schema.GROUP_ATTR_CHAINS, 1)))
        ax.errorbar(grid(g), v, err, fmt="-o", ms=3, capsize=2, color=colours[L], label=f"MC L={L}")
    note = False
    for i, (L, g) in enumerate(sr):
        v, err = abs_phi(g, chains)
        k_eff = grid(g)
        ok = np.isfinite(k_eff)
        k = dodge(np.where(ok, k_eff, nominal(g, base)), i, len(sr), span)
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
    title = f"{model_title(inp)}: ⟨|φ|⟩ vs {sym}"
    if note:
        title += "\n(hollow: no finite effective coupling, drawn at the nominal one)"
    ax.set_title(title, fontsize=10)
    if pairs:
        ax = axes[1]
        srg = dict(sr)
        for L, k, (m, me), (s_, se), cross in pairs:
            L_in = int(srg[L].attrs.get(schema.GROUP_ATTR_INPUT_L, L // 2))
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
    return [save_png(fig, Path(out) / "phi4.png")]


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
        m = abs_phi(mc[L], int(mc[L].attrs.get(schema.GROUP_ATTR_CHAINS, 1)))
        s_ = abs_phi(g, inp.chains())
        out.append((L, k_mc, m, s_, crossings(k_mc, m[0], m[1], s_[0], s_[1])))
    return out
