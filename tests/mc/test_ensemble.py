"""The sample-stage ensemble: layout, observables, resume, decomposition and physics.

Fast tests run in CI (plain and under ``mpirun -n 2 ... --with-mpi -m mpi``); the
``slow`` ones are longer versions of the physics checks (dev/nightly.sh).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from mpi4py import MPI

from hpc_rg.config import config_from_dict
from hpc_rg.mc.ensemble import Ensemble
from hpc_rg.models import edwards_anderson as ea
from hpc_rg.models import ising, phi4
from hpc_rg.parallel.comms import Comms


def make_cfg(model="ising", dims=2, L=8, temps=(2.0, 2.5), algorithm="metropolis",
             pt=False, every=1, chains=1, seed=7, model_extra=None, sample_extra=None,
             rpr=1, kernel="torch"):
    """A config for the sampler tests; ``kernel`` torch by default (the reference kernel the
    compiled one is compared with), None for the deck default (auto)."""
    m = {"name": model, "dims": dims, **(model_extra or {})}
    s = {"L": L, "algorithm": algorithm, "ranks_per_replica": rpr,
         "tempering": {"enabled": pt, "every": every}, **({"kernel": kernel} if kernel else {}),
         **(sample_extra or {})}
    if model == "phi4":
        s["couplings"] = list(temps)
    else:
        s["temperatures"] = list(temps)
    if model != "edwards_anderson":
        s["chains"] = chains
    return config_from_dict({"run": {"seed": seed}, "model": m, "sample": s})


def self_ensemble(cfg):
    return Ensemble(cfg, Comms(MPI.COMM_SELF, 1), "cpu")


# =========================================================================== layout
def test_chain_layout_clean_and_ea():
    e = self_ensemble(make_cfg(chains=3, temps=(1.5, 2.0, 2.5, 3.0)))
    assert e.chain_ids.tolist() == list(range(12))
    assert e.temp_index.tolist() == [0, 1, 2, 3] * 3
    assert e.local_shape == (8, 8) and e.x0 == 0 and e.configs().dtype == np.int8
    cfg = make_cfg("edwards_anderson", dims=3, L=4, temps=(1.0, 2.0, 3.0),
                   model_extra={"disorder_samples": 2, "replicas": 3})
    e = self_ensemble(cfg)
    assert e.chain_ids.tolist() == list(range(2 * 3 * 3)) and e.d_indices.tolist() == [0, 1]
    d, q = e.pair_observables()
    assert set(q) == {"overlap", "link_overlap"} and q["overlap"].shape == (2, 3, 3)
    assert self_ensemble(make_cfg()).pair_observables()[1] == {}


# =========================================================================== observables
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_measure_matches_model_energies(dims):
    L = 6 if dims < 3 else 4
    e = self_ensemble(make_cfg(dims=dims, L=L, chains=2, model_extra={"J": 0.8, "h": 0.3}))
    e.sweep(3)
    s = torch.as_tensor(e.configs()).float()
    m = e.measure()
    N = L ** dims
    assert np.allclose(m["energy"], ising.energy(s, 0.8, 0.3).numpy() / N, rtol=0, atol=1e-12)
    assert np.allclose(m["magnetization"], s.sum(dim=tuple(range(1, dims + 1))).numpy() / N)
    assert np.allclose(e.energies() / N, m["energy"])


def test_ea_observables_match_model():
    cfg = make_cfg("edwards_anderson", dims=3, L=4, temps=(0.8, 1.5),
                   model_extra={"disorder_samples": 2, "replicas": 3, "disorder": "gaussian"})
    e = self_ensemble(cfg)
    e.sweep(4)
    s = torch.as_tensor(e.configs()).double()
    B = len(e.chain_ids)
    J = torch.stack([ea.couplings(4, 3, "gaussian", 7, int(u // (2 * 3))) for u in e.chain_ids])
    assert np.allclose(e.measure()["energy"], ea.energy(s, J).numpy() / 64, atol=1e-10)
    d, pq = e.pair_observables()
    sr = s.view(2, 3, 2, 4, 4, 4)  # (disorder, replica, member) -- no PT: member == temp
    pairs = [(0, 1), (0, 2), (1, 2)]
    for p, (a, b) in enumerate(pairs):
        for t in range(2):
            ref_q = ea.overlap(sr[:, a, t], sr[:, b, t]).numpy()
            ref_ql = ea.link_overlap(sr[:, a, t], sr[:, b, t]).numpy()
            assert np.allclose(pq["overlap"][:, t, p], ref_q)
            assert np.allclose(pq["link_overlap"][:, t, p], ref_ql)
    assert B == 12


@pytest.mark.parametrize("param", ["bauer", "bachtis"])
def test_phi4_observables(param):
    extra = {"parametrization": param, "kappa": 0.5 if param == "bachtis" else 0.2,
             "lam": 0.5 if param == "bachtis" else 0.02}
    temps = (-1.0, -0.5) if param == "bachtis" else (0.1, 0.2)
    e = self_ensemble(make_cfg("phi4", L=6, temps=temps, model_extra=extra))
    e.sweep(3)
    m = e.measure()
    Phi = torch.as_tensor(e.configs()).double()
    assert e.configs().dtype == np.float32
    assert np.allclose(m["phi_mean"], Phi.mean(dim=(1, 2)).numpy(), atol=1e-6)
    assert np.allclose(m["phi2_mean"], (Phi ** 2).mean(dim=(1, 2)).numpy(), rtol=1e-5)
    S_int = phi4.action(e.x.double(), e._kappa, e._lam).numpy()
    assert np.allclose(m["action"], S_int) and np.allclose(m["energy"], S_int / 36)
    if param == "bachtis":
        kL, lamL = extra["kappa"], extra["lam"]
        mu2 = np.asarray(temps)[e.temp_index]
        ref = [phi4.bachtis_action(Phi[b:b + 1], kL, mu2[b], lamL).item() for b in range(2)]
        assert np.allclose(m["action"], ref, rtol=1e-5)


def test_sweep_equals_single_domain_checkerboard_kernel():
    """Without slabs the ensemble's sweep is the single-domain checkerboard.sweep with the
    stream keyed by (derive_seed(seed, "mc"), global chain id, global site)."""
    from functools import partial

    from hpc_rg.mc.checkerboard import sweep
    from hpc_rg.models.lattice import global_site_ids
    from hpc_rg.rng import CounterRNG, derive_seed

    e = self_ensemble(make_cfg(algorithm="heatbath", chains=2, model_extra={"h": 0.1}))
    x = torch.as_tensor(e.configs()).float()
    rng = CounterRNG(derive_seed(7, "mc"), torch.as_tensor(e.chain_ids), global_site_ids((8, 8)))
    beta = torch.as_tensor(1.0 / np.asarray([2.0, 2.5])[e.temp_index], dtype=torch.float32)
    for k in range(5):
        sweep(x, partial(ising.local_field, J=1.0, h=0.1), beta, rng, k, "heatbath")
    e.sweep(5)
    assert np.array_equal(x.to(torch.int8).numpy(), e.configs())


# =========================================================================== resume
@pytest.mark.parametrize("case", [
    dict(model="ising", algorithm="metropolis", pt=True, chains=2, temps=(2.0, 2.3, 2.6)),
    dict(model="ising", algorithm="wolff", pt=True, temps=(2.0, 2.5)),
    dict(model="edwards_anderson", dims=3, L=4, algorithm="heatbath", pt=True,
         temps=(0.5, 1.0, 1.5), model_extra={"disorder_samples": 2}),
    dict(model="phi4", algorithm="hmc", temps=(0.1, 0.2)),
    dict(model="phi4", algorithm="wolff", temps=(0.2, 0.3)),
    dict(model="ising", dims=3, L=4, algorithm="metropolis", pt=True, chains=3,
         temps=(3.5, 4.5, 5.5), kernel="msc"),
    dict(model="edwards_anderson", dims=3, L=4, algorithm="heatbath", pt=True, kernel="msc",
         temps=(0.5, 1.0, 1.5), model_extra={"disorder_samples": 2, "disorder": "pm1"}),
])
def test_state_dict_continues_bit_identically(case):
    cfg = make_cfg(**case, every=2)
    a = self_ensemble(cfg)
    a.sweep(5)
    saved = a.state_dict()
    a.sweep(7)
    b = self_ensemble(cfg)
    b.load_state_dict(saved)
    b.sweep(7)
    assert np.array_equal(a.configs(), b.configs())
    assert np.array_equal(a.temp_index, b.temp_index) and a.sweeps_done == b.sweeps_done == 12
    sa, sb = a.tempering_stats(), b.tempering_stats()
    assert set(sa) == set(sb)
    for k in sa:
        assert np.array_equal(np.asarray(sa[k]), np.asarray(sb[k]), equal_nan=True)


def test_state_dict_rejects_other_layout():
    a = self_ensemble(make_cfg(chains=2))
    b = self_ensemble(make_cfg(chains=3))
    with pytest.raises(Exception, match="layout"):
        b.load_state_dict(a.state_dict())


def test_state_dict_rejects_other_kernel_family():
    """A float-kernel checkpoint cannot continue as multi-spin-coded chains (or back)."""
    a = self_ensemble(make_cfg(chains=2))
    b = self_ensemble(make_cfg(chains=2, kernel="msc"))
    with pytest.raises(Exception, match="same sample.kernel"):
        b.load_state_dict(a.state_dict())
    with pytest.raises(Exception, match="same sample.kernel"):
        a.load_state_dict(b.state_dict())


# =========================================================================== multi-spin coding
MSC_CASES = [
    dict(model="ising", dims=1, L=16, chains=5, temps=(0.8, 1.2, 2.0)),
    dict(model="ising", dims=2, L=8, chains=5, temps=(2.0, 2.3, 2.6, 3.0), algorithm="heatbath"),
    dict(model="ising", dims=3, L=4, chains=3, temps=(4.0, 4.5, 5.0), model_extra={"J": -1.0}),
    dict(model="edwards_anderson", dims=2, L=4, temps=(0.6, 1.0, 1.6),
         model_extra={"disorder_samples": 3, "disorder": "pm1", "replicas": 3}),
    dict(model="edwards_anderson", dims=3, L=4, temps=(0.6, 1.0, 1.6, 2.0, 2.4),
         model_extra={"disorder_samples": 7, "disorder": "pm1"}),  # 140 chains: 3 words
]


def _float_view(e):
    """The float-path Measurements of the same configurations (couplings unpacked)."""
    from hpc_rg.mc.msc import layout

    msc = e._msc
    e._msc, e.x = None, torch.as_tensor(e_configs := msc.spins_pm(torch.int8)).float()
    if msc.J is not None and e.spec.disordered:
        e._J = e._J_int = layout.unpack_couplings(msc.J)[msc.rows]
    return msc, e_configs


@pytest.mark.parametrize("case", MSC_CASES)
def test_msc_observables_equal_the_float_path(case):
    """Energies, magnetisations, overlaps and link overlaps from bit counts == the float
    Measurements on the unpacked configurations, exactly; tempering moved labels."""
    e = self_ensemble(make_cfg(**case, pt=True, every=1, kernel="msc"))
    assert e.kernel == "msc" and e.x is None
    e.sweep(9)
    m, (d, p), c = e.measure(), e.pair_observables(), e.configs()
    assert c.dtype == np.int8 and c.shape == (e.B,) + e.local_shape
    assert set(np.unique(c)) <= {-1, 1}
    _float_view(e)
    assert np.array_equal(e.configs(), c)
    for k, v in e.measure().items():
        assert np.array_equal(m[k], v), k
    for k, v in e.pair_observables()[1].items():
        assert np.array_equal(p[k], v), k
    assert e.tempering_stats()["accepts"].sum() > 0


@pytest.mark.parametrize("case", MSC_CASES[1:4:2])
def test_msc_torch_and_compiled_chains_are_bit_identical(case):
    """The torch version of the multi-spin-coded chains (the CUDA path) == the compiled one,
    tempering included."""
    a = self_ensemble(make_cfg(**case, pt=True, every=2, kernel="msc"))
    b = self_ensemble(make_cfg(**case, pt=True, every=2, kernel="msc"))
    b._msc.impl = "torch"
    assert a._msc.impl == "compiled"
    a.sweep(11)
    b.sweep(11)
    assert np.array_equal(a.configs(), b.configs()) and np.array_equal(a.temp_index, b.temp_index)


def test_msc_sweep_equals_the_standalone_kernel():
    """Without tempering the ensemble's sweep is :func:`hpc_rg.mc.msc.sweep_torch.sweep` on the
    lane map chain c -> lane c % 64 of word c // 64, seed derive_seed(seed, "msc")."""
    from hpc_rg.mc.msc import layout, sweep_torch
    from hpc_rg.models.lattice import global_site_ids
    from hpc_rg.rng import derive_seed

    temps = (2.0, 2.5)
    e = self_ensemble(make_cfg(chains=40, temps=temps, kernel="msc"))  # 80 chains: 2 words
    x = torch.ones((128, 8, 8), dtype=torch.int8)
    x[:80] = torch.as_tensor(e.configs())
    beta = torch.zeros(128, dtype=torch.float64)
    beta[:80] = torch.as_tensor(1.0 / np.asarray(temps)[e.temp_index])
    thr = layout.thresholds(beta.view(2, 64), 2, "metropolis")
    thr[1, :, 0] |= layout.pack_spins(torch.where(torch.arange(64) < 16, 1, -1).view(64, 1)).view(())
    words = layout.pack_spins(x)
    sweep_torch.sweep(words, None, thr, derive_seed(7, "msc"), torch.arange(2), global_site_ids((8, 8)),
                      0, n_sweeps=5)
    e.sweep(5)
    assert np.array_equal(layout.unpack_spins(words, torch.int8)[:80].numpy(), e.configs())


def test_tempering_moves_labels_and_reports_stats():
    e = self_ensemble(make_cfg(pt=True, every=1, chains=4, temps=(2.0, 2.2, 2.4, 2.6)))
    e.sweep(60)
    st = e.tempering_stats()
    assert st["exchanges"] == 60 and st["attempts"].tolist() == [120, 120, 120]
    assert st["acceptance"].shape == (3,) and st["round_trips"].shape == (4,)
    assert (np.sort(e.temp_index.reshape(4, 4), axis=1) == np.arange(4)).all()
    assert not np.array_equal(e.temp_index, e.chain_ids % 4)
    assert self_ensemble(make_cfg()).tempering_stats() == {}


# =========================================================================== MPI
def _gather_slabs(ens, comms):
    """Full configurations (B, L, ...) from the slabs of this rank's group."""
    parts = comms.slab.allgather(ens.configs())
    return np.concatenate(parts, axis=1)


def _gather_chains(ens, comms, values):
    """Dict chain id -> value over the groups (values indexed like ens.chain_ids)."""
    out = {}
    for ids, vals in comms.across.allgather((ens.chain_ids, values)):
        out.update({int(i): v for i, v in zip(ids, vals)})
    return out


DECOMPOSITION_CASES = [
    dict(model="ising", dims=2, L=8, algorithm="metropolis", chains=2),
    dict(model="ising", dims=2, L=8, algorithm="heatbath", chains=2, model_extra={"h": 0.2}),
    dict(model="ising", dims=3, L=4, algorithm="metropolis"),
    dict(model="ising", dims=3, L=4, algorithm="heatbath"),
    dict(model="edwards_anderson", dims=3, L=4, algorithm="metropolis", pt=True,
         temps=(0.6, 1.0, 1.6), model_extra={"disorder_samples": 2, "disorder": "gaussian"}),
    dict(model="edwards_anderson", dims=3, L=4, algorithm="heatbath", temps=(0.8, 1.6),
         model_extra={"disorder_samples": 1, "disorder": "pm1"}),
    dict(model="phi4", dims=2, L=8, algorithm="metropolis", temps=(0.2, 0.3)),
    dict(model="ising", dims=2, L=8, algorithm="metropolis", chains=2, kernel="msc"),
    dict(model="ising", dims=3, L=4, algorithm="heatbath", kernel="msc"),
    dict(model="edwards_anderson", dims=3, L=4, algorithm="metropolis", pt=True, kernel="msc",
         temps=(0.6, 1.0, 1.6), model_extra={"disorder_samples": 2, "disorder": "pm1"}),
]


@pytest.mark.mpi(min_size=2)
@pytest.mark.mpi4
@pytest.mark.parametrize("case", DECOMPOSITION_CASES)
def test_slab_decomposition_is_bit_identical(case):
    """One replica cut into as many slabs as there are ranks (2 or 4) == the 1-rank run, bit
    for bit (configurations, measurements, overlaps, tempering)."""
    world = MPI.COMM_WORLD
    P = world.Get_size()
    case = {**case, "L": max(case.get("L", 8), 2 * P)}  # at least 2 planes per slab
    cfgP = make_cfg(**case, rpr=P, every=3)
    comms = Comms(world, P)
    dec = Ensemble(cfgP, comms, "cpu")
    assert dec.local_shape[0] == cfgP.sample.L // P and dec.x0 == comms.slab_rank * dec.local_shape[0]
    ref = self_ensemble(make_cfg(**case, every=3))
    for n in (3, 8):
        dec.sweep(n)
        ref.sweep(n)
        assert np.array_equal(_gather_slabs(dec, comms), ref.configs())
        md, mr = dec.measure(), ref.measure()
        for k in mr:
            assert np.array_equal(md[k], mr[k]), k
        assert np.array_equal(dec.temp_index, ref.temp_index)
        pd, pr = dec.pair_observables()[1], ref.pair_observables()[1]
        for k in pr:
            assert np.array_equal(pd[k], pr[k]), k
    for k, v in ref.tempering_stats().items():
        assert np.array_equal(np.asarray(dec.tempering_stats()[k]), np.asarray(v), equal_nan=True)
    comms.free()


@pytest.mark.mpi(min_size=2)
@pytest.mark.mpi4
@pytest.mark.parametrize("case", [
    dict(model="ising", chains=1, temps=(2.0, 2.2, 2.4, 2.6, 2.8), algorithm="metropolis"),
    dict(model="ising", chains=3, temps=(2.0, 2.3, 2.6, 3.0), algorithm="heatbath"),
    dict(model="ising", chains=1, temps=(2.0, 2.3, 2.6), algorithm="swendsen_wang"),
    dict(model="edwards_anderson", dims=3, L=4, temps=(0.6, 1.0, 1.6),
         model_extra={"disorder_samples": 3}),
    # multi-spin coded: groups share words (chains not 64-aligned), idle lanes differ
    dict(model="ising", chains=7, temps=(2.0, 2.3, 2.6, 3.0), algorithm="heatbath", kernel="msc"),
    dict(model="edwards_anderson", dims=3, L=4, temps=(0.6, 1.0, 1.6), kernel="msc",
         model_extra={"disorder_samples": 9, "disorder": "pm1"}),
])
def test_tempering_over_groups_equals_one_rank(case):
    """PT with the ladders spread over 2 groups (one rank each) == the 1-rank run."""
    world = MPI.COMM_WORLD
    comms = Comms(world, 1)
    cfg = make_cfg(**case, pt=True, every=2)
    par = Ensemble(cfg, comms, "cpu")
    ref = self_ensemble(cfg)
    par.sweep(40)
    ref.sweep(40)
    got_cfg = _gather_chains(par, comms, par.configs())
    got_lab = _gather_chains(par, comms, par.temp_index)
    got_e = _gather_chains(par, comms, par.measure()["energy"])
    e_ref = ref.measure()["energy"]
    assert sorted(got_cfg) == ref.chain_ids.tolist()
    for b, u in enumerate(ref.chain_ids):
        assert np.array_equal(got_cfg[int(u)], ref.configs()[b])
        assert got_lab[int(u)] == ref.temp_index[b] and got_e[int(u)] == e_ref[b]
    sp, sr = par.tempering_stats(), ref.tempering_stats()
    for k in sr:
        assert np.array_equal(np.asarray(sp[k]), np.asarray(sr[k]), equal_nan=True)
    assert sr["accepts"].sum() > 0
    comms.free()


# =========================================================================== physics
def _by_temperature(values, temp_index, n_ladders, T):
    """(B,) chain values -> (n_ladders, T) values of the chain at each temperature."""
    who = np.argsort(temp_index.reshape(n_ladders, T), axis=1)
    return np.take_along_axis(np.asarray(values).reshape(n_ladders, T), who, axis=1)


@pytest.mark.parametrize("kernel", ["torch", "msc"])
@pytest.mark.parametrize("chains,sweeps", [(16, 3000), pytest.param(32, 40000, marks=pytest.mark.slow)])
def test_tempering_ising2d_matches_kaufman(chains, sweeps, kernel):
    """2D Ising L=8, PT over 6 temperatures in [2, 3]: energy and specific heat per site
    agree with Kaufman's exact finite-lattice result within 4 sigma at every temperature."""
    from hpc_rg.analysis.exact import ising2d_energy, ising2d_specific_heat
    from hpc_rg.analysis.observables import mean, specific_heat

    temps = tuple(np.linspace(2.0, 3.0, 6))
    T, L, every = len(temps), 8, 2
    e = self_ensemble(make_cfg(L=L, temps=temps, chains=chains, pt=True, every=every, seed=3,
                               kernel=kernel))
    e.sweep(300)
    series = np.empty((sweeps // every, chains, T))
    for k in range(len(series)):
        e.sweep(every)
        series[k] = _by_temperature(e.measure()["energy"], e.temp_index, chains, T)
    x = series.transpose(1, 0, 2).reshape(-1, T)  # chain after chain; bins within a chain
    n_bins = 4 * chains
    beta = 1.0 / np.asarray(temps)
    u, du = mean(x, n_bins=n_bins)
    c, dc = specific_heat(x, beta, L * L, n_bins=n_bins)
    u_ex = np.array([ising2d_energy(L, t) for t in temps])
    c_ex = np.array([ising2d_specific_heat(L, t) for t in temps])
    assert (du < 0.005).all() and (dc / c_ex < 0.02).all()  # errors small enough to mean something
    assert (np.abs(u - u_ex) < 4 * du).all(), (u, du, u_ex)
    assert (np.abs(c - c_ex) < 4 * dc).all(), (c, dc, c_ex)
    st = e.tempering_stats()
    assert (st["acceptance"] > 0.3).all() and st["round_trips"].min() > 0


def _ea_run(disorder, D, sweeps, seed, therm=150, every=4, tmin=0.8, T=5):
    cfg = make_cfg("edwards_anderson", dims=3, L=4, pt=True, every=every, seed=seed,
                   temps=tuple(np.geomspace(tmin, 2.0, T)),
                   model_extra={"disorder": disorder, "disorder_samples": D, "replicas": 2})
    e = self_ensemble(cfg)
    e.sweep(therm)
    n = sweeps // every
    en, ql, q = np.zeros((D, T)), np.zeros((D, T)), np.empty((n, D, T))
    for k in range(n):
        e.sweep(every)
        en += _by_temperature(e.measure()["energy"], e.temp_index, D * 2, T).reshape(D, 2, T).mean(1)
        pairs = e.pair_observables()[1]
        ql += pairs["link_overlap"][..., 0]
        q[k] = pairs["overlap"][..., 0]
    return np.asarray(cfg.parameter_grid), en / n, ql / n, q, e


def _jackknife_over_samples(x):
    """Mean over axis 0 and its delete-one jackknife error."""
    D = x.shape[0]
    loo = (x.sum(0) - x) / (D - 1)
    return x.mean(0), np.sqrt((D - 1) / D * ((loo - loo.mean(0)) ** 2).sum(0))


@pytest.mark.parametrize("D,sweeps", [(128, 600), pytest.param(512, 4000, marks=pytest.mark.slow)])
def test_ea_gaussian_energy_link_overlap_identity(D, sweeps):
    """3D Gaussian EA, L=4, PT: [<e>] = -(d/T)(1 - [<q_l>]) within 4 sigma at every T.

    Gaussian integration by parts, [J_b <s_i s_j>] = beta (1 - [<s_i s_j>^2]), summed
    over the dN bonds; q_l is the per-bond link overlap of two replicas (Katzgraber,
    Palassini & Young, PRB 63, 184422 (2001)). Only the disorder average obeys it, so
    sigma is the jackknife error over disorder samples.
    """
    temps, en, ql, q, ens = _ea_run("gaussian", D, sweeps, seed=11)
    delta = en + 3.0 / temps * (1.0 - ql)  # (D, T), zero on average
    m, s = _jackknife_over_samples(delta)
    assert (s < 0.05).all()
    assert (np.abs(m) < 4 * s).all(), (m, s)
    # q_l -> 1 and e -> ground state as T falls; sanity of the ordering
    assert np.all(np.diff(ql.mean(0)) < 0) and np.all(np.diff(en.mean(0)) > 0)


@pytest.mark.parametrize("D,sweeps", [(48, 600), pytest.param(256, 4000, marks=pytest.mark.slow)])
def test_ea_pm1_overlap_distribution_symmetric(D, sweeps):
    """3D +-J EA, L=4, PT: P(q) = P(-q) within errors (odd moments and a binned
    antisymmetry, jackknife over disorder samples)."""
    temps, en, ql, q, ens = _ea_run("pm1", D, sweeps, seed=3)
    for moment in (q, q ** 3):
        m, s = _jackknife_over_samples(moment.mean(0))
        assert (np.abs(m) < 4 * s).all(), (m, s)
    edges = np.linspace(0.0, 1.0, 6)
    for t in range(len(temps)):
        qt = q[:, :, t]
        asym = np.stack([((qt > lo) & (qt <= hi)).mean(0) - ((qt < -lo) & (qt >= -hi)).mean(0)
                         for lo, hi in zip(edges[:-1], edges[1:])], axis=1)  # (D, bins)
        m, s = _jackknife_over_samples(asym)
        ok = s > 0
        assert (np.abs(m[ok]) < 4 * s[ok]).all(), (t, m, s)
    # the low-temperature P(q) is broad (spin-glass-like), the high-temperature one narrow
    q2 = (q ** 2).mean(axis=(0, 1))
    assert q2[0] > 2 * q2[-1]


@pytest.mark.parametrize("disorder,kernel", [("gaussian", "torch"), ("pm1", "msc")])
@pytest.mark.parametrize("sweeps", [3000, pytest.param(60000, marks=pytest.mark.slow)])
def test_ea2d_sample_matches_enumeration(sweeps, disorder, kernel):
    """One 2D EA sample (Gaussian: float kernel; ±J: multi-spin coded), L=4, 4 replicas with
    PT: <e> and <q_l> at each temperature equal exact enumeration over the 2^16 states
    within 4 sigma."""
    from hpc_rg.analysis.observables import mean

    temps, R = (0.6, 1.0, 1.5), 4
    cfg = make_cfg("edwards_anderson", dims=2, L=4, temps=temps, pt=True, every=2, seed=5,
                   model_extra={"disorder_samples": 1, "replicas": R, "disorder": disorder},
                   kernel=kernel)
    e = self_ensemble(cfg)
    e.sweep(300)
    es, qls = [], []
    for _ in range(sweeps // 4):
        e.sweep(4)
        es.append(_by_temperature(e.measure()["energy"], e.temp_index, R, 3).mean(0))
        qls.append(e.pair_observables()[1]["link_overlap"][0].mean(-1))
    idx = np.arange(2 ** 16)
    states = torch.as_tensor(((idx[:, None] >> np.arange(16)) & 1) * 2 - 1,
                             dtype=torch.float64).view(-1, 4, 4)
    J = ea.couplings(4, 2, disorder, 5, 0, dtype=torch.float64)
    E = ea.energy(states, J)
    bonds = torch.stack([states * torch.roll(states, -1, 1), states * torch.roll(states, -1, 2)], 1)
    for i, t in enumerate(temps):
        w = torch.exp(-(E - E.min()) / t)
        w /= w.sum()
        e_ex = float((w * E).sum()) / 16
        ql_ex = float(((w[:, None, None, None] * bonds).sum(0) ** 2).mean())
        u, du = mean(np.array(es)[:, i], n_bins=32)
        q, dq = mean(np.array(qls)[:, i], n_bins=32)
        assert abs(u - e_ex) < 4 * du and du < 0.01, (t, u, du, e_ex)
        assert abs(q - ql_ex) < 4 * dq and dq < 0.02, (t, q, dq, ql_ex)
