"""Crossings of a dimensionless observable between successive lattice sizes (L, 2L).

A dimensionless quantity (the overlap Binder ratio g, xi/L, the Binder cumulant U4) takes
a size-independent value at the critical point, so the temperature where the curves of L
and 2L cross estimates T_c (with corrections that vanish as L grows). Used on Monte Carlo
sizes and on the levels of one super-resolved chain alike (issue #16).

The two curves usually sit on different temperatures (super-resolved levels at their
effective temperatures): the 2L curve is interpolated linearly onto the L grid points
inside its range (errors interpolated the same way, an upper bound), and
:func:`hpc_rg.analysis.crossing.crossings` finds the sign changes of the difference, with
errors from Gaussian resampling of both curves. Levels made from the same inputs are
correlated: treating their errors as independent overestimates the crossing error.
With several independent trainings, the crossings of each are combined by
:func:`combine_trainings` (mean, standard deviation and standard error over trainings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .crossing import crossings
from .tables import GroupTable

__all__ = ["Crossing", "curve", "size_crossings", "combine_trainings", "DIMENSIONLESS"]

#: dimensionless observables per model family (``xi_over_L`` is xi / L)
DIMENSIONLESS = {True: ("g", "xi_over_L"), False: ("U4", "xi_over_L")}


@dataclass
class Crossing:
    observable: str
    L: int  #: the smaller size; the pair is (L, 2L)
    T: float
    err: float
    source: str  #: "monte_carlo" or "superres"


def curve(t: GroupTable, name: str, match: str = "effective"):
    """(T, value, error) of a table's observable, finite temperatures only, sorted by T;
    ``xi_over_L`` is xi / L; ``match="nominal"`` puts super-resolved rows at T_in."""
    T = t.nominal if (match == "nominal" and t.nominal is not None) else t.grid
    if name == "xi_over_L":
        v, e = t.values["xi"] / t.L, t.errors["xi"] / t.L
    else:
        v, e = t.values[name], t.errors[name]
    ok = np.isfinite(T) & np.isfinite(v) & np.isfinite(e)
    order = np.argsort(T[ok])
    return T[ok][order], v[ok][order], e[ok][order]


def size_crossings(tables, name: str, match: str = "effective", resamples: int = 2000,
                   seed: int = 0) -> list[Crossing]:
    """Crossings of ``name`` between every pair of tables of sizes (L, 2L) in ``tables``
    (one source each: all Monte Carlo, or one super-resolved chain)."""
    by_L = {t.L: t for t in tables}
    out = []
    for L in sorted(by_L):
        if 2 * L not in by_L:
            continue
        a, b = by_L[L], by_L[2 * L]
        Ta, va, ea = curve(a, name, match)
        Tb, vb, eb = curve(b, name, match)
        if len(Ta) < 2 or len(Tb) < 2:
            continue
        inside = (Ta >= Tb[0]) & (Ta <= Tb[-1])
        if inside.sum() < 2:
            continue
        x = Ta[inside]
        vb_x = np.interp(x, Tb, vb)
        eb_x = np.interp(x, Tb, eb)  # linear interpolation of the errors: an upper bound
        for T, err in crossings(x, va[inside], ea[inside], vb_x, eb_x, resamples, seed):
            out.append(Crossing(name, L, float(T), float(err), b.source or a.source))
    return out


def combine_trainings(per_training: list[list[Crossing]]):
    """{(observable, L): (mean T, std over trainings, standard error, n trainings, mean of
    the per-training resampling errors)} of the first crossing of each pair in every
    training (pairs missing in a training are counted in n only where present)."""
    found: dict = {}
    for crosses in per_training:
        seen = set()
        for c in crosses:
            key = (c.observable, c.L)
            if key in seen:
                continue
            seen.add(key)
            found.setdefault(key, []).append((c.T, c.err))
    out = {}
    for key, vals in found.items():
        T = np.array([v[0] for v in vals])
        err = np.array([v[1] for v in vals])
        std = float(T.std(ddof=1)) if len(T) > 1 else float("nan")
        out[key] = (float(T.mean()), std, std / np.sqrt(len(T)) if len(T) > 1 else float("nan"),
                    len(T), float(err.mean()))
    return out
