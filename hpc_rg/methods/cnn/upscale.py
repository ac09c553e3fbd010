"""Upscaling with the CNN: the trained network applied repeatedly, L -> 2L -> ... -> target_L.

The inputs are the size-L Monte Carlo configurations of ``samples.h5`` (EA: overlaps of
the disorder samples :func:`~hpc_rg.io.equilibrated.usable_disorder_samples` admits; every
level group records them).
Work is cut into fixed global batches of ``upscale.batch`` configurations of one
temperature; batches are dealt to ranks in contiguous blocks and every batch goes
through all levels on its rank's device, so memory per rank is bounded by one batch at
the largest size (never by the ensemble). Random numbers are keyed by (seed, level,
global configuration id, site) and batch composition does not depend on the rank count,
so 1 and N ranks write the same file content.
"""

from __future__ import annotations

import logging

import numpy as np

from ...io import schema
from ...io.ensemble import open_samples, size_group
from ...io.provenance import stage_provenance
from ...models.spec import spec_for
from ...parallel.distribute import block_range
from ..base import Upscaler, input_runs, levels_complete, levels_of

log = logging.getLogger("hpc_rg")


class CnnUpscaler(Upscaler):
    """The CNN of ``model.pt`` over this rank's batches (see the module docstring)."""

    def __init__(self, cfg, comms, device):
        from mpi4py import MPI

        from ...io.ensemble import ensemble_size, grid
        from ...io.equilibrated import usable_disorder_samples
        from ...superres import load
        self.cfg, self.comms, self.device = cfg, comms, device
        self.model = load(cfg.output_dir / schema.MODEL_FILE, device)
        from ...config import upscale_input_blockings, upscale_input_L
        self.sizes = levels_of(cfg)
        self.input_L = upscale_input_L(cfg)
        self.blockings = upscale_input_blockings(cfg)
        trained = int(self.model.meta.get("target_blockings") or 0)
        if comms.is_root and self.blockings:
            log.info(f"[upscale] the chain starts from the L={self.input_L} Monte Carlo "
                     f"configurations blocked {self.blockings} time(s) (L="
                     f"{self.input_L >> self.blockings}); its levels are compared with "
                     f"no same-size Monte Carlo (a blocked ensemble is not the "
                     f"nearest-neighbour one)")
        if comms.is_root and trained != self.blockings:
            log.warning(f"[upscale] the network was trained on targets blocked {trained} "
                        f"time(s) (train.target_blockings) but the chain's inputs are "
                        f"blocked {self.blockings} time(s) (upscale.input_blockings): the "
                        f"first level sees another ensemble than it was trained on; set "
                        f"upscale.input_blockings: auto unless this comparison is intended")
        with open_samples(cfg) as f:
            g0 = size_group(f, self.input_L, f.filename)
            self.used = usable_disorder_samples(g0, cfg.sample.equilibration.only_passed,
                                                warn=comms.is_root, stage="upscale")
            self.N_all, self.temps = ensemble_size(g0, self.used.ids), grid(g0)
        self.N = min(cfg.upscale.samples or self.N_all, self.N_all)
        self.per_T = -(-self.N // cfg.upscale.batch)
        self.work = list(block_range(len(self.temps) * self.per_T, comms.size, comms.rank))
        self.rounds = comms.world.allreduce(len(self.work), op=MPI.MAX)
        self.spec = spec_for(cfg.model.name)
        self.certificates = None

    # ------------------------------------------------------------------ file
    def create_file(self, h5) -> None:
        cfg, model, n_T = self.cfg, self.model, len(self.temps)
        h5.set_attrs("/", stage_provenance(cfg, self.comms, "upscale"))
        dtype = self.spec.dtype
        names = list(self.spec.cnn_scalars)
        flow_attrs = model.flow.to_attrs() if model.flow is not None else {}
        axes = ",".join(schema.CLEAN_AXES)
        for level, Lp in enumerate(self.sizes, start=1):
            g = schema.size_group(Lp)
            lat = (Lp,) * cfg.model.dims
            h5.create_dataset(f"{g}/{schema.CONFIGS}", (n_T, self.N) + lat, dtype,
                              chunks=(1, 1) + lat, attrs={schema.DATASET_ATTR_AXES:
                                                          axes + "," + ",".join("xyz"[:len(lat)])})
            for name in names + [schema.CONSISTENCY]:
                h5.create_dataset(f"{g}/{name}", (n_T, self.N), np.float64,
                                  attrs={schema.DATASET_ATTR_AXES: axes})
            choice = [model.network_for(k, level, cfg.upscale.rescale_temperature)
                      for k in range(n_T)]
            eff = np.array([c[2] for c in choice])
            net_T = np.array([c[1] if c[1] is not None else model.temperatures[c[0]]
                              for c in choice])
            grid_name = self.spec.grid
            h5.create_dataset(f"{g}/{grid_name}", (n_T,), np.float64)
            h5.create_dataset(f"{g}/{schema.NOMINAL}", (n_T,), np.float64)
            if self.comms.is_root:
                h5.put(f"{g}/{grid_name}", (), eff)
                h5.put(f"{g}/{schema.NOMINAL}", (), np.asarray(self.temps, dtype=np.float64))
            rescaled = bool(cfg.upscale.rescale_temperature and model.rescales)
            flow_L = int(model.meta.get("train_L") or 0) if model.flow is not None else 0
            attrs = {schema.GROUP_ATTR_MODEL: cfg.model.name,
                     schema.GROUP_ATTR_DIMS: cfg.model.dims, schema.GROUP_ATTR_L: Lp,
                     schema.GROUP_ATTR_SOURCE: "superres", schema.GROUP_ATTR_LEVEL: level,
                     schema.GROUP_ATTR_INPUT_L: self.input_L,
                     schema.GROUP_ATTR_INPUT_BLOCKINGS: self.blockings,
                     schema.GROUP_ATTR_TARGET_BLOCKINGS:
                         int(model.meta.get("target_blockings") or 0),
                     schema.GROUP_ATTR_TRAIN_L: model.meta.get("train_L"),
                     schema.GROUP_ATTR_INPUT_COUNT: self.N_all,
                     schema.GROUP_ATTR_BLOCKING: model.blocking or "",
                     schema.GROUP_ATTR_RESCALED: rescaled,
                     schema.GROUP_ATTR_FLOW_L: flow_L,
                     schema.GROUP_ATTR_FLOW_EXTRAPOLATED: bool(rescaled and flow_L
                                                               and Lp > flow_L),
                     schema.GROUP_ATTR_OVERLAP_CONFIGS: self.spec.disordered,
                     schema.GROUP_ATTR_NETWORK_TEMPERATURES: net_T}
            attrs.update(flow_attrs)
            attrs.update(self.used.attrs())
            h5.set_attrs(g, attrs)

    def structure_complete(self, h5) -> bool:
        return levels_complete(h5, self.sizes, (schema.CONFIGS, schema.NOMINAL))

    # ------------------------------------------------------------------ rounds
    def step(self, r: int, inputs):
        import torch

        from ...io.ensemble import coarse_blocking, read_runs
        from ...rg.observables import observables
        if r >= len(self.work):
            return
        cfg, model = self.cfg, self.model
        B, N = cfg.upscale.batch, self.N
        k, a = divmod(self.work[r], self.per_T)
        a *= B
        b = min(a + B, N)
        x = torch.from_numpy(read_runs(inputs, input_runs(a, b, N, self.N_all), t=k,
                                       disorder=self.used.ids)).to(self.device)
        ids = torch.arange(a, b) + k * N
        blocking = coarse_blocking(model.blocking)
        if self.blockings:
            from ...rg.blocking import block_repeatedly
            from ...rng import torch_generator
            x = block_repeatedly(x, blocking, cfg.model.dims, self.blockings,  # keyed by batch
                                 lambda j: torch_generator(cfg.run.seed, "upscale-input-blocking",
                                                           k, a, j, device=self.device))
        for level, Lp in enumerate(self.sizes, start=1):
            net, t_out, _ = model.network_for(k, level, cfg.upscale.rescale_temperature)
            y = model.step(x, net, level, cfg.run.seed, ids, t_out, cfg.upscale.consistent)
            scalars = {schema.CONSISTENCY: _consistency(x, y, blocking, cfg.model.dims,
                                                        model.field).cpu().numpy()}
            obs = observables(y, model.field, cfg.model.dims)
            scalars.update((name, v.cpu().numpy()) for name, v in self._scalars(obs).items())
            yield Lp, (k, slice(a, b)), y.cpu().numpy().astype(self.spec.dtype), scalars
            x = y

    def _scalars(self, obs: dict) -> dict:
        """Per-configuration scalars stored per level, in ``spec.cnn_scalars`` order."""
        m = self.cfg.model
        values = {schema.PHI_MEAN: lambda: obs["phi"], schema.PHI2_MEAN: lambda: obs["phi2"],
                  schema.OVERLAP: lambda: obs["m"],
                  schema.LINK_OVERLAP: lambda: -obs["e_nn"] / m.dims,
                  schema.MAGNETIZATION: lambda: obs["phi"] if self.spec.continuous else obs["m"],
                  schema.ENERGY: lambda: m.J * obs["e_nn"] - m.h * obs["m"]}
        return {name: values[name]() for name in self.spec.cnn_scalars}

    # ------------------------------------------------------------------ end
    def finish(self, h5) -> None:
        certs = self.comms.bcast_root(_certificates(self.cfg, h5, self.sizes, self.blockings)
                                      if self.comms.is_root else None)
        for Lp, (attrs, _) in zip(self.sizes, certs):
            h5.set_attrs(schema.size_group(Lp), attrs)
        self.certificates = [c for _, c in certs]

    def report(self, path) -> None:
        from ..certify import report
        _print_summary(path, self.sizes)
        report([(Lp, c, None) for Lp, c in zip(self.sizes, self.certificates)], "T",
               compared=not self.blockings)


def _certificates(cfg, h5, sizes, blockings: int = 0) -> list:
    """(attrs, Certificate) per CNN level (rank 0): approximate (``exact = false``) and,
    where ``samples.h5`` has Monte Carlo of the level's size, its bias and z-scores there
    (the Monte Carlo curve interpolated to the level's effective temperatures) -- unless
    the chain started from blocked inputs (``blockings`` > 0), whose levels approximate a
    blocked ensemble, not the nearest-neighbour Monte Carlo of their size."""
    from ...analysis import certificate as cert
    from ..certify import level_attrs
    out = []
    for Lp in sizes:
        g = schema.size_group(Lp)
        grid_name = schema.COUPLINGS if h5.has(f"{g}/{schema.COUPLINGS}") else schema.TEMPERATURES
        grid = h5.read(f"{g}/{grid_name}")
        c = cert.approximate("cnn", len(grid), "CNN super-resolution is approximate: it has no "
                             "exactness correction")
        if blockings:
            out.append(({**c.attrs(Lp, grid_name[:-1], grid),
                         "reference": f"none: the chain starts from Monte Carlo blocked "
                                      f"{blockings} time(s) (fixed-point ensemble), not "
                                      f"comparable with nearest-neighbour Monte Carlo"}, c))
            continue
        # one chain per point: the rows follow the Monte Carlo input order
        out.append((level_attrs(cfg, h5, Lp, c, grid, grid_name[:-1], 1, interpolate=True), c))
    return out


def _consistency(x, y, blocking: str, dims: int, field: str):
    """Spins: fraction of coarse sites with block(y) == x. φ⁴: fraction with the same sign
    (block values of a continuous field never coincide exactly)."""
    import torch

    from ...rg.blocking import block, consistency
    if field != "phi4":
        return consistency(x, y, blocking, dims)
    agree = torch.sign(block(y, blocking, dims)) == torch.sign(x)
    return agree.flatten(1).to(torch.float64).mean(1)


def _print_summary(path, sizes) -> None:
    import h5py
    from ...analysis.summary import OUTSIDE_FLOW_NOTE, format_flow_value
    lines = []
    outside = False
    with h5py.File(path, "r") as f:
        for Lp in sizes:
            g = f[schema.size_group(Lp)]
            grid_name = schema.COUPLINGS if schema.COUPLINGS in g else schema.TEMPERATURES
            eff, nominal = g[grid_name][()], g[schema.NOMINAL][()]
            first = schema.OVERLAP if schema.OVERLAP in g else schema.MAGNETIZATION
            m = np.abs(g[first][()])
            cons = g[schema.CONSISTENCY][()]
            e = g[schema.ENERGY][()] if schema.ENERGY in g else None
            for k in range(len(eff)):
                outside |= not np.isfinite(eff[k])
                row = (f"L={Lp:<5d} T_in={nominal[k]:<9.5f} "
                       f"T_eff={format_flow_value(eff[k], '.5f'):<9s} "
                       f"<|{'q' if first == schema.OVERLAP else 'm'}|>={m[k].mean():.4f}")
                if e is not None:
                    row += f" <e>={e[k].mean():.4f}"
                lines.append(row + f" consistency={cons[k].mean():.4f}")
            bad = int((~np.isfinite(m)).sum())
            if bad:  # an iterated network can run away (φ⁴ far outside its training range)
                log.warning(f"[upscale] L={Lp}: {bad} of {m.size} configurations hold non-finite "
                            f"values (the network diverged under iteration); do not use this "
                            f"level, see docs/validation.md")
    if outside:
        lines.append(f"T_eff {OUTSIDE_FLOW_NOTE}")
    log.info("[upscale] levels:\n" + "\n".join(lines))
    _warn_extrapolated_flow(path, sizes)


def _warn_extrapolated_flow(path, sizes) -> None:
    """One warning naming the levels whose T_eff uses a flow measured at a smaller size."""
    import h5py
    with h5py.File(path, "r") as f:
        attrs = [f[schema.size_group(Lp)].attrs for Lp in sizes]
        beyond = [int(a[schema.GROUP_ATTR_L]) for a in attrs
                  if bool(a.get(schema.GROUP_ATTR_FLOW_EXTRAPOLATED, False))]
        flow_L = int(attrs[0].get(schema.GROUP_ATTR_FLOW_L, 0)) if attrs else 0
    if beyond:
        log.warning(f"[upscale] T_eff of levels L = {', '.join(map(str, beyond))} uses the "
                    f"temperature flow measured at L = {flow_L} (L = {flow_L} blocked vs "
                    f"{flow_L // 2} Monte Carlo) as if it did not change with L; near T_c "
                    f"that is unmeasured (docs/validation.md, 'Super-resolution against "
                    f"independent Monte Carlo'). Check such a level against Monte Carlo of "
                    f"its size where you can: tools/sr_vs_mc")
