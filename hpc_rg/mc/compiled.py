"""Compiled checkerboard sweep for +-1 spin models (``sample.kernel: compiled``).

One fused C++ kernel (``checkerboard_kernel.cpp`` next to this file) does what
:func:`hpc_rg.mc.checkerboard.sweep` does in ~40 eager passes over memory: CounterRNG
hash, local field, Metropolis or heat-bath decision, visiting only the sites of the colour
being updated, 16 at a time in AVX-512 registers (single domain: colour 1 trails colour 0
by one plane, so the lattice passes through the cache once per sweep). ~2 ns per spin
update on one core of the development VM, 5-10x the NumPy baseline of
``bench/bench_checkerboard.py`` (bench/README.md, "Compiled kernel").
Ising (``J``, ``h``) and Edwards-Anderson couplings, 1D to 3D, float32 spins batch-first
``(B, *L)`` as the :class:`~hpc_rg.mc.ensemble.Ensemble` holds them, slabs with ghost planes.

**Bit-identical** to the eager kernel for the same CounterRNG stream (seed, global chain
ids, row-major global site ids, counter ``2*sweep + colour``): same integer hash, same
float32 operations in the same order with FP contraction off, and the transcendental
functions evaluated as ATen's CPU kernels evaluate them -- SLEEF ``exp2``/``exp`` on the
vectorised part of each contiguous loop and the C library's ``exp2``/``exp`` on the
elements ATen leaves to its scalar tail loop (:func:`aten_scalar_ranges`; the two differ
in the last bit for ~0.5% of arguments, which changes a decision with probability
~2**-24 per element, so this matters only for strict bit identity).

Build: on first use ``g++`` (or ``$CXX``) compiles the kernel for the instruction set of
torch's own CPU kernels (``torch.backends.cpu.get_cpu_capability()``: AVX2 or AVX512),
against torch's bundled SLEEF: 16 s on the development VM (2 cores, both busy with other
jobs), once per machine; later processes load it in ~10 ms from the cache
``$HPC_RG_KERNEL_CACHE`` (default ``~/.cache/hpc_rg/kernels``, or a per-user directory
under the system temporary directory when the home is read-only), keyed by a hash of
source, flags, compiler and torch version. Under MPI, :func:`build_once` lets rank 0 build
while the others wait at a barrier; processes that still meet an unbuilt library wait on a
file lock instead of compiling the same file. The one library serves every lattice shape,
model and rule. CPU only.

``sample.kernel: auto`` (the default) takes this kernel wherever it can run
(:func:`choose_kernel`), else the torch kernel, and says which and why.

Threads: chains are split over ``torch.get_num_threads()`` Python threads (the kernel
releases the GIL); one thread per MPI rank is the usual setting.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import math
import os
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from hpc_rg.models.lattice import parity, per_chain
from hpc_rg.models.spec import SPECS
from hpc_rg.rng import _M32, _hi32, _lo32, _mix32_, _to_i32, mix32

__all__ = ["CompiledCheckerboard", "KernelUnavailable", "compiled_or_none", "aten_scalar_ranges",
           "chain_key_parts", "pack_couplings", "load_library", "choose_kernel", "build_once"]

SOURCE = Path(__file__).with_name("checkerboard_kernel.cpp")
RULES = ("metropolis", "heatbath")
MODELS = tuple(name for name, spec in SPECS.items() if not spec.continuous)  #: the +-1 spin models
ATEN_GRAIN = 32768  #: at::internal::GRAIN_SIZE: TensorIterator loops shorter than this run serially
_ISA_FLAGS = {"AVX512": ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mfma"],
              "AVX2": ["-mavx2", "-mfma"]}
_FLAGS = ["-O3", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=off"]
_TWO_OVER_LN2 = 2.0 / math.log(2.0)  # as in hpc_rg.mc.checkerboard


class KernelUnavailable(RuntimeError):
    """The compiled kernel cannot be built or used here (no compiler, no AVX2, not CPU)."""


class _Args(ctypes.Structure):
    """Mirror of ``struct Args`` in checkerboard_kernel.cpp (same field order)."""
    _i, _p = ctypes.c_int64, ctypes.c_void_p
    _fields_ = [("d", _i), ("B", _i), ("N", _i), ("n0", _i), ("n1", _i), ("n2", _i),
                ("s", _p), ("glo", _p), ("ghi", _p), ("gstride", _i),
                ("cpart", _p), ("id0", _i), ("cm0", ctypes.c_int32), ("cm1", ctypes.c_int32),
                ("par0", _i), ("rule", _i), ("ea", _i), ("fac", _p),
                ("J", ctypes.c_float), ("h", ctypes.c_float), ("useJ", _i), ("useh", _i),
                ("Jp", _p), ("jidx", _p), ("nscalar", _i), ("scalar", _p)]


# ====================================================================== build and load
_LOCK = threading.Lock()
_STATE: dict = {}


def _cache_dirs() -> list[Path]:
    """Where the built library may live, in order of preference.

    ``$HPC_RG_KERNEL_CACHE`` alone when set (a shared filesystem on a cluster: one build
    for every node); else ``$XDG_CACHE_HOME`` or ``~/.cache`` (``hpc_rg/kernels`` inside),
    then a per-user directory in the system temporary directory for a read-only home.
    """
    env = os.environ.get("HPC_RG_KERNEL_CACHE")
    if env:
        return [Path(env)]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tmp = Path(tempfile.gettempdir()) / f"hpc_rg-kernels-{os.getuid()}"
    return [Path(base) / "hpc_rg" / "kernels", tmp]


def _writable_dir(path: Path) -> bool:
    """Create ``path`` if needed; True when a file can be created in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe.{os.getpid()}.{threading.get_ident()}"
        probe.touch()
        probe.unlink()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """An exclusive ``flock`` on ``lock_path`` (one builder per library file); where the
    filesystem refuses locks the build goes ahead unlocked -- it is written to a private
    temporary name and renamed, so concurrent builders cannot corrupt it."""
    try:
        fh = open(lock_path, "w")
    except OSError:
        yield
        return
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError:
            pass
        yield


def _build() -> Path:
    cap = torch.backends.cpu.get_cpu_capability()
    if cap not in _ISA_FLAGS:
        raise KernelUnavailable(f"torch's CPU kernels use {cap}; the compiled kernel needs AVX2 or AVX512")
    root = Path(torch.__file__).resolve().parent
    inc, lib = root / "include", root / "lib"
    if not (inc / "sleef.h").exists():
        raise KernelUnavailable(f"{inc / 'sleef.h'} is missing (torch without its C++ headers)")
    if not SOURCE.exists():
        raise KernelUnavailable(f"{SOURCE} is missing (a non-editable install without mc/*.cpp)")
    flags = _FLAGS + _ISA_FLAGS[cap]
    return build_shared_library(SOURCE, "checkerboard", flags, [torch.__version__, cap],
                                pre=[f"-I{inc}"], post=[f"-L{lib}", "-ltorch_cpu", f"-Wl,-rpath,{lib}"])


def build_shared_library(source: Path, prefix: str, flags: list, tag: list, pre=(), post=()) -> Path:
    """Compile ``source`` into the kernel cache (or find it there); returns the library path.

    ``$CXX`` (default g++) runs ``flags + pre + [source, -o, out] + post``; the file name is
    ``<prefix>-<hash>.so``, the hash over the source, flags, compiler, its version and ``tag``.
    One process compiles while the others wait on a file lock; raises :class:`KernelUnavailable`.
    """
    cxx = os.environ.get("CXX", "g++")
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelUnavailable(f"no C++ compiler {cxx!r} ({exc.__class__.__name__})") from None
    key = "\0".join([source.read_text(), " ".join(flags), cxx, version, *tag])
    name = f"{prefix}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"
    dirs = _cache_dirs()
    for d in dirs:  # already built (also in a cache we cannot write to)
        if (d / name).exists():
            return d / name
    usable = next((d for d in dirs if _writable_dir(d)), None)
    if usable is None:
        raise KernelUnavailable(f"no writable kernel cache ({', '.join(map(str, dirs))}); set "
                                f"HPC_RG_KERNEL_CACHE to a writable directory")
    out = usable / name
    with _exclusive(out.with_suffix(".lock")):  # one process compiles, the others wait and reuse it
        if not out.exists():
            tmp = out.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            cmd = [cxx, *flags, *pre, str(source), "-o", str(tmp), *post]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                tmp.unlink(missing_ok=True)
                lines = res.stderr.strip().splitlines() or ["?"]
                first = next((ln for ln in lines if "error" in ln), lines[-1])
                raise KernelUnavailable(f"{cxx} failed (exit {res.returncode}): {first.strip()}")
            os.replace(tmp, out)
    return out


def load_library() -> ctypes.CDLL:
    """The compiled kernel library (built on first use); raises :class:`KernelUnavailable`."""
    with _LOCK:
        if "lib" not in _STATE:
            if "error" in _STATE:
                raise KernelUnavailable(_STATE["error"])
            try:
                lib = ctypes.CDLL(str(_build()))
            except KernelUnavailable as exc:
                _STATE["error"] = str(exc)
                raise
            except OSError as exc:  # unwritable cache, unloadable library
                _STATE["error"] = f"cannot build or load the compiled kernel: {exc}"
                raise KernelUnavailable(_STATE["error"]) from None
            lib.hpc_rg_checkerboard.argtypes = [ctypes.POINTER(_Args), ctypes.c_int64,
                                                ctypes.c_int64, ctypes.c_int64]
            lib.hpc_rg_checkerboard.restype = ctypes.c_int64
            lib.hpc_rg_vector_width.restype = ctypes.c_int64
            lib.hpc_rg_aten_like.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                             ctypes.c_int64, ctypes.c_void_p]
            _STATE["lib"] = lib
        return _STATE["lib"]


# ====================================================================== helpers
def aten_scalar_ranges(n: int, threads: int, block: int) -> list:
    """Flat index ranges ``[lo, hi)`` that ATen's elementwise CPU kernels compute with scalar code.

    A contiguous unary op over ``n`` elements runs serially when ``threads == 1`` or
    ``n <= ATEN_GRAIN``, else as ``min(threads, ceil(n / GRAIN))`` equal chunks
    (``at::parallel_for``, OpenMP backend); each chunk runs ``2 * Vectorized::size()``
    (``block``) elements per vector step and its last ``len % block`` elements in scalar code.
    """
    if n <= 0:
        return []
    if threads <= 1 or n <= ATEN_GRAIN:
        chunks = [(0, n)]
    else:
        nt = min(threads, -(-n // ATEN_GRAIN))
        size = -(-n // nt)
        chunks = [(i * size, min(n, (i + 1) * size)) for i in range(nt) if i * size < n]
    return [(hi - (hi - lo) % block, hi) for lo, hi in chunks if (hi - lo) % block]


def chain_key_parts(seed: int, chain_ids) -> torch.Tensor:
    """The per-chain halves of :class:`hpc_rg.rng.CounterRNG`'s keys, int32 (2, B).

    CounterRNG's key of (chain, site) is ``mix(mix(part ^ lo32(site)) ^ hi32(site))``; the
    kernel recomputes it from these parts instead of reading 8 bytes per site.
    """
    ids = torch.as_tensor(chain_ids, dtype=torch.int64).reshape(-1).cpu()
    s = int(seed) & ((1 << 64) - 1)
    parts = []
    for salt in (0x9E3779B9, 0x632BE5AB):  # as CounterRNG.__init__
        k0 = mix32(mix32((s & _M32) ^ salt) ^ (s >> 32))
        c = torch.full(ids.shape, _to_i32(k0), dtype=torch.int32)
        c.bitwise_xor_(_lo32(ids))
        _mix32_(c)
        c.bitwise_xor_(_hi32(ids))
        parts.append(_mix32_(c))
    return torch.stack(parts).contiguous()


def _counter_mix(c: int) -> int:
    """CounterRNG's mix of the counter ``c`` as a signed int32 (rng.CounterRNG.bits)."""
    c &= (1 << 64) - 1
    return _to_i32(mix32(mix32((c & _M32) ^ 0x85EBCA6B) ^ (c >> 32) ^ 0x2545F491))


def pack_couplings(J: torch.Tensor, x0: int, n0: int) -> torch.Tensor:
    """Edwards-Anderson couplings of a slab, packed for the kernel (computed once per run).

    Parameters
    ----------
    J : Tensor, shape (D, d, L_1, ..., L_d)
        Full-lattice couplings of D disorder samples (``J[:, mu, x]`` couples x, x + e_mu).
    x0, n0 : int
        The slab: planes ``[x0, x0 + n0)`` of the first axis.

    Returns
    -------
    Tensor, shape (D, 2, 2d, N/2), float32
        ``[D, colour, 2 mu + dir, i]``: ``J_mu(x)`` (dir 0) and ``J_mu(x - e_mu)`` (dir 1)
        at the i-th site of that colour in row-major order (N = sites of the slab).
    """
    J = J.to(device="cpu", dtype=torch.float32)
    D, d = J.shape[0], J.shape[1]
    back = torch.stack([torch.roll(J[:, mu], 1, mu + 1) for mu in range(d)], 1)
    both = torch.stack((J, back), 2)[:, :, :, x0:x0 + n0]  # (D, d, 2, *slab)
    flat = both.reshape(D, 2 * d, -1)
    par = parity((n0,) + tuple(J.shape[3:]), x0).reshape(-1)
    return torch.stack([flat[:, :, par == c] for c in (0, 1)], 1).contiguous()


# ====================================================================== the sweep
_POOL: dict = {}


class CompiledCheckerboard:
    """Fused checkerboard sweep of B chains of a (slab of a) periodic lattice, in place.

    Parameters
    ----------
    rule : {"metropolis", "heatbath"}
    global_shape : tuple of int
        Full lattice ``(L_1, ..., L_d)``, d = 1..3, even sides.
    seed : int
        The :class:`~hpc_rg.rng.CounterRNG` seed of the run (e.g. ``derive_seed(seed, "mc")``).
    chain_ids : int array (B,)
        Global chain ids (the CounterRNG's ``chain_ids``).
    x0, n0 : int
        This rank's slab ``[x0, x0 + n0)`` of the first axis (default: the whole lattice).
    model : {"ising", "edwards_anderson"}
    J, h : float
        Ising coupling and field (``ising.local_field(spins, J, h)``).
    couplings : float32 Tensor (D, d, *global_shape) or (d, *global_shape), EA only
        Couplings per disorder sample; ``coupling_index`` (B,) picks each chain's sample
        (default: all chains sample 0 when D = 1, chain b sample b when D = B).

    Notes
    -----
    Bit-identical to :func:`hpc_rg.mc.checkerboard.sweep` with
    ``CounterRNG(seed, chain_ids, global_site_ids(global_shape, x0, x0 + n0))`` and the
    model's local field (in halo mode for slabs), for float32 spins; see the module notes.
    """

    def __init__(self, rule, global_shape, seed, chain_ids, x0=0, n0=None, model="ising", J=1.0,
                 h=0.0, couplings=None, coupling_index=None):
        if rule not in RULES:
            raise ValueError(f"unknown update rule {rule!r}; expected one of {RULES}")
        if model not in MODELS:
            raise ValueError(f"the compiled kernel supports {MODELS}, not {model!r}")
        gshape = tuple(int(n) for n in global_shape)
        n0 = gshape[0] if n0 is None else int(n0)
        if not 1 <= len(gshape) <= 3 or any(n % 2 for n in gshape):
            raise ValueError(f"the compiled kernel needs 1 to 3 even lattice sides, got {gshape}")
        if not (0 <= int(x0) and 1 <= n0 and int(x0) + n0 <= gshape[0]):
            raise ValueError(f"slab [{x0}, {int(x0) + n0}) does not fit the first axis of {gshape}")
        self._lib = load_library()
        self.rule, self.model = rule, model
        self.local_shape = (n0,) + gshape[1:]
        self.N = math.prod(self.local_shape)
        self._cpart = chain_key_parts(seed, chain_ids)
        self.B = int(self._cpart.shape[1])
        self._block = 2 * int(self._lib.hpc_rg_vector_width())
        self._Jp = self._jidx = None
        a = self._args = _Args()
        a.d, a.B, a.N = len(gshape), self.B, self.N
        a.n0, a.n1, a.n2 = (self.local_shape + (1, 1))[:3]
        a.cpart = self._cpart.data_ptr()
        a.id0 = int(x0) * math.prod(gshape[1:])
        a.par0 = int(x0) % 2
        a.rule = RULES.index(rule)
        if not SPECS[model].disordered:  # uniform coupling J and field h
            J, h = float(J), float(h)
            a.J, a.h, a.useJ, a.useh = J, h, int(J != 1.0), int(h != 0.0)
        else:
            Jd = torch.as_tensor(couplings)
            if Jd.dtype != torch.float32:  # the eager field would run in another precision
                raise ValueError(f"the compiled kernel takes float32 couplings, got {Jd.dtype}")
            Jd = Jd.unsqueeze(0) if Jd.dim() == len(gshape) + 1 else Jd
            if tuple(Jd.shape[1:]) != (len(gshape),) + gshape:
                raise ValueError(f"couplings of shape {tuple(Jd.shape)} do not fit the lattice {gshape}")
            if coupling_index is None:
                coupling_index = torch.zeros(self.B) if Jd.shape[0] == 1 else torch.arange(self.B)
            self._jidx = torch.as_tensor(coupling_index, dtype=torch.int64).reshape(-1).cpu().contiguous()
            if len(self._jidx) != self.B or (self.B and not 0 <= int(self._jidx.min()) <= int(
                    self._jidx.max()) < Jd.shape[0]):
                raise ValueError("coupling_index must give every chain a disorder sample of couplings")
            self._Jp = pack_couplings(Jd, int(x0), n0)
            a.ea, a.Jp, a.jidx = 1, self._Jp.data_ptr(), self._jidx.data_ptr()
        self._ranges: dict = {}
        self._fac = None
        self._argp = ctypes.byref(a)

    def sweep(self, spins: torch.Tensor, beta, sweep_index: int, halo=None) -> torch.Tensor:
        """One sweep (colour 0 then colour 1) of ``spins`` in place; returns ``spins``.

        Parameters
        ----------
        spins : Tensor (B, *local_shape), float32, contiguous, CPU, +-1
        beta : float or Tensor (B,)
            As for :func:`hpc_rg.mc.checkerboard.update_colour` (same float32 rounding).
        sweep_index : int
            Global sweep number (the RNG counter is ``2*sweep_index + colour``).
        halo : callable or None
            None: single domain, periodic along every axis. Otherwise called before each
            colour as ``halo(spins)``; must return a tensor whose ``[:, 0]`` and ``[:, -1]``
            are the ghost planes below and above the slab (e.g.
            :func:`hpc_rg.parallel.halo.exchange_halo`, collective over the slab).
        """
        if (spins.dtype != torch.float32 or spins.device.type != "cpu" or not spins.is_contiguous()
                or tuple(spins.shape) != (self.B,) + self.local_shape):
            raise ValueError(f"the compiled kernel takes contiguous float32 CPU spins of shape "
                             f"{(self.B,) + self.local_shape}, got {spins.dtype} {tuple(spins.shape)} "
                             f"on {spins.device}")
        if self.B == 0:
            return spins
        a = self._args
        fac = self._factors(beta)
        scalar = self._scalar_ranges(spins.numel())
        a.s, a.fac = spins.data_ptr(), fac.data_ptr()
        a.nscalar, a.scalar = scalar.shape[0], scalar.data_ptr()
        a.cm0, a.cm1 = _counter_mix(2 * int(sweep_index)), _counter_mix(2 * int(sweep_index) + 1)
        if halo is None:
            plane = self.N // self.local_shape[0] * spins.element_size()
            a.glo, a.ghi = a.s + (self.local_shape[0] - 1) * plane, a.s  # periodic wrap
            a.gstride = self.N
            self._run(2)
        else:
            for colour in (0, 1):
                ghosts = halo(spins).contiguous()
                if ghosts.dtype != torch.float32 or tuple(ghosts.shape[2:]) != self.local_shape[1:] \
                        or ghosts.shape[0] != self.B:
                    raise ValueError(f"halo(spins) must return float32 ghost planes (B, k, "
                                     f"*{self.local_shape[1:]}), got {tuple(ghosts.shape)}")
                a.glo, a.ghi = ghosts[:, 0].data_ptr(), ghosts[:, -1].data_ptr()
                a.gstride = ghosts.stride(0)
                self._run(colour)
                del ghosts
        return spins

    def _factors(self, beta) -> torch.Tensor:
        """Per-chain float32 factor of the exponent, rounded exactly as update_colour rounds it."""
        hit = self._fac
        if hit is not None and hit[0] is beta and hit[1] == getattr(beta, "_version", None):
            return hit[2]
        b = per_chain(beta, torch.empty((self.B, 1)))  # float, or float32 (B, 1)
        fac = -_TWO_OVER_LN2 * b if self.rule == "metropolis" else 2.0 * b
        fac = torch.as_tensor(fac, dtype=torch.float32).reshape(-1).expand(self.B).contiguous()
        self._fac = (beta, getattr(beta, "_version", None), fac)
        return fac

    def _scalar_ranges(self, n: int) -> torch.Tensor:
        key = (n, torch.get_num_threads())
        if key not in self._ranges:
            r = aten_scalar_ranges(n, key[1], self._block)
            self._ranges[key] = torch.tensor(r, dtype=torch.int64).reshape(-1, 2)
        return self._ranges[key]

    def _run(self, mode: int) -> None:
        lib, a, B = self._lib, self._argp, self.B
        threads = min(torch.get_num_threads(), B)
        if threads <= 1 or B * self.N < (1 << 15):
            rc = lib.hpc_rg_checkerboard(a, 0, B, mode)
        else:
            pool = _POOL.get(threads) or _POOL.setdefault(threads, ThreadPoolExecutor(threads))
            edges = [B * i // threads for i in range(threads + 1)]
            rc = min(pool.map(lambda i: lib.hpc_rg_checkerboard(a, edges[i], edges[i + 1], mode),
                              range(threads)))
        if rc:
            raise RuntimeError(f"compiled checkerboard kernel failed (code {rc})")


def compiled_or_none(device="cpu", **kwargs):
    """:class:`CompiledCheckerboard` (keyword arguments as its constructor), or None with one
    warning line when it cannot be used here (the caller then runs the torch kernel)."""
    try:
        if torch.device(device).type != "cpu":
            raise KernelUnavailable(f"it runs on the CPU only, the chains live on {device}")
        return CompiledCheckerboard(**kwargs)
    except KernelUnavailable as exc:
        warnings.warn(f"sample.kernel=compiled: {exc}; using the torch kernel", RuntimeWarning,
                      stacklevel=2)
        return None


def choose_kernel(requested: str, model: str, algorithm: str, device="cpu") -> tuple[str, str]:
    """The checkerboard kernel a sampler runs for ``sample.kernel = requested``.

    Returns ``(kernel, why)``: ``kernel`` is ``"compiled"`` or ``"torch"``, ``why`` one
    clause for the log. ``auto`` takes the compiled kernel whenever it applies (a +-1 spin
    model with Metropolis or heat bath, chains on the CPU, a C++ compiler and AVX2/AVX-512
    here); ``compiled`` insists (a warning when it cannot run, see :func:`compiled_or_none`);
    ``torch`` never builds anything.
    """
    if model not in MODELS or algorithm not in RULES:
        return "torch", (f"the compiled kernel is for {'/'.join(MODELS)} with "
                         f"{' or '.join(RULES)}, this run is {model} with {algorithm}")
    if requested == "torch":
        return "torch", "sample.kernel: torch"
    if torch.device(device).type != "cpu":
        return "torch", f"the chains live on {device} and the compiled kernel is CPU-only"
    try:
        lib = load_library()
    except KernelUnavailable as exc:
        return "torch", str(exc)
    width = int(lib.hpc_rg_vector_width())
    return "compiled", (f"fused C++ kernel, {torch.backends.cpu.get_cpu_capability()} "
                        f"({width} spins per vector), bit-identical to the torch kernel")


def build_once(comm) -> None:
    """Collective over ``comm``: rank 0 builds (or finds) the library, then a barrier, then
    every other rank loads it -- on a shared cache directory one compile serves all ranks,
    with node-local caches one per node (the file lock). A failure is remembered per
    process and reported by :func:`choose_kernel`, never raised here."""
    if comm.Get_rank() == 0:
        try:
            load_library()
        except KernelUnavailable:
            pass
    comm.Barrier()
