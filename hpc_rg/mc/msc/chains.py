"""The local chains of the sample stage held one spin per bit: multi-spin-coded state and sweeps.

Lane map: global chain ``c`` is lane ``c % 64`` of global word ``c // 64``. A rank holds the
words its chains fall in; lanes of those words that are not its chains are *idle*: they
always flip (no random digit is spent on them) and are never read. Because the random words
of :mod:`hpc_rg.mc.msc.rng` are keyed by the global word id and the global site id, a chain
draws the same bits whichever rank, group or slab holds it: results are bit-identical for
any number of ranks (idle lanes differ, live lanes do not -- a lane's decision reads only its
own bit of each random word).

Parallel tempering changes a chain's inverse temperature only: :meth:`MscChains.set_temperatures`
rewrites that lane's thresholds (a label swap inside the word), the bits stay where they are.

Slabs (``slab`` communicator of S > 1 ranks, first lattice axis): every colour update first
exchanges the ghost planes of the packed words (one int64 per lane-plane site), so an update
reads 64 systems' neighbours per message word.
"""

from __future__ import annotations

import numpy as np
import torch

from hpc_rg.mc.msc import layout
from hpc_rg.mc.msc import sweep_torch
from hpc_rg.parallel.halo import exchange_halo

__all__ = ["MscChains", "IMPLEMENTATIONS"]

IMPLEMENTATIONS = ("compiled", "torch")


class MscChains:
    """B chains of a ±J model (Edwards-Anderson or Ising ferromagnet) as spin words.

    Parameters
    ----------
    chain_ids : int64 array (B,)
        Global chain ids of the local chains (ascending).
    spins : Tensor (B, *local_shape)
        Initial ±1 spins (any dtype) of the local slab.
    couplings : Tensor (B, d, *local_shape) or None
        ±1 couplings ``J[mu, x]`` of bond (x, x + e_mu) per chain; None: all +1.
    couplings_below : Tensor (B, *local_shape[1:]) or None
        ``J[0]`` of the plane just below the slab (slabs with couplings only).
    rule : {"metropolis", "heatbath"}
    seed : int
        Seed of the random words (:mod:`hpc_rg.mc.msc.rng`).
    global_shape : tuple of int
        The full lattice; the slab starts at plane ``x0`` of its first axis.
    slab : mpi4py communicator or None
        The ranks sharing each configuration (None or size 1: periodic, undivided).
    implementation : {"compiled", "torch"}
        The C++ kernel (CPU) or the torch reference (CPU / CUDA), bit-identical.
    """

    def __init__(self, chain_ids, spins, couplings, couplings_below, rule, seed, global_shape, x0,
                 slab=None, implementation="compiled"):
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}")
        self.rule, self.seed, self.impl = rule, int(seed), implementation
        self.device = spins.device
        self.slab = slab if slab is not None and slab.Get_size() > 1 else None
        self.local_shape = tuple(spins.shape[1:])
        self.d = len(self.local_shape)
        self.x0 = int(x0)
        chain_ids = np.asarray(chain_ids, dtype=np.int64)
        self.B = len(chain_ids)
        self.word_ids = np.unique(chain_ids // layout.LANES)
        self.W = len(self.word_ids)
        # row of chain b in the lane-major (64 W, ...) view: 64 * local word + lane
        self.rows = torch.as_tensor(np.searchsorted(self.word_ids, chain_ids // layout.LANES)
                                    * layout.LANES + chain_ids % layout.LANES, device=self.device)
        self._rows_np = self.rows.cpu().numpy()
        live = torch.zeros(self.W * layout.LANES, dtype=torch.bool, device=self.device)
        live[self.rows] = True
        # bit b of _idle[w] = 1: lane b of word w holds no local chain
        self._idle = layout.pack_spins(torch.where(live, 1, -1).view(-1, 1)).view(self.W)
        self._words = self._pack(spins)
        self._inner = None  # the compiled kernel's word-inner copy, when it is the current state
        self._bits = None  # bits() of the current state (measurements read it several times)
        # stands in for the words (shape only) while the word-inner copy is the state
        self._shape_ref = torch.empty((self.W,) + self.local_shape, dtype=torch.int64)
        self.J = None if couplings is None else self._pack(couplings)
        self.J_below = None
        if self.slab is not None and couplings_below is not None:
            self.J_below = self._pack(couplings_below)
        from hpc_rg.models.lattice import global_site_ids
        self.site_ids = global_site_ids(global_shape, self.x0, self.x0 + self.local_shape[0],
                                        device=self.device)
        self._word_ids_t = torch.as_tensor(self.word_ids, dtype=torch.int64)
        self._idle_np = self._idle.cpu().numpy().view(np.uint64)
        self._patterns: dict = {}  # beta -> its threshold bits (K,) uint8
        self._table = None  # the inverse temperatures of the last set_temperatures call
        self._rows = None  # their threshold bits, packed (V + 1, KW) uint64; row V: idle lanes
        self._vcols = self._vrows = None  # the columns that differ between rows; their bits
        self._lanes = None  # (64 W,) int64: the row of every lane in the current thresholds
        self._lanes_built = False  # the thresholds hold every column of the current table
        self._rows_identity = bool(np.array_equal(self._rows_np, np.arange(self.B)))
        self._unsat_out = None  # the compiled kernel's (W, 64) unsatisfied-bond counts
        self.thresholds = None

    # ------------------------------------------------------------------ state
    @property
    def spins(self) -> torch.Tensor:
        """Spin words ``(W, *local_shape)`` int64 (bit 1: s = -1), current."""
        if self._words is None:
            from hpc_rg.mc.msc import compiled
            self._words = compiled.from_inner(self._inner, self.W, self.local_shape)
        return self._words

    @spins.setter
    def spins(self, words: torch.Tensor) -> None:
        self._words, self._inner, self._bits = words, None, None

    def _inner_state(self) -> torch.Tensor:
        """The word-inner copy the compiled kernel updates in place across calls (sweeps between
        measurements then pay no copy into and out of the kernel's layout)."""
        if self._inner is None:
            from hpc_rg.mc.msc import compiled
            self._inner = compiled.to_inner(self._words)
        self._words = None  # the kernel is about to change the state
        return self._inner

    # ------------------------------------------------------------------ packing
    def _pack(self, x: torch.Tensor) -> torch.Tensor:
        """Per-chain ±1 tensor (B, ...) -> words (W, ...), idle lanes +1 (bit 0)."""
        full = torch.ones((self.W * layout.LANES,) + tuple(x.shape[1:]), dtype=torch.int8,
                          device=self.device)
        full[self.rows] = x.to(device=self.device, dtype=torch.int8)
        return layout.pack_spins(full).contiguous()

    def set_beta(self, beta) -> None:
        """Inverse temperature of every local chain, ``(B,)`` float64 (units of 1/|J|)."""
        table, index = np.unique(np.asarray(beta, dtype=np.float64), return_inverse=True)
        self.set_temperatures(table, index.reshape(-1))

    def set_temperatures(self, betas, index) -> None:
        """Chain b at inverse temperature ``betas[index[b]]`` (``betas`` (V,) float64, units of
        1/|J|; ``index`` (B,) int: the tempering labels). Only the words whose lanes changed are
        rewritten (compiled: in place, one bit transpose per word and 64 threshold words) from
        the threshold bits of each temperature, kept while ``betas`` stays the same; idle lanes
        take beta = 0 and always flip."""
        index = np.asarray(index, dtype=np.int64)
        betas = np.asarray(betas, dtype=np.float64).reshape(-1)
        same_table = self._table is not None and np.array_equal(self._table, betas)
        if not same_table:
            self._new_table(betas.copy())
        V = len(self._table)
        if index.shape != (self.B,) or (self.B and not 0 <= int(index.min()) <= int(index.max()) < V):
            raise ValueError(f"index must be {self.B} temperature indices in [0, {V})")
        lanes = np.full(self.W * layout.LANES, V, dtype=np.int64)  # idle lanes: row V (beta 0)
        lanes[self._rows_np] = index
        words = None  # all
        if same_table and self._lanes is not None:
            words = np.flatnonzero((lanes != self._lanes).reshape(self.W, layout.LANES).any(1))
            if not len(words):
                return
            if len(words) == self.W:
                words = None
        self._lanes = lanes
        if self.impl == "compiled":
            from hpc_rg.mc.msc import compiled
            if self.thresholds is None:
                self.thresholds = torch.empty((self.W, 2 * self.d + 1, layout.DIGITS + 1),
                                              dtype=torch.int64)
            if self._lanes_built:  # lanes changed value: only the columns that differ between values
                compiled.set_thresholds(self.thresholds, self._vrows, lanes, words, self._idle_np,
                                        self._vcols)
            else:
                compiled.set_thresholds(self.thresholds, self._rows, lanes, None, self._idle_np)
                self._lanes_built = True
            return
        # the torch version (any device): every word rebuilt with numpy, bit b <- lane b
        bits = self._bits_table[lanes].reshape(self.W, layout.LANES, -1).transpose(0, 2, 1)
        thr = np.ascontiguousarray(np.packbits(bits, axis=-1, bitorder="little")).view("<i8")
        thr = thr.reshape(self.W, 2 * self.d + 1, layout.DIGITS + 1)
        thr[:, :, 0] |= self._idle_np.view(np.int64)[:, None]
        self.thresholds = torch.from_numpy(thr).to(self.device).contiguous()

    def _new_table(self, table: np.ndarray) -> None:
        """Threshold bits of the inverse temperatures ``table`` and of beta = 0 (idle lanes)."""
        values = table.tolist() + [0.0]
        missing = [v for v in dict.fromkeys(values) if v not in self._patterns]
        if missing:
            rows = layout.threshold_bits(torch.as_tensor(missing, dtype=torch.float64), self.d,
                                         self.rule).numpy().astype(np.uint8)
            self._patterns.update(zip(missing, rows.reshape(len(missing), -1)))
        self._bits_table = np.stack([self._patterns[v] for v in values])  # (V + 1, K) 0/1
        self._rows = _pack_rows(self._bits_table)  # (V + 1, KW): bit k = threshold bit k
        self._vcols = np.flatnonzero((self._bits_table != self._bits_table[:1]).any(0))
        self._vrows = _pack_rows(self._bits_table[:, self._vcols])
        self._table, self._lanes, self._lanes_built = table, None, False

    # ------------------------------------------------------------------ updates
    def _kernel(self):
        if self.impl == "compiled":
            from hpc_rg.mc.msc import compiled
            return compiled
        return sweep_torch

    def sweep(self, first: int, n: int, unsatisfied: bool = False):
        """Checkerboard sweeps ``first .. first + n - 1`` of every chain (collective over the
        slab): colour 0 then colour 1, random counter ``2 * sweep + colour``.

        With ``unsatisfied``, returns :meth:`unsatisfied` after the last sweep (counted inside
        the compiled kernel's call when the lattice is not split into slabs)."""
        self._bits = None
        if self.W == 0 or n < 1:
            return self.unsatisfied() if unsatisfied else None
        k = self._kernel()
        parity0 = self.x0 % 2
        if self.slab is None:
            if self.impl == "compiled":
                out = None
                if unsatisfied:
                    if self._unsat_out is None:
                        self._unsat_out = torch.empty((self.W, layout.LANES), dtype=torch.int64)
                    out = self._unsat_out
                k.sweep(self._shape_ref, self.J, self.thresholds, self.seed, self._word_ids_t,
                        self.site_ids, first, parity0=parity0, n_sweeps=n, unsat=out,
                        inner=self._inner_state())
                if out is None:
                    return None
                counts = out.numpy().reshape(-1)  # a new array either way: the buffer is reused
                return counts[:self.B].copy() if self._rows_identity else counts[self._rows_np]
            self.spins = self.spins  # updated in place: drop any word-inner copy
            k.sweep(self.spins, self.J, self.thresholds, self.seed, self._word_ids_t, self.site_ids,
                    first, parity0=parity0, n_sweeps=n)
            return self.unsatisfied() if unsatisfied else None
        self.spins = self.spins  # slabs update the words in place: drop any word-inner copy
        for s in range(first, first + n):
            for colour in (0, 1):
                padded = exchange_halo(self.spins, self.slab)
                ghosts = (padded[:, 0].contiguous(), padded[:, -1].contiguous(), self.J_below)
                k.update_colour(self.spins, self.J, self.thresholds, self.seed, self._word_ids_t,
                                self.site_ids, 2 * s + colour, colour, parity0=parity0,
                                ghosts=ghosts)
        return self.unsatisfied() if unsatisfied else None

    # ------------------------------------------------------------------ reading
    def _above(self):
        """The plane after the slab's last along axis 0 (collective over the slab), or None."""
        if self.slab is None:
            return None
        return exchange_halo(self.spins, self.slab)[:, -1].contiguous()

    def _chain_bits(self, words, above=None, bonds=True) -> torch.Tensor:
        if self.impl == "compiled":
            from hpc_rg.mc.msc import compiled
            out = compiled.chain_bits(words, above, bonds)
        else:
            out = layout.chain_bits(words, above, bonds)
        return out[self.rows]

    def bits(self, bonds: bool = True) -> np.ndarray:
        """Per-chain bit strings of the slab, ``(B, 1 + d, M)`` uint64 (collective over the slab
        when ``bonds``): plane 0 the spins, 1 + mu the bonds along mu (see
        :func:`hpc_rg.mc.msc.layout.chain_bits`)."""
        cached = self._bits
        if cached is not None and (cached.shape[1] > 1 or not bonds):  # same state, enough planes
            return cached if bonds else cached[:, :1]
        above = self._above() if bonds else None
        self._bits = self._chain_bits(self.spins, above, bonds).cpu().numpy().view(np.uint64)
        return self._bits

    def unsatisfied(self) -> np.ndarray:
        """Unsatisfied forward bonds (``J s_x s_y = -1``) of every chain over the slab's sites,
        ``(B,)`` int64 (collective over the slab)."""
        above = self._above()
        if self.impl == "compiled":
            from hpc_rg.mc.msc import compiled
            counts = compiled.unsatisfied(self.spins, self.J, above)
        else:
            counts = layout.unsatisfied(self.spins, self.J, above)
        return counts.reshape(-1).cpu()[self._rows_np].numpy()

    def spins_pm(self, dtype=torch.int8) -> torch.Tensor:
        """±1 spins of the local chains, ``(B, *local_shape)`` of ``dtype``."""
        bits = self.bits(bonds=False)[:, 0]
        n = int(np.prod(self.local_shape))
        b = np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, :n]
        pm = 1 - 2 * b.astype(np.int8)
        return torch.from_numpy(pm).to(self.device, dtype).reshape((self.B,) + self.local_shape)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {"words": self.spins.detach().cpu().clone(), "word_ids": self.word_ids.copy()}

    def load_state_dict(self, d: dict) -> None:
        if not np.array_equal(np.asarray(d["word_ids"]), self.word_ids):
            raise ValueError("the saved spin words belong to another chain layout")
        self.spins = d["words"].to(self.device).contiguous().clone()


def _pack_rows(bits: np.ndarray) -> np.ndarray:
    """0/1 rows ``(V, K)`` -> ``(V, ceil(K / 64))`` uint64, bit k % 64 of word k // 64 = column k."""
    packed = np.packbits(bits.astype(np.uint8), axis=1, bitorder="little")
    padded = np.zeros((bits.shape[0], max(-(-bits.shape[1] // 64), 1) * 8), dtype=np.uint8)
    padded[:, :packed.shape[1]] = packed
    return padded.view("<u8").astype(np.uint64)
