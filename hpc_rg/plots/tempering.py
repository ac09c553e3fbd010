"""``tempering``: replica-exchange acceptance per neighbouring temperature pair and round
trips per ladder of the Monte Carlo sizes with parallel tempering."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.outputs import grid
from ..io import schema
from .common import Skip, model_title, new_figure, save_png, size_colours


def tempering_data(inp):
    """[(L, temperatures, acceptance (T-1,), round_trips or None, attempts or None)] of the
    Monte Carlo sizes with parallel tempering; Skip if there is none."""
    samples = inp.need("samples", "tempering")
    rows = []
    for L, g in inp.mc():
        if schema.TEMPERING_ACCEPTANCE not in g.attrs:
            continue
        acc = np.atleast_1d(np.asarray(g.attrs[schema.TEMPERING_ACCEPTANCE], dtype=np.float64))
        trips = g.attrs.get(schema.TEMPERING_ROUND_TRIPS)
        attempts = g.attrs.get(schema.TEMPERING_ATTEMPTS)
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
    colours = size_colours([r[0] for r in rows])
    fig, axes = new_figure(1, 2 if has_trips else 1, (12 if has_trips else 7, 4.8))
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
        ax.set_xlabel("ladder" + (" (disorder × replica)" if inp.spec.disordered else ""))
        ax.set_ylabel("round trips (lowest → highest → lowest T)")
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
        ax.set_title("round trips per temperature ladder", fontsize=10)
    fig.suptitle(f"{model_title(inp)}: parallel tempering")
    return [save_png(fig, Path(out) / "tempering.png")]
