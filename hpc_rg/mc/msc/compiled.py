"""Compiled CPU path of the multi-spin-coded sweep (``msc_kernel.cpp``), bit-identical to torch.

Same arguments as :mod:`hpc_rg.mc.msc.sweep_torch` (int64 CPU tensors, updated in place).
The kernel processes 8 (AVX-512), 4 (AVX2) or 1 (plain 64-bit) words at a time; the
instruction set follows torch's own CPU kernels (``torch.backends.cpu.get_cpu_capability()``)
unless ``isa`` is given. Built on first use with ``$CXX`` (g++) into the kernel cache of
:mod:`hpc_rg.mc.compiled` (same cache directories, file lock and build function), ~5 s once
per machine and instruction set. One thread; ctypes releases the GIL during the call.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

import torch

from hpc_rg.mc.compiled import KernelUnavailable, build_shared_library
from hpc_rg.mc.msc import rng
from hpc_rg.mc.msc.sweep_torch import _extend

__all__ = ["ISAS", "load_library", "vector_words", "update_colour", "sweep", "KernelUnavailable"]

SOURCE = Path(__file__).with_name("msc_kernel.cpp")
ISAS = {"AVX512": ["-mavx512f", "-mavx512dq"], "AVX2": ["-mavx2"], "SCALAR": []}
_FLAGS = ["-O3", "-std=c++17", "-shared", "-fPIC"]
_LOCK = threading.Lock()
_LIBS: dict = {}


class _Args(ctypes.Structure):
    """Mirror of ``struct Args`` in msc_kernel.cpp (same field order)."""
    _i, _p = ctypes.c_int64, ctypes.c_void_p
    _fields_ = [("d", _i), ("W", _i), ("n0", _i), ("n1", _i), ("n2", _i), ("ghost", _i),
                ("par0", _i), ("colours", _i), ("site_ids", _p), ("s", _p), ("J", _p),
                ("thr", _p), ("wkey", _p), ("active", _p), ("nactive", _i), ("ckey", _i * 2)]


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
            _LIBS[isa] = lib
        return _LIBS[isa]


def vector_words(isa: str | None = None) -> int:
    """Words per vector of the kernel for ``isa`` (8, 4 or 1): W a multiple of it is fastest."""
    return int(load_library(isa).msc_vector_words())


def _check(t: torch.Tensor, name: str, shape=None) -> torch.Tensor:
    if t.dtype != torch.int64 or t.device.type != "cpu" or not t.is_contiguous():
        raise ValueError(f"the compiled MSC kernel takes contiguous int64 CPU tensors; {name} is "
                         f"{t.dtype} on {t.device}{'' if t.is_contiguous() else ', not contiguous'}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {tuple(shape)}")
    return t


def _run(spins, J, thresholds, seed, word_ids, site_ids, counters, colours, parity0, ghosts, isa):
    lib = load_library(isa)
    W, shape = spins.shape[0], tuple(spins.shape[1:])
    d = len(shape)
    if not 1 <= d <= 3:
        raise ValueError(f"the MSC kernel takes 1 to 3 dimensions, got spins of shape {tuple(spins.shape)}")
    _check(spins, "spins")
    if J is not None:
        _check(J, "J", (W, d) + shape)
    thr = _check(thresholds, "thresholds", (W, 2 * d + 1, 33))
    ids = site_ids.to(torch.int64).reshape(-1).contiguous()
    if ids.numel() != spins[0].numel():
        raise ValueError(f"site_ids has {ids.numel()} entries for {spins[0].numel()} sites")
    s_all, J_all = (spins, J) if ghosts is None else _extend(spins, J, ghosts)
    s_all, J_all = s_all.contiguous(), None if J_all is None else J_all.contiguous()
    wkey = rng.word_keys(seed, word_ids).reshape(-1).contiguous()
    if wkey.numel() != W:
        raise ValueError(f"word_ids has {wkey.numel()} entries for {W} words")
    active = torch.tensor([n for n in range(2 * d + 1) if bool((thr[:, n, 0] != -1).any())],
                          dtype=torch.int64)
    a = _Args()
    a.d, a.W = d, W
    a.n0, a.n1, a.n2 = (shape + (1, 1))[:3]
    a.ghost, a.par0, a.colours = int(ghosts is not None), int(parity0) % 2, colours
    a.site_ids, a.s = ids.data_ptr(), s_all.data_ptr()
    a.J = 0 if J_all is None else J_all.data_ptr()
    a.thr, a.wkey, a.active, a.nactive = thr.data_ptr(), wkey.data_ptr(), active.data_ptr(), active.numel()
    a.ckey[0], a.ckey[1] = (rng.counter_key(c) for c in counters)
    rc = lib.msc_update(ctypes.byref(a))
    if rc:
        raise RuntimeError(f"compiled MSC kernel failed (code {rc})")
    if ghosts is not None:
        spins.copy_(s_all[:, 1:-1])
    return spins


def update_colour(spins, J, thresholds, seed, word_ids, site_ids, counter, colour, parity0=0,
                  ghosts=None, isa=None):
    """As :func:`hpc_rg.mc.msc.sweep_torch.update_colour` (bit-identical), in place."""
    counters = (counter, counter) if colour == 0 else (counter - 1, counter)
    return _run(spins, J, thresholds, seed, word_ids, site_ids, counters, int(colour), parity0,
                ghosts, isa)


def sweep(spins, J, thresholds, seed, word_ids, site_ids, sweep_index, parity0=0, isa=None):
    """As :func:`hpc_rg.mc.msc.sweep_torch.sweep` (bit-identical): both colours in one call."""
    c = 2 * int(sweep_index)
    return _run(spins, J, thresholds, seed, word_ids, site_ids, (c, c + 1), 2, parity0, None, isa)
