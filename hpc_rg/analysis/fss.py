"""Finite-size-scaling exponents from observable tables across a chain of lattice sizes.

At a (critical) temperature T, over the sizes L of the tables (Monte Carlo and/or
super-resolved levels)::

    chi ~ L^(gamma/nu),   <|m|> ~ L^(-beta/nu),   G(L/4), G(L/2) ~ L^(-(d-2+eta))

fitted in log-log by :func:`hpc_rg.analysis.scaling.critical_exponents` (clean models) with
the jackknife errors as weights (unweighted when an error is zero or missing). For the
Edwards-Anderson model the same fits use ``chi_SG`` (gamma/nu = 2 - eta) and the overlap
correlator G(r) of rho; there is no beta/nu. Caveats of :mod:`hpc_rg.analysis.scaling`
apply (levels made from the same input are correlated; fit errors treat them as
independent).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputFileError
from . import scaling
from .summary import _fmt, format_table
from .tables import GroupTable

__all__ = ["T_C_2D", "EXPONENTS", "match_index", "default_temperatures", "fit_exponents",
           "format_exponents", "write_exponents"]

T_C_2D = 2.0 / math.log(1.0 + math.sqrt(2.0))
#: exponent -> (observable it comes from, exact 2D Ising value)
EXPONENTS = {"gamma_nu": ("chi", 7 / 4), "beta_nu": ("abs_m", 1 / 8),
             "eta_quarter": ("G(L/4)", 1 / 4), "eta_half": ("G(L/2)", 1 / 4)}


def _grid(t: GroupTable, match: str) -> np.ndarray:
    return t.nominal if match == "nominal" and t.nominal is not None else t.grid


def match_index(t: GroupTable, T: float, match: str = "nominal", tol: float = 1e-3):
    """Row of ``t`` whose (nominal or effective) temperature is within ``tol`` of T, or None."""
    g = _grid(t, match)
    with np.errstate(invalid="ignore"):
        d = np.abs(g - T)
    if not np.any(np.isfinite(d)):
        return None
    i = int(np.nanargmin(d))
    return i if d[i] <= tol * max(1.0, abs(T)) else None


def default_temperatures(tables: list[GroupTable], match: str = "nominal") -> list[float]:
    """2D Ising: the grid temperature nearest T_c (within 0.01); else every temperature of
    the first table."""
    first = _grid(tables[0], match)
    if all(t.model == "ising" and t.dims == 2 for t in tables):
        d = np.abs(first - T_C_2D)
        if d.size and np.nanmin(d) < 0.01:
            return [float(first[int(np.nanargmin(d))])]
    return [float(x) for x in first if np.isfinite(x)]


def chain_of_sizes(tables: list[GroupTable], L_min: int | None = None) -> list[GroupTable]:
    """One table per size (the first given wins: list Monte Carlo files first for MC base
    sizes), sizes >= L_min, sorted by L."""
    seen: dict[int, GroupTable] = {}
    for t in tables:
        if (L_min is None or t.L >= L_min) and t.L not in seen:
            seen[t.L] = t
    return [seen[L] for L in sorted(seen)]


def _level(t: GroupTable, i: int, T: float) -> scaling.LevelObservables:
    def ve(name):
        return float(t.values[name][i]), float(t.errors[name][i])

    gq, gh = t.two_point_at(max(1, t.L // 4)), t.two_point_at(t.L // 2)
    if gq is None or gh is None:
        raise InputFileError(f"{t.path}: /L{t.L}: G(r) at r = L/4 and L/2 is needed")
    beta = 1.0 / T if t.spec.has_temperature else 1.0
    N = t.L ** t.dims
    nan2 = (float("nan"), float("nan"))
    m2, m2e = ve("m2") if "m2" in t.values else nan2
    chi = ve("chi" if "chi" in t.values else "chi_SG")
    am = ve("abs_m") if "abs_m" in t.values else nan2
    u4 = ve("U4") if "U4" in t.values else nan2
    return scaling.LevelObservables(
        L=t.L, dims=t.dims, T=T, n_configs=int(t.n_configs[i]), abs_m=am[0], abs_m_err=am[1],
        m2=m2, m2_err=m2e, chi=chi[0], chi_err=chi[1], chi_full=beta * N * m2,
        chi_full_err=beta * N * m2e, binder=u4[0], binder_err=u4[1],
        g_quarter=float(gq[0][i]), g_quarter_err=float(gq[1][i]),
        g_half=float(gh[0][i]), g_half_err=float(gh[1][i]))


def _weights_ok(levels, keys) -> bool:
    return all(np.isfinite(getattr(lv, k + "_err")) and getattr(lv, k + "_err") > 0
               for lv in levels for k in keys)


def fit_exponents(tables: list[GroupTable], temperatures=None, L_min: int | None = None,
                  match: str = "nominal", tol: float = 1e-3) -> list[dict]:
    """Exponent fits per temperature.

    Parameters
    ----------
    tables : GroupTables of one model (several files allowed)
    temperatures : list of float, optional (default: :func:`default_temperatures`)
    L_min : int, drop smaller sizes
    match : ``nominal`` (super-resolved levels by their input temperature) or ``effective``
    tol : relative temperature tolerance of the match

    Returns
    -------
    list of dict, one per temperature: ``T``, ``sizes``, ``files``, ``exponents``
    ``{name: {value, error, chi2_dof, r, observable}}``, and ``skipped`` (text) when fewer
    than two sizes have T.
    """
    models = {(t.model, t.dims) for t in tables}
    if len(models) != 1:
        raise InputFileError(f"exponents: the files mix models {sorted(models)}; give the "
                             f"outputs of one run")
    chain = chain_of_sizes(tables, L_min)
    if not chain:
        raise InputFileError("exponents: no lattice size left after --from-L")
    temps = default_temperatures(chain, match) if temperatures is None else list(temperatures)
    out = []
    for T in temps:
        rows = [(t, match_index(t, T, match, tol)) for t in chain]
        rows = [(t, i) for t, i in rows if i is not None]
        res = {"T": float(T), "model": chain[0].model, "dims": chain[0].dims,
               "sizes": [t.L for t, _ in rows],
               "files": [f"{t.label}/L{t.L}" for t, _ in rows], "exponents": {}}
        if len({t.L for t, _ in rows}) < 2:
            res["skipped"] = "fewer than two sizes have this temperature"
            out.append(res)
            continue
        levels = [_level(t, i, T) for t, i in rows]
        ea = chain[0].disordered
        keys = ("chi", "g_quarter", "g_half") + (() if ea else ("abs_m",))
        weighted = _weights_ok(levels, keys)
        if ea:
            L = [lv.L for lv in levels]
            fits = {}
            for name, key in (("gamma_nu", "chi"), ("eta_quarter", "g_quarter"),
                              ("eta_half", "g_half")):
                y = [getattr(lv, key) for lv in levels]
                e = [getattr(lv, key + "_err") for lv in levels] if weighted else None
                try:
                    fits[name] = scaling.fit_power_law(L, y, e)
                except ValueError as err:
                    res.setdefault("failed", {})[name] = str(err)
            d = chain[0].dims
            exps = {}
            for name, fit in fits.items():
                v = fit.slope if name == "gamma_nu" else -fit.slope - (d - 2)
                exps[name] = (v, fit.slope_err, fit.chi2_dof, fit.r)
        else:
            try:
                ce = scaling.critical_exponents(levels, weighted=weighted)
            except ValueError as err:
                res["skipped"] = str(err)
                out.append(res)
                continue
            fk = {"gamma_nu": "chi", "beta_nu": "abs_m", "eta_quarter": "g_quarter",
                  "eta_half": "g_half"}
            exps = {name: (getattr(ce, name), getattr(ce, name + "_err"),
                           ce.fits[fk[name]].chi2_dof, ce.fits[fk[name]].r) for name in fk}
        res["weighted"] = weighted
        for name, (v, e, c2, r) in exps.items():
            obs = "chi_SG" if ea and name == "gamma_nu" else EXPONENTS[name][0]
            res["exponents"][name] = {"value": float(v), "error": float(e),
                                      "chi2_dof": float(c2), "r": float(r), "observable": obs}
        out.append(res)
    return out


def format_exponents(results: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(f"# T = {res['T']:.6g}: sizes {', '.join(res['files']) or '-'}")
        if "skipped" in res:
            lines.append(f"  skipped: {res['skipped']}")
            continue
        ising2d = res.get("model") == "ising" and res.get("dims") == 2
        header = ["exponent", "from", "value", "chi2/dof"] + (["2D Ising"] if ising2d else [])
        rows = []
        for name, d in res["exponents"].items():
            rows.append([name, d["observable"], _fmt(d["value"], d["error"]),
                         f"{d['chi2_dof']:.3g}"] + ([f"{EXPONENTS[name][1]:.4g}"] if ising2d else []))
        lines.append(format_table(header, rows))
        if not res.get("weighted", True):
            lines.append("  (unweighted fits: some jackknife errors are zero)")
    return "\n".join(lines)


def write_exponents(g, results: list[dict]) -> None:
    """Store fit results in the h5py group ``g`` (one row per temperature)."""
    n = len(results)
    g.create_dataset("temperatures", data=np.array([r["T"] for r in results], dtype=np.float64))
    width = max([len(r["sizes"]) for r in results] + [1])
    sizes = np.zeros((n, width), dtype=np.int64)
    for i, r in enumerate(results):
        sizes[i, :len(r["sizes"])] = r["sizes"]
    g.create_dataset("sizes", data=sizes).attrs["axes"] = "temperature,size (0 = none)"
    for name in EXPONENTS:
        for key, suffix in (("value", ""), ("error", "_err"), ("chi2_dof", "_chi2_dof")):
            g.create_dataset(name + suffix, data=np.array(
                [r["exponents"].get(name, {}).get(key, np.nan) for r in results], dtype=np.float64))
