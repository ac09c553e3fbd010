"""The Markov chains of the sample stage held by one rank: updates, tempering, observables.

Layout (see :class:`hpc_rg.parallel.comms.Comms`): the world is split into replica groups
of S = ``sample.ranks_per_replica`` ranks. Every configuration of a group is split into S
slabs along the first lattice axis; slab rank r owns planes ``[r*Lx, (r+1)*Lx)``,
``Lx = L/S``. Which chains a group holds is :func:`hpc_rg.mc.layout.chain_layout`.

Reproducibility: checkerboard updates and the hot start draw from
:class:`hpc_rg.rng.CounterRNG` keyed by the GLOBAL chain id and GLOBAL site, with counter
``2*sweep + colour`` (phi^4: ``4*sweep + 2*colour + k``), so results are bit-identical
for any number of slab ranks and groups. Cluster, HMC and Langevin updates use one
``torch.Generator`` per chain (:func:`hpc_rg.rng.torch_generator` keyed by the chain
id), also independent of the layout: the update functions take the list of per-chain
generators and run batched over all local chains, bit-identical to updating the chains
one at a time (see :mod:`hpc_rg.mc.hmc` for the one rounding-level caveat). Slab
reductions gather per-plane partial sums and add them in global plane order, so
energies (and tempering decisions) do not depend on the decomposition either.
"""

from __future__ import annotations

import numpy as np
import torch

from hpc_rg.errors import HpcRgError
from hpc_rg.mc import checkerboard as cb
from hpc_rg.mc import compiled
from hpc_rg.mc.kernels import choose_spin_kernel
from hpc_rg.mc.layout import chain_layout
from hpc_rg.mc.measurements import Measurements
from hpc_rg.mc.tempering import ParallelTempering, TemperingState
from hpc_rg.models import edwards_anderson as ea
from hpc_rg.models import ising, phi4
from hpc_rg.models.lattice import global_site_ids, neighbour_sum
from hpc_rg.parallel.halo import exchange_halo
from hpc_rg.rng import CounterRNG, derive_seed, torch_generator

__all__ = ["Ensemble"]

_GENERATOR_ALGORITHMS = ("wolff", "swendsen_wang", "hmc", "langevin")


class Ensemble(Measurements):
    """The chains of the sample stage held by this rank (its slab of each configuration).

    Parameters
    ----------
    cfg : hpc_rg.config.Config
        Validated run configuration (sections ``run``, ``model``, ``sample``).
    comms : hpc_rg.parallel.comms.Comms
        World / slab / across communicators of this rank.
    device : torch.device or str
        Where the configurations live.

    Attributes
    ----------
    chain_ids : int64 array, shape (B,)
        Global chain ids of the local chains (ascending).
    temp_index : int64 array, shape (B,)
        Current temperature (coupling) index of each chain; changes under tempering.
    d_indices : int64 array, shape (D_local,)
        Edwards-Anderson: the disorder samples of this group (empty otherwise).
    x0 : int
        Global index of this slab's first plane along the first lattice axis.
    local_shape : tuple of int
        ``(Lx, L, ..., L)``, the lattice shape of this rank's slab.
    sweeps_done : int
        Sweeps done by every chain (global sweep counter; keys the random streams).

    Notes
    -----
    One *sweep* is: a checkerboard sweep (both colours) for ``metropolis``/``heatbath``;
    one cluster update per chain for ``wolff``/``swendsen_wang`` (for phi^4 ``wolff``, a
    Metropolis checkerboard sweep followed by one embedded-Ising Wolff flip, since the
    cluster move alone leaves |phi| unchanged); one trajectory for ``hmc``; one step for
    ``langevin``. Parallel tempering (Hukushima & Nemoto 1996) attempts exchanges after
    every ``tempering.every`` sweeps, alternating even and odd temperature pairs.

    phi^4 is sampled in the Bauer normalisation ``S = sum (1-2 lam) phi^2 + lam phi^4 -
    2 kappa sum phi_x phi_{x+mu}``; with ``parametrization: bachtis`` each grid point
    ``mu2`` is converted by :func:`hpc_rg.models.phi4.deck_couplings`, and
    :meth:`configs` / :meth:`measure` report the Bachtis field ``Phi = scale * phi``
    (the action is the same number in both normalisations).
    """

    def __init__(self, cfg, comms, device="cpu"):
        m, s = cfg.model, cfg.sample
        self.cfg, self.comms = cfg, comms
        self.device = torch.device(device)
        self.model, self.algorithm = m.name, s.algorithm
        self.spec = m.spec
        self.dims, self.L = int(m.dims), int(s.L)
        self.seed = int(cfg.run.seed)
        self.grid = np.asarray(cfg.parameter_grid, dtype=np.float64)
        T = self.T = len(self.grid)
        self.slab = comms.slab
        S = self.n_slabs = self.slab.Get_size()
        if self.L % S or self.L // S < 2:
            raise HpcRgError(f"sample.L={self.L} cannot be split into {S} slabs of at least "
                             f"2 planes; choose ranks_per_replica dividing L/2")
        Lx = self.L // S
        self.x0 = self.slab.Get_rank() * Lx
        self.local_shape = (Lx,) + (self.L,) * (self.dims - 1)
        self.n_sites = self.L ** self.dims
        if self.algorithm in ("wolff", "swendsen_wang", "hmc", "langevin") and S > 1:
            raise HpcRgError(f"sample.algorithm={self.algorithm} is not domain-decomposed; "
                             f"use sample.ranks_per_replica: 1")
        if "h" in self.spec.keys and self.algorithm in ("wolff", "swendsen_wang") and m.h != 0:
            raise HpcRgError(f"sample.algorithm={self.algorithm} needs model.h=0 (got {m.h}); "
                             f"use metropolis or heatbath with an external field")

        # ---------------------------------------------------------- chain layout
        layout = chain_layout(cfg, T, comms.n_groups, comms.group)
        self.R, self.n_ladders = layout.replicas, layout.n_ladders
        self.d_indices, self.chain_ids = layout.d_indices, layout.chain_ids
        self.temp_index = self.chain_ids % T
        self.sweeps_done = 0
        self.B = len(self.chain_ids)

        # ---------------------------------------------------------- parameters
        if self.spec.continuous:
            conv = [phi4.deck_couplings(m, point, self.dims) for point in self.grid]
            self._kappa_t = np.array([c[0] for c in conv])
            self._lam_t = np.array([c[1] for c in conv])
            self._scale_t = np.array([c[2] for c in conv])
            self.dtype = torch.float64 if self.algorithm in ("hmc", "langevin") else torch.float32
        else:
            self._beta_t = 1.0 / self.grid
            self.dtype = torch.float32
        self._refresh_params()

        # ---------------------------------------------------------- randomness, start
        dev = self.device
        chain_t = torch.as_tensor(self.chain_ids, dtype=torch.int64)
        site_ids = global_site_ids((self.L,) * self.dims, self.x0, self.x0 + Lx, device=dev)
        u0 = CounterRNG(derive_seed(self.seed, "init"), chain_t, site_ids, dev).uniform(0)
        if self.spec.continuous:
            self.x = (2.0 * u0 - 1.0).to(self.dtype)
        else:
            self.x = torch.where(u0 < 0.5, -1.0, 1.0).to(self.dtype)
        self._rng = CounterRNG(derive_seed(self.seed, "mc"), chain_t, site_ids, dev)
        self._masks = cb.colour_masks(self.local_shape, self.x0, dev)
        self._gens = None
        if self.algorithm in _GENERATOR_ALGORITHMS:
            self._gens = [torch_generator(self.seed, self.algorithm, int(u), device=dev)
                          for u in self.chain_ids]

        # ---------------------------------------------------------- disorder
        self._J = self._J_int = None
        Jd = local_d = None
        if self.spec.disordered:
            Jd = [ea.couplings(self.L, self.dims, m.disorder, self.seed, int(d),
                               dtype=torch.float32, device=dev) for d in self.d_indices]
            shape = (self.dims,) + (self.L,) * self.dims
            Jd = torch.stack(Jd) if Jd else torch.zeros((0,) + shape, device=dev)
            local_d = torch.as_tensor(self.chain_ids // (T * self.R) - (
                self.d_indices[0] if len(self.d_indices) else 0), device=dev)
            J = Jd[local_d]  # (B, d, L, ..., L)
            if S > 1:  # slab with one ghost plane on each side of the first lattice axis
                rows = torch.arange(self.x0 - 1, self.x0 + Lx + 1, device=dev) % self.L
                self._J = J.index_select(2, rows).contiguous()
                self._J_int = self._J[:, :, 1:-1]
            else:
                self._J = self._J_int = J.contiguous()

        # ---------------------------------------------------------- spin kernel
        self._kernel = None  # compiled float checkerboard sweep (bit-identical to torch)
        self._msc = None  # multi-spin-coded chains (hpc_rg.mc.msc), when chosen
        self.kernel, self.kernel_reason = "torch", f"sample.kernel: {s.kernel}"
        if not self.spec.continuous and self.algorithm in cb.RULES:
            choice = choose_spin_kernel(s.kernel, m, self.algorithm, dev)
            self.kernel, self.kernel_reason = choice.kernel, choice.why
            if choice.kernel == "msc":
                self._msc = self._make_msc(choice.implementation, Jd, local_d)
            elif choice.kernel == "compiled":
                self._kernel = compiled.compiled_or_none(
                    device=dev, rule=self.algorithm, global_shape=(self.L,) * self.dims,
                    seed=self._rng.seed, chain_ids=self.chain_ids, x0=self.x0, n0=Lx,
                    model=self.model, J=m.J, h=m.h, couplings=Jd, coupling_index=local_d)
                if self._kernel is None:
                    self.kernel, self.kernel_reason = "torch", "the compiled kernel is unavailable"

        # ---------------------------------------------------------- tempering
        tcfg = s.tempering
        self._pt = None
        self._every = int(tcfg.every)
        if tcfg.enabled:
            state = TemperingState(self.n_ladders, 1.0 / self.grid, self.seed, tcfg.warn_below)
            self._pt = ParallelTempering(state, self.chain_ids, comms.across,
                                         emit_warnings=comms.is_root)

    def _make_msc(self, implementation: str, Jd, local_d):
        """The multi-spin-coded chains, started from the hot start ``self.x`` (which it then
        replaces: ``self.x`` is None while the chains live as bits)."""
        from hpc_rg.mc.msc.chains import MscChains

        m = self.cfg.model
        J = below = None
        if self.spec.disordered:
            J = self._J_int
            if self.n_slabs > 1:
                below = self._J[:, 0, 0]
        elif float(m.J) < 0:  # antiferromagnet: every bond J = -1 in units of |J|
            J = -torch.ones((self.B, self.dims) + self.local_shape, device=self.device)
        msc = MscChains(self.chain_ids, self.x, J, below, self.algorithm,
                        derive_seed(self.seed, "msc"), (self.L,) * self.dims, self.x0,
                        self.slab, implementation)
        self.x = None
        self._J = self._J_int = None  # packed into the chains
        # inverse temperatures in units of 1/|J| by temperature index; chains pick them by label
        self._msc_betas = self._beta_t * (1.0 if self.spec.disordered else abs(float(m.J)))
        msc.set_temperatures(self._msc_betas, self.temp_index)
        self._beta = None  # the float kernels' per-chain betas: the chains hold theirs as thresholds
        return msc

    # ================================================================ parameters
    def _refresh_params(self) -> None:
        """Per-chain parameter tensors (B,) from the current temperature labels."""
        ti = self.temp_index
        if self.spec.continuous:
            self._kappa = torch.as_tensor(self._kappa_t[ti], device=self.device)
            self._lam = torch.as_tensor(self._lam_t[ti], device=self.device)
            self._scale = self._scale_t[ti]
        elif getattr(self, "_msc", None) is not None:
            self._msc.set_temperatures(self._msc_betas, ti)  # the float betas are not used
        else:
            self._beta = torch.as_tensor(self._beta_t[ti], dtype=torch.float32,
                                         device=self.device)

    def _energy_couplings(self) -> dict:
        """Keyword couplings of :func:`hpc_rg.models.energy.energy_density` for the local
        chains at their current parameter points."""
        if self.spec.continuous:
            return {"kappa": self._kappa, "lam": self._lam}
        if self.spec.disordered:
            return {"J": self._J_int}
        return {"J": self.cfg.model.J, "h": self.cfg.model.h}

    # ================================================================ updates
    def sweep(self, n: int = 1) -> None:
        """Advance every local chain by ``n`` sweeps (collective over the world when slabs
        or tempering are involved: every rank must call it with the same ``n``)."""
        if self._msc is not None:
            return self._msc_sweeps(int(n))
        for _ in range(int(n)):
            self._one_sweep(self.sweeps_done)
            self.sweeps_done += 1
            if self._pt is not None and self.sweeps_done % self._every == 0:
                self._exchange(self.sweeps_done // self._every - 1)

    def _msc_sweeps(self, n: int) -> None:
        """``n`` sweeps of the multi-spin-coded chains, in runs between tempering exchanges."""
        while n > 0:
            run = n
            if self._pt is not None:
                run = min(n, self._every - self.sweeps_done % self._every)
            exchange = self._pt is not None and (self.sweeps_done + run) % self._every == 0
            unsat = self._msc.sweep(self.sweeps_done, run, unsatisfied=exchange)
            self.sweeps_done += run
            n -= run
            if exchange:
                self._exchange(self.sweeps_done // self._every - 1, self._msc_energy(unsat))

    def _one_sweep(self, k: int) -> None:
        alg = self.algorithm
        if not self.spec.continuous:
            if alg in cb.RULES:
                self._checkerboard_spins(k)
            else:
                self._ising_cluster()
        elif alg == "metropolis":
            self._checkerboard_phi4(k)
        elif alg == "wolff":
            self._checkerboard_phi4(k)
            self._phi4_wolff()
        elif alg == "hmc":
            self._phi4_hmc()
        elif alg == "langevin":
            self._phi4_langevin()
        else:  # config validation prevents this
            raise HpcRgError(f"sample.algorithm={alg} is not available for model {self.model}")

    def _with_halo(self, x: torch.Tensor):
        """(source, halo flag) for the models' neighbour functions."""
        if self.n_slabs > 1:
            return exchange_halo(x, self.slab), True
        return x, False

    def _field(self, x: torch.Tensor) -> torch.Tensor:
        src, halo = self._with_halo(x)
        if self.spec.disordered:
            return ea.local_field(src, self._J, halo=halo)
        m = self.cfg.model
        return ising.local_field(src, J=m.J, h=m.h, halo=halo)

    def _checkerboard_spins(self, k: int) -> None:
        if self._kernel is not None:
            self._kernel.sweep(self.x, self._beta, k, halo=self._ghosts if self.n_slabs > 1 else None)
            return
        # one hash draw per sweep: site x gets uniform(2k + colour(x)), as per colour
        u = cb.sweep_uniforms(self._rng, k, self.x0, dtype=torch.float32)
        for colour in (0, 1):
            field = self._field(self.x)
            cb.update_colour(self.x, field, self._beta, u, self._masks[colour], self.algorithm)

    def _ghosts(self, x: torch.Tensor) -> torch.Tensor:
        """Ghost planes of the slab (collective over it): ``[:, 0]`` below, ``[:, -1]`` above."""
        return exchange_halo(torch.stack((x[:, 0], x[:, -1]), 1), self.slab)

    def _checkerboard_phi4(self, k: int) -> None:
        dt = torch.float64 if self.dtype == torch.float64 else torch.float32
        width = self.cfg.sample.metropolis_width
        u_prop = cb.sweep_uniforms(self._rng, k, self.x0, dtype=dt, k=0)
        u_acc = cb.sweep_uniforms(self._rng, k, self.x0, dtype=dt, k=1)
        for colour in (0, 1):
            src, halo = self._with_halo(self.x)
            nn = neighbour_sum(src, halo=halo)
            cb.update_colour_phi4(self.x, nn, self._kappa, self._lam, width, u_prop, u_acc,
                                  self._masks[colour])

    def _ising_cluster(self) -> None:
        from hpc_rg.mc import cluster

        if not self.B:
            return
        # float64 beta per chain (not the float32 self._beta of the checkerboard kernels)
        beta = torch.as_tensor(self._beta_t[self.temp_index], dtype=torch.float64,
                               device=self.device)
        J = self.cfg.model.J
        if self.algorithm == "wolff":
            self.x, _ = cluster.wolff_update(self.x, beta, self._gens, J=J)
        else:
            self.x = cluster.swendsen_wang_update(self.x, beta, self._gens, J=J)

    def _phi4_wolff(self) -> None:
        from hpc_rg.mc import cluster

        if self.B:
            self.x, _ = cluster.phi4_wolff_update(self.x, self._kappa, self._gens)

    def _phi4_hmc(self) -> None:
        from hpc_rg.mc.hmc import hmc_update

        h = self.cfg.sample.hmc
        if self.B:
            self.x = hmc_update(self.x, self._kappa, self._lam, h.step_size, h.steps,
                                self._gens).phi

    def _phi4_langevin(self) -> None:
        from hpc_rg.mc.langevin import langevin_update

        lc = self.cfg.sample.langevin
        if self.B:
            self.x = langevin_update(self.x, self._kappa, self._lam, lc.step_size, self._gens,
                                     metropolize=lc.metropolized).phi

    # ================================================================ tempering
    def _exchange(self, exchange_index: int, energy=None) -> None:
        energy = self.energies() if energy is None else energy
        self.temp_index = self._pt.exchange(energy, exchange_index)
        self._refresh_params()

    def tempering_stats(self) -> dict:
        """Replica-exchange statistics (identical on every rank); ``{}`` without tempering.

        Returns
        -------
        dict
            ``acceptance`` (T-1,) float, ``attempts`` and ``accepts`` (T-1,) int (summed
            over ladders), ``round_trips`` (n_ladders,) int (lowest -> highest -> lowest
            temperature journeys per ladder, summed over its members), ``exchanges`` int.
        """
        return {} if self._pt is None else self._pt.state.stats()

    # ================================================================ state
    def state_dict(self) -> dict:
        """Everything needed to continue bit-identically (this rank's part)."""
        return {
            "chain_ids": self.chain_ids.copy(), "x0": self.x0,
            "local_shape": tuple(self.local_shape), "kernel": self.kernel,
            "config": None if self._msc is not None else self.x.detach().cpu().clone(),
            "msc": None if self._msc is None else self._msc.state_dict(),
            "sweeps_done": int(self.sweeps_done), "temp_index": self.temp_index.copy(),
            "tempering": None if self._pt is None else self._pt.state.state_dict(),
            "generators": None if self._gens is None else [g.get_state() for g in self._gens],
        }

    def load_state_dict(self, d: dict) -> None:
        """Restore :meth:`state_dict` output saved by a rank with the same layout."""
        if not np.array_equal(np.asarray(d["chain_ids"]), self.chain_ids) or \
                int(d["x0"]) != self.x0 or tuple(d["local_shape"]) != self.local_shape:
            raise HpcRgError("the saved sampler state belongs to another rank layout (chains "
                             "or slab differ); resume with the same number of ranks and "
                             "sample.ranks_per_replica")
        saved_msc = d.get("msc") is not None
        if saved_msc != (self._msc is not None):
            raise HpcRgError(f"the saved sampler state was made by the {d.get('kernel', 'float')} "
                             f"kernel and this run uses {self.kernel} ({self.kernel_reason}); "
                             f"resume with the same sample.kernel")
        if self._msc is not None:
            self._msc.load_state_dict(d["msc"])
        else:
            self.x = d["config"].to(device=self.device, dtype=self.dtype).clone()
        self.sweeps_done = int(d["sweeps_done"])
        self.temp_index = np.array(d["temp_index"], dtype=np.int64)
        if self._pt is not None:
            self._pt.state.load_state_dict(d["tempering"])
        if self._gens is not None:
            for g, st in zip(self._gens, d["generators"]):
                g.set_state(st)
        self._refresh_params()
