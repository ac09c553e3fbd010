"""Tests for hpc_rg.models: lattice helpers, Ising, Edwards-Anderson, phi^4."""

import numpy as np
import pytest
import torch

from hpc_rg.models import edwards_anderson as ea
from hpc_rg.models import ising, phi4
from hpc_rg.models.lattice import (checkerboard_mask, global_site_ids, neighbour_sum, parity)

from physics_helpers import brute_bond_energies


def rand_spins(B, shape, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (B,) + tuple(shape), generator=g) * 2 - 1).to(dtype)


def pad_halo(x, start, stop, axis=1):
    """Slab [start, stop) of axis 1 with one periodic ghost layer on each side."""
    L = x.shape[axis]
    idx = torch.arange(start - 1, stop + 1) % L
    return x.index_select(axis, idx)


SHAPES = [(8,), (4, 6), (4, 4, 6)]


# ---------------------------------------------------------------- lattice helpers

def test_parity_and_masks_from_global_origin():
    full = parity((6, 4))
    assert torch.equal(parity((2, 4), origin=2), full[2:4])
    assert torch.equal(parity((2, 4), origin=3), full[3:5])
    m0, m1 = checkerboard_mask((6, 4), 0), checkerboard_mask((6, 4), 1)
    assert torch.equal(m0, ~m1) and int(m0.sum()) == 12
    # every neighbour of a colour-0 site is colour 1 (even sides)
    for ax in (0, 1):
        assert not (m0 & torch.roll(m0, 1, ax)).any()


def test_global_site_ids_slab():
    ids = global_site_ids((4, 3, 2))
    assert torch.equal(ids.reshape(-1), torch.arange(24))
    assert torch.equal(global_site_ids((4, 3, 2), 1, 3), ids[1:3])


@pytest.mark.parametrize("shape", SHAPES)
def test_neighbour_sum_halo_equals_periodic(shape):
    x = torch.randn((3,) + shape, dtype=torch.float64)
    full = neighbour_sum(x)
    L = shape[0]
    for start, stop in [(0, L // 2), (L // 2, L), (1, 3)]:
        assert torch.equal(neighbour_sum(pad_halo(x, start, stop), halo=True), full[:, start:stop])


# ---------------------------------------------------------------- Ising

@pytest.mark.parametrize("shape", SHAPES)
def test_ising_energy_matches_brute_force(shape):
    s = rand_spins(5, shape, seed=1)
    expect = brute_bond_energies(s.numpy().astype(np.int8))
    J = torch.tensor([1.0, 0.5, -1.0, 2.0, 0.0])
    h = torch.tensor([0.0, 0.3, -0.2, 0.0, 1.0])
    M = s.reshape(5, -1).sum(1).double()
    got = ising.energy(s, J, h)
    assert got.dtype == torch.float64 and got.shape == (5,)
    np.testing.assert_allclose(got.numpy(), (J.double() * torch.from_numpy(expect) - h.double() * M).numpy(),
                               rtol=0, atol=1e-9)
    assert torch.equal(ising.energy(s.to(torch.int8)), ising.energy(s))
    assert torch.equal(ising.magnetization(s), M)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.int8])
def test_ising_local_field_gives_flip_energy(shape, dtype):
    B = 3
    s = rand_spins(B, shape, seed=2, dtype=dtype)
    J, h = torch.tensor([1.0, 0.7, -1.3]), torch.tensor([0.0, 0.25, -0.5])
    f = ising.local_field(s, J, h)
    assert f.dtype == torch.float32 and f.shape == s.shape
    E0 = ising.energy(s, J, h)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        site = tuple(int(torch.randint(0, n, (1,), generator=g)) for n in shape)
        s2 = s.clone()
        s2[(slice(None),) + site] *= -1
        dE = ising.energy(s2, J, h) - E0
        expect = 2 * s[(slice(None),) + site].double() * f[(slice(None),) + site].double()
        torch.testing.assert_close(dE, expect, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_ising_local_field_halo(shape):
    s = rand_spins(2, shape, seed=3)
    full = ising.local_field(s, 0.8, 0.1)
    L = shape[0]
    for start, stop in [(0, L // 2), (L // 2, L)]:
        got = ising.local_field(pad_halo(s, start, stop), 0.8, 0.1, halo=True)
        assert torch.equal(got, full[:, start:stop])
        got8 = ising.local_field(pad_halo(s.to(torch.int8), start, stop), halo=True)
        assert torch.equal(got8, ising.local_field(s)[:, start:stop])


# ---------------------------------------------------------------- Edwards-Anderson

def test_ea_couplings_reproducible_and_distributed():
    a = ea.couplings(8, 3, "pm1", seed=1, sample_index=4)
    assert a.shape == (3, 8, 8, 8) and a.dtype == torch.float32
    assert torch.equal(a, ea.couplings(8, 3, "pm1", seed=1, sample_index=4))
    assert not torch.equal(a, ea.couplings(8, 3, "pm1", seed=1, sample_index=5))
    assert set(a.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(a.mean())) < 5 / np.sqrt(a.numel())
    g = ea.couplings(32, 2, "gaussian", seed=1, sample_index=0, dtype=torch.float64)
    n = g.numel()
    assert abs(float(g.mean())) < 5 / np.sqrt(n) and abs(float(g.var()) - 1) < 5 * np.sqrt(2 / n)
    with pytest.raises(ValueError):
        ea.couplings(4, 2, "uniform", 1, 0)


@pytest.mark.parametrize("shape", SHAPES)
def test_ea_energy_matches_brute_force_and_ferro_equals_ising(shape):
    d = len(shape)
    J = torch.randn((d,) + shape, dtype=torch.float64)
    s = rand_spins(4, shape, seed=4)
    expect = brute_bond_energies(s.numpy().astype(np.int8), J.numpy())
    np.testing.assert_allclose(ea.energy(s, J).numpy(), expect, atol=1e-9)
    ones = torch.ones((d,) + shape)
    assert torch.equal(ea.energy(s, ones), ising.energy(s))
    assert torch.equal(ea.local_field(s, ones), ising.local_field(s))


@pytest.mark.parametrize("shape", SHAPES)
def test_ea_gauge_invariance(shape):
    """s_x -> e_x s_x, J_mu(x) -> e_x J_mu(x) e_{x+mu} leaves H invariant, f_x -> e_x f_x."""
    d = len(shape)
    J = ea.couplings(shape[0], d, "gaussian", 3, 0, dtype=torch.float64) if len(set(shape)) == 1 \
        else torch.randn((d,) + shape, dtype=torch.float64)
    s = rand_spins(3, shape, seed=5, dtype=torch.float64)
    eps = rand_spins(1, shape, seed=6, dtype=torch.float64)[0]
    Jg = torch.stack([eps * J[mu] * torch.roll(eps, -1, mu) for mu in range(d)])
    torch.testing.assert_close(ea.energy(s * eps, Jg), ea.energy(s, J))
    torch.testing.assert_close(ea.local_field(s * eps, Jg), eps * ea.local_field(s, J))


@pytest.mark.parametrize("shape", SHAPES)
def test_ea_local_field_flip_energy_and_batched_couplings(shape):
    d, B = len(shape), 3
    J = torch.randn((B, d) + shape, dtype=torch.float64)
    s = rand_spins(B, shape, seed=7, dtype=torch.float64)
    f = ea.local_field(s, J)
    E0 = ea.energy(s, J)
    flat = s.reshape(B, -1)
    for i in [0, flat.shape[1] // 2, flat.shape[1] - 1]:
        s2 = s.clone().reshape(B, -1)
        s2[:, i] *= -1
        dE = ea.energy(s2.reshape(s.shape), J) - E0
        torch.testing.assert_close(dE, 2 * flat[:, i] * f.reshape(B, -1)[:, i])
    for b in range(B):
        torch.testing.assert_close(ea.local_field(s[b:b + 1], J[b]), f[b:b + 1])


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("batched", [False, True])
def test_ea_local_field_halo_bit_identical(shape, batched):
    d = len(shape)
    J = torch.randn(((2,) if batched else ()) + (d,) + shape, dtype=torch.float32)
    s = rand_spins(2, shape, seed=8)
    full = ea.local_field(s, J)
    L = shape[0]
    jax = 2 if batched else 1
    for start, stop in [(0, L // 2), (L // 2, L)]:
        got = ea.local_field(pad_halo(s, start, stop), pad_halo(J, start, stop, axis=jax), halo=True)
        assert torch.equal(got, full[:, start:stop])


def test_overlaps():
    s1, s2 = rand_spins(4, (6, 6), seed=9), rand_spins(4, (6, 6), seed=10)
    torch.testing.assert_close(ea.overlap(s1, s1), torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(ea.overlap(s1, -s1), -torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(ea.link_overlap(s1, -s1), torch.ones(4, dtype=torch.float64))
    q = (s1 * s2).reshape(4, -1).double().mean(1)
    torch.testing.assert_close(ea.overlap(s1, s2), q)
    # link overlap by brute force: -brute_bond_energies of q-field / (d N)
    qf = (s1 * s2).numpy().astype(np.int8)
    expect = -brute_bond_energies(qf) / (2 * 36)
    np.testing.assert_allclose(ea.link_overlap(s1, s2).numpy(), expect)
    # gauge invariance of q under a common gauge transformation
    eps = rand_spins(1, (6, 6), seed=11)
    torch.testing.assert_close(ea.overlap(s1 * eps, s2 * eps), ea.overlap(s1, s2))


# ---------------------------------------------------------------- phi^4

def phi4_action_loops(phi, kappa, lam):
    """Bauer action by explicit loops (reference)."""
    p = phi.numpy()
    shape = p.shape[1:]
    out = np.zeros(p.shape[0])
    for site in np.ndindex(*shape):
        x = p[(slice(None),) + site]
        out += (1 - 2 * lam) * x**2 + lam * x**4
        for mu in range(len(shape)):
            nb = list(site)
            nb[mu] = (nb[mu] + 1) % shape[mu]
            out -= 2 * kappa * x * p[(slice(None),) + tuple(nb)]
    return out


@pytest.mark.parametrize("shape", SHAPES)
def test_phi4_action_and_force(shape):
    phi = torch.randn((3,) + shape, dtype=torch.float64)
    kappa, lam = 0.13, 0.02
    np.testing.assert_allclose(phi4.action(phi, kappa, lam).numpy(), phi4_action_loops(phi, kappa, lam),
                               rtol=1e-12)
    # force = -dS/dphi via autograd, per-chain couplings
    k = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    lm = torch.tensor([0.0, 0.5, 1.2], dtype=torch.float64)
    p = phi.clone().requires_grad_(True)
    phi4.action(p, k, lm).sum().backward()
    torch.testing.assert_close(phi4.force(phi, k, lm), -p.grad)
    # halo mode
    L = shape[0]
    full = phi4.force(phi, k, lm)
    for start, stop in [(0, L // 2), (L // 2, L)]:
        assert torch.equal(phi4.force(pad_halo(phi, start, stop), k, lm, halo=True), full[:, start:stop])


def test_phi4_delta_action_for_one_colour():
    shape = (6, 4)
    phi = torch.randn((2,) + shape, dtype=torch.float64)
    new = phi + torch.randn_like(phi)
    mask = checkerboard_mask(shape, 1)
    new = torch.where(mask, new, phi)
    kappa, lam = 0.2, 0.7
    dS = phi4.delta_action(phi, new, neighbour_sum(phi), kappa, lam)
    torch.testing.assert_close((dS * mask).sum(dim=(1, 2)), phi4.action(new, kappa, lam) - phi4.action(phi, kappa, lam))
    s_old = phi4.site_action(phi, neighbour_sum(phi), kappa, lam)
    s_new = phi4.site_action(new, neighbour_sum(phi), kappa, lam)
    torch.testing.assert_close(s_new - s_old, dS)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_phi4_bachtis_bauer_conversion(dims):
    shape = (4,) * dims
    Phi_params = [(1.0, -0.9515, 0.7), (0.5, 0.3, 0.1), (1.0, 1.0, 0.0)]
    for kL, m2, lL in Phi_params:
        kappa, lam, scale = phi4.bachtis_to_bauer(kL, m2, lL, dims)
        phi = torch.randn((5,) + shape, dtype=torch.float64)
        torch.testing.assert_close(phi4.bachtis_action(scale * phi, kL, m2, lL), phi4.action(phi, kappa, lam))
        back = phi4.bauer_to_bachtis(kappa, lam, dims, scale=scale)
        np.testing.assert_allclose(back, (kL, m2, lL, scale), rtol=1e-12, atol=1e-12)
    # default: kappa_L = 1 (Bachtis' choice); actions agree
    kL, m2, lL, scale = phi4.bauer_to_bachtis(0.25, 0.01, dims)
    assert kL == pytest.approx(1.0)
    phi = torch.randn((3,) + shape, dtype=torch.float64)
    torch.testing.assert_close(phi4.bachtis_action(scale * phi, kL, m2, lL), phi4.action(phi, 0.25, 0.01))
    with pytest.raises(ValueError):
        phi4.bachtis_to_bauer(1.0, -10.0, 0.0, dims)


def test_phi4_observables():
    phi = torch.randn(3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(phi4.mean_field(phi), phi.mean(dim=(1, 2)))
    torch.testing.assert_close(phi4.mean_phi2(phi), (phi**2).mean(dim=(1, 2)))


def test_model_specs_agree_with_the_file_schema():
    """The io layer knows which models store replicas without importing models/; the specs
    must say the same, and every spec's grid and scalars must be schema names."""
    from hpc_rg.io import schema
    from hpc_rg.models.spec import SPECS
    assert {s.name for s in SPECS.values() if s.disordered} == set(schema.DISORDERED_MODELS)
    assert {s.name for s in SPECS.values() if s.continuous} == set(schema.CONTINUOUS_MODELS)
    names = {v for k, v in vars(schema).items() if k.isupper() and isinstance(v, str)}
    for s in SPECS.values():
        assert s.grid in (schema.TEMPERATURES, schema.COUPLINGS)
        assert set(s.cnn_scalars + s.flow_scalars + (s.chain_observable,)) <= names, s.name
