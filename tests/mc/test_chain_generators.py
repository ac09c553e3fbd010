"""Per-chain generators: a batched update with one ``torch.Generator`` per chain is
bit-identical to updating the chains one at a time with a batch of one (the sample
stage's Ensemble relies on this: a chain's stream must not depend on its batch).

Small lattices, so the per-chain action sums are serial on CPU whatever the thread count
(see the caveat in :mod:`hpc_rg.mc.hmc` for large lattices on several threads / CUDA)."""

from __future__ import annotations

import pytest
import torch

from hpc_rg.mc import cluster
from hpc_rg.mc.hmc import hmc_update
from hpc_rg.mc.langevin import langevin_update
from hpc_rg.rng import chain_rand, chain_randint, chain_randn

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def gens(B, device="cpu", base=1234):
    return [torch.Generator(device=device).manual_seed(base + 7 * b) for b in range(B)]


def assert_bitwise_equal(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert torch.equal(a, b), f"{(a != b).sum().item()} entries differ"


def check_batched_equals_one_by_one(update, x, params, steps=3, device="cpu"):
    """``update(x, params, generator) -> (x_new, extras...)`` batched with per-chain
    generators vs a loop over chains with batch-of-one slices and float parameters (what
    the Ensemble did before it batched), for ``steps`` consecutive updates."""
    B = x.shape[0]
    g_batch, g_loop = gens(B, device), gens(B, device)
    xb, xl = x.clone(), x.clone()
    for _ in range(steps):
        out_b = update(xb, {k: v for k, v in params.items()}, g_batch)
        outs = [update(xl[b:b + 1], {k: float(v[b]) for k, v in params.items()}, g_loop[b])
                for b in range(B)]
        for i in range(len(out_b)):
            assert_bitwise_equal(out_b[i], torch.cat([o[i] for o in outs]))
        xb, xl = out_b[0], torch.cat([o[0] for o in outs])
    for gb, gl in zip(g_batch, g_loop):  # the streams continue identically
        assert torch.equal(gb.get_state(), gl.get_state())
    return xb


# ------------------------------------------------------------------------- the helpers
@pytest.mark.parametrize("device", DEVICES)
def test_helpers_single_generator_is_plain_torch(device):
    shape = (3, 4, 5)
    for fn, ref in ((chain_rand, torch.rand), (chain_randn, torch.randn)):
        a = fn(shape, torch.Generator(device).manual_seed(3), dtype=torch.float64, device=device)
        b = ref(shape, generator=torch.Generator(device).manual_seed(3), dtype=torch.float64,
                device=device)
        assert_bitwise_equal(a, b)
    a = chain_randint(0, 9, shape, torch.Generator(device).manual_seed(3), device=device)
    b = torch.randint(0, 9, shape, generator=torch.Generator(device).manual_seed(3), device=device)
    assert_bitwise_equal(a, b)


@pytest.mark.parametrize("axis", [0, 1])
def test_helpers_per_chain_slices(axis):
    shape = (2, 3, 4) if axis == 1 else (3, 2, 4)
    a = chain_rand(shape, gens(3), dtype=torch.float64, axis=axis)
    for b, g in enumerate(gens(3)):
        one = torch.rand(shape[:axis] + (1,) + shape[axis + 1:], generator=g, dtype=torch.float64)
        assert_bitwise_equal(a.narrow(axis, b, 1), one)
    n = chain_randn((3, 5), gens(3))
    assert n.shape == (3, 5) and not torch.equal(n[0], n[1])
    k = chain_randint(0, 100, (3,), gens(3))
    assert k.shape == (3,) and k.dtype == torch.int64
    assert chain_rand((0, 4), []).shape == (0, 4)
    with pytest.raises(ValueError, match="per-chain generators"):
        chain_rand((4, 5), gens(3))


# ------------------------------------------------------------------------- the updates
SHAPES = [(8, 8), (5, 7), (3, 3, 3), (6,)]


def ising_start(shape, B=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand((B,) + shape, generator=g) < 0.5, -1.0, 1.0)


def phi4_start(shape, B=4, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (2.0 * torch.rand((B,) + shape, generator=g, dtype=torch.float64) - 1.0).to(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_wolff(shape, device):
    beta = torch.tensor([0.3, 0.44, 0.6, 0.2], dtype=torch.float64)

    def upd(x, p, g):
        return cluster.wolff_update(x, p["beta"], g, J=1.0)

    x = ising_start(shape).to(device)
    check_batched_equals_one_by_one(upd, x, {"beta": beta}, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_swendsen_wang(shape, device):
    beta = torch.tensor([0.3, 0.44, 0.6, 0.2], dtype=torch.float64)

    def upd(x, p, g):
        return (cluster.swendsen_wang_update(x, p["beta"], g, J=0.9),)

    x = ising_start(shape).to(torch.int8).to(device)  # integer spins take the other bond path
    check_batched_equals_one_by_one(upd, x, {"beta": beta}, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_phi4_wolff_and_swendsen_wang(shape, dtype, device):
    kappa = torch.tensor([0.1, 0.22, 0.3, 0.5], dtype=torch.float64)

    def wolff(x, p, g):
        return cluster.phi4_wolff_update(x, p["kappa"], g)

    def sw(x, p, g):
        return (cluster.phi4_swendsen_wang_update(x, p["kappa"], g),)

    x = phi4_start(shape, dtype=dtype).to(device)
    check_batched_equals_one_by_one(wolff, x, {"kappa": kappa}, device=device)
    check_batched_equals_one_by_one(sw, x, {"kappa": kappa}, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_hmc(shape, dtype, device):
    p = {"kappa": torch.tensor([0.1, 0.22, 0.3, 0.26], dtype=torch.float64),
         "lam": torch.tensor([0.02, 0.02, 0.5, 0.1], dtype=torch.float64),
         "eps": torch.tensor([0.15, 0.1, 0.2, 0.5], dtype=torch.float64)}

    def upd(x, q, g):
        return tuple(hmc_update(x, q["kappa"], q["lam"], q["eps"], 6, g))

    check_batched_equals_one_by_one(upd, phi4_start(shape, dtype=dtype).to(device), p, steps=4,
                                    device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("metropolize", [True, False])
def test_langevin(shape, metropolize, device):
    p = {"kappa": torch.tensor([0.1, 0.22, 0.3, 0.26], dtype=torch.float64),
         "lam": torch.tensor([0.02, 0.02, 0.5, 0.1], dtype=torch.float64),
         "eps": torch.tensor([0.08, 0.05, 0.3, 0.6], dtype=torch.float64)}

    def upd(x, q, g):
        res = langevin_update(x, q["kappa"], q["lam"], q["eps"], g, metropolize=metropolize)
        return tuple(res)

    x = check_batched_equals_one_by_one(upd, phi4_start(shape).to(device), p, steps=4, device=device)
    assert torch.isfinite(x).all()


def test_generators_are_per_chain():
    """Chain b's update depends only on its own generator: reordering the chains (with
    their generators) reorders the result."""
    x = phi4_start((6, 6))
    kappa = torch.tensor([0.1, 0.2, 0.3, 0.25], dtype=torch.float64)
    perm = torch.tensor([2, 0, 3, 1])
    g = gens(4)
    a = hmc_update(x, kappa, 0.05, 0.2, 5, g).phi
    g = gens(4)
    b = hmc_update(x[perm], kappa[perm], 0.05, 0.2, 5, [g[i] for i in perm.tolist()]).phi
    assert_bitwise_equal(a[perm], b)
