"""Upscaling with the flows, made exact by independence Metropolis–Hastings or latent HMC.

Per parameter point ``upscale.mh_chains`` independent chains; chain c takes the rows
``[c·N/C, (c+1)·N/C)`` of the N outputs (inputs spread over the ensemble as for the CNN),
in batches of ``upscale.batch``; each level of each batch is an independence-MH step
continuing that chain's state (:mod:`hpc_rg.flows.sampler`). Random numbers are keyed by
(seed, level, parameter point, chain, batch), chains are dealt to ranks whole, so the file
content does not depend on the number of ranks. With ``upscale.hmc`` each level of each
batch is corrected by latent HMC instead (every row its own chain), and every batch is a unit
dealt to the ranks. Diagnostics and certificates per level: :mod:`.diagnostics`.
"""

from __future__ import annotations

import logging

import numpy as np

from ...errors import InputFileError
from ...io import schema
from ...io.ensemble import open_samples, size_group
from ...io.provenance import stage_provenance
from ...models.spec import spec_for
from ...parallel.distribute import block_range
from ..base import Upscaler, input_runs, levels_complete, levels_of
from .couplings import set_kappas
from .pool import correction, field_models, pilot_ess, resolve_correction

log = logging.getLogger("hpc_rg")


def chain_rows(N: int, C: int, c: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of chain ``c`` of ``C`` over ``N`` outputs."""
    return c * N // C, (c + 1) * N // C


class FlowUpscaler(Upscaler):
    """The flow bank of ``model.pt`` over this rank's chains (see the module docstring)."""

    def __init__(self, cfg, comms, device):
        import torch
        from mpi4py import MPI

        from ...flows.modelfile import load_flow_model
        from ...flows.sampler import ChainState
        from ...io.ensemble import ensemble_size, grid
        out = cfg.output_dir
        bank, meta = load_flow_model(out / schema.MODEL_FILE, device)
        bank = bank.to(torch.float64)  # float32 below for latent HMC
        bank.requires_grad_(False)  # latent HMC differentiates by the latent variables only
        self.sizes = sizes = levels_of(cfg)
        L0 = cfg.sample.L
        if meta.get("input_L") != L0 or meta.get("levels", 0) < len(sizes) or \
                meta.get("method") != cfg.train.method or meta.get("model") != cfg.model.name:
            raise InputFileError(f"{out / schema.MODEL_FILE}: flow model of {meta.get('method')} "
                                 f"{meta.get('model')} with {meta.get('levels')} level(s) from "
                                 f"L={meta.get('input_L')} does not fit this deck "
                                 f"({cfg.train.method}, L={L0} -> {sizes[-1]}); retrain with "
                                 f"--stage train")
        with open_samples(cfg) as f:
            g0 = size_group(f, L0, f.filename)
            self.N_all, self.temps = ensemble_size(g0), grid(g0)
        if len(self.temps) != len(meta["grid"]) or not np.allclose(self.temps, meta["grid"]):
            raise InputFileError(f"{out / schema.MODEL_FILE}: trained for {meta['grid_name']} "
                                 f"{meta['grid']}, samples.h5 has {list(self.temps)}; retrain")
        self.fms = fms = field_models(cfg, self.temps)
        self.coarse_kappas = meta.get("coarse_couplings")  # IR matching: level 1 maps p_L[κ_L]
        set_kappas(fms, L0, self.coarse_kappas, meta.get("fine_couplings"))
        if cfg.upscale.hmc.trajectories == "auto":  # decided on a pilot of real proposals
            rows = min(128, self.N_all)
            with open_samples(cfg) as f:
                ess = pilot_ess(bank, fms, f[schema.size_group(L0)], len(sizes), cfg.run.seed,
                                rows)
            cfg, note = resolve_correction(cfg, ess, f"pilot of {rows} configurations per grid "
                                                     f"point and level")
            if note:
                log.info(f"[upscale] {note}")
        u = cfg.upscale
        # float64: exact log-likelihoods for the independence-MH ratio of whole
        # configurations; latent HMC only needs a deterministic pullback (its accept/reject
        # is exact for the density it evaluates), so it runs the flow in float32, 4-5x
        # faster on CPU
        self.bank = bank.to(torch.float32 if u.hmc.trajectories else torch.float64)
        self.cfg, self.comms, self.device, self.meta = cfg, comms, device, meta
        self.spec = spec_for(cfg.model.name)
        self.N = N = min(u.samples or self.N_all, self.N_all)
        B = u.batch
        # the units dealt to ranks: MH chains (a chain's batches depend on each other);
        # latent-HMC rows are independent chains, so every batch is a unit
        self.C = C = -(-N // B) if u.hmc.trajectories else min(u.mh_chains, N)
        self.units = [(t, c) for t in range(len(self.temps)) for c in range(C)]
        self.mine = list(block_range(len(self.units), comms.size, comms.rank))
        self.work = []  # (unit index, batch index, a, b)
        for ui in self.mine:
            lo, hi = chain_rows(N, C, self.units[ui][1])
            self.work += [(ui, j, a, min(a + B, hi)) for j, a in enumerate(range(lo, hi, B))]
        self.rounds = comms.world.allreduce(len(self.work), op=MPI.MAX)
        self.states = {ui: [ChainState() for _ in sizes] for ui in self.mine}
        self.summary = self.certificates = None

    # ------------------------------------------------------------------ file
    def create_file(self, h5) -> None:
        from .diagnostics import level_attrs
        h5.set_attrs("/", stage_provenance(self.cfg, self.comms, "upscale"))
        n_T = len(self.temps)
        axes = ",".join(schema.CLEAN_AXES)
        for level, Lp in enumerate(self.sizes, start=1):
            g = schema.size_group(Lp)
            lat = (Lp,) * self.cfg.model.dims
            h5.create_dataset(f"{g}/{schema.CONFIGS}", (n_T, self.N) + lat, self.spec.dtype,
                              chunks=(1, 1) + lat, attrs={schema.DATASET_ATTR_AXES:
                                                          axes + "," + ",".join("xyz"[:len(lat)])})
            for name in self.spec.flow_scalars:
                h5.create_dataset(f"{g}/{name}", (n_T, self.N), np.float64,
                                  attrs={schema.DATASET_ATTR_AXES: axes})
            h5.create_dataset(f"{g}/{schema.MH_ACCEPTED}", (n_T, self.N), np.int8,
                              attrs={schema.DATASET_ATTR_AXES: axes})
            h5.create_dataset(f"{g}/{self.spec.grid}", (n_T,), np.float64)
            h5.create_dataset(f"{g}/{schema.NOMINAL}", (n_T,), np.float64)
            fine = self.meta.get("fine_couplings")
            effective = fine[level - 1] if fine else self.temps  # UV matching: learned κ
            if self.comms.is_root:
                h5.put(f"{g}/{self.spec.grid}", (), np.asarray(effective, dtype=np.float64))
                h5.put(f"{g}/{schema.NOMINAL}", (), np.asarray(self.temps, dtype=np.float64))
            h5.set_attrs(g, level_attrs(self.cfg, self.meta, self.spec, level, Lp,
                                        self.N, self.N_all, self.temps, correction(self.cfg)))

    def unit_rows(self, ui: int) -> tuple[int, int]:
        """Rows ``[lo, hi)`` of work unit ``ui`` (a chain of its grid point)."""
        return chain_rows(self.N, self.C, self.units[ui][1])

    def structure_complete(self, h5) -> bool:
        return levels_complete(h5, self.sizes, (schema.CONFIGS, schema.MH_ACCEPTED))

    def state(self) -> dict:
        return {"chains": {ui: [s.to_dict() for s in v] for ui, v in self.states.items()}}

    def restore(self, state: dict) -> None:
        from ...flows.sampler import ChainState
        self.states = {ui: [ChainState.from_dict(d) for d in v]
                       for ui, v in state["chains"].items()}

    # ------------------------------------------------------------------ rounds
    def step(self, r: int, inputs):
        import torch

        from ...flows.ir_matching import resample_coarse
        from ...flows.sampler import hmc_step, mh_step
        from ...io.ensemble import read_runs
        from ...rng import torch_generator
        if r >= len(self.work):
            return
        cfg, device, seed = self.cfg, self.device, self.cfg.run.seed
        u, hmc = cfg.upscale, cfg.upscale.hmc
        ui, j, a, b = self.work[r]
        t, c = self.units[ui]
        fm = self.fms[t]
        stored = torch.from_numpy(read_runs(inputs, input_runs(a, b, self.N, self.N_all),
                                            t=t)).to(device)
        x = fm.to_flow(stored, torch_generator(seed, "flow-upscale-coarse", t, c, j,
                                               device=device))
        if self.coarse_kappas is not None:  # stored fields (fine κ) moved exactly to κ_L
            x = resample_coarse(x, fm.kappa_at(cfg.sample.L), fm.lam,
                                cfg.train.flow.ir_hmc_trajectories,
                                torch_generator(seed, "flow-upscale-ir", t, c, j, device=device))
        lp = fm.log_p(x)
        for level, Lp in enumerate(self.sizes, start=1):
            gen = torch_generator(seed, "flow-upscale", level, t, c, j, device=device)
            flow_level = self.bank.chains[t].levels[level - 1]
            state = self.states[ui][level - 1]
            if hmc.trajectories:
                x, lp, acc = hmc_step(flow_level, x, lp, fm, state, hmc.trajectories,
                                      hmc.leapfrog_steps, hmc.step_size, gen)
                acc = acc > 0  # the row left its proposal
            else:
                x, lp, acc = mh_step(flow_level, x, lp, fm, state, gen, index_offset=a, mh=u.mh)
            y = fm.from_flow(x, torch_generator(seed, "flow-upscale-spins", level, t, c, j,
                                                device=device))
            scalars = {schema.MH_ACCEPTED: acc.numpy().astype(np.int8)}
            scalars.update((name, v.cpu().numpy()) for name, v in fm.scalars(y, x).items())
            yield Lp, (t, slice(a, b)), y.cpu().numpy().astype(self.spec.dtype), scalars

    # ------------------------------------------------------------------ end
    def finish(self, h5) -> None:
        from .diagnostics import finish_levels
        self.summary, self.certificates, self.worst_acceptance = finish_levels(self, h5)

    def report(self, path) -> None:
        from ..certify import report
        hmc = self.cfg.upscale.hmc
        log.info(f"[upscale] levels ({correction(self.cfg)}; acceptance of "
                 f"{'HMC trajectories' if hmc.trajectories else 'MH proposals'}, ESS/N and KL "
                 f"of the flow's proposals):\n" + "\n".join(self.summary))
        report([(Lp, c, self.temps) for Lp, c in zip(self.sizes, self.certificates)],
               self.spec.point_name)
        if hmc.trajectories and self.worst_acceptance < 0.3:
            log.warning(f"[upscale] latent HMC accepts only {self.worst_acceptance:.0%} of the "
                        f"trajectories somewhere: lower upscale.hmc.step_size "
                        f"(now {hmc.step_size})")
