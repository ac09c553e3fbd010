"""Output of observable tables: screen, CSV, JSON and ``analysis.h5`` (written by one rank).

``analysis.h5`` layout (root: the provenance attributes of every output, ``stage =
"analyze"``, ``sources`` = the files analysed)::

    /<label>/L<size>            label = source file stem: samples, upscaled
        attrs: model, dims, L, source, source_file, jackknife_bins, disorder_samples,
               disorder_samples_used (ids), equilibrated_only (EA), ...
        temperatures | couplings (T,)   nominal_temperatures (T,) (super-resolved groups)
        n_configs (T,)                  samples per temperature
        <observable>, <observable>_err  (T,) float64, see hpc_rg.analysis.tables
        r (n_r,)  two_point, two_point_err (T, n_r)
    /exponents                  (when fitted) one row per temperature, see
                                :mod:`hpc_rg.analysis.fss`

Written as ``analysis.h5.partial`` and renamed when complete (``complete = True``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import OutputError
from ..io import schema
from .summary import OUTSIDE_FLOW_NOTE, _fmt, format_flow_value, format_table
from .tables import DISTANCES, ERR, LABELS, N_CONFIGS, NOMINAL, TWO_POINT, GroupTable

__all__ = ["tool_provenance", "write_h5", "to_json", "write_json", "write_csv", "format_tables"]


def tool_provenance(src, n_ranks: int) -> dict:
    """Root attributes for an analysis file made by a tool from the open output ``src``:
    the run's deck and seed are copied, the rest describes this analysis."""
    from .. import __version__
    from ..io.provenance import git_commit
    cfg = src.attrs.get(schema.ATTR_CONFIG, "")
    return {schema.ATTR_VERSION: __version__, schema.ATTR_SCHEMA: schema.SCHEMA_VERSION,
            schema.ATTR_CONFIG: cfg.decode() if isinstance(cfg, bytes) else str(cfg),
            schema.ATTR_CREATED: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            schema.ATTR_RANKS: int(n_ranks), schema.ATTR_SEED: int(src.attrs.get(schema.ATTR_SEED, 0)),
            schema.ATTR_GIT: git_commit(), schema.ATTR_STAGE: "analyze",
            schema.ATTR_COMPLETE: False}


def write_h5(path, tables: list[GroupTable], root_attrs: dict, exponents=None) -> Path:
    """Write ``analysis.h5`` (one process): ``path.partial`` first, renamed when done."""
    import h5py
    path = Path(path)
    partial = path.with_name(path.name + schema.PARTIAL_SUFFIX)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(partial, "w") as f:
            for k, v in root_attrs.items():
                f.attrs[k] = v
            f.attrs["sources"] = sorted({str(t.path) for t in tables})
            for t in tables:
                g = f.require_group(f"{t.label}/{schema.size_group(t.L)}")
                g.attrs.update({schema.GROUP_ATTR_MODEL: t.model, schema.GROUP_ATTR_DIMS: t.dims,
                                schema.GROUP_ATTR_L: t.L, schema.GROUP_ATTR_SOURCE: t.source,
                                "source_file": str(t.path), "jackknife_bins": t.n_bins,
                                "disorder_samples": t.disorder, **t.attrs})
                ax = {schema.DATASET_ATTR_AXES: "temperature"}
                g.create_dataset(t.grid_name, data=t.grid).attrs.update(ax)
                if t.nominal is not None:
                    g.create_dataset(NOMINAL, data=t.nominal).attrs.update(ax)
                g.create_dataset(N_CONFIGS, data=t.n_configs).attrs.update(ax)
                for name in t.values:
                    g.create_dataset(name, data=t.values[name]).attrs.update(ax)
                    g.create_dataset(name + ERR, data=t.errors[name]).attrs.update(ax)
                g.create_dataset(DISTANCES, data=t.r)
                ax2 = {schema.DATASET_ATTR_AXES: "temperature,r"}
                g.create_dataset(TWO_POINT, data=t.two_point).attrs.update(ax2)
                g.create_dataset(TWO_POINT + ERR, data=t.two_point_err).attrs.update(ax2)
            if exponents:
                from .fss import write_exponents
                write_exponents(f.create_group("exponents"), exponents)
            f.attrs[schema.ATTR_COMPLETE] = True
        os.replace(partial, path)
    except OSError as e:
        raise OutputError(f"{path}: cannot write analysis file ({e})") from None
    return path


def _clean(x):
    """JSON-safe: NaN/inf -> None, numpy -> Python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def table_dict(t: GroupTable) -> dict:
    return {"label": t.label, "file": t.path, "L": t.L, "dims": t.dims, "model": t.model,
            "source": t.source, "grid_name": t.grid_name, "grid": t.grid,
            "nominal_temperatures": t.nominal, "n_configs": t.n_configs,
            "jackknife_bins": t.n_bins, "disorder_samples": t.disorder,
            "observables": {k: {"value": t.values[k], "error": t.errors[k]} for k in t.values},
            "two_point": {"r": t.r, "value": t.two_point, "error": t.two_point_err}}


def to_json(tables: list[GroupTable], **extra) -> str:
    return json.dumps(_clean({"groups": [table_dict(t) for t in tables], **extra}), indent=1)


def write_json(path, text: str) -> None:
    try:
        Path(path).write_text(text + "\n")
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


def write_csv(path, tables: list[GroupTable]) -> None:
    """One row per (file, size, temperature); columns ``name``, ``name_err`` and
    ``G(r)``, ``G(r)_err`` (empty where a group lacks them)."""
    obs: list[str] = []
    rs: list[int] = []
    for t in tables:
        obs += [k for k in t.values if k not in obs]
        rs += [int(r) for r in t.r if int(r) not in rs]
    rs.sort()
    header = ["source", "L", "grid_name", "T", "T_nominal", "n_configs"]
    for k in obs:
        header += [k, k + ERR]
    for r in rs:
        header += [f"G({r})", f"G({r}){ERR}"]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for t in tables:
        for i, T in enumerate(t.grid):
            row = [t.label, t.L, t.grid_name, repr(float(T)),
                   repr(float(t.nominal[i])) if t.nominal is not None else "", int(t.n_configs[i])]
            for k in obs:
                row += [repr(float(t.values[k][i])), repr(float(t.errors[k][i]))] if k in t.values else ["", ""]
            for r in rs:
                hit = np.flatnonzero(t.r == r)
                row += ([repr(float(t.two_point[i, hit[0]])), repr(float(t.two_point_err[i, hit[0]]))]
                        if hit.size else ["", ""])
            w.writerow(row)
    write_json(path, buf.getvalue().rstrip("\n"))


def _status(t: GroupTable) -> str:
    """What a super-resolved group is (its certificate), for the table heading."""
    from .certificate import status
    sampler = t.attrs.get("sampler", "")
    return {"monte_carlo": "; exact (Monte Carlo)",
            "unknown": "; no certificate (written before certificates): exactness unknown",
            "approximate": f"; APPROXIMATE ({sampler}, exact=false)",
            "certified": f"; certified exact ({sampler})",
            "not_certified": f"; NOT CERTIFIED ({sampler}): not equilibrium samples, see the "
                             f"certificate attribute"}[status({**t.attrs, "source": t.source})]


def _disorder_note(t: GroupTable, max_ids: int = 8) -> str:
    """EA: which disorder samples the group's averages are over, for the table heading."""
    if schema.ATTR_DISORDER_SAMPLES_USED not in t.attrs:
        return ""
    ids = [int(i) for i in np.atleast_1d(t.attrs[schema.ATTR_DISORDER_SAMPLES_USED])]
    shown = ", ".join(map(str, ids[:max_ids])) + (", ..." if len(ids) > max_ids else "")
    how = ("certified equilibrated only" if t.attrs.get(schema.ATTR_EQUILIBRATED_ONLY)
           else "not restricted to equilibrated ones")
    return f"; {len(ids)} disorder samples used (ids {shown}; {how})"


def format_tables(tables: list[GroupTable], max_r: int = 0) -> str:
    """Human-readable tables: one block per group, value(error) columns, G at L/4 and L/2."""
    out = []
    outside = False
    for t in tables:
        head = (f"# {t.label} /L{t.L}: {t.model} {t.dims}D, {t.source}, "
                f"{int(t.n_configs[0]) if len(t.n_configs) else 0} samples per "
                f"{'coupling' if t.grid_name == schema.COUPLINGS else 'temperature'}, "
                f"jackknife over {t.n_bins} {'disorder samples' if t.disorder > 1 else 'blocks'}"
                f"{_status(t)}{_disorder_note(t)}")
        header = ["k" if t.grid_name == schema.COUPLINGS else "T"]
        if t.nominal is not None:
            header.append(header[0] + "_in")
        header += [LABELS.get(k, k) for k in t.values]
        gcols = [r for r in (t.L // 4, t.L // 2) if r > 0 and r in set(t.r.tolist())]
        gcols = sorted(set(gcols))
        header += [f"G({r})" for r in gcols]
        rows = []
        for i, T in enumerate(t.grid):
            off = not np.isfinite(T)
            outside |= off
            row = [format_flow_value(T)] + ([f"{t.nominal[i]:.5g}"] if t.nominal is not None else [])
            row += ["-" if off and not np.isfinite(t.values[k][i]) else
                    _fmt(t.values[k][i], t.errors[k][i]) for k in t.values]
            for r in gcols:
                v, e = t.two_point_at(r)
                row.append(_fmt(v[i], e[i]))
            rows.append(row)
        out.append(head + "\n" + format_table(header, rows))
    if outside:
        out.append(f"# {OUTSIDE_FLOW_NOTE}; observables that need T (chi, C) are left out ('-')")
    return "\n\n".join(out)
