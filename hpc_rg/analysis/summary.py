"""The per-temperature table rank 0 prints at the end of the sample stage, and the cell
formats shared by every printed table (``value(err)``, temperatures outside the flow).

Reads only the small observable datasets of one size group (never the configurations).
"""

from __future__ import annotations

import numpy as np

from ..io import schema
from ..models.spec import spec_for
from . import observables as obs


#: what tables print for a temperature the measured flow does not reach (stored as NaN)
OUTSIDE_FLOW = "outside"
#: the one-time explanation printed under such a table
OUTSIDE_FLOW_NOTE = (
    "'outside' = outside the measured temperature flow: at these temperatures the blocked "
    "L ensemble's observables leave the range of the L/2 Monte Carlo curve, so no effective "
    "temperature is known (stored as NaN) and the level is listed by its nominal T_in. To "
    "measure it, give the L/2 reference (sample.reference_sizes) temperatures beyond these")


def format_flow_value(x, spec: str = ".5g") -> str:
    """``x`` formatted with ``spec``, or :data:`OUTSIDE_FLOW` when it is not finite."""
    return format(float(x), spec) if np.isfinite(x) else OUTSIDE_FLOW


def _bins(n_samples: int, chains: int) -> int:
    """Jackknife blocks: a multiple of the chain count that leaves >= 8 samples per block."""
    per_chain = max(1, min(32 // max(chains, 1), n_samples // max(chains, 1) // 8))
    return max(2, min(chains * per_chain, n_samples // 2))


def summary_rows(group) -> tuple[list[str], list[list[str]]]:
    """Header and rows (strings ``value(err)``) for an open h5py size group."""
    model, L, dims = group.attrs["model"], int(group.attrs["L"]), int(group.attrs["dims"])
    N = L ** dims
    chains = int(group.attrs.get(schema.GROUP_ATTR_CHAINS, 1))
    spec = spec_for(str(model))
    if spec.continuous:
        grid = group[schema.COUPLINGS][...]
        scanned = group.attrs.get(schema.GROUP_ATTR_SCANNED, "coupling")
        header = [str(scanned), "<S>/N", "<|phi|>", "<phi^2>", "U4"]
        rows = []
        e, m, p2 = (group[n][...] for n in (schema.ENERGY, schema.PHI_MEAN, schema.PHI2_MEAN))
        nb = _bins(e.shape[1], chains)
        for t, k in enumerate(grid):
            rows.append([f"{k:.5g}", _fmt(*obs.mean(e[t], nb)), _fmt(*obs.mean(np.abs(m[t]), nb)),
                         _fmt(*obs.mean(p2[t], nb)), _fmt(*obs.binder_cumulant(m[t], nb))])
        return header, rows
    temps = group[schema.TEMPERATURES][...]
    e, m = group[schema.ENERGY][...], group[schema.MAGNETIZATION][...]
    if spec.disordered:  # (D, T, S, R) -> per temperature: (S, D*R)
        q = group[schema.OVERLAP][...]  # (D, T, S, P)
        ql = group[schema.LINK_OVERLAP][...]
        header = ["T", "[<e>]", "[<q_l>]", "chi_SG", "g (q Binder)"]
        rows = []
        for t, T in enumerate(temps):
            et = e[:, t].mean(axis=(1, 2))  # thermal mean per disorder sample
            qlt = ql[:, t].mean(axis=(1, 2))
            qt = np.moveaxis(q[:, t], 1, 0).reshape(q.shape[2], -1)  # (S, D*P)
            nd = len(et)
            nb = nd if nd >= 2 else None
            e_err = et.std(ddof=1) / np.sqrt(nd) if nd > 1 else float("nan")
            ql_err = qlt.std(ddof=1) / np.sqrt(nd) if nd > 1 else float("nan")
            chi = obs.spin_glass_susceptibility(qt, N, n_bins=nb) if nd > 1 else (qt.var(), np.nan)
            g = obs.spin_glass_binder(qt, n_bins=nb) if nd > 1 else (np.nan, np.nan)
            rows.append([f"{T:.5g}", _fmt(et.mean(), e_err), _fmt(qlt.mean(), ql_err),
                         _fmt(*chi), _fmt(*g)])
        return header, rows
    header = ["T", "<e>", "<|m|>", "C", "chi", "U4"]
    nb = _bins(e.shape[1], chains)
    rows = []
    for t, T in enumerate(temps):
        beta = 1.0 / T
        rows.append([f"{T:.5g}", _fmt(*obs.mean(e[t], nb)), _fmt(*obs.mean(np.abs(m[t]), nb)),
                     _fmt(*obs.specific_heat(e[t], beta, N, nb)),
                     _fmt(*obs.susceptibility(m[t], beta, N, nb)),
                     _fmt(*obs.binder_cumulant(m[t], nb))])
    return header, rows


def format_table(header, rows) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def _fmt(value, err) -> str:
    """``0.1234(56)``-style: value with the error in the last two digits."""
    value, err = float(np.asarray(value)), float(np.asarray(err))
    if not np.isfinite(err) or err <= 0:
        return f"{value:.6g}"
    digits = max(0, 1 - int(np.floor(np.log10(err))))
    digits = min(digits, 10)
    scaled = int(round(err * 10**digits))
    return f"{value:.{digits}f}({scaled})"
