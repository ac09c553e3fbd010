"""Tests for hpc_rg.mc.checkerboard: kernels, decomposition invariance, physics vs exact results."""

import functools
import math

import numpy as np
import pytest
import torch

from hpc_rg.analysis import exact
from hpc_rg.analysis.stats import jackknife
from hpc_rg.mc.checkerboard import (CheckerboardSampler, colour_masks, phi4_counter, spin_counter, sweep,
                                    sweep_phi4, sweep_uniforms, update_colour, update_colour_phi4)
from hpc_rg.models import edwards_anderson as ea
from hpc_rg.models import ising, phi4
from hpc_rg.models.lattice import checkerboard_mask, global_site_ids, neighbour_sum
from hpc_rg.rng import CounterRNG

from physics_helpers import (all_configs, assert_agrees, boltzmann_moments, brute_bond_energies, chain_major,
                             ea_energy, ea_field, ising_field, mean_and_c, run_phi4, run_spin_model)


pytestmark = pytest.mark.usefixtures("one_thread")


def rand_spins(B, shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (B,) + tuple(shape), generator=g) * 2 - 1).to(dtype)


# ------------------------------------------------------------------ kernels

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int8])
@pytest.mark.parametrize("rule", ["metropolis", "heatbath"])
def test_update_colour_touches_only_masked_sites(dtype, rule):
    s = rand_spins(4, (6, 6), dtype=dtype)
    before = s.clone()
    mask = checkerboard_mask((6, 6), 1)
    f = ising.local_field(s, 1.0, 0.3)
    for u in [torch.zeros(s.shape), torch.rand(s.shape), torch.full(s.shape, 1 - 2.0**-24)]:
        update_colour(s, f.to(torch.float64) if dtype == torch.float64 else f, 0.7, u, mask, rule)
        assert torch.equal(s[:, ~mask], before[:, ~mask])
        assert s.dtype == dtype and set(s.unique().tolist()) <= {-1, 1}


def test_metropolis_decisions():
    s = rand_spins(8, (4, 4))
    mask = checkerboard_mask((4, 4), 0)
    f = ising.local_field(s)
    dE = 2 * s * f
    s0 = s.clone()
    update_colour(s, f, 1.0, torch.zeros(s.shape), mask, "metropolis")  # u = 0: every masked site flips
    assert torch.equal(s[:, mask], -s0[:, mask])
    s = s0.clone()
    update_colour(s, f, 1.0, torch.full(s.shape, 1 - 2.0**-24), mask, "metropolis")  # only dE < 0 flips
    flipped = (s != s0)
    assert torch.equal(flipped, (dE < 0) & mask)
    s = s0.clone()
    update_colour(s, f, 1.0, torch.full(s.shape, 0.5 - 2.0**-24), mask, "metropolis")  # dE = 0: a = 1/2
    assert torch.equal(s != s0, (dE <= 0) & mask)
    s = s0.clone()
    update_colour(s, f, 1.0, torch.full(s.shape, 0.5), mask, "metropolis")
    assert torch.equal(s != s0, (dE < 0) & mask)
    # statistical: flip frequency = min(1, exp(-beta dE)) for one site in many chains
    B = 200_000
    s = torch.ones(B, 2, 2)
    f = torch.full(s.shape, 0.5)
    m = checkerboard_mask((2, 2), 0)
    update_colour(s, f, 1.0, torch.rand(s.shape, generator=torch.Generator().manual_seed(1)), m, "metropolis")
    frac = float((s[:, 0, 0] < 0).double().mean())
    assert frac == pytest.approx(math.exp(-1.0), abs=5 * math.sqrt(0.25 / B))


def test_heatbath_decisions():
    B = 200_000
    s = -torch.ones(B, 2, 2)
    f = torch.full(s.shape, 0.3)
    m = checkerboard_mask((2, 2), 1)
    update_colour(s, f, 2.0, torch.rand(s.shape, generator=torch.Generator().manual_seed(2)), m, "heatbath")
    frac_up = float((s[:, 0, 1] > 0).double().mean())
    assert frac_up == pytest.approx(1 / (1 + math.exp(-2 * 2.0 * 0.3)), abs=5 * math.sqrt(0.25 / B))
    assert torch.all(s[:, 0, 0] == -1)
    # zero temperature limit: align with the field
    s = rand_spins(3, (4, 4))
    f = torch.randn(s.shape)
    update_colour(s, f, 1e4, torch.rand(s.shape), checkerboard_mask((4, 4), 0), "heatbath")
    mask = checkerboard_mask((4, 4), 0)
    assert torch.equal(s[:, mask], torch.sign(f[:, mask]))


def test_per_chain_beta_and_unknown_rule():
    s = torch.ones(2, 4, 4)
    f = ising.local_field(s)  # = 4: flipping costs dE = 8
    u = torch.full(s.shape, 0.5)
    update_colour(s, f, torch.tensor([0.0, 10.0]), u, checkerboard_mask((4, 4), 0), "metropolis")
    assert torch.all(s[0][checkerboard_mask((4, 4), 0)] == -1) and torch.all(s[1] == 1)
    with pytest.raises(ValueError):
        update_colour(s, f, 1.0, u, checkerboard_mask((4, 4), 0), "glauber")
    with pytest.raises(ValueError):
        sweep(torch.ones(1, 5, 4), ising_field, 1.0, CounterRNG(0, [0], global_site_ids((5, 4))), 0)


def test_phi4_kernel_acceptance_and_mask():
    phi = torch.randn(3, 4, 4, dtype=torch.float64)
    before = phi.clone()
    mask = checkerboard_mask((4, 4), 0)
    nn = neighbour_sum(phi)
    acc = update_colour_phi4(phi, nn, 0.2, 0.1, 0.5, torch.rand(phi.shape), torch.zeros(phi.shape), mask)
    assert torch.equal(phi[:, ~mask], before[:, ~mask])
    assert torch.all(acc == 1.0)  # u_acc = 0 accepts everything
    assert not torch.equal(phi[:, mask], before[:, mask])
    phi = before.clone()
    acc = update_colour_phi4(phi, nn, 0.2, 0.1, 0.5, torch.rand(phi.shape), torch.full(phi.shape, 1 - 2.0**-30), mask)
    dS_sign = phi4.delta_action(before, phi, nn, 0.2, 0.1)
    assert torch.all(dS_sign <= 0)  # only downhill moves pass with u_acc -> 1


# ------------------------------------------------------------------ decomposition invariance

def decomposed_sweeps(x, n_sweeps, n_slabs, seed, B, kind, rule="metropolis", J=None, beta=0.4):
    """Emulate a slab-decomposed run: each slab pads ghosts, computes in halo mode, draws with global ids."""
    shape = tuple(x.shape[1:])
    L = shape[0]
    bounds = [(r * L // n_slabs, (r + 1) * L // n_slabs) for r in range(n_slabs)]
    rngs = [CounterRNG(seed, torch.arange(B), global_site_ids(shape, a, b)) for a, b in bounds]
    for t in range(n_sweeps):
        for c in (0, 1):
            padded = []
            for a, b in bounds:  # halo exchange (all slabs see the state before this colour)
                idx = torch.arange(a - 1, b + 1) % L
                padded.append(x.index_select(1, idx))
            for (a, b), rng, pad in zip(bounds, rngs, padded):
                local = x[:, a:b]
                mask = checkerboard_mask(local.shape[1:], c, origin=a)
                if kind == "phi4":
                    nn = neighbour_sum(pad, halo=True)
                    up = rng.uniform(phi4_counter(t, c, 0), dtype=torch.float64)
                    ua = rng.uniform(phi4_counter(t, c, 1), dtype=torch.float64)
                    update_colour_phi4(local, nn, 0.22, 0.3, 1.2, up, ua, mask)
                else:
                    if kind == "ising":
                        f = ising.local_field(pad, 1.0, 0.1, halo=True)
                    else:
                        idx = torch.arange(a - 1, b + 1) % L
                        f = ea.local_field(pad, J.index_select(1, idx), halo=True)
                    update_colour(local, f, beta, rng.uniform(spin_counter(t, c)), mask, rule)
    return x


@pytest.mark.parametrize("rule", ["metropolis", "heatbath"])
@pytest.mark.parametrize("shape", [(8, 6), (6, 4, 4)])
def test_decomposed_ising_bit_identical(rule, shape):
    B, seed = 3, 11
    x0 = rand_spins(B, shape, seed=1)
    ref = x0.clone()
    rng = CounterRNG(seed, torch.arange(B), global_site_ids(shape))
    field = functools.partial(ising.local_field, J=1.0, h=0.1)
    for t in range(4):
        sweep(ref, field, 0.4, rng, t, rule)
    for n_slabs in (2, 3) if shape[0] % 3 == 0 else (2,):
        got = decomposed_sweeps(x0.clone(), 4, n_slabs, seed, B, "ising", rule)
        assert torch.equal(got, ref)
    assert not torch.equal(ref, x0)


def test_decomposed_ea_gaussian_bit_identical():
    shape, B, seed = (6, 6, 4), 2, 5
    J = ea.couplings(6, 3, "gaussian", 1, 0)[:, :, :, :4].contiguous()  # (3, 6, 6, 4)
    x0 = rand_spins(B, shape, seed=2)
    ref = x0.clone()
    sampler = CheckerboardSampler(ea_field(J), CounterRNG(seed, torch.arange(B), global_site_ids(shape)))
    for t in range(4):
        sampler.sweep(ref, torch.tensor([0.3, 1.1]), t)
    got = decomposed_sweeps(x0.clone(), 4, 3, seed, B, "ea", J=J, beta=torch.tensor([0.3, 1.1]))
    assert torch.equal(got, ref)


def test_decomposed_phi4_bit_identical():
    shape, B, seed = (8, 4), 2, 9
    x0 = torch.randn((B,) + shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = x0.clone()
    rng = CounterRNG(seed, torch.arange(B), global_site_ids(shape))
    for t in range(3):
        sweep_phi4(ref, 0.22, 0.3, 1.2, rng, t)
    got = decomposed_sweeps(x0.clone(), 3, 4, seed, B, "phi4")
    assert torch.equal(got, ref)


def test_sweep_uniforms_match_per_colour_draws():
    shape = (6, 4)
    for a, b in [(0, 6), (2, 4), (3, 6)]:
        rng = CounterRNG(3, torch.arange(2), global_site_ids(shape, a, b))
        masks = colour_masks((b - a,) + shape[1:], a)
        for k in (None, 0, 1):
            u = sweep_uniforms(rng, 7, origin=a, k=k)
            for c in (0, 1):
                ref = rng.uniform(spin_counter(7, c) if k is None else phi4_counter(7, c, k))
                assert torch.equal(u[:, masks[c]], ref[:, masks[c]])


def test_chains_are_independent_of_batch_composition():
    shape = (8, 8)
    x = rand_spins(4, shape, seed=3)
    full = x.clone()
    sweep(full, ising_field, 0.44, CounterRNG(7, torch.arange(4), global_site_ids(shape)), 5)
    part = x[[3, 1]].clone()
    sweep(part, ising_field, 0.44, CounterRNG(7, torch.tensor([3, 1]), global_site_ids(shape)), 5)
    assert torch.equal(part, full[[3, 1]])


# ------------------------------------------------------------------ physics: fast versions

def test_ising_1d_ring_metropolis_vs_exact():
    N, T = 32, 1.0
    e = run_spin_model((N,), T, "metropolis", ising_field, B=64, n_therm=200, n_meas=2000, seed=21)
    em, ee, c, ce = mean_and_c(e, 1 / T, N)
    assert_agrees(em, ee, exact.ising1d_energy(N, T), max_rel_err=0.003, what="1D e")
    assert_agrees(c, ce, exact.ising1d_specific_heat(N, T), max_rel_err=0.03, what="1D c")


@pytest.mark.parametrize("rule", ["metropolis", "heatbath"])
@pytest.mark.parametrize("T", [2.0, 2.269185, 3.0])
def test_ising_2d_L8_vs_kaufman(rule, T):
    L = 8
    e = run_spin_model((L, L), T, rule, ising_field, B=64, n_therm=300, n_meas=1500, seed=31)
    em, ee, c, ce = mean_and_c(e, 1 / T, L * L)
    assert_agrees(em, ee, exact.ising2d_energy(L, T), max_rel_err=0.003, what=f"L=8 T={T} {rule} e")
    assert_agrees(c, ce, exact.ising2d_specific_heat(L, T), max_rel_err=0.03, what=f"L=8 T={T} {rule} c")


def test_ising_2d_L16_vs_kaufman():
    L, T = 16, 3.0
    e = run_spin_model((L, L), T, "heatbath", ising_field, B=64, n_therm=200, n_meas=1000, seed=41)
    em, ee, c, ce = mean_and_c(e, 1 / T, L * L)
    assert_agrees(em, ee, exact.ising2d_energy(L, T), max_rel_err=0.002, what="L=16 e")
    assert_agrees(c, ce, exact.ising2d_specific_heat(L, T), max_rel_err=0.03, what="L=16 c")


@pytest.fixture(scope="module")
def ea_4x4():
    J = ea.couplings(4, 2, "pm1", seed=3, sample_index=0)
    conf = all_configs(16).reshape(-1, 4, 4)
    return J, brute_bond_energies(conf, J.numpy())


@pytest.mark.parametrize("rule", ["metropolis", "heatbath"])
def test_ea_2d_4x4_vs_enumeration(ea_4x4, rule):
    J, E = ea_4x4
    T = 1.5
    e = run_spin_model((4, 4), T, rule, ea_field(J), B=64, n_therm=200, n_meas=1500, seed=51,
                       energy_fn=ea_energy(J), cold=False)
    em, ee, c, ce = mean_and_c(e, 1 / T, 16)
    e_ex, c_ex = boltzmann_moments(E, 1 / T, 16)
    assert_agrees(em, ee, e_ex, max_rel_err=0.005, what=f"EA e {rule}")
    assert_agrees(c, ce, c_ex, max_rel_err=0.05, what=f"EA c {rule}")


def test_phi4_free_field_vs_propagator():
    L, kappa = 8, 0.2
    x, acc = run_phi4((L, L), kappa, 0.0, 1.6, B=64, n_therm=200, n_meas=1000, seed=61, obs=phi4.mean_phi2)
    assert 0.3 < acc < 0.8
    m, err = jackknife(lambda a: a, chain_major(x), n_bins=64)
    assert_agrees(float(m), float(err), exact.free_field_phi2(L, 2, kappa), max_rel_err=0.005, what="<phi^2>")


def phi4_ring_transfer_matrix(N, kappa, lam, n_grid=801, cut=7.0):
    """<phi^2>, <phi^4> of the periodic 1D phi^4 chain by numerical transfer matrix."""
    x = np.linspace(-cut, cut, n_grid)
    h = x[1] - x[0]
    s = (1 - 2 * lam) * x**2 + lam * x**4
    T = h * np.exp(-0.5 * s[:, None] - 0.5 * s[None, :] + 2 * kappa * np.outer(x, x))
    w, V = np.linalg.eigh(T)
    wN = (w / w.max()) ** N
    z = wN.sum()
    m2 = (wN * ((V**2) * (x**2)[:, None]).sum(0)).sum() / z
    m4 = (wN * ((V**2) * (x**4)[:, None]).sum(0)).sum() / z
    return m2, m4


def test_phi4_interacting_1d_vs_transfer_matrix():
    N, kappa, lam = 16, 0.3, 0.5
    m2_ex, m4_ex = phi4_ring_transfer_matrix(N, kappa, lam)

    def obs(phi):
        p2 = (phi * phi)
        return torch.stack([p2.mean(1), (p2 * p2).mean(1)], dim=-1)

    x, acc = run_phi4((N,), kappa, lam, 1.5, B=64, n_therm=200, n_meas=1500, seed=71, obs=obs)
    for k, ex in [(0, m2_ex), (1, m4_ex)]:
        m, err = jackknife(lambda a: a, chain_major(x[:, :, k]), n_bins=64)
        assert_agrees(float(m), float(err), ex, max_rel_err=0.01, what=f"1D phi^4 moment {2 * k + 2}")


# ------------------------------------------------------------------ physics: slow versions

@pytest.mark.slow
@pytest.mark.parametrize("rule", ["metropolis", "heatbath"])
@pytest.mark.parametrize("T", [2.0, 2.269185, 3.0])
@pytest.mark.parametrize("L", [8, 16])
def test_ising_2d_vs_kaufman_long(L, T, rule):
    n_meas = 20000 if (L == 16 and abs(T - 2.269185) < 0.01) else 8000
    e = run_spin_model((L, L), T, rule, ising_field, B=64, n_therm=2000, n_meas=n_meas, seed=101 + L)
    em, ee, c, ce = mean_and_c(e, 1 / T, L * L)
    assert_agrees(em, ee, exact.ising2d_energy(L, T), max_rel_err=0.0015, what=f"L={L} T={T} {rule} e")
    assert_agrees(c, ce, exact.ising2d_specific_heat(L, T), max_rel_err=0.015, what=f"L={L} T={T} {rule} c")


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["metropolis", "heatbath"])
@pytest.mark.parametrize("T", [0.5, 1.0, 2.0])
def test_ising_1d_ring_long(rule, T):
    N = 32
    # at T = 0.5 pair creation costs exp(-8): energy fluctuations are rare, runs must be longer
    n_meas = 40000 if T < 0.75 else 10000
    e = run_spin_model((N,), T, rule, ising_field, B=64, n_therm=2000, n_meas=n_meas, seed=201)
    em, ee, c, ce = mean_and_c(e, 1 / T, N)
    assert_agrees(em, ee, exact.ising1d_energy(N, T), max_rel_err=0.002, what=f"1D T={T} e")
    assert_agrees(c, ce, exact.ising1d_specific_heat(N, T), max_rel_err=0.02, what=f"1D T={T} c")


@pytest.mark.slow
@pytest.mark.parametrize("kappa", [0.1, 0.2, 0.24])
def test_phi4_free_field_long(kappa):
    L = 16
    x, _ = run_phi4((L, L), kappa, 0.0, 1.6, B=64, n_therm=1000, n_meas=4000, seed=301, obs=phi4.mean_phi2)
    m, err = jackknife(lambda a: a, chain_major(x), n_bins=64)
    assert_agrees(float(m), float(err), exact.free_field_phi2(L, 2, kappa), max_rel_err=0.003, what="<phi^2>")
