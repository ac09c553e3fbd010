"""Crossing of two measured curves (hpc_rg.analysis.crossing)."""

import numpy as np
import pytest

from hpc_rg.analysis.crossing import crossings


def test_crossing_position_and_delta_method_error():
    """a = 1 − x and b = 0.5 on x = 0, 0.2, …, 1 cross at 0.5, between grid points 0.4 and
    0.6; with σ = 0.01 on every point of both curves the delta method gives
    σ_x = sqrt(2 · 0.5²) · sqrt(2) σ = σ."""
    x = np.linspace(0.0, 1.0, 6)
    sigma = np.full(6, 0.01)
    (x0, err), = crossings(x, 1.0 - x, sigma, np.full(6, 0.5), sigma, resamples=4000)
    assert x0 == pytest.approx(0.5)
    assert err == pytest.approx(0.01, rel=0.1)
    (_, err_half), = crossings(x, 1.0 - x, sigma / 2, np.full(6, 0.5), sigma / 2, resamples=4000)
    assert err_half == pytest.approx(err / 2, rel=0.1)


def test_unsorted_grid_no_crossing_and_two_crossings():
    x = np.array([0.3, 0.1, 0.2, 0.0])
    assert crossings(x, x + 1, 0 * x + 0.01, x, 0 * x + 0.01) == []
    x = np.linspace(-1.0, 1.0, 9)
    found = crossings(x[::-1], (x ** 2)[::-1], 0 * x + 1e-3, 0 * x + 0.3, 0 * x + 1e-3)
    assert [round(c, 2) for c, _ in found] == [-0.54, 0.54]  # chord of x² from 0.5 to 0.75 meets 0.3
