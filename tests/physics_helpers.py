"""Shared helpers for the physics tests: brute-force enumeration, short MC runs, sigma checks."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from hpc_rg.analysis.stats import jackknife
from hpc_rg.mc.checkerboard import sweep, sweep_phi4
from hpc_rg.models import edwards_anderson as ea
from hpc_rg.models import ising
from hpc_rg.models.lattice import global_site_ids
from hpc_rg.rng import CounterRNG, derive_seed


def all_configs(n_spins: int) -> np.ndarray:
    """All 2**n +-1 configurations, shape (2**n, n), int8."""
    idx = np.arange(2**n_spins, dtype=np.int64)
    return (((idx[:, None] >> np.arange(n_spins)) & 1) * 2 - 1).astype(np.int8)


def brute_bond_energies(conf: np.ndarray, J: np.ndarray | None = None) -> np.ndarray:
    """Energies ``-sum_x sum_mu J_mu(x) s_x s_{x+mu}`` by explicit loops over bonds.

    conf: (n_conf, L, ..., L); J: (d, L, ..., L) or None (ferromagnet J=1). Written
    independently of the model code (index arithmetic, no rolls).
    """
    shape = conf.shape[1:]
    d = len(shape)
    flat = conf.reshape(conf.shape[0], -1).astype(np.float64)
    E = np.zeros(conf.shape[0])
    for site in np.ndindex(*shape):
        i = np.ravel_multi_index(site, shape)
        for mu in range(d):
            nb = list(site)
            nb[mu] = (nb[mu] + 1) % shape[mu]
            j = np.ravel_multi_index(tuple(nb), shape)
            coupling = 1.0 if J is None else float(J[(mu,) + site])
            E -= coupling * flat[:, i] * flat[:, j]
    return E


def boltzmann_moments(E: np.ndarray, beta: float, N: int):
    """Exact energy per site and specific heat per site from a list of all energies."""
    w = np.exp(-beta * (E - E.min()))
    Z = w.sum()
    e1 = (w * E).sum() / Z
    e2 = (w * E * E).sum() / Z
    return e1 / N, beta * beta * (e2 - e1 * e1) / N


def chain_major(x: np.ndarray) -> np.ndarray:
    """(n_meas, B) -> chains concatenated along axis 0 (bins = whole chains)."""
    return np.ascontiguousarray(np.asarray(x).T).reshape(-1)


def mean_and_c(e: np.ndarray, beta: float, N: int):
    """Energy per site and specific heat with jackknife errors over independent chains.

    e: (n_meas, B) energy per site.
    """
    B = e.shape[1]
    x = chain_major(e)
    em, ee = jackknife(lambda a: a, x, n_bins=B)
    c, ce = jackknife(lambda a, a2: beta * beta * N * (a2 - a * a), x, x * x, n_bins=B)
    return float(em), float(ee), float(c), float(ce)


def run_spin_model(shape, T, rule, field_fn, B=64, n_therm=300, n_meas=2000, seed=1, energy_fn=None,
                   cold=True, every=1):
    """Run B independent checkerboard chains; return energy per site, shape (n_meas, B)."""
    torch.manual_seed(derive_seed(seed, "test-init"))
    if cold:
        spins = torch.ones((B,) + tuple(shape), dtype=torch.float32)
    else:
        spins = torch.randint(0, 2, (B,) + tuple(shape)).float().mul_(2).sub_(1)
    rng = CounterRNG(derive_seed(seed, "mc"), torch.arange(B), global_site_ids(shape))
    beta = 1.0 / T
    N = math.prod(shape)
    energy_fn = energy_fn or ising.energy
    out = []
    for t in range(n_therm + n_meas * every):
        sweep(spins, field_fn, beta, rng, t, rule)
        if t >= n_therm and (t - n_therm) % every == 0:
            out.append(energy_fn(spins) / N)
    return torch.stack(out).numpy()


def run_phi4(shape, kappa, lam, width, B=64, n_therm=300, n_meas=2000, seed=3, obs=None):
    """Run B phi^4 checkerboard Metropolis chains; returns (obs series (n_meas, B), mean acceptance)."""
    phi = torch.zeros((B,) + tuple(shape), dtype=torch.float64)
    rng = CounterRNG(derive_seed(seed, "mc"), torch.arange(B), global_site_ids(shape))
    out, acc = [], []
    for t in range(n_therm + n_meas):
        a = sweep_phi4(phi, kappa, lam, width, rng, t)
        if t >= n_therm:
            out.append(obs(phi))
            acc.append(a)
    return torch.stack(out).numpy(), float(torch.stack(acc).mean())


def phi4_obs(p):
    """(⟨|φ̄|⟩, ⟨φ²⟩) per configuration of a 2D field batch (B, L, L): shape (B, 2)."""
    return torch.stack([p.mean((1, 2)).abs(), (p * p).mean((1, 2))], -1)


def train_objective(obj, fm, x, steps, generator, batch=64, lr=3e-3):
    """Adam on a flow ``LevelObjective`` with random batches of coarse fields ``x (N, *L)``
    (one parameter point) and their ``fm.log_p``."""
    opt = torch.optim.Adam(obj.parameters(), lr=lr)
    lpc = fm.log_p(x)
    xf = x.float()
    for _ in range(steps):
        idx = torch.randint(0, len(xf), (batch,), generator=generator)
        loss, _ = obj(xf[idx][None], lpc[idx][None], 0.0, generator)
        opt.zero_grad()
        loss.backward()
        opt.step()


def mh_chains(level, fm, x, observable, generator, n_chains=16, length=512, batch=256):
    """Independence-MH chains of one flow level fed with random rows of ``x``: the mean of
    ``observable`` over chains, the error from their spread, and the merged MH statistics."""
    from hpc_rg.flows.sampler import ChainState, mh_step
    means, stats = [], None
    for _ in range(n_chains):
        st, vals = ChainState(), []
        for j in range(0, length, batch):
            coarse = x[torch.randint(0, len(x), (batch,), generator=generator)]
            y, _, _ = mh_step(level, coarse, fm.log_p(coarse), fm, st, generator, index_offset=j)
            vals.append(observable(y))
        means.append(torch.cat(vals).mean(0).numpy())
        stats = st.stats if stats is None else stats.merge(st.stats)
    means = np.array(means)
    return means.mean(0), means.std(0, ddof=1) / math.sqrt(n_chains), stats


def mc_mean_err(series):
    """Mean and standard error over chains of an (n_meas, B, k) Monte Carlo series."""
    per_chain = series.mean(0)
    return per_chain.mean(0), per_chain.std(0, ddof=1) / math.sqrt(per_chain.shape[0])


def assert_agrees(measured, err, exact, n_sigma=4.0, max_rel_err=None, what=""):
    """|measured - exact| < n_sigma * err, and err small enough to make the test meaningful."""
    msg = f"{what}: measured {measured:.6f} +- {err:.6f}, exact {exact:.6f}"
    print(msg + f"  [{(measured - exact) / err:+.2f} sigma, rel err {err / abs(exact):.1e}]")
    assert err > 0, msg
    if max_rel_err is not None:
        assert err / abs(exact) < max_rel_err, msg + f" (relative error {err/abs(exact):.2e} too large)"
    assert abs(measured - exact) < n_sigma * err, msg + f" ({abs(measured-exact)/err:.1f} sigma)"


ising_field = ising.local_field


def ea_field(J):
    return functools.partial(ea.local_field, J=J)


def ea_energy(J):
    return functools.partial(ea.energy, J=J)
