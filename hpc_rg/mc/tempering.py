"""Parallel tempering (replica exchange) between neighbouring temperatures.

Layout. Chains form *ladders* of T members (T = number of temperatures); member m of
ladder l has the global chain id ``u = l*T + m`` and starts at temperature index m.
Configurations never move: a swap exchanges the two chains' temperature *labels*.
``labels[l, m]`` is the temperature index member m of ladder l currently holds.

Decisions. Every rank knows every chain's energy (the MPI wrapper gathers them) and
draws the same uniforms from a stream keyed by (seed, "tempering", exchange index), so
every rank takes the same decisions without further communication, whatever the
distribution of chains over ranks. Exchange k attempts the pairs (t, t+1) with
``t % 2 == k % 2`` (even pairs, then odd pairs).

Statistics: per-pair attempts and acceptances (summed over ladders) and per-ladder round
trips, a round trip being one member going from the lowest temperature (index 0) to the
highest (index T-1) and back to the lowest.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from hpc_rg.rng import derive_seed

__all__ = ["swap_step", "tempering_uniforms", "TemperingState", "ParallelTempering"]

log = logging.getLogger("hpc_rg")


def swap_step(labels: np.ndarray, energies: np.ndarray, betas: np.ndarray, parity: int,
              uniforms: np.ndarray):
    """One replica-exchange step on every ladder (pure function, no MPI, no state).

    Parameters
    ----------
    labels : int array, shape (n_ladders, T)
        ``labels[l, m]``: temperature index held by member m of ladder l (each row a
        permutation of ``0..T-1``).
    energies : float array, shape (n_ladders, T)
        Total energy (energy units, not per site) of member m's configuration.
    betas : float array, shape (T,)
        Inverse temperatures by temperature index.
    parity : {0, 1}
        Attempt the pairs (t, t+1) with ``t % 2 == parity``.
    uniforms : float array, shape (n_ladders, T-1)
        Uniforms in [0, 1); ``uniforms[l, t]`` decides pair (t, t+1) of ladder l (only the
        columns of the attempted pairs are read).

    Returns
    -------
    new_labels : int64 array, shape (n_ladders, T)
    attempted : bool array, shape (T-1,)
        Pairs attempted at this parity.
    accepted : bool array, shape (n_ladders, T-1)
        Swaps accepted (False where not attempted).

    Notes
    -----
    Members a (at beta_t) and b (at beta_{t+1}) swap with the Metropolis probability
    ``min(1, exp[(beta_t - beta_{t+1}) (E_a - E_b)])``, which satisfies detailed balance
    for the product of Boltzmann weights ``prod_t exp(-beta_t E_{member at t})``
    (Hukushima & Nemoto, J. Phys. Soc. Jpn. 65, 1604 (1996)).
    """
    labels = np.asarray(labels, dtype=np.int64)
    energies = np.asarray(energies, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64)
    n, T = labels.shape
    p = int(parity) % 2
    attempted = np.zeros(max(T - 1, 0), dtype=bool)
    attempted[p::2] = True
    lo, hi = slice(p, T - 1, 2), slice(p + 1, T, 2)  # the two temperatures of each attempted pair
    slot = labels + _row_offsets(n, T)  # flat index of (l, labels[l, m])
    e_at = np.empty(n * T)  # e_at[l, t]: energy of the member at temperature t
    e_at[slot.ravel()] = energies.ravel()
    e_at = e_at.reshape(n, T)
    delta = (betas[lo] - betas[hi])[None, :] * (e_at[:, lo] - e_at[:, hi])
    with np.errstate(over="ignore"):
        prob = np.exp(np.minimum(delta, 0.0))
    acc = np.asarray(uniforms)[:, lo] < prob
    accepted = np.zeros((n, max(T - 1, 0)), dtype=bool)
    accepted[:, lo] = acc
    # attempted pairs are disjoint: temperature t goes to t + 1 and t + 1 to t where accepted
    move = np.zeros((n, T), dtype=np.int64)
    move[:, lo] = acc
    move[:, hi] = -move[:, lo]
    return labels + move.ravel()[slot], attempted, accepted


@functools.lru_cache(maxsize=8)
def _row_offsets(n: int, T: int) -> np.ndarray:
    """``l * T`` as a column (n, 1) int64, read-only."""
    off = np.arange(0, n * T, T, dtype=np.int64)[:, None]
    off.setflags(write=False)
    return off


def tempering_uniforms(seed: int, exchange_index: int, n_ladders: int, T: int,
                       parity: int | None = None) -> np.ndarray:
    """The uniforms of exchange ``exchange_index``: shape (n_ladders, T-1), float64.

    Counter-based: ``u[l, t] = splitmix64(k0 + (k * n_ladders * (T-1) + l * (T-1) + t + 1)
    * golden) >> 11`` scaled to [0, 1), with ``k0 = derive_seed(seed, "tempering")``; a
    function of (seed, exchange index, ladder, pair) only, identical on every rank.
    With ``parity``, only the pairs ``t % 2 == parity`` (those :func:`swap_step` attempts at
    that parity) are drawn, the same numbers; the other columns are NaN.
    """
    k0 = np.uint64(derive_seed(seed, "tempering"))
    npair = max(T - 1, 0)
    p = None if parity is None else int(parity) % 2
    z = _pair_counters(int(n_ladders), npair, p) + np.uint64(int(exchange_index) * n_ladders * npair)
    z *= _GOLDEN
    z += k0
    _splitmix64_(z)
    z >>= np.uint64(11)
    u = z.astype(np.float64)
    u *= 2.0**-53
    if p is None:
        return u
    out = np.full((n_ladders, npair), np.nan)
    out[:, p::2] = u
    return out


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@functools.lru_cache(maxsize=8)
def _pair_counters(n_ladders: int, npair: int, parity) -> np.ndarray:
    """``l * npair + t + 1`` for every ladder l and pair t (``parity``: only ``t % 2 == parity``),
    shape (n_ladders, pairs), uint64, read-only (the counters of exchange 0)."""
    t = np.arange(npair, dtype=np.uint64)
    if parity is not None:
        t = t[parity::2]
    c = (np.arange(n_ladders, dtype=np.uint64) * np.uint64(npair))[:, None] + t[None, :] + np.uint64(1)
    c.setflags(write=False)
    return c


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (Steele, Lea & Flood, OOPSLA 2014) on uint64 arrays (wrapping)."""
    return _splitmix64_(z.copy())


def _splitmix64_(z: np.ndarray) -> np.ndarray:
    """:func:`_splitmix64` in place."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


class TemperingState:
    """Temperature labels and exchange statistics of all ladders (no MPI).

    Parameters
    ----------
    n_ladders : int
        Number of ladders (clean models: chains; Edwards-Anderson: samples x replicas).
    betas : sequence of float, length T
        Inverse temperatures by temperature index.
    seed : int
        Run seed; exchange k uses :func:`tempering_uniforms` (seed, k).
    warn_below : float
        Warn (once per pair, logger ``hpc_rg``) when a pair's acceptance is below this
        after ``warn_after`` attempts.
    warn_after : int
        Attempts (summed over ladders) a pair needs before it can be warned about.

    Attributes
    ----------
    labels : int64 array, shape (n_ladders, T)
    attempts, accepts : int64 arrays, shape (T-1,)
    round_trips : int64 array, shape (n_ladders,)
    exchanges : int
        Number of exchange steps done.
    """

    def __init__(self, n_ladders: int, betas, seed: int, warn_below: float = 0.1,
                 warn_after: int = 100):
        self.betas = np.asarray(betas, dtype=np.float64)
        self.T = len(self.betas)
        self.n_ladders = int(n_ladders)
        self.seed = int(seed)
        self.warn_below = float(warn_below)
        self.warn_after = int(warn_after)
        T = self.T
        self.labels = np.tile(np.arange(T, dtype=np.int64), (self.n_ladders, 1))
        self.attempts = np.zeros(max(T - 1, 0), dtype=np.int64)
        self.accepts = np.zeros(max(T - 1, 0), dtype=np.int64)
        self.round_trips = np.zeros(self.n_ladders, dtype=np.int64)
        # last extreme visited by each member: -1 none yet, 0 lowest, 1 highest
        self.extreme = np.where(self.labels == 0, 0, -1).astype(np.int8)
        self.exchanges = 0
        self.warned = np.zeros(max(T - 1, 0), dtype=bool)

    def exchange(self, energies: np.ndarray, exchange_index: int) -> np.ndarray:
        """Attempt swaps on every ladder; updates labels and statistics.

        Parameters
        ----------
        energies : float array, shape (n_ladders, T)
            Total energy of each member (indexed by member, not temperature).
        exchange_index : int
            Global exchange number k: selects the parity (k % 2) and the uniforms.

        Returns
        -------
        accepted : bool array, shape (n_ladders, T-1)
        """
        k = int(exchange_index)
        u = tempering_uniforms(self.seed, k, self.n_ladders, self.T, parity=k % 2)
        self.labels, attempted, accepted = swap_step(self.labels, energies, self.betas,
                                                     k % 2, u)
        self.attempts += attempted.astype(np.int64) * self.n_ladders
        self.accepts += accepted.sum(axis=0)
        self.exchanges += 1
        self._track_round_trips()
        return accepted

    def _track_round_trips(self) -> None:
        low = self.labels == 0
        high = self.labels == self.T - 1
        done = low & (self.extreme == 1)
        self.round_trips += done.sum(axis=1)
        self.extreme[low] = 0
        self.extreme[high & (self.extreme == 0)] = 1

    @property
    def acceptance(self) -> np.ndarray:
        """Acceptance rate per pair (t, t+1), shape (T-1,); NaN before any attempt."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.attempts > 0, self.accepts / np.maximum(self.attempts, 1),
                            np.nan)

    def check_acceptance(self, emit: bool = True) -> list[int]:
        """Pairs newly found below ``warn_below``; logs one warning each when ``emit``."""
        acc = self.acceptance
        bad = np.flatnonzero(~self.warned & (self.attempts >= self.warn_after)
                             & (acc < self.warn_below)).tolist()  # NaN: not below
        for t in bad:
            self.warned[t] = True
            if emit:
                log.warning(
                    "parallel tempering: acceptance %.3f between temperatures %d (T=%.4g) and "
                    "%d (T=%.4g) is below sample.tempering.warn_below=%.3g after %d attempts; "
                    "add temperatures in between (or use geometric spacing)", acc[t], t,
                    1.0 / self.betas[t], t + 1, 1.0 / self.betas[t + 1], self.warn_below,
                    self.attempts[t])
        return bad

    def stats(self) -> dict:
        """``acceptance`` (T-1,), ``attempts`` (T-1,), ``accepts`` (T-1,), ``round_trips``
        (n_ladders,), ``exchanges`` (int)."""
        return {"acceptance": self.acceptance, "attempts": self.attempts.copy(),
                "accepts": self.accepts.copy(), "round_trips": self.round_trips.copy(),
                "exchanges": self.exchanges}

    def state_dict(self) -> dict:
        return {"labels": self.labels.copy(), "attempts": self.attempts.copy(),
                "accepts": self.accepts.copy(), "round_trips": self.round_trips.copy(),
                "extreme": self.extreme.copy(), "exchanges": self.exchanges,
                "warned": self.warned.copy()}

    def load_state_dict(self, d: dict) -> None:
        if np.shape(d["labels"]) != self.labels.shape:
            raise ValueError(f"tempering state has labels of shape {np.shape(d['labels'])}, "
                             f"expected {self.labels.shape}")
        self.labels = np.array(d["labels"], dtype=np.int64)
        self.attempts = np.array(d["attempts"], dtype=np.int64)
        self.accepts = np.array(d["accepts"], dtype=np.int64)
        self.round_trips = np.array(d["round_trips"], dtype=np.int64)
        self.extreme = np.array(d["extreme"], dtype=np.int8)
        self.exchanges = int(d["exchanges"])
        self.warned = np.array(d["warned"], dtype=bool)


class ParallelTempering:
    """MPI wrapper: gathers energies over ``across``, then every rank runs the same step.

    Parameters
    ----------
    state : TemperingState
        Held identically by every rank.
    chain_ids : int array, shape (B,)
        Global ids ``l*T + m`` of this rank's chains.
    across : mpi4py.MPI.Comm or None
        Communicator holding one rank per replica group (the union of its ranks' chains
        is every chain); ``None`` when this rank holds every chain.
    emit_warnings : bool
        Whether this rank logs low-acceptance warnings (rank 0 only, usually).
    """

    def __init__(self, state: TemperingState, chain_ids, across=None, emit_warnings=True):
        self.state = state
        self.chain_ids = np.asarray(chain_ids, dtype=np.int64)
        self.across = across
        self.emit_warnings = emit_warnings
        T = state.T
        self._ladder, self._member = np.divmod(self.chain_ids, T)
        # this rank holds every chain in id order (one rank, one group): no scatter or gather
        self._all = across is None or across.Get_size() == 1
        self._ordered = bool(np.array_equal(self.chain_ids, np.arange(state.n_ladders * T)))

    def gather_energies(self, energies: np.ndarray) -> np.ndarray:
        """Every chain's energy as (n_ladders, T) from each rank's (B,) local energies."""
        st = self.state
        if self._all and self._ordered:
            full = np.array(energies, dtype=np.float64).reshape(st.n_ladders, st.T)
        elif self._all:
            full = np.full((st.n_ladders, st.T), np.nan)
            full[self._ladder, self._member] = np.asarray(energies, dtype=np.float64)
        else:
            full = np.full((st.n_ladders, st.T), np.nan)
            local = (self.chain_ids, np.asarray(energies, dtype=np.float64))
            for ids, e in self.across.allgather(local):
                lad, mem = np.divmod(ids, st.T)
                full[lad, mem] = e
        if np.isnan(full).any():
            missing = np.argwhere(np.isnan(full))[:3].tolist()
            raise RuntimeError(f"parallel tempering: no energy for chains (ladder, member) "
                               f"{missing}...; the chains of the ranks do not cover all ladders")
        return full

    def exchange(self, energies: np.ndarray, exchange_index: int) -> np.ndarray:
        """Collective over ``across``: one exchange step; returns the local chains' new
        temperature indices, shape (B,) int64."""
        full = self.gather_energies(energies)
        self.state.exchange(full, exchange_index)
        self.state.check_acceptance(emit=self.emit_warnings)
        return self.local_labels()

    def local_labels(self) -> np.ndarray:
        """Current temperature index of each local chain, shape (B,) int64."""
        if self._ordered:
            return self.state.labels.reshape(-1).copy()
        return self.state.labels[self._ladder, self._member].copy()
