"""Replica exchange: the pure decision function, its statistics, and the MPI wrapper."""

import logging

import numpy as np
import pytest
from mpi4py import MPI

from hpc_rg.mc.tempering import (ParallelTempering, TemperingState, swap_step,
                                 tempering_uniforms)


def test_swap_probability_is_metropolis():
    betas = np.array([1.0, 0.5])
    labels = np.array([[0, 1]])
    energies = np.array([[-1.0, -3.0]])  # member 1 (hot) has lower energy: delta = 0.5*2 = 1
    for u, expect in [(0.0, True), (0.99, True)]:
        new, att, acc = swap_step(labels, energies, betas, 0, np.array([[u]]))
        assert att.tolist() == [True] and acc[0, 0] == expect
        assert new.tolist() == [[1, 0]]
    energies = np.array([[-3.0, -1.0]])  # delta = -1 -> p = e^-1
    p = np.exp(-1.0)
    assert swap_step(labels, energies, betas, 0, np.array([[p - 1e-9]]))[2][0, 0]
    assert not swap_step(labels, energies, betas, 0, np.array([[p + 1e-9]]))[2][0, 0]
    # odd parity: no pair of a 2-temperature ladder is attempted
    new, att, acc = swap_step(labels, energies, betas, 1, np.zeros((1, 1)))
    assert not att.any() and not acc.any() and new.tolist() == [[0, 1]]


def test_even_odd_pairs_and_permutations():
    rng = np.random.default_rng(1)
    T, n = 7, 50
    labels = np.array([rng.permutation(T) for _ in range(n)])
    betas = 1.0 / np.linspace(1.0, 3.0, T)
    for parity in (0, 1):
        e = rng.normal(size=(n, T)) * 5
        new, att, acc = swap_step(labels, e, betas, parity, rng.random((n, T - 1)))
        assert att.tolist() == [(t % 2) == parity for t in range(T - 1)]
        assert (np.sort(new, axis=1) == np.arange(T)).all()
        # a label changes only through an accepted attempted pair
        for l in range(n):
            moved = labels[l] != new[l]
            for m in np.nonzero(moved)[0]:
                t_old, t_new = labels[l, m], new[l, m]
                assert abs(t_old - t_new) == 1 and acc[l, min(t_old, t_new)]
        labels = new


def _swap_step_loop(labels, energies, betas, parity, uniforms):
    """The reference: swap_step as first written, a loop over the attempted pairs."""
    n, T = labels.shape
    rows = np.arange(n)[:, None]
    who = np.empty_like(labels)
    who[rows, labels] = np.arange(T)[None, :]
    attempted = (np.arange(T - 1) % 2) == (int(parity) % 2)
    e_at = energies[rows, who]
    delta = (betas[:-1] - betas[1:])[None, :] * (e_at[:, :-1] - e_at[:, 1:])
    with np.errstate(over="ignore"):
        prob = np.exp(np.minimum(delta, 0.0))
    accepted = (np.asarray(uniforms) < prob) & attempted[None, :]
    new_who = who.copy()
    for t in np.nonzero(attempted)[0]:
        acc = accepted[:, t]
        new_who[acc, t], new_who[acc, t + 1] = who[acc, t + 1], who[acc, t]
    new_labels = np.empty_like(labels)
    new_labels[rows, new_who] = np.arange(T)[None, :]
    return new_labels, attempted, accepted


@pytest.mark.parametrize("n,T", [(1, 1), (6, 1), (1, 2), (9, 2), (5, 3), (40, 7), (256, 24)])
def test_swap_step_equals_the_pair_loop(n, T):
    """The vectorised swap_step is the loop over pairs, bit for bit, on random permutations
    (energies from small to overflowing exp, both parities, u = 1)."""
    rng = np.random.default_rng(n * 100 + T)
    labels = np.array([rng.permutation(T) for _ in range(n)], dtype=np.int64)
    for trial in range(40):
        betas = np.sort(rng.random(T))[::-1] + 0.05
        e = rng.normal(size=(n, T)) * [1.0, 50.0, 1e6][trial % 3]
        u = rng.random((n, max(T - 1, 0)))
        if trial % 5 == 4 and T > 1:  # u = 1: nothing accepted
            u[:, :] = 1.0
        parity = trial % 2
        ref = _swap_step_loop(labels, e, betas, parity, u)
        got = swap_step(labels, e, betas, parity, u)
        for a, b in zip(ref, got):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
        labels = got[0]


def test_uniforms_of_one_parity_are_those_of_the_full_draw():
    for seed, k, n, T in [(5, 3, 4, 6), (1, 0, 1, 2), (2, 7, 3, 1), (9, 2 ** 33, 17, 24)]:
        full = tempering_uniforms(seed, k, n, T)
        for parity in (0, 1):
            part = tempering_uniforms(seed, k, n, T, parity=parity)
            assert part.shape == full.shape
            assert np.array_equal(part[:, parity::2], full[:, parity::2])
            assert np.isnan(part[:, 1 - parity::2]).all()


def test_wrapper_energies_and_labels_for_any_order_of_chain_ids():
    """One rank holding every chain, in id order (the fast path) or shuffled: same labels."""
    T, n = 5, 6
    rng = np.random.default_rng(3)
    order = rng.permutation(n * T)
    a = ParallelTempering(TemperingState(n, 1.0 / np.linspace(1, 2, T), seed=8), np.arange(n * T))
    b = ParallelTempering(TemperingState(n, 1.0 / np.linspace(1, 2, T), seed=8), order)
    for k in range(30):
        e = rng.normal(size=n * T) * 4
        la, lb = a.exchange(e, k), b.exchange(e[order], k)
        assert np.array_equal(la[order], lb)
    assert np.array_equal(a.state.accepts, b.state.accepts) and a.state.accepts.sum() > 0
    with pytest.raises(RuntimeError, match="no energy"):
        a.exchange(np.full(n * T, np.nan), 30)


def test_detailed_balance_two_temperature_toy():
    """Two members with fixed energies: the label chain has the stationary distribution
    P(swapped)/P(identity) = exp[(b0 - b1)(Ea - Eb)] and balanced transition counts."""
    betas = np.array([1.0, 0.4])
    Ea, Eb = 0.5, -1.2
    ratio = np.exp((betas[0] - betas[1]) * (Ea - Eb))  # = pi(swapped) / pi(identity)
    n = 4000
    st = TemperingState(n, betas, seed=3)
    e = np.tile([Ea, Eb], (n, 1))
    swapped_time, flips_up, flips_down = 0, 0, 0
    steps = 200
    for k in range(0, 2 * steps, 2):  # even exchange indices attempt pair (0, 1)
        before = st.labels[:, 0] == 1
        st.exchange(e, k)
        after = st.labels[:, 0] == 1
        flips_up += int((~before & after).sum())
        flips_down += int((before & ~after).sum())
        swapped_time += int(after.sum())
    frac = swapped_time / (n * steps)
    expect = ratio / (1 + ratio)
    sigma = np.sqrt(expect * (1 - expect) / (n * steps)) * 3  # correlated steps: generous
    assert abs(frac - expect) < 4 * sigma
    assert abs(flips_up - flips_down) <= n  # detailed balance: flows equal up to the start
    acc = st.stats()["acceptance"][0]
    p_id, p_sw = min(1, ratio), min(1, 1 / ratio)
    assert abs(acc - (p_id / (1 + ratio) + p_sw * ratio / (1 + ratio))) < 0.01


def test_joint_distribution_with_dynamics():
    """Two-level systems (E in {0, 1}) updated by heat bath at their current temperature,
    with exchanges: the energy distribution at every temperature is Boltzmann."""
    rng = np.random.default_rng(7)
    betas = np.array([2.0, 1.2, 0.7, 0.3])
    T, n = len(betas), 3000
    st = TemperingState(n, betas, seed=11)
    E = rng.integers(0, 2, size=(n, T)).astype(float)
    counts = np.zeros(T)
    samples = 0
    for k in range(400):
        b = betas[st.labels]
        E = (rng.random((n, T)) < np.exp(-b) / (1 + np.exp(-b))).astype(float)
        st.exchange(E, k)
        if k >= 20:
            who = np.argsort(st.labels, axis=1)
            counts += np.take_along_axis(E, who, axis=1).mean(axis=0)
            samples += 1
    p1 = counts / samples
    exact = np.exp(-betas) / (1 + np.exp(-betas))
    assert np.allclose(p1, exact, atol=0.01)


def test_round_trips_counted_once_per_journey():
    st = TemperingState(1, [1.0, 0.5, 0.25], seed=0)
    # drive member 0 through 0 -> 2 -> 0 by hand-made labels
    seq = [[0, 1, 2], [1, 0, 2], [2, 0, 1], [1, 2, 0], [0, 1, 2], [0, 2, 1]]
    for lab in seq:
        st.labels = np.array([lab])
        st._track_round_trips()
    assert st.round_trips.tolist() == [1]


def test_uniforms_are_deterministic_and_keyed_by_exchange():
    a = tempering_uniforms(5, 3, 4, 6)
    assert a.shape == (4, 5) and np.array_equal(a, tempering_uniforms(5, 3, 4, 6))
    assert not np.array_equal(a, tempering_uniforms(5, 4, 4, 6))


def test_low_acceptance_warns_once(caplog):
    st = TemperingState(10, [1.0, 0.1], seed=1, warn_below=0.2, warn_after=20)
    e = np.tile([-100.0, 100.0], (10, 1))  # hot member far above: never swaps
    with caplog.at_level(logging.WARNING, logger="hpc_rg"):
        for k in range(0, 10, 2):
            st.exchange(e, k)
            st.check_acceptance()
    msgs = [r for r in caplog.records if "acceptance" in r.getMessage()]
    assert len(msgs) == 1 and "warn_below" in msgs[0].getMessage()


def test_state_roundtrip():
    st = TemperingState(3, [1.0, 0.8, 0.6], seed=2)
    rng = np.random.default_rng(0)
    for k in range(10):
        st.exchange(rng.normal(size=(3, 3)), k)
    st2 = TemperingState(3, [1.0, 0.8, 0.6], seed=2)
    st2.load_state_dict(st.state_dict())
    e = rng.normal(size=(3, 3))
    st.exchange(e, 10)
    st2.exchange(e, 10)
    assert np.array_equal(st.labels, st2.labels)
    assert st.stats()["attempts"].tolist() == st2.stats()["attempts"].tolist()


def test_wrapper_without_mpi_maps_local_chains():
    st = TemperingState(2, [1.0, 0.5, 0.2], seed=4)
    pt = ParallelTempering(st, np.array([3, 4, 5]), across=None)  # ladder 1 only
    with pytest.raises(RuntimeError, match="no energy"):
        pt.exchange(np.zeros(3), 0)


@pytest.mark.mpi(min_size=2)
def test_wrapper_gathers_across_ranks():
    """Chains of 2 ladders spread over the world give the same labels as one rank."""
    comm = MPI.COMM_WORLD
    P, r = comm.Get_size(), comm.Get_rank()
    T, n = 4, 3
    ids_all = np.arange(n * T)
    mine = np.array_split(ids_all, P)[r]
    rng = np.random.default_rng(9)
    ref = TemperingState(n, 1.0 / np.linspace(1, 2, T), seed=5)
    st = TemperingState(n, 1.0 / np.linspace(1, 2, T), seed=5)
    pt = ParallelTempering(st, mine, comm)
    for k in range(20):
        e_all = rng.normal(size=n * T) * 3
        labels = pt.exchange(e_all[mine], k)
        ref.exchange(e_all.reshape(n, T), k)
        assert np.array_equal(labels, ref.labels.reshape(-1)[mine])
    assert np.array_equal(st.accepts, ref.accepts)
