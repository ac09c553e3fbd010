"""Crossings of dimensionless observables between sizes L and 2L (issue #16)."""

from __future__ import annotations

import numpy as np
import pytest

from hpc_rg.analysis.size_crossings import combine_trainings, curve, size_crossings
from hpc_rg.analysis.tables import GroupTable


def _table(L, T, g, err=0.001, xi=None, nominal=None):
    T = np.asarray(T, float)
    values = {"g": np.asarray(g, float), "xi": np.asarray(xi if xi is not None else g, float) * L}
    errors = {"g": np.full(len(T), err), "xi": np.full(len(T), err * L)}
    return GroupTable(label="x", path="x.h5", L=L, dims=3, model="edwards_anderson",
                      source="superres", grid_name="temperatures", grid=T,
                      nominal=None if nominal is None else np.asarray(nominal, float),
                      r=np.array([1]), values=values, errors=errors)


def test_two_lines_crossing_at_a_known_temperature_on_different_grids():
    Ta = np.linspace(1.0, 1.4, 9)
    Tb = np.linspace(0.95, 1.45, 7)  # the 2L level sits on other (effective) temperatures
    a = _table(8, Ta, 1.0 - 0.5 * (Ta - 1.1637))
    b = _table(16, Tb, 1.0 - 1.5 * (Tb - 1.1637))
    (c,) = size_crossings([a, b], "g")
    assert c.L == 8 and c.T == pytest.approx(1.1637, abs=1e-9)
    assert 0 < c.err < 0.01
    (cx,) = size_crossings([a, b], "xi_over_L")  # xi / L: the same curves here
    assert cx.T == pytest.approx(1.1637, abs=1e-9)


def test_no_crossing_and_no_pair_give_nothing():
    T = np.linspace(1.0, 1.4, 5)
    assert size_crossings([_table(8, T, T), _table(16, T, T + 1)], "g") == []
    assert size_crossings([_table(8, T, T), _table(32, T, -T)], "g") == []  # not (L, 2L)


def test_nominal_matching_and_non_finite_temperatures():
    t = _table(8, [1.0, np.nan, 1.2], [0.5, 0.4, 0.3], nominal=[1.1, 1.2, 1.3])
    T, v, _ = curve(t, "g")
    assert list(T) == [1.0, 1.2] and list(v) == [0.5, 0.3]
    T, v, _ = curve(t, "g", "nominal")
    assert list(T) == [1.1, 1.2, 1.3]


def test_combine_trainings_mean_and_spread():
    T = np.linspace(1.0, 1.4, 9)
    runs = []
    for shift in (-0.01, 0.0, 0.01):
        a = _table(8, T, 1.0 - 0.5 * (T - 1.1637 - shift))
        b = _table(16, T, 1.0 - 1.5 * (T - 1.1637 - shift))
        runs.append(size_crossings([a, b], "g"))
    (key, (mean, std, sem, n, err)), = combine_trainings(runs).items()
    assert key == ("g", 8) and n == 3
    assert mean == pytest.approx(1.1637, abs=1e-9) and std == pytest.approx(0.01, abs=1e-9)
    assert sem == pytest.approx(0.01 / np.sqrt(3), abs=1e-9)
