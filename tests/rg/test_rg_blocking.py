"""Blocking transforms (hpc_rg.rg.blocking): hand-computed cases, a slow loop reference,
tie rules, dtypes, batch shapes, upsample round trips, consistency and error messages."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from hpc_rg.rg.blocking import (BLOCKINGS, block, consistency, decimation, majority_rule,
                                overlap, overlap_majority, sign_mean, upsample)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def spins(shape, seed=0, dtype=torch.int8, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(0, 2, shape, generator=g).mul(2).sub(1)
    return s.to(dtype=dtype, device=device)


def field(shape, seed=0, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype).to(device)


def gen(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


# ------------------------------------------------------------- slow loop reference
def ref_block(x, how, dims, coins=None):
    """Explicit loops over samples, blocks and block sites (first offset = first site).

    ``coins``: bool tensor of the coarse shape, True = +1, for majority_random ties."""
    x = x.cpu()
    if how == "overlap":
        x = x.select(-dims - 1, 0) * x.select(-dims - 1, 1)
    lead, lat = tuple(x.shape[:-dims]), tuple(x.shape[-dims:])
    coarse = tuple(n // 2 for n in lat)
    out = torch.zeros(lead + coarse, dtype=torch.float64)
    for li in itertools.product(*map(range, lead)):
        for c in itertools.product(*map(range, coarse)):
            vals = [float(x[li + tuple(2 * ci + oi for ci, oi in zip(c, o))])
                    for o in itertools.product((0, 1), repeat=dims)]
            total = sum(vals)
            if how == "decimation":
                v = vals[0]
            elif how == "sign_mean":
                pos = [v for v in vals if v > 0]
                neg = [v for v in vals if v < 0]
                v = sum(pos) / len(pos) if total > 0 else sum(neg) / len(neg) if total < 0 else 0.0
            elif total != 0:
                v = 1.0 if total > 0 else -1.0
            elif how == "majority_random":
                v = 1.0 if bool(coins[li + c]) else -1.0
            else:  # majority, overlap: first-site ties
                v = vals[0]
            out[li + c] = v
    return out


# ------------------------------------------------------------------ hand-made cases
def test_1d_hand():
    x = torch.tensor([1, 1, 1, -1, -1, 1, -1, -1], dtype=torch.int8)
    assert majority_rule(x, 1).tolist() == [1, 1, -1, -1]  # ties -> first site
    assert decimation(x, 1).tolist() == [1, 1, -1, -1]
    phi = torch.tensor([0.5, 1.5, 2.0, -1.0, -3.0, 1.0, 0.25, -0.25, 0.0, -2.0, 0.0, 0.0],
                       dtype=torch.float64)
    assert sign_mean(phi, 1).tolist() == [1.0, 2.0, -3.0, 0.0, -2.0, 0.0]


def test_2d_hand():
    x = torch.tensor([[1, -1, 1, 1],
                      [-1, 1, 1, 1],
                      [1, 1, -1, -1],
                      [-1, -1, -1, 1]], dtype=torch.int8)
    # blocks: tie(first +1), +4, tie(first +1), -2
    assert majority_rule(x, 2).tolist() == [[1, 1], [1, -1]]
    y = x.clone()
    y[0, 0], y[0, 1] = -1, 1  # first block still tied, first site now -1
    assert majority_rule(y, 2).tolist() == [[-1, 1], [1, -1]]
    assert decimation(x, 2).tolist() == [[1, 1], [1, -1]]
    phi = torch.tensor([[1.0, -0.5, -1.0, -2.0],
                        [0.3, 0.2, 3.0, -0.5],
                        [1.0, -1.0, -4.0, 1.0],
                        [2.0, -2.0, 1.0, 1.0]], dtype=torch.float64)
    want = torch.tensor([[1.5 / 3, -3.5 / 3], [0.0, -4.0]], dtype=torch.float64)
    torch.testing.assert_close(sign_mean(phi, 2), want, rtol=0, atol=1e-15)


def test_3d_hand():
    x = torch.ones(4, 2, 2, dtype=torch.float32)
    x[0, 0, 0] = -1.0           # first block: first site -1, ...
    x[1, 1, :] = -1.0           # ... sum -1 + 1 + 1 + 1 + 1 + 1 - 1 - 1 = 2 -> +1
    x[2:, 0, :] = -1.0          # second block: 4 up, 4 down -> tie, first site -1
    assert majority_rule(x, 3).tolist() == [[[1.0]], [[-1.0]]]
    assert decimation(x, 3).tolist() == [[[-1.0]], [[-1.0]]]
    phi = torch.zeros(2, 2, 4, dtype=torch.float64)
    phi[..., :2] = torch.tensor([-1.0, 2.0, 0.5, -3.0, 1.5, 0.0, 0.0, 4.0],
                                dtype=torch.float64).reshape(2, 2, 2)  # sum 4 > 0
    phi[..., 2:] = torch.tensor([-1.0, -2.0, 0.5, 0.5, 1.0, 1.0, -0.5, 0.5],
                                dtype=torch.float64).reshape(2, 2, 2)  # sum 0
    assert sign_mean(phi, 3).tolist() == [[[2.0, 0.0]]]  # (2 + .5 + 1.5 + 4) / 4 = 2


def test_overlap_hand():
    s = torch.tensor([[1, 1], [-1, -1]], dtype=torch.int8)
    t = torch.tensor([[1, -1], [-1, 1]], dtype=torch.int8)
    assert overlap(s, t).tolist() == [[1, -1], [1, -1]]
    assert overlap_majority(s, t, 2).tolist() == [[1]]  # tie, first site of rho = +1
    x = torch.stack([s, t])  # replica axis right before the lattice axes
    assert block(x, "overlap", 2).tolist() == [[1]]
    t2 = -t
    assert overlap_majority(s, t2, 2).tolist() == [[-1]]


# ----------------------------------------------------------------------- tie rules
def test_random_ties_fair_and_reproducible():
    x = torch.tensor([1, -1], dtype=torch.int8).repeat(200, 32)  # every block tied
    a = majority_rule(x, 1, ties="random", generator=gen(5))
    n = a.numel()
    frac = (a == 1).double().mean().item()
    assert abs(frac - 0.5) < 5 * 0.5 / n ** 0.5, frac
    assert torch.equal(a, majority_rule(x, 1, ties="random", generator=gen(5)))
    assert not torch.equal(a, majority_rule(x, 1, ties="random", generator=gen(6)))
    assert torch.equal(majority_rule(x, 1), torch.ones_like(a))  # first-site rule
    # untied blocks ignore the coin
    y = torch.tensor([[1, 1, -1, -1]], dtype=torch.int8).repeat(50, 1)
    assert torch.equal(majority_rule(y, 1, ties="random", generator=gen(1)),
                       majority_rule(y, 1))


def test_random_ties_convention_single_generator():
    """One generator: one float32 uniform per coarse site, coin = u < 1/2."""
    x = spins((3, 4, 6), seed=2)
    u = torch.rand((3, 2, 3), generator=gen(9), dtype=torch.float32)
    want = ref_block(x, "majority_random", 2, coins=u < 0.5)
    assert torch.equal(majority_rule(x, 2, "random", gen(9)).double(), want)


def test_random_ties_per_sample_generators_batch_independent():
    x = torch.tensor([1, -1, -1, 1], dtype=torch.float32).repeat(2, 3, 2, 4)  # (2,3,2,16)
    gens = [gen(100 + i) for i in range(6)]
    batched = majority_rule(x, 2, "random", gens)
    assert batched.shape == (2, 3, 1, 8)
    flat = x.reshape(6, 2, 16)
    for i in range(6):  # one sample at a time, with its own generator
        alone = majority_rule(flat[i], 2, "random", [gen(100 + i)])
        assert torch.equal(batched.reshape(6, 1, 8)[i], alone)
        sub = majority_rule(flat[i:i + 1], 2, "random", gen(100 + i))
        assert torch.equal(sub[0], alone)
    # reordering the batch reorders the results
    perm = [3, 0, 5, 1, 4, 2]
    shuffled = majority_rule(flat[perm], 2, "random", [gen(100 + i) for i in perm])
    assert torch.equal(shuffled, batched.reshape(6, 1, 8)[perm])


# ------------------------------------------------------------------ dtypes, batches
@pytest.mark.parametrize("dtype", [torch.int8, torch.float32, torch.float64])
def test_dtype_preserved(dtype):
    x = spins((2, 4, 4), seed=1, dtype=dtype)
    assert majority_rule(x, 2).dtype == dtype
    assert majority_rule(x, 2, "random", gen(0)).dtype == dtype
    assert decimation(x, 2).dtype == dtype
    assert overlap_majority(x, x.flip(0), 2).dtype == dtype
    assert block(torch.stack([x, x], dim=1), "overlap", 2).dtype == dtype
    assert upsample(x, 2).dtype == dtype
    if dtype.is_floating_point:
        assert sign_mean(field((2, 4, 4), dtype=dtype), 2).dtype == dtype


def test_sign_mean_rejects_integers():
    with pytest.raises(TypeError, match="floating"):
        sign_mean(spins((4, 4)), 2)


@pytest.mark.parametrize("lead", [(), (3,), (2, 3)])
@pytest.mark.parametrize("how", BLOCKINGS)
def test_leading_batch_shapes(lead, how):
    dims = 2
    rep = (2,) if how == "overlap" else ()
    x = field(lead + rep + (4, 6), seed=3) if how == "sign_mean" else \
        spins(lead + rep + (4, 6), seed=3)
    n = math.prod(lead)
    gens = [gen(7 + i) for i in range(n)]
    out = block(x, how, dims, generator=gens)
    assert out.shape == lead + (2, 3)
    flat = x.reshape((n,) + rep + (4, 6))
    for i in range(n):
        one = block(flat[i:i + 1], how, dims, generator=[gen(7 + i)])
        assert torch.equal(out.reshape(n, 2, 3)[i], one[0])


def test_decimation_is_a_copy():
    x = spins((4, 4), dtype=torch.float32)
    d = decimation(x, 2)
    d.fill_(0.0)
    assert (x != 0).all()


# ------------------------------------------------------------- reference comparison
@pytest.mark.parametrize("dims,shape", [(2, (2, 3, 6, 4)), (3, (3, 4, 2, 6))])
@pytest.mark.parametrize("how", BLOCKINGS)
def test_against_loop_reference(dims, shape, how):
    lead = shape[:-dims]
    coarse = tuple(n // 2 for n in shape[-dims:])
    if how == "sign_mean":
        x = field(shape, seed=11)
    elif how == "overlap":
        x = spins(lead + (2,) + shape[-dims:], seed=11)
    else:
        x = spins(shape, seed=11)
    coins = torch.rand(lead + coarse, generator=gen(4), dtype=torch.float32) < 0.5
    got = block(x, how, dims, generator=gen(4))
    want = ref_block(x, how, dims, coins=coins)
    assert got.shape == want.shape
    torch.testing.assert_close(got.double(), want, rtol=1e-15, atol=1e-15)


def test_reference_sees_ties():
    """The random inputs of the reference comparison do contain tied blocks."""
    x = spins((2, 3, 6, 4), seed=11)
    assert (ref_block(x.double(), "sign_mean", 2) == 0).any()
    x = spins((3, 4, 2, 6), seed=11)
    assert (ref_block(x.double(), "sign_mean", 3) == 0).any()


# --------------------------------------------------------- upsample and consistency
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_upsample_shape_and_values(dims):
    x = field((2,) + (3,) * dims, seed=dims)
    up = upsample(x, dims)
    assert up.shape == (2,) + (6,) * dims
    for idx in itertools.product(range(2), *[range(6)] * dims):
        assert up[idx] == x[(idx[0],) + tuple(i // 2 for i in idx[1:])]


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_upsample_then_block_is_identity(dims):
    shape = (3,) + (2, 4, 2)[:dims]
    s = spins(shape, seed=dims)
    for how in ("majority", "majority_random", "decimation"):
        assert torch.equal(block(upsample(s, dims), how, dims, gen(0)), s)
    for dtype in (torch.float32, torch.float64):
        phi = field(shape, seed=dims, dtype=dtype)
        assert torch.equal(sign_mean(upsample(phi, dims), dims), phi)
    pair = torch.stack([s, torch.ones_like(s)], dim=1)
    assert torch.equal(block(upsample(pair, dims), "overlap", dims), s)


@pytest.mark.parametrize("how", BLOCKINGS)
def test_consistency_is_one_on_blocked_pairs(how):
    dims, lead = 2, (2, 3)
    rep = (2,) if how == "overlap" else ()
    fine = field(lead + rep + (8, 4), seed=5) if how == "sign_mean" else \
        spins(lead + rep + (8, 4), seed=5)
    c = consistency(block(fine, how, dims, gen(1)), fine, how, dims)
    assert c.dtype == torch.float64 and c.shape == lead
    assert torch.equal(c, torch.ones(lead, dtype=torch.float64))
    coarse = block(fine, how, dims, gen(1))
    up = upsample(coarse, dims)
    if how == "overlap":
        up = torch.stack([up, torch.ones_like(up)], dim=-dims - 1)
    assert torch.equal(consistency(coarse, up, how, dims), torch.ones(lead, dtype=torch.float64))


def test_consistency_exact_fractions():
    fine = torch.tensor([[1, -1, 1, 1],
                         [-1, 1, 1, 1],
                         [1, 1, -1, -1],
                         [-1, -1, -1, 1]], dtype=torch.int8)  # blocks: tie(+1), +, tie(+1), -
    coarse = torch.tensor([[[1, 1], [1, -1]],
                           [[-1, 1], [1, -1]],     # wrong first-site tie
                           [[-1, -1], [1, -1]],    # wrong tie and a wrong majority
                           [[-1, -1], [-1, 1]]], dtype=torch.int8)
    fines = fine.expand(4, 4, 4)
    assert consistency(coarse, fines, "majority", 2).tolist() == [1.0, 0.75, 0.5, 0.0]
    # random ties: either sign is consistent on a tied block
    assert consistency(coarse, fines, "majority_random", 2).tolist() == [1.0, 1.0, 0.75, 0.5]
    assert consistency(coarse, fines, "decimation", 2).tolist() == [1.0, 0.75, 0.5, 0.0]
    phi = torch.tensor([0.5, 1.5, -1.0, -2.0], dtype=torch.float64)
    near = torch.tensor([1.0 + 1e-12, -1.5], dtype=torch.float64)
    assert consistency(near, phi, "sign_mean", 1).item() == 0.5
    assert consistency(near, phi, "sign_mean", 1, atol=1e-9).item() == 1.0


# -------------------------------------------------------------------------- errors
def test_errors():
    x = spins((2, 4, 4))
    with pytest.raises(ValueError, match="unknown blocking 'median'"):
        block(x, "median", 2)
    with pytest.raises(ValueError, match="size 5.*even"):
        majority_rule(spins((4, 5)), 2)
    with pytest.raises(ValueError, match="even"):
        decimation(spins((3,)), 1)
    with pytest.raises(ValueError, match="even"):
        sign_mean(field((2, 6, 3)), 2)
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="dims must be a positive int"):
            majority_rule(x, bad)
    with pytest.raises(ValueError, match="needs at least 4 lattice axes"):
        decimation(x, 4)
    with pytest.raises(ValueError, match="replica axis of size 2"):
        block(spins((3, 4, 4)), "overlap", 2)
    with pytest.raises(ValueError, match="replica axis"):
        block(spins((4, 4)), "overlap", 2)
    with pytest.raises(ValueError, match="same shape"):
        overlap(spins((4, 4)), spins((2, 4, 4)))
    with pytest.raises(ValueError, match="needs a generator"):
        majority_rule(x, 2, ties="random")
    with pytest.raises(ValueError, match="needs a generator"):
        block(x, "majority_random", 2)
    with pytest.raises(ValueError, match="ties must be one of"):
        majority_rule(x, 2, ties="last")
    with pytest.raises(ValueError, match="got 3 generators for 2 samples"):
        majority_rule(x, 2, "random", [gen(0), gen(1), gen(2)])
    with pytest.raises(ValueError, match="consistency: coarse has shape"):
        consistency(spins((2, 3, 3)), x, "majority", 2)
    with pytest.raises(ValueError, match="consistency: coarse has shape"):
        consistency(spins((3, 2, 2)), x, "majority_random", 2)


# ---------------------------------------------------------------------------- CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("how", BLOCKINGS)
def test_cuda_matches_cpu(how):
    dims, lead = 3, (2, 3)
    rep = (2,) if how == "overlap" else ()
    x = field(lead + rep + (4, 6, 2), seed=8) if how == "sign_mean" else \
        spins(lead + rep + (4, 6, 2), seed=8)
    xc = x.cuda()
    got = block(xc, how, dims, generator=[gen(i, "cuda") for i in range(6)])
    assert got.device.type == "cuda" and got.dtype == x.dtype
    if how == "majority_random":  # CUDA streams differ from CPU ones: check via consistency
        assert torch.equal(consistency(got, xc, how, dims).cpu(), torch.ones(lead).double())
    else:
        assert torch.equal(got.cpu(), block(x, how, dims))
    assert torch.equal(upsample(xc, dims).cpu(), upsample(x, dims))
