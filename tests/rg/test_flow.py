"""Tests for hpc_rg.rg.rescaling: the measured temperature flow and its inverse."""

import h5py
import numpy as np
import pytest

from hpc_rg.analysis import exact
from hpc_rg.rg.rescaling import TemperatureFlow, fit_flow, ising1d_flow

TC = 2.27
GRID = np.linspace(1.0, 4.0, 301)


def abs_m(T):
    return 0.5 * (1.0 - np.tanh((T - TC) / 0.4))


def energy(T):
    return -2.0 + 0.7 * (1.0 + np.tanh((T - TC) / 0.6))


def g(T):  # a flow away from TC
    return TC + 1.4 * (T - TC)


def g_inv(T):
    return TC + (T - TC) / 1.4


def synthetic_flow(grid=GRID, names=("abs_m", "energy")):
    curves = {"abs_m": abs_m, "energy": energy}
    return fit_flow(grid, {k: curves[k](grid) for k in names}, {k: curves[k](g(grid)) for k in names})


@pytest.mark.parametrize("names", [("abs_m",), ("energy",), ("abs_m", "energy")])
def test_fit_flow_recovers_known_map(names):
    flow = synthetic_flow(names=names)
    inside = (g(GRID) >= GRID[0]) & (g(GRID) <= GRID[-1])
    np.testing.assert_array_equal(flow.valid, inside)  # outside: no MC curve to match
    np.testing.assert_allclose(flow.f[flow.valid], g(GRID[flow.valid]), atol=2e-4)
    assert flow.observables == names and np.all(np.isnan(flow.f_err))
    assert flow.fixed_point() == pytest.approx(TC, abs=1e-6)
    T = np.linspace(1.5, 3.4, 50)
    np.testing.assert_allclose(flow.forward(T), g(T), atol=2e-4)
    np.testing.assert_allclose(flow.inverse(flow.forward(T)), T, atol=1e-12)
    np.testing.assert_allclose(flow.inverse(T), g_inv(T), atol=2e-4)
    # iterating the inverse converges to the fixed point and stays on the grid
    np.testing.assert_allclose(flow.iterate_inverse(T, 4), g_inv(g_inv(g_inv(g_inv(T)))), atol=2e-4)
    assert flow.iterate_inverse(1.05, 30) == pytest.approx(TC, abs=1e-3)
    assert flow.iterate_inverse(2.5, 0) == 2.5


def test_fit_flow_separate_small_grid_and_unsorted_input():
    small = np.linspace(0.8, 4.5, 120)
    T = GRID[::-1][::5]
    flow = fit_flow(T, {"e": energy(small)}, {"e": energy(g(T))}, T_small=small)
    assert np.all(np.diff(flow.T) > 0)
    np.testing.assert_allclose(flow.f[flow.valid], g(flow.T[flow.valid]), atol=3e-3)


def test_noisy_low_temperature_plateau():
    """A non-monotone, noisy plateau of <|m|> neither breaks the fit nor biases it elsewhere."""
    rng = np.random.default_rng(0)

    def m_noisy(T):  # |dm/dT| * spacing < noise below T ~ 1.4: a noisy, non-monotone plateau
        return abs_m(T) + np.where(T < 1.8, 2e-4 * rng.standard_normal(T.shape), 0.0)

    mc = {"abs_m": m_noisy(GRID), "energy": energy(GRID)}
    bl = {"abs_m": m_noisy(g(GRID)), "energy": energy(g(GRID))}
    err = {"abs_m": np.full(GRID.size, 2e-4), "energy": np.full(GRID.size, 2e-4)}
    for used in (("abs_m",), ("abs_m", "energy")):
        flow = fit_flow(GRID, mc, bl, mc_errors=err, blocked_errors=err, observables=used)
        assert np.all(np.diff(flow.f[flow.valid]) > 0)
        ok = (flow.T > 2.0) & (flow.T < 3.0)  # m alone with errors 2e-4 is too flat beyond
        assert np.all(flow.valid[ok])
        sel = flow.valid & ok
        np.testing.assert_allclose(flow.f[sel], g(flow.T[sel]), atol=2e-3)
    assert np.any(np.diff(mc["abs_m"][GRID < 1.4]) > 0)  # the MC curve is indeed non-monotone
    # with the energy the plateau is down-weighted: the whole range is recovered
    sel = flow.valid
    np.testing.assert_allclose(flow.f[sel], g(flow.T[sel]), atol=5e-3)
    assert np.all(np.abs(flow.f[sel] - g(flow.T[sel])) < 3 * flow.f_err[sel])
    assert sel.sum() > 0.9 * ((g(GRID) >= GRID[0]) & (g(GRID) <= GRID[-1])).sum()
    strict = fit_flow(GRID, mc, bl, mc_errors=err, blocked_errors=err, max_err=1e-3)
    assert np.all(strict.f_err[strict.valid] <= 1e-3) and strict.valid.sum() < sel.sum()


def test_error_propagation_linear_and_combined():
    T = np.linspace(1.0, 4.0, 31)
    lin = {"a": 1.0 + 2.0 * T, "b": 5.0 - T}
    bl = {"a": 1.0 + 2.0 * g(T), "b": 5.0 - g(T)}
    sig = {"a": np.full(T.size, 0.01), "b": np.full(T.size, 0.01)}
    one = fit_flow(T, lin, bl, blocked_errors=sig, observables=["a"])
    np.testing.assert_allclose(one.f_err[one.valid], 0.005)  # sigma / |dO/dT|
    both = fit_flow(T, lin, bl, blocked_errors=sig)
    np.testing.assert_allclose(both.f_err[both.valid], 1 / np.sqrt(1 / 0.005**2 + 1 / 0.01**2))
    np.testing.assert_allclose(both.f[both.valid], g(T[both.valid]), atol=1e-12)


def test_error_propagation_matches_monte_carlo():
    rng = np.random.default_rng(1)
    T = np.linspace(1.0, 4.0, 31)
    sm, sb = 0.004, 0.006
    mask = (g(T) > T[0] + 0.05) & (g(T) < T[-1] - 0.05)
    fs, errs = [], []
    for _ in range(300):
        mc = {"a": 1.0 + 2.0 * T + sm * rng.standard_normal(T.size),
              "b": energy(T) + sm * rng.standard_normal(T.size)}
        bl = {"a": 1.0 + 2.0 * g(T) + sb * rng.standard_normal(T.size),
              "b": energy(g(T)) + sb * rng.standard_normal(T.size)}
        flow = fit_flow(T, mc, bl, mc_errors={k: np.full(T.size, sm) for k in mc},
                        blocked_errors={k: np.full(T.size, sb) for k in bl})
        assert np.all(flow.valid[mask])
        fs.append(flow.f[mask])
        errs.append(flow.f_err[mask])
    fs, errs = np.array(fs), np.array(errs)
    ratio = fs.std(axis=0) / errs.mean(axis=0)
    assert np.all(np.abs(ratio - 1) < 0.25) and abs(ratio.mean() - 1) < 0.08
    assert np.all(np.abs(fs.mean(axis=0) - g(T[mask])) < 4 * errs.mean(axis=0) / np.sqrt(300) + 1e-3)


def test_inverse_error_and_iterated_error():
    T = np.linspace(1.0, 4.0, 31)
    flow = TemperatureFlow(T=T, f=g(T), f_err=np.full(T.size, 0.01), valid=np.ones(T.size, bool),
                           observables=("x",))
    y, e = flow.inverse(2.8, return_err=True)
    assert y == pytest.approx(g_inv(2.8)) and e == pytest.approx(0.01 / 1.4)
    y2, e2 = flow.iterate_inverse(2.8, 2, return_err=True)
    assert y2 == pytest.approx(g_inv(g_inv(2.8)))
    assert e2 == pytest.approx(np.sqrt((0.01 / 1.4 / 1.4) ** 2 + (0.01 / 1.4) ** 2))


def test_out_of_range_handling():
    flow = synthetic_flow()
    lo, hi = flow.image
    assert lo < flow.domain[0] and hi > flow.domain[1]  # brackets the fixed point
    assert GRID[0] <= lo < GRID[0] + 0.02 and GRID[-1] - 0.02 < hi <= GRID[-1]
    with pytest.raises(ValueError, match="outside"):
        flow.inverse(lo - 0.1)
    with pytest.raises(ValueError, match="outside"):
        flow.forward(flow.domain[1] + 0.01)
    out = flow.inverse(np.array([lo - 0.1, 2.5, hi + 1]), out_of_range="nan")
    assert np.isnan(out[0]) and np.isnan(out[2]) and np.isfinite(out[1])
    with pytest.raises(ValueError):
        flow.inverse(2.5, out_of_range="clip")
    with pytest.raises(ValueError, match="fewer than two"):
        fit_flow(GRID, {"e": energy(GRID)}, {"e": np.full(GRID.size, 5.0)})
    with pytest.raises(ValueError, match="no observable"):
        fit_flow(GRID, {"e": energy(GRID)}, {"m": abs_m(GRID)})
    with pytest.raises(ValueError, match="strictly increasing"):
        TemperatureFlow(T=[1.0, 2.0, 3.0], f=[1.0, 0.5, 4.0], f_err=[0, 0, 0], valid=[1, 1, 1],
                        observables=("x",))


def test_ising1d_exact_flow_round_trip():
    T = np.geomspace(0.2, 20.0, 2000)
    flow = ising1d_flow(T)
    np.testing.assert_allclose(flow.forward(T), exact.decimated_temperature(T), rtol=1e-14)
    Ts = np.geomspace(0.3, 15.0, 40)
    np.testing.assert_allclose(flow.forward(Ts), exact.decimated_temperature(Ts), rtol=1e-3)
    np.testing.assert_allclose(flow.inverse(flow.forward(Ts)), Ts, rtol=1e-12)
    ref = 15.0
    for _ in range(3):
        ref = exact.superresolved_temperature(ref)
    assert flow.iterate_inverse(15.0, 3) == pytest.approx(ref, rel=1e-3)
    # 1D: f(T) > T everywhere, the inverse flows to T = 0 and leaves the grid
    with pytest.raises(ValueError):
        flow.fixed_point()
    with pytest.raises(ValueError, match="outside"):
        flow.iterate_inverse(1.0, 50)
    assert np.isnan(flow.iterate_inverse(1.0, 50, out_of_range="nan"))


def test_fit_flow_on_exact_1d_observables():
    """Decimating a 32-ring at T gives a 16-ring at f(T): exact curves recover the exact flow."""
    T = np.geomspace(0.3, 10.0, 400)
    Tp = exact.decimated_temperature(T)
    small = {"energy": np.array([exact.ising1d_energy(16, t) for t in T]),
             "g4": exact.ising1d_two_point(16, 4, 1.0 / T)}
    blocked = {"energy": np.array([exact.ising1d_energy(16, t) for t in Tp]),
               "g4": exact.ising1d_two_point(16, 4, 1.0 / Tp)}
    flow = fit_flow(T, small, blocked)
    assert flow.valid.sum() > 100
    np.testing.assert_allclose(flow.f[flow.valid], Tp[flow.valid], rtol=2e-3)


def test_attrs_round_trip(tmp_path):
    flow = fit_flow(GRID, {"abs_m": abs_m(GRID), "energy": energy(GRID)},
                    {"abs_m": abs_m(g(GRID)), "energy": energy(g(GRID))},
                    blocked_errors={"energy": np.full(GRID.size, 1e-3), "abs_m": np.full(GRID.size, 1e-3)})
    attrs = flow.to_attrs()
    assert all(isinstance(v, (np.ndarray, str)) for v in attrs.values())
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.attrs.update(attrs)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        back = TemperatureFlow.from_attrs(f.attrs)
    for name in ("T", "f", "f_err", "valid"):
        np.testing.assert_array_equal(getattr(back, name), getattr(flow, name))
    assert back.observables == flow.observables
    assert back.inverse(2.5) == flow.inverse(2.5)
    with pytest.raises(ValueError):
        flow.T[0] = 0.0  # arrays are read-only
