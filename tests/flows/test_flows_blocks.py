"""Flow building blocks: exact log-dets (vs brute-force Jacobians), inverses, noise
densities, Z2 equivariance, size independence (hpc_rg.flows, issue #5)."""

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from hpc_rg.flows import (AffineCoupling, CheckerboardLevel, CouplingStack, FlowChain,
                          GaussianNoise, SuperResolutionLevel, ZeroSumEmbedding, ZeroSumNoise)
from hpc_rg.flows.upsample import block_mean, from_blocks, to_blocks, upsample
from hpc_rg.rg import blocking

F64 = torch.float64
SHAPES = [(1, 4), (2, 2), (3, 2)]  # (d, coarse L)
LEVELS = [SuperResolutionLevel, CheckerboardLevel]


def randomise(module, std=0.2, seed=0):
    """Replace the zero (identity) initialisation by random weights."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def brute_logdet(fn, x):
    """log|det| of the Jacobian of ``fn`` (one sample, flattened in and out), via slogdet."""
    flat = x.reshape(-1).detach()
    jac = jacobian(lambda v: fn(v.reshape(x.shape)).reshape(-1), flat, vectorize=True)
    sign, logabs = torch.linalg.slogdet(jac)
    assert sign != 0
    return logabs


def field(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ------------------------------------------------------------------------ upsampling
@pytest.mark.parametrize("d,L", SHAPES)
def test_upsample_and_block_mean(d, L):
    x = field((2,) + (L,) * d, 1)
    up = upsample(x)
    assert torch.equal(up, blocking.upsample(x, d))
    assert torch.allclose(block_mean(up), x)
    fine = field((2,) + (2 * L,) * d, 2)
    assert torch.equal(from_blocks(to_blocks(fine)), fine)
    # component 0 of a block is its first site, the last component its last site
    first = fine[(slice(None),) + (slice(0, None, 2),) * d]
    last = fine[(slice(None),) + (slice(1, None, 2),) * d]
    assert torch.equal(to_blocks(fine)[..., 0], first)
    assert torch.equal(to_blocks(fine)[..., -1], last)


@pytest.mark.parametrize("d,L", SHAPES)
def test_zero_sum_embedding_logdet_and_inverse(d, L):
    emb = ZeroSumEmbedding(d)
    n = 2 ** d
    coarse, zf = field((1,) + (L,) * d, 3), field((1,) + (L,) * d + (n - 1,), 4)
    fine, logdet = emb(coarse, zf)
    assert torch.allclose(block_mean(fine), coarse)
    assert torch.allclose(to_blocks(fine).sum(-1), n * coarse)  # noise sums to zero
    (c2, z2), logdet_inv = emb.inverse(fine)
    assert torch.allclose(c2, coarse, atol=1e-12) and torch.allclose(z2, zf, atol=1e-12)
    assert torch.allclose(logdet_inv, -logdet)
    assert logdet.item() == pytest.approx(L ** d * d * math.log(2), abs=1e-12)
    nc = coarse.numel()
    ref = brute_logdet(lambda v: emb(v[:nc].reshape(coarse.shape),
                                     v[nc:].reshape(zf.shape))[0],
                       torch.cat([coarse.reshape(-1), zf.reshape(-1)]))
    assert ref.item() == pytest.approx(logdet.item(), abs=1e-10)


# ------------------------------------------------------------------------ noise
def test_zero_sum_noise_density_integrates_to_one_in_1d():
    noise = ZeroSumNoise(1, sigma=0.7).double()
    z = torch.linspace(-8, 8, 4001, dtype=F64)
    p = torch.exp(noise.log_prob(z.reshape(-1, 1, 1)))  # B grid points, one block each
    assert torch.trapezoid(p, z).item() == pytest.approx(1.0, abs=1e-8)
    # variance sigma^2 (1 - 1/2)
    assert torch.trapezoid(p * z ** 2, z).item() == pytest.approx(0.49 / 2, rel=1e-6)


@pytest.mark.parametrize("d", [2, 3])
def test_zero_sum_noise_matches_multivariate_normal(d):
    noise = ZeroSumNoise(d, sigma=1.3).double()
    mvn = torch.distributions.MultivariateNormal(torch.zeros(2 ** d - 1, dtype=F64),
                                                 covariance_matrix=noise.covariance())
    zf, lp = noise.sample((3,) + (2,) * d, torch.Generator().manual_seed(5))
    ref = mvn.log_prob(zf).reshape(3, -1).sum(-1)
    assert torch.allclose(lp, ref, atol=1e-10)
    assert torch.allclose(noise.log_prob(zf), ref, atol=1e-10)


def test_zero_sum_noise_sample_covariance():
    noise = ZeroSumNoise(2, sigma=0.5).double()
    zf, _ = noise.sample((20000, 1, 1), torch.Generator().manual_seed(6))
    emp = torch.cov(zf.reshape(-1, 3).T)
    assert torch.allclose(emp, noise.covariance(), atol=0.01)


def test_gaussian_noise_density():
    noise = GaussianNoise(2, sigma=0.8).double()
    zf, lp = noise.sample((2, 2, 2), torch.Generator().manual_seed(7))
    assert zf.shape == (2, 2, 2, 3)
    ref = torch.distributions.Normal(0.0, 0.8).log_prob(zf).reshape(2, -1).sum(-1)
    assert torch.allclose(lp, ref, atol=1e-12)


# ------------------------------------------------------------------------ couplings
COUPLINGS = [dict(), dict(mask="block"), dict(exclude="last", cond_channels=1),
             dict(mask="block", exclude="first", cond_channels=1, z2=True), dict(z2=True)]


@pytest.mark.parametrize("d,L", SHAPES)
@pytest.mark.parametrize("kw", COUPLINGS)
def test_coupling_logdet_and_inverse(d, L, kw):
    layer = randomise(AffineCoupling(d, 0, width=4, depth=2, **kw).double())
    x = field((2,) + (2 * L,) * d, 8)
    cond = field(x.shape, 9) if kw.get("cond_channels") else None
    y, logdet = layer(x, cond)
    assert logdet.shape == (2,) and logdet.dtype == F64
    assert logdet.abs().max() > 0  # the layer is not the identity
    x2, logdet_inv = layer.inverse(y, cond)
    assert torch.allclose(x2, x, atol=1e-10) and torch.allclose(logdet_inv, -logdet)
    for b in range(2):
        c = None if cond is None else cond[b:b + 1]
        ref = brute_logdet(lambda v: layer(v, c)[0], x[b:b + 1])
        assert ref.item() == pytest.approx(logdet[b].item(), abs=1e-8)


@pytest.mark.parametrize("d,L", SHAPES)
def test_coupling_stack_z2_equivariance(d, L):
    stack = randomise(CouplingStack(AffineCoupling(d, i % 2, width=4, z2=True, cond_channels=1)
                                    for i in range(3)).double(), std=0.4)
    x, cond = field((2,) + (2 * L,) * d, 10), field((2,) + (2 * L,) * d, 11)
    y, ld = stack(x, cond)
    ym, ldm = stack(-x, -cond)
    assert torch.allclose(ym, -y, atol=1e-12) and torch.allclose(ldm, ld, atol=1e-12)
    assert not torch.allclose(y, x)


def test_coupling_without_z2_is_not_equivariant():
    layer = randomise(AffineCoupling(2, 0, width=4).double(), std=0.4)
    x = field((1, 4, 4), 12)
    assert not torch.allclose(layer(-x)[0], -layer(x)[0])


def test_untrained_coupling_is_identity():
    layer = AffineCoupling(2, 0).double()
    x = field((2, 4, 4), 13)
    y, ld = layer(x)
    assert torch.equal(y, x) and torch.equal(ld, torch.zeros(2, dtype=F64))


# ------------------------------------------------------------------------ levels
def make_level(cls, d, conditional, z2=False, seed=0):
    lev = cls(d, n_layers=4, width=4, depth=2, sigma=0.9, z2=z2, conditional=conditional)
    lev = randomise(lev.double(), std=0.2, seed=seed)
    with torch.no_grad():
        lev.noise.set_sigma(0.9)
    return lev


@pytest.mark.parametrize("d,L", SHAPES)
@pytest.mark.parametrize("cls", LEVELS)
@pytest.mark.parametrize("conditional", [False, True])
def test_level_full_map_logdet(d, L, cls, conditional):
    """log|det ∂fine/∂(coarse, ζ')| of the whole level equals the brute-force Jacobian."""
    lev = make_level(cls, d, conditional)
    coarse = field((1,) + (L,) * d, 14)
    zf, _ = lev.noise.sample(coarse.shape, torch.Generator().manual_seed(15))
    fine, logdet = lev.transform(coarse, zf)
    nc = coarse.numel()
    ref = brute_logdet(lambda v: lev.transform(v[:nc].reshape(coarse.shape),
                                               v[nc:].reshape(zf.shape))[0],
                       torch.cat([coarse.reshape(-1), zf.reshape(-1)]))
    assert ref.item() == pytest.approx(logdet.item(), abs=1e-7)
    c2, z2, logdet_inv = lev.inverse_transform(fine)
    assert torch.allclose(c2, coarse, atol=1e-9) and torch.allclose(z2, zf, atol=1e-9)
    assert logdet_inv.item() == pytest.approx(-logdet.item(), abs=1e-9)


@pytest.mark.parametrize("d,L", SHAPES)
@pytest.mark.parametrize("cls", LEVELS)
@pytest.mark.parametrize("conditional", [False, True])
def test_level_sample_log_prob_round_trip(d, L, cls, conditional):
    lev = make_level(cls, d, conditional)
    coarse = field((3,) + (L,) * d, 16)
    fine, log_q = lev.sample(coarse, torch.Generator().manual_seed(17))
    assert fine.shape == (3,) + (2 * L,) * d and log_q.shape == (3,)
    c2, log_q2 = lev.log_prob(fine)
    assert torch.allclose(c2, coarse, atol=1e-9)
    assert torch.allclose(log_q2, log_q, atol=1e-8)
    if cls is SuperResolutionLevel and conditional:
        assert torch.allclose(block_mean(fine), coarse)  # block means preserved
    if cls is CheckerboardLevel and conditional:
        assert torch.equal(to_blocks(fine)[..., 0], coarse)  # decimation recovers coarse


def test_level_log_q_is_a_normalised_density_in_1d():
    """d=1, coarse L=1 (fine: 2 sites): with φ ~ N(0, 1), q(fine) = p(φ) exp(log_q)
    is a normalised density on R^2 (quadrature over the fine field)."""
    lev = make_level(SuperResolutionLevel, 1, False)
    g = torch.linspace(-7, 7, 401, dtype=F64)
    a, b = torch.meshgrid(g, g, indexing="ij")
    fine = torch.stack([a.reshape(-1), b.reshape(-1)], dim=1)  # (B, 2): one block
    coarse, log_q = lev.log_prob(fine)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(coarse[:, 0])
    dens = torch.exp(log_p + log_q).reshape(401, 401)
    total = torch.trapezoid(torch.trapezoid(dens, g, dim=1), g)
    assert total.item() == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("cls", LEVELS)
@pytest.mark.parametrize("conditional", [False, True])
def test_level_z2_equivariance(cls, conditional):
    lev = make_level(cls, 2, conditional, z2=True)
    coarse = field((2, 2, 2), 18)
    zf, _ = lev.noise.sample(coarse.shape, torch.Generator().manual_seed(19))
    fine, ld = lev.transform(coarse, zf)
    fine_m, ld_m = lev.transform(-coarse, -zf)
    assert torch.allclose(fine_m, -fine, atol=1e-12) and torch.allclose(ld_m, ld, atol=1e-12)
    _, lq = lev.log_prob(fine)
    _, lq_m = lev.log_prob(-fine)
    assert torch.allclose(lq, lq_m, atol=1e-12)


@pytest.mark.parametrize("cls", LEVELS)
@pytest.mark.parametrize("conditional", [False, True])
def test_level_is_size_agnostic(cls, conditional):
    """Same weights on L=4 and L=8; a periodically tiled input gives the tiled output."""
    lev = make_level(cls, 2, conditional)
    coarse = field((1, 4, 4), 20)
    zf, _ = lev.noise.sample(coarse.shape, torch.Generator().manual_seed(21))
    fine, ld = lev.transform(coarse, zf)
    tile = lambda x: x.repeat((1, 2, 2) + (1,) * (x.dim() - 3))
    fine8, ld8 = lev.transform(tile(coarse), tile(zf))
    assert fine8.shape == (1, 16, 16)
    assert torch.allclose(fine8, tile(fine), atol=1e-12)
    assert torch.allclose(ld8, 4 * ld, atol=1e-10)
    c8, lq8 = lev.log_prob(fine8)
    assert torch.allclose(c8, tile(coarse), atol=1e-10)


def test_flow_chain_sample_log_prob_and_transfer():
    levels = [make_level(SuperResolutionLevel, 2, False, seed=s) for s in (0, 1)]
    chain = FlowChain(levels)
    coarse = field((2, 2, 2), 22)
    fines, log_qs = chain.sample(coarse, torch.Generator().manual_seed(23))
    assert [f.shape for f in fines] == [(2, 4, 4), (2, 8, 8)]
    c2, log_qs2 = chain.log_prob(fines[-1])
    assert torch.allclose(c2, coarse, atol=1e-9)
    for a, b in zip(log_qs, log_qs2):
        assert torch.allclose(a, b, atol=1e-8)
    # transfer: level 1 gets level 0's weights, separate tensors
    chain.transfer(0)
    x = field((1, 4, 4), 24)
    assert torch.equal(chain.levels[1].log_prob(x)[1], chain.levels[0].log_prob(x)[1])
    with torch.no_grad():
        chain.levels[1].noise.log_sigma.add_(0.1)
    assert not torch.equal(chain.levels[1].noise.log_sigma, chain.levels[0].noise.log_sigma)
    with pytest.raises(ValueError):
        chain.transfer(1)


def test_log_q_is_differentiable_in_all_parameters():
    lev = SuperResolutionLevel(2, n_layers=2, width=4)
    fine, log_q = lev.sample(torch.randn(2, 2, 2), torch.Generator().manual_seed(25))
    (log_q.sum() + fine.pow(2).sum()).backward()
    assert lev.noise.log_sigma.grad is not None
    assert all(p.grad is not None for p in lev.flow.parameters())


# ------------------------------------------------------------------------ continuous flow
def make_cnf(d, seed=0, steps=16):
    from hpc_rg.flows import ContinuousFlow
    # weights small enough that 16 RK4 steps resolve the trajectory (27 taps in d = 3)
    return randomise(ContinuousFlow(d, n_freq=3, n_time=3, steps=steps).double(),
                     std=0.3 if d < 3 else 0.12, seed=seed)


@pytest.mark.parametrize("d,L", SHAPES)
def test_continuous_flow_logdet_inverse_z2(d, L):
    """RK4 log-det and inverse agree with the brute force to O(h^4) (1e-5 here)."""
    cnf = make_cnf(d)
    x = field((1,) + (2 * L,) * d, 26)
    y, logdet = cnf(x)
    assert logdet.abs().item() > 1e-3
    ref = brute_logdet(lambda v: cnf(v)[0], x)
    assert ref.item() == pytest.approx(logdet.item(), abs=1e-5)
    x2, logdet_inv = cnf.inverse(y)
    assert torch.allclose(x2, x, atol=1e-5)
    assert logdet_inv.item() == pytest.approx(-logdet.item(), abs=1e-5)
    ym, ldm = cnf(-x)
    assert torch.allclose(ym, -y, atol=1e-12) and torch.allclose(ldm, logdet, atol=1e-12)


def test_level_with_continuous_flow():
    lev = SuperResolutionLevel(2, flow=make_cnf(2)).double()
    coarse = field((2, 2, 2), 27)
    fine, log_q = lev.sample(coarse, torch.Generator().manual_seed(28))
    c2, log_q2 = lev.log_prob(fine)
    assert torch.allclose(c2, coarse, atol=1e-5) and torch.allclose(log_q2, log_q, atol=1e-4)
    with pytest.raises(ValueError):
        SuperResolutionLevel(2, flow=make_cnf(2), conditional=True)
