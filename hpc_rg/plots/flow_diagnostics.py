"""``ess``: effective sample size per configuration (ESS/N) and the Metropolis–Hastings or
latent-HMC acceptance per super-resolved level."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.outputs import grid, nominal
from ..io import schema
from .common import Skip, model_title, new_figure, save_png, size_colours


def level_value(g, name):
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
        ess = level_value(g, "ess_per_n")
        if ess is None:
            continue
        rows.append((L, int(g.attrs.get(schema.GROUP_ATTR_LEVEL, 0)),
                     str(g.attrs.get(schema.GROUP_ATTR_SOURCE, "")),
                     nominal(g, grid(g)) if ess.size > 1 else None, ess, level_value(g, "acceptance")))
    if not rows:
        raise Skip(f"{up.filename}: no ESS data (attribute or dataset 'ess_per_n' in any level "
                   f"group; written by source = superres_mh levels)")
    return rows


def plot_ess(inp, out):
    """ESS/N (and acceptance) per super-resolved level."""
    rows = ess_data(inp)
    has_acc = any(r[5] is not None for r in rows)
    fig, axes = new_figure(1, 2 if has_acc else 1, (12 if has_acc else 7, 4.8))
    colours = size_colours([r[0] for r in rows])
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
    fig.suptitle(f"{model_title(inp)}: flow diagnostics per level")
    return [save_png(fig, Path(out) / "ess.png")]
