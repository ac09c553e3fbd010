"""Temperature-rescaling curves of one blocking step, for ``tools/rescale``.

Monte Carlo observables of the ``/L<L/2>`` ensemble and of the ``/L<L>`` ensemble blocked
to L/2, on their temperature grids (:func:`hpc_rg.superres.rescaling.blocked_curves`), and
the flow f(T) fitted from them by :func:`hpc_rg.rg.rescaling.fit_flow` — the same
computation as the train stage's :func:`hpc_rg.superres.rescaling.measure_flow`, without a
run config (Edwards–Anderson: over the disorder samples the stored deck's
``sample.equilibration.only_passed`` admits, as the train stage). Observables: <|m|> and
the nearest-neighbour energy e_nn (spins, EA overlaps ρ); <|φ|>, <φ²> (φ⁴). Errors are standard errors of the mean. Imports torch (blocking).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputFileError
from ..io import schema
from ..models.spec import spec_for
from ..rg.rescaling import TemperatureFlow, fit_flow


@dataclass
class FlowCurves:
    """Curves of one blocking step L -> L/2 and the flow fitted from them (or why not)."""

    L: int
    blocking: str
    observables: tuple[str, ...]
    T_small: np.ndarray  #: grid of /L<L/2>
    mc: dict  #: name -> (T_small,) means of L/2 Monte Carlo
    mc_err: dict
    T: np.ndarray  #: grid of /L<L>
    blocked: dict  #: name -> (T,) means of the blocked L ensemble
    blocked_err: dict
    flow: TemperatureFlow | None = None
    flow_error: str = ""  #: why there is no flow

    def as_dict(self) -> dict:
        d = {"L": self.L, "L_small": self.L // 2, "blocking": self.blocking,
             "observables": list(self.observables), "T_small": self.T_small, "T": self.T,
             "mc": {k: {"value": self.mc[k], "error": self.mc_err[k]} for k in self.observables},
             "blocked": {k: {"value": self.blocked[k], "error": self.blocked_err[k]}
                         for k in self.observables}}
        if self.flow is not None:
            d["flow"] = {"T": self.flow.T, "f": self.flow.f, "f_err": self.flow.f_err,
                         "valid": self.flow.valid}
            try:
                d["fixed_point"] = self.flow.fixed_point()
            except ValueError:
                d["fixed_point"] = None
        else:
            d["flow"] = None
            d["flow_error"] = self.flow_error
        return d


def default_size(f) -> int:
    """The run's sample.L if /L and /L<L/2> exist, else the largest such L."""
    from .tables import run_config
    from ..io.outputs import size_groups
    have = {L for L, _ in size_groups(f)}
    L0 = (run_config(f).get("sample") or {}).get("L")
    if L0 in have and L0 // 2 in have:
        return int(L0)
    pairs = sorted(L for L in have if L % 2 == 0 and L // 2 in have)
    if not pairs:
        raise InputFileError(f"{f.filename}: needs Monte Carlo groups /L<L> and /L<L/2> "
                             f"(has {', '.join('/L%d' % L for L in sorted(have)) or 'none'}); "
                             f"sample with reference_sizes: [L/2]")
    return pairs[-1]


def flow_curves(f, L: int, blocking: str | None = None, comm=None) -> FlowCurves:
    """Curves and flow for sizes L and L/2 of the open ``samples.h5`` ``f`` (collective)."""
    import torch  # noqa: F401  (the blocking and observables are torch code)

    from ..rg.observables import curve_names
    from ..io.equilibrated import only_passed_of, usable_disorder_samples
    from ..superres.rescaling import blocked_curves
    from .tables import run_config
    for size in (L, L // 2):
        if schema.size_group(size) not in f:
            raise InputFileError(f"{f.filename}: no group /L{size} (has "
                                 f"{', '.join(k for k in f if k.startswith('L'))}); "
                                 f"temperature rescaling compares /L{L} blocked with /L{L // 2}")
    big = f[schema.size_group(L)]
    if big.attrs.get(schema.GROUP_ATTR_SOURCE, "monte_carlo") != "monte_carlo":
        raise InputFileError(f"{f.filename}: /L{L} is not a Monte Carlo ensemble; give samples.h5")
    spec = spec_for(str(big.attrs[schema.GROUP_ATTR_MODEL]))
    dims = int(big.attrs[schema.GROUP_ATTR_DIMS])
    if blocking is None:
        blocking = spec.default_blocking(dims)
    if comm is None:
        from mpi4py import MPI
        comm = MPI.COMM_SELF
    seed = int(f.attrs.get(schema.ATTR_SEED, 0))
    only = only_passed_of(run_config(f))
    used = tuple(usable_disorder_samples(f[schema.size_group(size)], only,
                                         warn=comm.Get_rank() == 0).ids for size in (L, L // 2))
    T, Ts, mc, mc_err, ds, ds_err = blocked_curves(f, L, spec.field, dims, blocking, comm,
                                                   torch.device("cpu"), seed, disorder=used)
    curves = FlowCurves(L=L, blocking=blocking, observables=curve_names(spec.field), T_small=Ts,
                        mc=mc, mc_err=mc_err, T=T, blocked=ds, blocked_err=ds_err)
    try:
        curves.flow = fit_flow(T, mc, ds, mc_errors=mc_err, blocked_errors=ds_err, T_small=Ts)
    except ValueError as e:
        curves.flow_error = str(e)
    return curves


def format_curves(c: FlowCurves) -> str:
    from .summary import _fmt, format_table
    header = ["T"]
    for k in c.observables:
        header += [f"{k} MC L={c.L // 2}", f"{k} blocked L={c.L}"]
    header += ["f(T)", "valid"]
    same = c.T_small.shape == c.T.shape and np.allclose(c.T_small, c.T)
    rows = []
    for i, T in enumerate(c.T):
        row = [f"{T:.5g}"]
        for k in c.observables:
            row += [_fmt(c.mc[k][i], c.mc_err[k][i]) if same else "-",
                    _fmt(c.blocked[k][i], c.blocked_err[k][i])]
        if c.flow is not None:
            j = int(np.argmin(np.abs(c.flow.T - T)))
            row += [_fmt(c.flow.f[j], c.flow.f_err[j]), "yes" if c.flow.valid[j] else "no"]
        else:
            row += ["-", "no"]
        rows.append(row)
    text = (f"# blocking {c.blocking}: /L{c.L} blocked to L={c.L // 2} vs Monte Carlo "
            f"/L{c.L // 2}\n" + format_table(header, rows))
    if c.flow is None:
        text += f"\n# no flow: {c.flow_error}"
    else:
        try:
            text += f"\n# fixed point f(T) = T at T = {c.flow.fixed_point():.5g}"
        except ValueError:
            text += "\n# f(T) - T does not change sign on the grid (no fixed point bracketed)"
    if not same:
        text += "\n# Monte Carlo L/2 grid differs; its curve is in --json and --plot"
    return text
