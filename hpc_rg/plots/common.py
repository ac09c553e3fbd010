"""Figure setup and saving, colours, labels and temperature choice shared by the plot kinds.

Figures are made without pyplot (no global state) and saved as PNG at :data:`DPI`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..io.outputs import size_groups
from ..errors import HpcRgError, InputFileError

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


def new_figure(nrows=1, ncols=1, size=(6.4, 4.8)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global state

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes.ravel()


def save_png(fig, path):
    fig.savefig(path, dpi=DPI)
    return Path(path)


def size_colours(sizes):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    sizes = sorted(set(sizes))
    return {L: cmap(0.85 * i / max(len(sizes) - 1, 1)) for i, L in enumerate(sizes)}


def dodge(x, i, n, span):
    """x shifted by a small offset for series i of n sharing the same abscissae."""
    return np.asarray(x) + (i - (n - 1) / 2) * 0.008 * span


def cert_tag(group) -> str:
    """Legend suffix saying what a super-resolved level is: '' when certified exact,
    ' [approximate]', ' [NOT CERTIFIED]' or ' [no certificate]' (a file without one)."""
    from ..analysis.certificate import status
    return {"monte_carlo": "", "certified": "", "not_certified": " [NOT CERTIFIED]",
            "approximate": " [approximate]", "unknown": " [no certificate]"}[status(group)]


def model_title(inp):
    return {"ising": "Ising", "edwards_anderson": "Edwards–Anderson", "phi4": "φ⁴"}.get(
        inp.model, inp.model) + f" {inp.dims}D"


def fmt_value(value, sym="T"):
    return f"{sym}={value:.4g}" if np.isfinite(value) else f"{sym} outside the flow"


def file_tag(sym, value):
    return f"{'T' if sym == 'T' else 'K'}{value:.4f}"


def default_temperature(inp) -> int:
    """Index of the nominal temperature nearest the known critical one, else the middle."""
    T = inp.scan_grid()
    g = size_groups(inp.first())[0][1]
    disorder = str(g.attrs["disorder"]) if inp.spec.disordered and "disorder" in g.attrs else None
    tc = CRITICAL.get((inp.model, inp.dims, disorder))
    if tc is not None and np.isfinite(T).any():
        return int(np.nanargmin(np.abs(T - tc)))
    return len(T) // 2


def temperature_indices(inp, spec, kind, default):
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


def nearest_index(T, target):
    T = np.asarray(T, dtype=np.float64)
    return int(np.nanargmin(np.abs(T - target)))
