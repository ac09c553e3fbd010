"""Multi-spin-coded ±J kernel vs the existing checkerboard kernel, in distribution.

The two kernels draw different random streams, so they are compared statistically, not bit
by bit: one fixed 3D ±J Edwards-Anderson disorder sample (L = 8, periodic), one temperature
in the paramagnetic phase (T_c ≈ 1.1 for 3D ±J), many independent chains per kernel, two
real replicas (chain pairs). Compiled MSC path: ``hpc_rg.mc.msc.compiled`` (the bit-identical
torch reference where the C++ kernel cannot be built); existing path:
``hpc_rg.mc.checkerboard.sweep`` with ``edwards_anderson.local_field``. Both start hot
(random spins) and are measured with the same functions (MSC lanes unpacked to ±1).

Per chain (energy per site e) or per replica pair (link overlap q_l, q², the fractions of
time q spends in each of a few bins) the time average after burn-in is one independent
number; sigma of the mean is the spread over chains / sqrt(chains), honest whatever the
autocorrelation. Checks:

* thermalised: per kernel and observable, the first- and second-half averages of the
  measured window agree within 4 sigma (paired over chains);
* e, q_l, q²: |mean_MSC - mean_existing| < 4 sqrt(sigma_MSC² + sigma_existing²);
* P(q): chi² = d^T (C_MSC / n + C_existing / n)^-1 d over the bin fractions (last bin
  dropped: the fractions sum to 1), dof = bins - 1 = 6, p-value > 1e-4. Bin edges are
  multiples of the pooled rms overlap, snapped to midpoints between attainable q values.
"""

from __future__ import annotations

import functools
import math

import pytest
import torch

from hpc_rg.mc import checkerboard
from hpc_rg.mc.msc import layout
from hpc_rg.mc.msc import sweep_torch as msc_torch
from hpc_rg.models import edwards_anderson as ea
from hpc_rg.models.lattice import global_site_ids
from hpc_rg.rng import CounterRNG

L, DIMS = 8, 3
N = L ** DIMS
DISORDER_SEED = 2024
EDGES_IN_RMS_Q = (-1.5, -0.75, -0.25, 0.25, 0.75, 1.5)  # 7 bins of q
Z_MAX, P_MIN = 4.0, 1e-4
OBSERVABLES = ("e", "q_l", "q2")


def _couplings() -> torch.Tensor:
    """The fixed ±1 disorder sample ``(3, 8, 8, 8)`` float32."""
    return ea.couplings(L, DIMS, "pm1", seed=DISORDER_SEED, sample_index=0)


def _msc_sweep():
    """The compiled MSC sweep, or the bit-identical torch reference without a C++ compiler."""
    from hpc_rg.mc.msc import compiled
    try:
        compiled.load_library()
        return compiled.sweep
    except compiled.KernelUnavailable:
        return msc_torch.sweep


def _measure(spins: torch.Tensor, J: torch.Tensor, pairs: int) -> dict:
    """Observables of ±1 spins ``(2 pairs, *L)``: replica A = chains [0, pairs), B = the rest."""
    a, b = spins[:pairs], spins[pairs:]
    q = ea.overlap(a, b)
    return {"e": ea.energy(spins, J) / N, "q_l": ea.link_overlap(a, b), "q2": q * q, "q": q}


def _stack(rows: list) -> dict:
    return {k: torch.stack([r[k] for r in rows]) for k in rows[0]}


def run_msc(J, T, rule, pairs, burn, n_meas, every, seed) -> dict:
    """Time series ``(n_meas, chains)`` of the MSC kernel: ``2 pairs`` lanes (pairs a multiple
    of 64), replica A in words [0, W), replica B in words [W, 2W)."""
    W = pairs // layout.LANES
    assert W * layout.LANES == pairs
    sweep = _msc_sweep()
    planes = layout.pack_couplings(J.to(torch.int64), words=2 * W)
    thr = layout.thresholds(torch.full((2 * W, layout.LANES), 1.0 / T, dtype=torch.float64), DIMS, rule)
    gen = torch.Generator().manual_seed(seed)
    spins = torch.randint(-2 ** 63, 2 ** 63 - 1, (2 * W,) + (L,) * DIMS, dtype=torch.int64, generator=gen)
    site_ids, word_ids = torch.arange(N).reshape((L,) * DIMS), torch.arange(2 * W)
    sweep(spins, planes, thr, seed, word_ids, site_ids, 0, n_sweeps=burn)
    rows = []
    for k in range(n_meas):
        sweep(spins, planes, thr, seed, word_ids, site_ids, burn + k * every, n_sweeps=every)
        rows.append(_measure(layout.unpack_spins(spins), J, pairs))
    return _stack(rows)


def run_checkerboard(J, T, rule, pairs, burn, n_meas, every, seed) -> dict:
    """Time series ``(n_meas, chains)`` of the existing float checkerboard kernel (2 pairs chains)."""
    B = 2 * pairs
    gen = torch.Generator().manual_seed(seed)
    spins = (1 - 2 * torch.randint(0, 2, (B,) + (L,) * DIMS, generator=gen)).to(torch.float32)
    rng = CounterRNG(seed, torch.arange(B), global_site_ids((L,) * DIMS))
    field = functools.partial(ea.local_field, J=J)
    rows = []
    for t in range(burn + n_meas * every):
        checkerboard.sweep(spins, field, 1.0 / T, rng, t, rule)
        if t >= burn and (t - burn + 1) % every == 0:
            rows.append(_measure(spins, J, pairs))
    return _stack(rows)


def _mean_sigma(x: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of per-chain values ``x (chains,)``."""
    return float(x.mean()), float(x.std() / math.sqrt(x.numel()))


def _bin_edges(rms_q: float) -> torch.Tensor:
    """Edges in units of ``rms_q``, each moved to the nearest odd multiple of 1/N (q is a
    multiple of 2/N, so no value sits on an edge)."""
    e = torch.tensor(EDGES_IN_RMS_Q, dtype=torch.float64) * rms_q * N
    return (2 * torch.round((e - 1) / 2) + 1) / N


def _bin_fractions(q: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Per-chain fraction of time in each bin: ``q (T, pairs)`` -> ``(pairs, bins)``."""
    idx = torch.bucketize(q, edges)
    return torch.nn.functional.one_hot(idx, len(edges) + 1).double().mean(0)


def _chi2(fa: torch.Tensor, fb: torch.Tensor) -> tuple[float, int, float]:
    """chi², dof and p-value of equal mean bin fractions ``(chains, bins)`` (last bin dropped)."""
    fa, fb = fa[:, :-1], fb[:, :-1]
    d = fa.mean(0) - fb.mean(0)
    cov = torch.cov(fa.T) / fa.shape[0] + torch.cov(fb.T) / fb.shape[0]
    chi2 = float(d @ torch.linalg.solve(cov, d))
    dof = d.numel()
    p = float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                      torch.tensor(chi2 / 2, dtype=torch.float64)))
    return chi2, dof, p


def compare(T, rule, pairs, burn, n_meas, every, T_existing=None) -> dict:
    """Run both kernels and return the statistics and the list of failed checks.

    ``T_existing`` (default ``T``) runs the existing kernel at another temperature: a way to
    see that the comparison detects a wrong distribution.
    """
    J = _couplings()
    series = {"msc": run_msc(J, T, rule, pairs, burn, n_meas, every, seed=11),
              "existing": run_checkerboard(J, T_existing or T, rule, pairs, burn, n_meas, every, seed=12)}
    out = {"failures": [], "stats": {}}
    for name, s in series.items():  # thermalised: first half vs second half, paired over chains
        half = s["e"].shape[0] // 2
        for obs in OBSERVABLES:
            diff = s[obs][half:].mean(0) - s[obs][:half].mean(0)
            m, sig = _mean_sigma(diff)
            z = m / sig
            out["stats"][f"{name} drift {obs}"] = z
            if abs(z) > Z_MAX:
                out["failures"].append(f"{name} not thermalised in {obs}: second - first half = "
                                       f"{m:.5f} ({z:+.1f} sigma)")
    for obs in OBSERVABLES:
        (ma, sa), (mb, sb) = (_mean_sigma(series[k][obs].mean(0)) for k in ("msc", "existing"))
        z = (ma - mb) / math.hypot(sa, sb)
        out["stats"][obs] = (ma, sa, mb, sb, z)
        if abs(z) > Z_MAX:
            out["failures"].append(f"{obs}: MSC {ma:.5f} ± {sa:.5f} vs existing {mb:.5f} ± {sb:.5f} "
                                   f"({z:+.1f} sigma)")
    rms_q = math.sqrt(float(torch.cat([series[k]["q2"].reshape(-1) for k in series]).mean()))
    edges = _bin_edges(rms_q)
    fa, fb = (_bin_fractions(series[k]["q"], edges) for k in ("msc", "existing"))
    chi2, dof, p = _chi2(fa, fb)
    out["stats"]["P(q)"] = (chi2, dof, p, fa.mean(0).tolist(), fb.mean(0).tolist())
    if p < P_MIN:
        out["failures"].append(f"P(q): chi2 = {chi2:.1f} for {dof} dof, p = {p:.2e}; bin fractions "
                               f"MSC {fa.mean(0).tolist()} vs existing {fb.mean(0).tolist()}")
    return out


def test_msc_matches_existing_kernel_in_distribution_fast():
    """CI-sized: T = 1.6, Metropolis, 128 replica pairs per kernel, 800 measured sweeps after 600."""
    res = compare(T=1.6, rule="metropolis", pairs=128, burn=600, n_meas=400, every=2)
    assert not res["failures"], res["failures"]


@pytest.mark.slow
@pytest.mark.parametrize("rule", layout.RULES)
@pytest.mark.parametrize("T", (1.6, 2.5))
def test_msc_matches_existing_kernel_in_distribution(T, rule):
    """Nightly: 256 replica pairs per kernel, 4000 measured sweeps after 1000 of burn-in."""
    res = compare(T=T, rule=rule, pairs=256, burn=1000, n_meas=2000, every=2)
    assert not res["failures"], res["failures"]
