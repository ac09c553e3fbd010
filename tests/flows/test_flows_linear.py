"""BlockConv (hpc_rg.flows.linear, issue #17): exact FFT log-det vs the brute-force Jacobian,
inverse, the circular convolution it claims to be, translation by whole blocks, Z2, one set
of weights on every lattice size; and a flow_rg level built with ``linear_kernel``."""

import pytest
import torch
import torch.nn.functional as nnf
from torch.autograd.functional import jacobian

from hpc_rg.flows.linear import BlockConv
from hpc_rg.flows.modelfile import build_level
from hpc_rg.flows.upsample import from_blocks, to_blocks

F64 = torch.float64


def _conv(d, k, seed=0, std=0.15):
    m = BlockConv(d, k).double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        m.weight.add_(std * torch.randn(m.weight.shape, generator=g, dtype=F64))
    return m


def _x(shape, seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize("d,L,k", [(1, 8, 3), (2, 4, 5), (2, 8, 3), (2, 12, 5), (3, 4, 3)])
def test_blockconv_logdet_inverse(d, L, k):
    m = _conv(d, k)
    x = _x((2,) + (L,) * d)
    y, ld = m(x)
    x2, ldi = m.inverse(y)
    assert torch.allclose(x2, x, atol=1e-12)
    assert torch.allclose(ld + ldi, torch.zeros(2, dtype=F64), atol=1e-12)
    jac = jacobian(lambda v: m(v.reshape((1,) + x.shape[1:]))[0].reshape(-1), x[0].reshape(-1))
    assert torch.allclose(torch.linalg.slogdet(jac)[1], ld[0], atol=1e-9)


@pytest.mark.parametrize("L", [4, 8])
def test_blockconv_is_the_circular_convolution_of_the_blocks(L):
    m = _conv(2, 5)
    x = _x((3, L, L))
    b = to_blocks(x).permute(0, 3, 1, 2)                 # (B, 4, L/2, L/2)
    ref = nnf.conv2d(nnf.pad(b, (2, 2, 2, 2), mode="circular"), m.weight.flip(-1, -2))
    assert torch.allclose(from_blocks(ref.permute(0, 2, 3, 1)), m(x)[0], atol=1e-12)


def test_blockconv_identity_start_translation_and_z2():
    x = _x((2, 8, 8))
    y0, ld0 = BlockConv(2, 3).double()(x)
    assert torch.allclose(y0, x) and torch.allclose(ld0, torch.zeros(2, dtype=F64))
    m = _conv(2, 3)
    y, ld = m(x)
    ys, lds = m(torch.roll(x, (2, 4), (1, 2)))
    assert torch.allclose(ys, torch.roll(y, (2, 4), (1, 2)), atol=1e-12)
    # a shift by one fine site is not a symmetry of a block convolution
    assert not torch.allclose(m(torch.roll(x, 1, 1))[0], torch.roll(y, 1, 1), atol=1e-6)
    yn, ldn = m(-x)
    assert torch.allclose(yn, -y, atol=1e-12) and torch.allclose(ldn, ld)


def test_level_with_linear_kernel_exact_on_every_size():
    spec = dict(method="flow_rg", dims=2, layers=2, width=4, depth=2, kernel=3, sigma=0.5,
                learn_sigma=True, z2=True, conditional=False, scale_bound=2.0,
                local_flow="coupling", n_freq=4, n_time=3, ode_steps=16, linear_kernel=3)
    level = build_level(spec).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in level.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=F64))
    for L in (2, 4, 8):
        coarse = _x((3, L, L), seed=L)
        fine, log_q = level.sample(coarse, torch.Generator().manual_seed(1))
        back, log_q2 = level.log_prob(fine)
        assert torch.allclose(back, coarse, atol=1e-10)
        assert torch.allclose(log_q, log_q2, atol=1e-9)
    spec_old = dict(spec)
    spec_old.pop("linear_kernel")
    assert not any(isinstance(m, BlockConv) for m in build_level(spec_old).modules())


def test_flow_spec_without_linear_kernel_key_keeps_the_old_level():
    """Decks (train.flow) that do not know linear_kernel build the level they always did."""
    from types import SimpleNamespace

    from hpc_rg.flows.modelfile import _SPEC_KEYS, flow_spec
    f = SimpleNamespace(local_flow="coupling", layers=2, width=4, depth=2, kernel=3, sigma=0.5,
                        learn_sigma=True, z2=True, conditional=False, scale_bound=2.0,
                        n_freq=4, n_time=3, ode_steps=16)
    assert set(vars(f)) == set(_SPEC_KEYS)
    cfg = SimpleNamespace(train=SimpleNamespace(flow=f, method="flow_rg"),
                          model=SimpleNamespace(dims=2))
    spec = flow_spec(cfg, n_params=1, n_levels=2)
    assert spec["linear_kernel"] == 0
    f.linear_kernel = 5
    spec = flow_spec(cfg, n_params=1, n_levels=2)
    assert spec["linear_kernel"] == 5
    assert isinstance(build_level(spec).flow.layers[0], BlockConv)
