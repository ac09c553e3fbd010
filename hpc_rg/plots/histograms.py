"""``histograms``: |m| and e of Monte Carlo at L, the first super-resolved level 2L and Monte
Carlo at 2L (Efthymiou, Beach & Melko, PRB 99, 075113 (2019), Fig. 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..analysis.ensemble_stats import hist_edges
from ..io.outputs import grid, nominal, read
from .common import fmt_value, model_title, nearest_index, new_figure, save_png, temperature_indices


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
    for t in temperature_indices(inp, indices, "histograms", "all"):
        fig, axes = new_figure(1, 2, (11, 4.5))
        series = [(f"MC L={L0}, T={T0[t]:.4g}", t, 0)]
        series.append((f"SR L={L1}, {fmt_value(T_eff[t], 'T_eff')} (nominal T={T_nom[t]:.4g})", t, 1))
        if ref is not None:
            target = T_eff[t] if np.isfinite(T_eff[t]) else T_nom[t]
            r = nearest_index(T_ref, target)
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
        fig.suptitle(f"{model_title(inp)}: MC L={L0} → SR L={L1} at nominal T={T_nom[t]:.4g}")
        paths.append(save_png(fig, Path(out) / f"histograms_t{t:02d}_T{T_nom[t]:.4f}.png"))
    return paths
