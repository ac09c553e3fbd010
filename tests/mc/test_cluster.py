"""Tests for hpc_rg.mc.cluster: labelling, detailed balance (χ²), exact 2D Ising results.

Statistical tests use many independent chains; errors are jackknife errors over chains
(leave-one-chain-out), which are valid whatever the autocorrelation within a chain.
Agreement is required within 4σ, and σ itself must be small enough to be a real test.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hpc_rg.analysis import exact
from hpc_rg.analysis.stats import jackknife
from hpc_rg.mc.cluster import (
    fk_bonds,
    label_clusters,
    phi4_swendsen_wang_update,
    phi4_wolff_update,
    swendsen_wang_update,
    wolff_update,
)
from hpc_rg.models import ising, phi4

TC = 2.269185  # T_c to 7 digits, as in the brief


pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ helpers
def _union_find_labels(bonds):
    """Reference labelling: sequential union-find, label = smallest global flat index."""
    shape = tuple(bonds[0].shape)
    n = int(np.prod(shape))
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    idx = np.arange(n).reshape(shape)
    for mu, b in enumerate(bonds):
        nb = np.roll(idx, -1, axis=1 + mu)
        act = b.numpy()
        for i, j in zip(idx[act], nb[act]):
            ri, rj = find(int(i)), find(int(j))
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)])
    first = {}
    for i, r in enumerate(roots):
        first.setdefault(r, i)
    return np.array([first[r] for r in roots]).reshape(shape)


def _all_states(lattice_shape):
    n = int(np.prod(lattice_shape))
    states = torch.tensor(list(itertools.product([1, -1], repeat=n)), dtype=torch.int8)
    # state index: bit i set where spin i is -1 (row-major), matching _state_index
    states = states.flip(1).view((-1,) + tuple(lattice_shape))
    return states


def _state_index(spins):
    b = (spins.reshape(spins.shape[0], -1) < 0).to(torch.int64)
    return (b << torch.arange(b.shape[1], dtype=torch.int64)).sum(dim=1)


def _chi2(counts, probs, min_expected=5.0):
    """Pearson χ² of counts vs probabilities, pooling bins with expected < min_expected.

    Returns (chi2, dof, critical value at p = 1e-4 via Wilson–Hilferty).
    """
    n = counts.sum()
    exp = probs * n
    big = exp >= min_expected
    obs_b = np.append(counts[big], counts[~big].sum())
    exp_b = np.append(exp[big], exp[~big].sum())
    keep = exp_b > 0
    chi2 = float((((obs_b - exp_b) ** 2)[keep] / exp_b[keep]).sum())
    k = int(keep.sum()) - 1
    z = 3.719  # one-sided 1e-4 normal quantile
    crit = k * (1.0 - 2.0 / (9 * k) + z * math.sqrt(2.0 / (9 * k))) ** 3
    return chi2, k, crit


def _chain_jackknife(f, *per_chain):
    """Jackknife over independent chains (one block per chain) of f(chain-averaged means)."""
    return jackknife(f, *per_chain, n_bins=len(per_chain[0]))


def _exact_2d(T, L):
    return exact.ising2d_energy(L, T), exact.ising2d_specific_heat(L, T)


# ------------------------------------------------------------------ labelling
@pytest.mark.parametrize("shape", [(3, 7), (4, 5, 6), (2, 4, 4, 4), (2, 2, 3), (5, 2, 2, 2)])
@pytest.mark.parametrize("p", [0.1, 0.45, 0.6, 0.95])
def test_label_clusters_matches_union_find(shape, p):
    g = torch.Generator().manual_seed(hash((shape, p)) % 2**31)
    bonds = [torch.rand(shape, generator=g) < p for _ in range(len(shape) - 1)]
    got = label_clusters(bonds).numpy()
    assert (got == _union_find_labels(bonds)).all()


def test_fk_bond_probability():
    """Aligned pairs bond with 1 - exp(-2 K a_x a_y), anti-aligned never."""
    g = torch.Generator().manual_seed(7)
    B, L = 4, 64
    spins = torch.ones(B, L, L, dtype=torch.int8)
    spins[:, :, ::2] = -1  # bonds along axis 2 anti-aligned, along axis 1 aligned
    beta = torch.tensor([0.1, 0.3, 0.44, 1.0], dtype=torch.float64)
    b0, b1 = fk_bonds(spins, beta, g)
    assert not b1.any()
    frac = b0.flatten(1).double().mean(1)
    p = 1 - torch.exp(-2 * beta)
    sig = (p * (1 - p) / (L * L)).sqrt()
    assert ((frac - p).abs() < 4 * sig).all(), (frac, p)
    # φ⁴ (float) branch: per-bond probability 1 - exp(-2K φ_x φ_y)
    phi = torch.full((1, 256, 256), 0.7, dtype=torch.float64)
    b0, _ = fk_bonds(phi, 0.4, g)
    p = 1 - math.exp(-2 * 0.4 * 0.49)
    assert abs(b0.double().mean().item() - p) < 4 * math.sqrt(p * (1 - p) / 65536)


def test_reproducible_and_dtype_preserved():
    for dtype in (torch.int8, torch.float32):
        s0 = torch.ones(3, 8, 8, dtype=dtype)
        a = swendsen_wang_update(s0, 0.4, torch.Generator().manual_seed(5))
        b = swendsen_wang_update(s0, 0.4, torch.Generator().manual_seed(5))
        assert a.dtype == dtype and torch.equal(a, b)
        c, size = wolff_update(s0, torch.tensor([0.3, 0.4, 0.5]), torch.Generator().manual_seed(5))
        assert c.dtype == dtype and size.shape == (3,)
        assert torch.equal((c != s0).flatten(1).sum(1), size)
        assert torch.equal(s0, torch.ones(3, 8, 8, dtype=dtype))  # input untouched


def test_rejects_antiferromagnet():
    with pytest.raises(ValueError, match="ferromagnetic"):
        swendsen_wang_update(torch.ones(2, 4, 4), 0.5, torch.Generator(), J=-1.0)


# ------------------------------------------------------------------ detailed balance
def _run_independent_chains(update, lattice_shape, beta, n_chains, n_updates, seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.where(torch.rand((n_chains,) + lattice_shape, generator=g) < 0.5, 1, -1).to(torch.int8)
    for _ in range(n_updates):
        s = update(s, beta, g)
    return np.bincount(_state_index(s).numpy(), minlength=2 ** int(np.prod(lattice_shape)))


def _boltzmann(lattice_shape, beta):
    states = _all_states(lattice_shape)
    assert torch.equal(_state_index(states), torch.arange(states.shape[0]))
    E = ising.energy(states).numpy()
    w = np.exp(-beta * (E - E.min()))
    return w / w.sum()


UPDATES = {
    "sw": lambda s, beta, g: swendsen_wang_update(s, beta, g),
    "wolff": lambda s, beta, g: wolff_update(s, beta, g)[0],
}


@pytest.mark.parametrize("algo", ["sw", "wolff"])
@pytest.mark.parametrize(
    "lattice_shape,beta",
    [((6,), 0.5), ((3, 3), 0.3), ((2, 2, 2), 0.2)],
    ids=["1d-N6", "2d-3x3", "3d-2x2x2"],
)
def test_detailed_balance_chi2(algo, lattice_shape, beta):
    """Final states of 20000 independent chains are Boltzmann distributed (χ² test).

    The 2x2x2 lattice has L = 2 periodic axes (double bonds), testing that convention.
    The same histogram is also compared with the Boltzmann weights at a 10% different
    temperature, which must fail: the test has the power to see such an error.
    """
    counts = _run_independent_chains(UPDATES[algo], lattice_shape, beta, 20000, 40, seed=11)
    chi2, dof, crit = _chi2(counts, _boltzmann(lattice_shape, beta))
    assert chi2 < crit, f"chi2={chi2:.1f} dof={dof} crit={crit:.1f}"
    chi2_wrong, _, crit_wrong = _chi2(counts, _boltzmann(lattice_shape, 1.1 * beta))
    assert chi2_wrong > crit_wrong, "χ² test too weak to detect a 10% temperature error"


@pytest.mark.parametrize("algo", ["wolff", "sw"])
def test_embedded_phi4_conditional_distribution(algo):
    """With |φ| frozen, embedded cluster updates sample the signs from exp(-S) exactly.

    The target p(ε | |φ|) ∝ exp(-S(ε|φ|)) is computed from the real φ⁴ action on all 2^9
    sign patterns of a 3x3 lattice, so the bond factor 1 - exp(-4κ|φ_x||φ_y|) is tested.
    """
    kappa, lam = 0.3, 0.02
    g = torch.Generator().manual_seed(21)
    amp = 0.5 + torch.rand(1, 3, 3, generator=g, dtype=torch.float64)  # |φ| in [0.5, 1.5)
    signs = _all_states((3, 3)).to(torch.float64)
    S = phi4.action(signs * amp, kappa, lam).numpy()
    target = np.exp(-(S - S.min()))
    target /= target.sum()
    B = 20000
    phi = torch.where(torch.rand(B, 3, 3, generator=g) < 0.5, 1.0, -1.0).double() * amp
    for _ in range(40):
        if algo == "wolff":
            phi, _ = phi4_wolff_update(phi, kappa, g)
        else:
            phi = phi4_swendsen_wang_update(phi, kappa, g)
    assert torch.allclose(phi.abs(), amp.expand_as(phi))
    counts = np.bincount(_state_index(phi).numpy(), minlength=512)
    chi2, dof, crit = _chi2(counts, target)
    assert chi2 < crit, f"chi2={chi2:.1f} dof={dof} crit={crit:.1f}"
    # a factor-2 error in the bond probability (1 - exp(-2κ|φ||φ|)) must be visible
    target_wrong = np.exp(-(phi4.action(signs * amp, kappa / 2, lam).numpy()))
    chi2_wrong, _, crit_wrong = _chi2(counts, target_wrong / target_wrong.sum())
    assert chi2_wrong > crit_wrong


# ------------------------------------------------------------------ exact 2D Ising
def _ising_energy_and_c(algo, L, T, n_chains, n_updates, seed):
    """Per-site energy and specific heat with jackknife-over-chains errors."""
    beta = 1.0 / T
    g = torch.Generator().manual_seed(seed)
    s = torch.ones(n_chains, L, L, dtype=torch.int8)
    n_therm = n_updates // 10
    e1 = torch.zeros(n_chains, dtype=torch.float64)
    e2 = torch.zeros(n_chains, dtype=torch.float64)
    for it in range(n_therm + n_updates):
        s = UPDATES[algo](s, beta, g)
        if it >= n_therm:
            e = ising.energy(s) / (L * L)
            e1 += e
            e2 += e * e
    e1, e2 = (e1 / n_updates).numpy(), (e2 / n_updates).numpy()
    N = L * L
    e, de = _chain_jackknife(lambda a: a, e1)
    c, dc = _chain_jackknife(lambda a, b: beta**2 * N * (b - a * a), e1, e2)
    return e, de, c, dc


def _check_against_exact(algo, L, T, n_chains, n_updates, seed, max_de, max_rel_dc):
    e, de, c, dc = _ising_energy_and_c(algo, L, T, n_chains, n_updates, seed)
    e_ex, c_ex = _exact_2d(T, L)
    msg = f"{algo} L={L} T={T}: e={e:.5f}±{de:.5f} (exact {e_ex:.5f}), c={c:.4f}±{dc:.4f} (exact {c_ex:.4f})"
    print(msg)
    assert de < max_de and dc < max_rel_dc * c_ex, "errors too large to be a meaningful test: " + msg
    assert abs(e - e_ex) < 4 * de, msg
    assert abs(c - c_ex) < 4 * dc, msg


@pytest.mark.parametrize("algo", ["sw", "wolff"])
@pytest.mark.parametrize("T", [2.0, TC, 3.0])
def test_ising_2d_L8_vs_kaufman(algo, T):
    _check_against_exact(algo, 8, T, n_chains=64, n_updates=1000, seed=100, max_de=0.004, max_rel_dc=0.02)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["sw", "wolff"])
@pytest.mark.parametrize("L", [8, 16])
@pytest.mark.parametrize("T", [2.0, TC, 3.0])
def test_ising_2d_vs_kaufman_high_statistics(algo, L, T):
    _check_against_exact(algo, L, T, n_chains=128, n_updates=4000, seed=200 + L, max_de=0.0015,
                         max_rel_dc=0.01)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_labelling():
    g = torch.Generator().manual_seed(3)
    bonds = [torch.rand(4, 32, 32, generator=g) < 0.55 for _ in range(2)]
    cpu = label_clusters(bonds)
    gpu = label_clusters([b.cuda() for b in bonds])
    assert torch.equal(cpu, gpu.cpu())
    s = torch.ones(4, 32, 32, device="cuda")
    s2, size = wolff_update(s, 0.44, torch.Generator(device="cuda").manual_seed(1))
    assert s2.device.type == "cuda" and torch.equal((s2 != s).sum((1, 2)), size)
