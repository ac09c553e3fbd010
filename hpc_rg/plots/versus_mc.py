"""Figures of ``tools/sr_vs_mc``: super-resolved levels next to Monte Carlo of the same size.

Per observable one PNG: a column per size, the Monte Carlo curve (line, jackknife errors)
and the super-resolved rows (markers at their matched temperature) on top, the z-scores
below (band |z| <= 4). Per size one PNG of P(q) at up to six matched temperatures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import new_figure, save_png

__all__ = ["plot_comparisons"]

LABELS = {"g": "overlap Binder ratio g", "chi_SG": "χ_SG = N [⟨q²⟩]", "xi": "ξ₂ (overlap)",
          "abs_q": "[⟨|q|⟩]", "q_l": "[⟨q_l⟩]", "abs_m": "⟨|m|⟩", "chi": "χ", "U4": "U₄",
          "e": "⟨e⟩", "m2": "⟨m²⟩", "C": "C"}


def plot_comparisons(results, out_dir) -> list[Path]:
    """Write the figures of ``results`` (``tools.sr_vs_mc.compare_files``) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    names = []
    for c, _, _ in results:
        names += [n for n in c.z if n not in names]
    for name in names:
        cols = [(c, ts, tm) for c, ts, tm in results if name in c.z]
        fig, axes = new_figure(2, len(cols), (max(7.0, 4.6 * len(cols)), 6.8))
        for j, (c, ts, tm) in enumerate(cols):
            top, bottom = axes[j], axes[len(cols) + j]
            top.errorbar(tm.grid, tm.values[name], tm.errors[name], fmt="-o", ms=3, capsize=2,
                         color="0.35", label=f"Monte Carlo L={c.L} ({tm.disorder} samples)")
            top.errorbar(c.T_sr, c.sr[name], c.sr_err[name], fmt="s", ms=6, mfc="none",
                         capsize=2, color="C3",
                         label=f"SR L={c.L} from L={ts.attrs.get('input_L', '?')} "
                               f"(at T_{'eff' if c.match == 'effective' else 'in'})")
            top.set_title(f"L = {c.L}")
            top.set_ylabel(LABELS.get(name, name))
            top.grid(alpha=0.3)
            top.legend(fontsize=7)
            bottom.axhspan(-4, 4, color="0.9")
            bottom.axhline(0, color="0.5", lw=0.8)
            bottom.plot(c.T_sr, np.clip(c.z[name], -20, 20), "s", color="C3", mfc="none")
            bottom.set_xlabel("T (units of J/k_B)")
            bottom.set_ylabel("z = (SR − MC)/σ (clipped ±20)")
            bottom.grid(alpha=0.3)
        fig.suptitle(f"{LABELS.get(name, name)}: super-resolution (approximate, CNN)\n"
                     f"vs independent Monte Carlo", fontsize=10)
        paths.append(save_png(fig, out / f"sr_vs_mc_{name}.png"))
    for c, ts, tm in results:
        if not c.pq or not len(c.row):
            continue
        pick = np.unique(np.linspace(0, len(c.row) - 1, min(6, len(c.row))).round().astype(int))
        fig, axes = new_figure(2, 3, (12, 6.5))
        e = c.pq["edges"]
        mid = 0.5 * (e[1:] + e[:-1])
        width = np.diff(e)
        for ax, i in zip(axes, pick):
            ax.errorbar(mid, c.pq["mc"][i] / width, c.pq["mc_err"][i] / width, fmt="-o", ms=3,
                        color="0.35", capsize=2, label="Monte Carlo")
            ax.errorbar(mid, c.pq["sr"][i] / width, c.pq["sr_err"][i] / width, fmt="s", ms=5,
                        mfc="none", color="C3", capsize=2, label="SR")
            ax.set_title(f"T={c.T_sr[i]:.3f} (T_in {c.T_in[i]:.3f}): χ²={c.pq['chi2'][i]:.0f}"
                         f"/{int(c.pq['dof'][i])}", fontsize=9)
            ax.set_xlabel("q")
            ax.grid(alpha=0.3)
        for ax in axes[len(pick):]:
            ax.set_visible(False)
        axes[0].set_ylabel("P(q)")
        axes[0].legend(fontsize=8)
        fig.suptitle(f"P(q) at L = {c.L}: super-resolution from L = {ts.attrs.get('input_L', '?')} "
                     f"vs Monte Carlo")
        paths.append(save_png(fig, out / f"sr_vs_mc_pq_L{c.L}.png"))
    return paths
