"""Compiled CPU path of the multi-spin-coded sweep (``msc_kernel.cpp``), bit-identical to torch.

Same arguments as :mod:`hpc_rg.mc.msc.sweep_torch` (int64 CPU tensors, updated in place).
The kernel processes 8 (AVX-512), 4 (AVX2) or 1 (plain 64-bit) words at a time, in a
word-inner copy of the spins (``(sites, W')``, W' = W rounded up to that width) made at the
start of each call and copied back at its end; :func:`sweep` can run several sweeps per
call (``n_sweeps``) to pay that copy once. The couplings' word-inner copy is cached for the
last ``J`` tensor seen (rebuilt when it is modified in place). The instruction set follows
torch's own CPU kernels (``torch.backends.cpu.get_cpu_capability()``) unless ``isa`` is
given. Built on first use with ``$CXX`` (g++) into the kernel cache of
:mod:`hpc_rg.mc.compiled` (same cache directories, file lock and build function), a few
seconds once per machine and instruction set. One thread; ctypes releases the GIL.

Throughput (bench/README.md, "Multi-spin coding"): the random digits dominate -- each word
needs ~7 (one word) to ~9 (a vector of 4) hashed 64-bit random words per site, because every
lane draws its own uniform and the slowest lane of the word decides when the loop stops.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import numpy as np
import torch

from hpc_rg.mc.compiled import KernelUnavailable, build_shared_library
from hpc_rg.mc.msc import rng
from hpc_rg.mc.msc.sweep_torch import _extend

__all__ = ["ISAS", "load_library", "vector_words", "update_colour", "sweep", "chain_bits", "unsatisfied",
           "to_inner", "from_inner", "set_thresholds",
           "KernelUnavailable"]

SOURCE = Path(__file__).with_name("msc_kernel.cpp")
ISAS = {"AVX512": ["-mavx512f", "-mavx512dq"], "AVX2": ["-mavx2"], "SCALAR": []}
_FLAGS = ["-O3", "-std=c++17", "-shared", "-fPIC"]
_LOCK = threading.Lock()
_LIBS: dict = {}


class _Args(ctypes.Structure):
    """Mirror of ``struct Args`` in msc_kernel.cpp (same field order)."""
    _i, _p = ctypes.c_int64, ctypes.c_void_p
    _fields_ = [("d", _i), ("W", _i), ("n0", _i), ("n1", _i), ("n2", _i), ("ghost", _i),
                ("par0", _i), ("colours", _i), ("site_ids", _p), ("s", _p), ("J", _p), ("J_inner", _i),
                ("thr", _p), ("wkey", _p), ("counter0", _i), ("nsweeps", _i),
                ("unsat", _p), ("s_inner", _i)]


class _BitsArgs(ctypes.Structure):
    """Mirror of ``struct BitsArgs`` in msc_kernel.cpp."""
    _i, _p = ctypes.c_int64, ctypes.c_void_p
    _fields_ = [("d", _i), ("W", _i), ("n0", _i), ("n1", _i), ("n2", _i), ("s", _p), ("above", _p),
                ("bonds", _i), ("out", _p)]


class _CountArgs(ctypes.Structure):
    """Mirror of ``struct CountArgs`` in msc_kernel.cpp."""
    _i, _p = ctypes.c_int64, ctypes.c_void_p
    _fields_ = [("d", _i), ("W", _i), ("n0", _i), ("n1", _i), ("n2", _i), ("s", _p), ("J", _p),
                ("above", _p), ("out", _p)]


def default_isa() -> str:
    """The instruction set torch's CPU kernels use here: AVX512, AVX2 or SCALAR."""
    cap = torch.backends.cpu.get_cpu_capability()
    return cap if cap in ISAS else "SCALAR"


def load_library(isa: str | None = None) -> ctypes.CDLL:
    """The kernel library for ``isa`` (default :func:`default_isa`), built on first use."""
    isa = isa or default_isa()
    if isa not in ISAS:
        raise ValueError(f"unknown instruction set {isa!r}; expected one of {tuple(ISAS)}")
    with _LOCK:
        if isa not in _LIBS:
            if not SOURCE.exists():
                raise KernelUnavailable(f"{SOURCE} is missing (a non-editable install without its .cpp)")
            path = build_shared_library(SOURCE, f"msc-{isa.lower()}", _FLAGS + ISAS[isa], [isa])
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as exc:
                raise KernelUnavailable(f"cannot load the MSC kernel: {exc}") from None
            lib.msc_update.argtypes = [ctypes.POINTER(_Args)]
            lib.msc_update.restype = ctypes.c_int64
            lib.msc_vector_words.restype = ctypes.c_int64
            lib.msc_chain_bits.argtypes = [ctypes.POINTER(_BitsArgs)]
            lib.msc_chain_bits.restype = ctypes.c_int64
            lib.msc_unsatisfied.argtypes = [ctypes.POINTER(_CountArgs)]
            lib.msc_unsatisfied.restype = ctypes.c_int64
            _i, _p = ctypes.c_int64, ctypes.c_void_p
            lib.msc_set_thresholds.argtypes = [_p, _i, _i, _p, _i, _i, _p, _p, _i, _i, _p, _p]
            lib.msc_set_thresholds.restype = ctypes.c_int64
            lib.vw = int(lib.msc_vector_words())
            _LIBS[isa] = lib
        return _LIBS[isa]


def vector_words(isa: str | None = None) -> int:
    """Words per vector of the kernel for ``isa`` (8, 4 or 1): W a multiple of it is fastest."""
    return load_library(isa).vw


_J_CACHE: list = []  # [(J, version, vector words, word-inner copy)]: the couplings of the last call


def _word_inner(J: torch.Tensor, vw: int) -> torch.Tensor:
    """Couplings ``(W, d, *L)`` as the kernel reads them, ``(sites, d, W')`` with W' = W rounded
    up to ``vw``; cached for the last ``J`` seen (the couplings of a run do not change)."""
    if _J_CACHE and _J_CACHE[0][0] is J and _J_CACHE[0][1] == J._version and _J_CACHE[0][2] == vw:
        return _J_CACHE[0][3]
    W, d = J.shape[0], J.shape[1]
    Wv = -(-W // vw) * vw
    padded = torch.zeros((Wv, d, J[0, 0].numel()), dtype=torch.int64)
    padded[:W] = J.reshape(W, d, -1)
    inner = padded.permute(2, 1, 0).contiguous()
    _J_CACHE[:] = [(J, J._version, vw, inner)]
    return inner


_KEYS: list = []  # [(seed, word ids, keys, the word_ids tensor, its version)]: the last call's


def _word_keys(seed: int, word_ids) -> torch.Tensor:
    if _KEYS and _KEYS[0][0] == seed and isinstance(word_ids, torch.Tensor) and _KEYS[0][3] is word_ids \
            and _KEYS[0][4] == word_ids._version:
        return _KEYS[0][2]  # the same tensor as last time, not modified since: no comparison
    ids = torch.as_tensor(word_ids, dtype=torch.int64).reshape(-1)
    if _KEYS and _KEYS[0][0] == seed and torch.equal(_KEYS[0][1], ids):
        keys = _KEYS[0][2]
    else:
        keys = rng.word_keys(seed, ids).reshape(-1).contiguous()
    tensor = word_ids if isinstance(word_ids, torch.Tensor) else None
    _KEYS[:] = [(seed, ids.clone(), keys, tensor, None if tensor is None else tensor._version)]
    return keys


def _check(t: torch.Tensor, name: str, shape=None) -> torch.Tensor:
    if t.dtype != torch.int64 or t.device.type != "cpu" or not t.is_contiguous():
        raise ValueError(f"the compiled MSC kernel takes contiguous int64 CPU tensors; {name} is "
                         f"{t.dtype} on {t.device}{'' if t.is_contiguous() else ', not contiguous'}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    return t


def to_inner(spins: torch.Tensor, isa=None) -> torch.Tensor:
    """Spin words ``(W, *L)`` -> the kernel's word-inner layout ``(N, W')``, W' = W rounded up to
    the vector width (padding words zero)."""
    vw = vector_words(isa)
    W = spins.shape[0]
    out = torch.zeros((spins[0].numel(), -(-W // vw) * vw), dtype=torch.int64)
    out[:, :W] = spins.reshape(W, -1).t()
    return out


def from_inner(inner: torch.Tensor, W: int, shape) -> torch.Tensor:
    """The word-inner layout ``(N, W')`` -> spin words ``(W, *shape)`` (inverse of :func:`to_inner`)."""
    return inner[:, :W].t().contiguous().reshape((W,) + tuple(shape))


def _lattice(spins: torch.Tensor, what: str) -> tuple:
    """``(W, shape, d)`` of contiguous int64 CPU spin words ``(W, *L)``, d = 1..3."""
    W, shape = spins.shape[0], tuple(spins.shape[1:])
    if not 1 <= len(shape) <= 3:
        raise ValueError(f"{what} takes 1 to 3 dimensions, got spins of shape {tuple(spins.shape)}")
    _check(spins, "spins")
    return W, shape, len(shape)


def _set_shape(a, W: int, shape: tuple) -> None:
    """Fill the ``d, W, n0, n1, n2`` fields of a kernel argument struct."""
    a.d, a.W = len(shape), W
    a.n0, a.n1, a.n2 = (shape + (1, 1))[:3]


def _run(spins, J, thresholds, seed, word_ids, site_ids, counter0, colours, parity0, ghosts, isa,
         n_sweeps=1, unsat=None, inner=None):
    lib = load_library(isa)
    W, shape, d = _lattice(spins, "the MSC kernel")
    if inner is not None:
        if ghosts is not None:
            raise ValueError("the word-inner spins take no ghost planes")
        _check(inner, "inner", (spins[0].numel(), -(-W // lib.vw) * lib.vw))
    if J is not None:
        _check(J, "J", (W, d) + shape)
    thr = _check(thresholds, "thresholds", (W, 2 * d + 1, 33))
    ids = site_ids.to(torch.int64).reshape(-1).contiguous()
    if ids.numel() != spins[0].numel():
        raise ValueError(f"site_ids has {ids.numel()} entries for {spins[0].numel()} sites")
    s_all, J_all = (spins, J) if ghosts is None else _extend(spins, J, ghosts)
    s_all, J_all = s_all.contiguous(), None if J_all is None else J_all.contiguous()
    wkey = _word_keys(int(seed), word_ids)
    if wkey.numel() != W:
        raise ValueError(f"word_ids has {wkey.numel()} entries for {W} words")
    a = _Args()
    _set_shape(a, W, shape)
    a.ghost, a.par0, a.colours = int(ghosts is not None), int(parity0) % 2, colours
    a.site_ids, a.s = ids.data_ptr(), (s_all if inner is None else inner).data_ptr()
    a.s_inner = int(inner is not None)
    if ghosts is None and J_all is not None:  # couplings already word-inner (cached)
        J_all = _word_inner(J_all, lib.vw)
        a.J_inner = 1
    a.J = 0 if J_all is None else J_all.data_ptr()
    a.thr, a.wkey = thr.data_ptr(), wkey.data_ptr()
    a.counter0, a.nsweeps = int(counter0), int(n_sweeps)
    if unsat is not None:
        _check(unsat, "unsat", (W, 64))
    a.unsat = 0 if unsat is None else unsat.data_ptr()
    rc = lib.msc_update(ctypes.byref(a))
    if rc:
        raise RuntimeError(f"compiled MSC kernel failed (code {rc})")
    if ghosts is not None:
        spins.copy_(s_all[:, 1:-1])
    return spins if inner is None else inner


def update_colour(spins, J, thresholds, seed, word_ids, site_ids, counter, colour, parity0=0,
                  ghosts=None, isa=None):
    """As :func:`hpc_rg.mc.msc.sweep_torch.update_colour` (bit-identical), in place."""
    return _run(spins, J, thresholds, seed, word_ids, site_ids, int(counter) - int(colour), int(colour),
                parity0, ghosts, isa)


def sweep(spins, J, thresholds, seed, word_ids, site_ids, sweep_index, parity0=0, n_sweeps=1, isa=None,
          unsat=None, inner=None):
    """As :func:`hpc_rg.mc.msc.sweep_torch.sweep` (bit-identical): sweeps ``sweep_index`` ..
    ``sweep_index + n_sweeps - 1`` in one call (the copy into and out of the kernel's
    word-inner buffer is paid once per call). ``unsat`` ``(W, 64)`` int64, when given, receives
    the unsatisfied bonds per lane after the last sweep (the numbers of :func:`unsatisfied`):
    counted by the last colour-1 update itself when every side is even (each bond then has
    its colour-1 end there, and its neighbours are final), else in a pass over the kernel's
    word-inner copy. ``inner``, when given, is the
    state in the kernel's word-inner layout (:func:`to_inner`), updated in place without the
    copies (``spins`` then only gives the shape and is left as it was)."""
    if int(n_sweeps) < 1:
        raise ValueError(f"n_sweeps must be >= 1, got {n_sweeps}")
    return _run(spins, J, thresholds, seed, word_ids, site_ids, 2 * int(sweep_index), 2, parity0,
                None, isa, n_sweeps, unsat, inner)


def chain_bits(spins, above=None, bonds=True, isa=None) -> torch.Tensor:
    """As :func:`hpc_rg.mc.msc.layout.chain_bits` (bit-identical): per-lane bit strings
    ``(64 W, 1 + d bonds, ceil(N / 64))`` int64 of the spin words ``(W, *L)``."""
    lib = load_library(isa)
    W, shape, d = _lattice(spins, "chain_bits")
    if above is not None:
        _check(above, "above", (W,) + shape[1:])
    N = spins[0].numel()
    P, M = 1 + (d if bonds else 0), -(-N // 64)
    out = torch.empty((64 * W, P, M), dtype=torch.int64)
    a = _BitsArgs()
    _set_shape(a, W, shape)
    a.s, a.above, a.bonds = spins.data_ptr(), 0 if above is None else above.data_ptr(), int(bool(bonds))
    a.out = out.data_ptr()
    if W and lib.msc_chain_bits(ctypes.byref(a)):
        raise RuntimeError("compiled MSC chain_bits failed")
    return out


def unsatisfied(spins, J=None, above=None, isa=None) -> torch.Tensor:
    """Unsatisfied bonds per lane ``(W, 64)`` int64: the count over the slab's sites x and mu
    of ``s_x ^ s_{x+e_mu} ^ J_mu(x)`` (neighbours as :func:`chain_bits`); equals
    :func:`hpc_rg.mc.msc.layout.unsatisfied`."""
    lib = load_library(isa)
    W, shape, d = _lattice(spins, "unsatisfied")
    if J is not None:
        _check(J, "J", (W, d) + shape)
    if above is not None:
        _check(above, "above", (W,) + shape[1:])
    out = torch.empty((W, 64), dtype=torch.int64)
    a = _CountArgs()
    _set_shape(a, W, shape)
    a.s, a.J = spins.data_ptr(), 0 if J is None else J.data_ptr()
    a.above, a.out = 0 if above is None else above.data_ptr(), out.data_ptr()
    if W and lib.msc_unsatisfied(ctypes.byref(a)):
        raise RuntimeError("compiled MSC unsatisfied-bond count failed")
    return out


def set_thresholds(thresholds: torch.Tensor, rows: np.ndarray, which: np.ndarray, words=None, idle=None,
                   cols=None, isa=None) -> torch.Tensor:
    """Rewrite threshold words in place from per-value bit rows (the tempering update).

    Parameters
    ----------
    thresholds : Tensor (W, 2d + 1, 33) int64, contiguous CPU
        Updated in place: for every word w in ``words`` and column k = ``cols[i]``, bit b of
        ``thresholds[w].view(-1)[k]`` = bit i of ``rows[which[64 w + b]]``, with ``idle[w]``
        OR-ed onto the columns that are word 0 of a class (k % 33 == 0).
    rows : uint64 array (V, KW)
        The threshold bits of each value: bit i % 64 of ``rows[v, i // 64]`` (e.g.
        :func:`hpc_rg.mc.msc.layout.threshold_bits` packed with ``np.packbits(...,
        bitorder="little")``).
    which : int64 array (64 W,)
        The value (row) of every lane, lane b of word w at ``64 w + b``.
    words : int64 array or None
        The words to rewrite (None: all).
    idle : uint64 array (W,) or None
        Lanes that always flip (bit b of ``idle[w]``).
    cols : int64 array or None
        The columns (of the (2d + 1) 33 words of a word's thresholds) that ``rows`` hold, in
        bit order; None: all of them. Columns whose bit is the same in every row need no
        rewrite when lanes change value.

    Returns ``thresholds``: equals :func:`hpc_rg.mc.msc.layout.thresholds` of the values' betas
    with the idle lanes set (tests/mc/test_msc.py).
    """
    lib = load_library(isa)
    _check(thresholds, "thresholds")
    W, K = thresholds.shape[0], thresholds[0].numel()
    if rows.dtype != np.uint64 or rows.ndim != 2 or not rows.flags.c_contiguous:
        raise ValueError("rows must be a C-contiguous (V, KW) uint64 array")
    if which.dtype != np.int64 or which.shape != (64 * W,) or not which.flags.c_contiguous:
        raise ValueError(f"which must be a contiguous int64 array of {64 * W} lanes")
    if idle is not None and (idle.dtype != np.uint64 or idle.shape != (W,) or not idle.flags.c_contiguous):
        raise ValueError(f"idle must be a contiguous uint64 array of {W} words")
    if words is not None:
        words = np.ascontiguousarray(words, dtype=np.int64)
    if cols is not None:
        cols = np.ascontiguousarray(cols, dtype=np.int64)
    nc = K if cols is None else cols.size
    rc = lib.msc_set_thresholds(rows.ctypes.data, rows.shape[0], rows.shape[1],
                                None if cols is None else cols.ctypes.data, nc, K, which.ctypes.data,
                                None if words is None else words.ctypes.data,
                                0 if words is None else words.size, W,
                                None if idle is None else idle.ctypes.data, thresholds.data_ptr())
    if rc:
        raise ValueError(f"compiled MSC threshold update failed (code {rc}: shapes, columns or value "
                         f"indices out of range)")
    return thresholds
