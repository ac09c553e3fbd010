"""The compiled checkerboard kernel (hpc_rg.mc.compiled, ``sample.kernel: compiled``).

Everything is checked bit for bit against the eager kernel: the library sweep
(hpc_rg.mc.checkerboard.sweep with the same CounterRNG stream), the ATen scalar-tail
emulation of exp2/sigmoid, slabs with ghost planes, and whole Ensembles (also under MPI
with ranks_per_replica: 2). The kernel library is built once per machine (~10 s, cached in
~/.cache/hpc_rg/kernels); every test here then takes well under a second.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import threading
import warnings

import numpy as np
import pytest
import torch
from mpi4py import MPI

from hpc_rg.mc import checkerboard as cb
from hpc_rg.mc import compiled
from hpc_rg.mc.ensemble import Ensemble
from hpc_rg.models import edwards_anderson as ea
from hpc_rg.models import ising
from hpc_rg.models.lattice import global_site_ids
from hpc_rg.parallel.comms import Comms
from hpc_rg.rng import CounterRNG

from test_ensemble import _gather_slabs, make_cfg, self_ensemble
from helpers import counting_compiler, read_only_home_env


@pytest.fixture(scope="module")
def lib():
    """The compiled library; skipped only where there is no C++ compiler at all."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler")
    return compiled.load_library()


@pytest.fixture
def threads():
    """Set torch's intra-op threads for one test (restored afterwards)."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def _pair(model, shape, B, rule, J=1.0, h=0.0, seed=11, disorder="gaussian", ids_offset=5):
    """(eager step, compiled step, start configuration) for the same stream and model."""
    ids = torch.arange(B) + ids_offset
    rng = CounterRNG(seed, ids, global_site_ids(shape))
    s0 = torch.where(rng.uniform(12345) < 0.5, -1.0, 1.0)
    if model == "ising":
        beta = torch.linspace(0.3, 0.6, B)
        field = functools.partial(ising.local_field, J=J, h=h)
        Jc = None
    else:
        beta = torch.linspace(0.5, 2.0, B)
        Jc = ea.couplings(shape[0], len(shape), disorder, 1, 0)
        field = functools.partial(ea.local_field, J=Jc)
    kern = compiled.CompiledCheckerboard(rule, shape, seed, ids, model=model, J=J, h=h,
                                         couplings=Jc)

    def eager(s, k):
        cb.sweep(s, field, beta, rng, k, rule)

    def fused(s, k):
        kern.sweep(s, beta, k)
    return eager, fused, s0


KERNEL_CASES = [  # model, shape, B, rule, J, h  (AVX-512 register path: rows of 32k sites, 3D rows of 16)
    ("ising", (64, 64), 16, "metropolis", 1.0, 0.0),
    ("ising", (64, 64), 16, "heatbath", 1.0, 0.0),
    ("ising", (32, 32), 4, "metropolis", 1.0, 0.3),
    ("ising", (32, 32), 1, "heatbath", 0.7, -0.2),
    ("ising", (16, 16, 16), 3, "metropolis", 0.8, 0.3),
    ("ising", (8, 12, 6), 2, "heatbath", 1.0, 0.1),
    ("ising", (32,), 4, "metropolis", 1.0, 0.2),
    ("ising", (2, 2), 1, "metropolis", 1.0, 0.0),
    ("edwards_anderson", (16, 16, 16), 8, "metropolis", 1.0, 0.0),
    ("edwards_anderson", (16, 16, 16), 8, "heatbath", 1.0, 0.0),
    ("edwards_anderson", (30, 30, 30), 3, "metropolis", 1.0, 0.0),  # blocks span planes
    ("edwards_anderson", (6, 6, 6), 3, "heatbath", 1.0, 0.0),        # ATen scalar tails
    ("edwards_anderson", (10, 10), 5, "metropolis", 1.0, 0.0),
    ("edwards_anderson", (32, 32, 32), 2, "heatbath", 1.0, 0.0),
    ("ising", (48, 48), 3, "metropolis", 1.0, 0.3),                  # rows of 48: scratch path
]


@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: f"{c[0]}-{'x'.join(map(str, c[1]))}-B{c[2]}-{c[3]}")
def test_sweeps_bit_identical_to_eager(lib, threads, case):
    threads(1)
    model, shape, B, rule, J, h = case
    eager, fused, s0 = _pair(model, shape, B, rule, J, h)
    a, b = s0.clone(), s0.clone()
    for k in range(5):
        eager(a, k)
        fused(b, k)
        assert torch.equal(a, b), f"sweep {k}"
    assert not torch.equal(a, s0)


def test_pm1_disorder_and_python_float_beta(lib, threads):
    threads(1)
    shape, B, seed = (8, 8, 8), 4, 3
    ids = torch.arange(B)
    rng = CounterRNG(seed, ids, global_site_ids(shape))
    Jc = ea.couplings(8, 3, "pm1", 2, 0)
    kern = compiled.CompiledCheckerboard("metropolis", shape, seed, ids, model="edwards_anderson",
                                         couplings=Jc)
    a = torch.where(rng.uniform(7) < 0.5, -1.0, 1.0)
    b = a.clone()
    for k in range(4):  # beta as a Python float is rounded like update_colour rounds it
        cb.sweep(a, functools.partial(ea.local_field, J=Jc), 0.9, rng, k)
        kern.sweep(b, 0.9, k)
    assert torch.equal(a, b)


def test_two_threads_and_parallel_chunks(lib, threads):
    """2 torch threads: ATen splits exp2 into two chunks with scalar tails, the kernel
    splits the chains over two threads; still bit-identical."""
    threads(2)
    eager, fused, s0 = _pair("edwards_anderson", (82, 82), 5, "metropolis")  # 5*82^2 > 32768
    blk = 2 * lib.hpc_rg_vector_width()
    tail = 16810 % blk  # two chunks of 16810 elements, each with a scalar tail
    assert compiled.aten_scalar_ranges(s0.numel(), 2, blk) == [(16810 - tail, 16810), (33620 - tail, 33620)]
    a, b = s0.clone(), s0.clone()
    for k in range(3):
        eager(a, k)
        fused(b, k)
    assert torch.equal(a, b)


def test_three_threads_register_path(lib, threads):
    threads(3)
    eager, fused, s0 = _pair("ising", (64, 64), 17, "heatbath", h=0.2)  # 3 chunks of 23211
    assert len(compiled.aten_scalar_ranges(s0.numel(), 3, 2 * lib.hpc_rg_vector_width())) == 3
    a, b = s0.clone(), s0.clone()
    for k in range(3):
        eager(a, k)
        fused(b, k)
    assert torch.equal(a, b)


@pytest.mark.parametrize("rule", [0, 1])
def test_aten_scalar_tail_emulation(lib, threads, rule):
    """Arguments where SLEEF and libm differ in the last bit, at every position: the kernel's
    exp2/sigmoid reproduce ATen's (vector body, scalar tail per parallel chunk) exactly."""
    op = torch.exp2 if rule == 0 else torch.sigmoid
    block = 2 * lib.hpc_rg_vector_width()

    def kernel_like(x, ranges):
        y = x.clone()
        r = torch.tensor(ranges, dtype=torch.int64).reshape(-1, 2)
        lib.hpc_rg_aten_like(y.data_ptr(), y.numel(), rule, r.shape[0], r.data_ptr())
        return y
    g = torch.Generator().manual_seed(0)
    x = -30.0 * torch.rand(1 << 16, generator=g) + (0.0 if rule == 0 else 15.0)
    differ = x[kernel_like(x, []) != kernel_like(x, [(0, x.numel())])]
    assert differ.numel() > 50  # the two implementations really differ on these
    for nthreads, n in [(1, 33), (1, 1000), (1, 4096), (2, 40001), (2, 70003)]:
        threads(nthreads)
        v = differ[torch.arange(n) % differ.numel()].contiguous()
        ranges = compiled.aten_scalar_ranges(n, nthreads, block)
        assert torch.equal(kernel_like(v, ranges), op(v)), (nthreads, n)
        if ranges:  # and ignoring the tails would be wrong
            assert not torch.equal(kernel_like(v, []), op(v))


@pytest.mark.parametrize("case", [
    ("ising", (16, 16), 4, "metropolis", 2, 1.0, 0.0),
    ("ising", (12,), 2, "metropolis", 3, 1.0, 0.3),
    ("ising", (8, 6, 4), 2, "heatbath", 2, 0.7, 0.2),
    ("edwards_anderson", (8, 8, 8), 3, "heatbath", 4, 1.0, 0.0),
    ("edwards_anderson", (12, 12), 2, "metropolis", 3, 1.0, 0.0),
    ("ising", (6, 6), 3, "metropolis", 2, 1.0, 0.4),                # odd slab thickness
    ("ising", (32, 32), 3, "metropolis", 2, 1.0, 0.0),
    ("edwards_anderson", (16, 16, 16), 2, "heatbath", 2, 1.0, 0.0),
    ("ising", (48,), 2, "metropolis", 3, 1.0, 0.3),
    ("edwards_anderson", (6, 6, 6), 2, "heatbath", 2, 1.0, 0.0),
])
def test_slabs_with_ghost_planes(lib, threads, case):
    """S slabs, one Python thread each, ghost planes exchanged through the halo callback
    (barrier before and after), equal the undecomposed eager run."""
    threads(1)
    model, shape, B, rule, S, J, h = case
    seed, ids = 3, torch.arange(B)
    rng = CounterRNG(seed, ids, global_site_ids(shape))
    s0 = torch.where(rng.uniform(999) < 0.5, -1.0, 1.0)
    beta = torch.linspace(0.3, 0.6, B)
    Jc = ea.couplings(shape[0], len(shape), "gaussian", 2, 0) if model != "ising" else None
    field = (functools.partial(ising.local_field, J=J, h=h) if model == "ising"
             else functools.partial(ea.local_field, J=Jc))
    ref = s0.clone()
    Lx = shape[0] // S
    slabs = [s0[:, r * Lx:(r + 1) * Lx].contiguous() for r in range(S)]
    kerns = [compiled.CompiledCheckerboard(rule, shape, seed, ids, x0=r * Lx, n0=Lx, model=model,
                                           J=J, h=h, couplings=Jc) for r in range(S)]
    barrier = threading.Barrier(S)

    def halo(r, x):
        barrier.wait()  # every slab finished the previous colour
        g = torch.stack((slabs[(r - 1) % S][:, -1], slabs[(r + 1) % S][:, 0]), 1)
        barrier.wait()  # every slab has its ghosts before anyone updates
        return g

    def run(r):
        for k in range(3):
            kerns[r].sweep(slabs[r], beta, k, halo=functools.partial(halo, r))
    workers = [threading.Thread(target=run, args=(r,)) for r in range(S)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    for k in range(3):
        cb.sweep(ref, field, beta, rng, k, rule)
    assert torch.equal(torch.cat(slabs, 1), ref)


def test_rejects_what_it_cannot_do(lib):
    with pytest.raises(ValueError, match="even"):
        compiled.CompiledCheckerboard("metropolis", (5, 5), 0, [0])
    with pytest.raises(ValueError, match="rule"):
        compiled.CompiledCheckerboard("wolff", (4, 4), 0, [0])
    k = compiled.CompiledCheckerboard("metropolis", (4, 4), 0, [0, 1])
    with pytest.raises(ValueError, match="float32"):
        k.sweep(torch.ones(2, 4, 4, dtype=torch.float64), 1.0, 0)
    with pytest.raises(ValueError, match="shape"):
        k.sweep(torch.ones(3, 4, 4), 1.0, 0)


# =========================================================================== Ensemble
ENSEMBLE_CASES = [
    dict(model="ising", dims=2, L=8, algorithm="metropolis", chains=3, pt=True, every=2),
    dict(model="ising", dims=2, L=10, algorithm="heatbath", chains=2, model_extra={"J": 0.9, "h": 0.2}),
    dict(model="ising", dims=3, L=6, algorithm="metropolis", temps=(4.0, 4.5, 5.0)),
    dict(model="edwards_anderson", dims=3, L=4, algorithm="metropolis", pt=True,
         temps=(0.6, 1.0, 1.6), model_extra={"disorder_samples": 2, "disorder": "gaussian"}),
    dict(model="edwards_anderson", dims=2, L=6, algorithm="heatbath", temps=(0.8, 1.6),
         model_extra={"disorder_samples": 3, "disorder": "pm1", "replicas": 3}),
]


def _compiled_cfg(case, **kw):
    extra = dict(case.get("sample_extra") or {}, kernel="compiled")
    return make_cfg(**{**case, **kw, "sample_extra": extra})


@pytest.mark.parametrize("case", ENSEMBLE_CASES)
def test_ensemble_compiled_equals_torch(lib, threads, case):
    threads(1)
    ref = self_ensemble(make_cfg(**case))
    fast = self_ensemble(_compiled_cfg(case))
    assert fast._kernel is not None and ref._kernel is None
    for n in (1, 6):
        ref.sweep(n)
        fast.sweep(n)
        assert np.array_equal(fast.configs(), ref.configs())
        assert np.array_equal(fast.temp_index, ref.temp_index)
        assert np.array_equal(fast.energies(), ref.energies())


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    """No C++ compiler and an empty kernel cache for one test; yields the missing path."""
    from hpc_rg.mc.msc import compiled as msc_compiled

    monkeypatch.setattr(compiled, "_STATE", {})
    monkeypatch.setattr(msc_compiled, "_LIBS", {})
    monkeypatch.setenv("HPC_RG_KERNEL_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    return tmp_path / "no-such-compiler"


def _ensemble_with_warnings(cfg):
    """(Ensemble of ``cfg`` on this rank, the warnings its construction raised)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = self_ensemble(cfg)
    return e, caught


def test_fallback_warns_and_runs_torch(no_compiler):
    """No compiler: one warning, then the torch kernel (same results)."""
    case = ENSEMBLE_CASES[0]
    e, caught = _ensemble_with_warnings(_compiled_cfg(case))
    assert e._kernel is None
    assert [str(w.message) for w in caught if "kernel=compiled" in str(w.message)] == [
        f"sample.kernel=compiled: no C++ compiler {str(no_compiler)!r} "
        f"(FileNotFoundError); using the torch kernel"]
    ref = self_ensemble(make_cfg(**case))
    e.sweep(3)
    ref.sweep(3)
    assert np.array_equal(e.configs(), ref.configs())


def test_load_library_from_cache_is_fast(lib):
    """A second process finds the built library in the cache instead of compiling."""
    path = compiled._build()
    assert path.exists() and path.suffix == ".so"
    assert ctypes.CDLL(str(path)).hpc_rg_vector_width() in (8, 16)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("case", [ENSEMBLE_CASES[1], ENSEMBLE_CASES[3],
                                  dict(model="ising", dims=3, L=4, algorithm="heatbath")])
def test_ensemble_compiled_slabs_equal_torch(lib, case):
    """ranks_per_replica: 2 with the compiled kernel (halo exchange between colours) equals
    the undecomposed torch-kernel run."""
    world = MPI.COMM_WORLD
    comms = Comms(world, 2)
    dec = Ensemble(_compiled_cfg(case, rpr=2, every=3), comms, "cpu")
    assert dec._kernel is not None and dec.n_slabs == 2
    ref = self_ensemble(make_cfg(**case, every=3))
    for n in (2, 5):
        dec.sweep(n)
        ref.sweep(n)
        assert np.array_equal(_gather_slabs(dec, comms), ref.configs())
        assert np.array_equal(dec.temp_index, ref.temp_index)
    comms.free()


# =========================================================================== kernel: auto
def test_auto_is_the_default_and_runs_the_compiled_kernel(lib):
    """Where multi-spin coding does not apply (a field, Gaussian couplings), auto runs the
    compiled float kernel."""
    for case in (ENSEMBLE_CASES[1], ENSEMBLE_CASES[3]):
        cfg = make_cfg(**case, kernel=None)  # no kernel key: the deck default
        assert cfg.sample.kernel == "auto"
        e = self_ensemble(cfg)
        assert e.kernel == "compiled" and e._kernel is not None and e._msc is None
        assert "bit-identical" in e.kernel_reason


@pytest.mark.parametrize("case", [ENSEMBLE_CASES[0], ENSEMBLE_CASES[2], ENSEMBLE_CASES[4]])
def test_auto_runs_multi_spin_coding_for_pm_j_models(lib, case):
    """±J models (Ising without field, EA with pm1) under Metropolis / heat bath: auto runs the
    multi-spin-coded kernel, compiled on the CPU."""
    case = {**case, "model_extra": {**case.get("model_extra", {}), "disorder": "pm1"}} \
        if case["model"] == "edwards_anderson" else case
    e = self_ensemble(make_cfg(**case, kernel=None))
    assert e.kernel == "msc" and e._msc is not None and e._msc.impl == "compiled"
    assert e.kernel_reason.startswith("multi-spin coded, 64 chains per word, compiled")


@pytest.mark.parametrize("model_extra, algorithm, kernel, impl, why", [
    ({}, "metropolis", "msc", "compiled", "multi-spin coded"),
    ({"h": 0.1}, "metropolis", "compiled", None, "bit-identical"),
    ({}, "wolff", "torch", None, "this run is ising with wolff"),
])
def test_choose_spin_kernel(lib, model_extra, algorithm, kernel, impl, why):
    from hpc_rg.mc.kernels import choose_spin_kernel

    m = make_cfg(model_extra=model_extra).model
    c = choose_spin_kernel("auto", m, algorithm, "cpu")
    assert (c.kernel, c.implementation) == (kernel, impl) and why in c.why


def test_auto_says_why_when_the_msc_library_is_unavailable(lib, monkeypatch):
    """MSC cannot be built but the float kernel can: auto runs the float kernel and its
    reason (the sample stage's log line) says that the faster kernel was unavailable."""
    from hpc_rg.mc import kernels

    monkeypatch.setattr(kernels, "msc_library_problem", lambda: "compiler says no")
    c = kernels.choose_spin_kernel("auto", make_cfg().model, "metropolis", "cpu")
    assert c.kernel == "compiled" and "bit-identical" in c.why
    assert c.why.endswith("the faster multi-spin-coded kernel is unavailable: compiler says no")


def test_msc_on_a_gpu_device_is_the_torch_version():
    """The choice for CUDA chains is made without touching a GPU: the torch MSC path."""
    from hpc_rg.mc.kernels import choose_spin_kernel

    c = choose_spin_kernel("auto", make_cfg().model, "metropolis", "cuda")
    assert (c.kernel, c.implementation) == ("msc", "torch") and "torch on cuda" in c.why


def test_kernel_msc_where_it_cannot_run_is_a_config_error():
    from hpc_rg.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sample.kernel=msc: it needs ±J couplings \(model.disorder: pm1\)"):
        make_cfg("edwards_anderson", dims=3, L=4, kernel="msc",
                 model_extra={"disorder_samples": 1, "disorder": "gaussian"})
    with pytest.raises(ConfigError, match="sample.kernel=msc: it needs model.h = 0"):
        make_cfg(kernel="msc", model_extra={"h": 0.5})


@pytest.mark.parametrize("requested, model, algorithm, device, why", [
    ("auto", "phi4", "metropolis", "cpu", "the compiled kernel is for ising/edwards_anderson"),
    ("auto", "ising", "wolff", "cpu", "this run is ising with wolff"),
    ("torch", "ising", "metropolis", "cpu", "sample.kernel: torch"),
    ("auto", "ising", "metropolis", "cuda", "CPU-only")])
def test_auto_chooses_torch_where_the_compiled_kernel_does_not_apply(requested, model, algorithm,
                                                                      device, why):
    kernel, reason = compiled.choose_kernel(requested, model, algorithm, device)
    assert kernel == "torch" and why in reason


def test_auto_without_compiler_runs_torch_quietly_and_says_why(no_compiler):
    e, caught = _ensemble_with_warnings(make_cfg(**ENSEMBLE_CASES[0], kernel="auto"))
    assert e._kernel is None and e.kernel == "torch" and "no C++ compiler" in e.kernel_reason
    assert not [w for w in caught if "kernel" in str(w.message)]  # auto: no warning


def test_read_only_home_and_concurrent_processes_build_once(lib, tmp_path):
    """Three processes start at once with an unwritable home cache: the library goes to the
    per-user temporary cache, is compiled exactly once (file lock), and all three load it."""
    import subprocess
    import sys
    cxx, log = counting_compiler(tmp_path)
    env = read_only_home_env(tmp_path, cxx)
    code = "from hpc_rg.mc import compiled; print(compiled._build())"
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    paths = {o.strip() for o, _ in outs}
    assert len(paths) == 1
    (path,) = paths
    assert path.startswith(str(tmp_path / "tmp" / f"hpc_rg-kernels-{os.getuid()}"))
    assert log.read_text().split() == ["compile"]
