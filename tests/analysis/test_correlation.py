"""Tests for hpc_rg.analysis.correlation against explicit index loops."""

import numpy as np
import pytest
import torch

from hpc_rg.analysis.correlation import magnetization, two_point, two_point_profile


def brute_two_point(conf: np.ndarray, r: int) -> np.ndarray:
    """(n, L_1, ..., L_d) -> G(r) per configuration, by loops over sites and directions."""
    shape = conf.shape[1:]
    d = len(shape)
    c = conf.astype(np.float64)
    out = np.zeros(conf.shape[0])
    for site in np.ndindex(*shape):
        for mu in range(d):
            nb = list(site)
            nb[mu] = (nb[mu] + r) % shape[mu]
            out += c[(slice(None),) + site] * c[(slice(None),) + tuple(nb)]
    return out / (np.prod(shape) * d)


def spins(shape, seed=0):
    return np.random.default_rng(seed).choice(np.array([-1, 1], dtype=np.int8), size=shape)


@pytest.mark.parametrize("shape", [(5, 6, 6), (4, 4, 6), (3, 8), (2, 3, 4, 5)])
def test_two_point_matches_brute_force(shape):
    conf = spins(shape)
    dims = len(shape) - 1
    for r in range(0, max(shape[1:]) + 2):
        np.testing.assert_allclose(two_point(conf, dims, r), brute_two_point(conf, r), atol=1e-15)


def test_two_point_dtypes_torch_and_leading_axes():
    conf = spins((2, 3, 8, 8), seed=1)
    ref = two_point(conf, 2, 3)
    assert ref.shape == (2, 3) and ref.dtype == np.float64
    flat = brute_two_point(conf.reshape(6, 8, 8), 3).reshape(2, 3)
    np.testing.assert_allclose(ref, flat, atol=1e-15)
    for x in (conf.astype(np.float32), conf.astype(np.int32), conf.astype(np.float64),
              torch.from_numpy(conf.astype(np.float32))):
        np.testing.assert_array_equal(two_point(x, 2, 3), ref)
    # r = 0 of spins is 1; G(r) = G(L - r)
    np.testing.assert_array_equal(two_point(conf, 2, 0), 1.0)
    np.testing.assert_allclose(two_point(conf, 2, 2), two_point(conf, 2, 6), atol=1e-15)


def test_two_point_int8_fields_do_not_overflow():
    conf = np.random.default_rng(2).integers(-127, 128, size=(3, 6, 6)).astype(np.int8)
    np.testing.assert_allclose(two_point(conf, 2, 1), brute_two_point(conf, 1), rtol=1e-14)


def test_two_point_profile_and_magnetization():
    conf = spins((4, 8, 8), seed=3)
    prof = two_point_profile(conf, 2, [0, 2, 4])
    assert prof.shape == (4, 3)
    for k, r in enumerate([0, 2, 4]):
        np.testing.assert_array_equal(prof[:, k], two_point(conf, 2, r))
    np.testing.assert_allclose(magnetization(conf, 2), conf.reshape(4, -1).mean(axis=1))
    assert magnetization(conf, 2).dtype == np.float64


def test_two_point_validation():
    conf = spins((2, 4, 4))
    with pytest.raises(ValueError):
        two_point(conf, 2, -1)
    with pytest.raises(ValueError):
        two_point(conf, 4, 1)
    with pytest.raises(TypeError):
        two_point(conf > 0, 2, 1)
