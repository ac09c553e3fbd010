"""Which spin kernel the sample stage runs: multi-spin coding, the compiled checkerboard, or torch.

``sample.kernel``:

* ``auto`` (default) -- the fastest that applies here: the multi-spin-coded kernel
  (:mod:`hpc_rg.mc.msc`, one spin per bit, 64 chains per word) for ±J models (the Ising
  ferromagnet without field, Edwards-Anderson with ``disorder: pm1``) under Metropolis or heat
  bath -- compiled on the CPU, torch on a GPU; otherwise the compiled float checkerboard kernel
  on the CPU (:mod:`hpc_rg.mc.compiled`), otherwise torch.
* ``msc`` -- multi-spin coding, compiled on the CPU when it builds, else its torch version
  (bit-identical, slower; said once).
* ``compiled`` / ``torch`` -- the float checkerboard kernels (bit-identical to each other).

The multi-spin-coded chains draw a different random stream from the float kernels, so
switching between the two families changes the samples (not their distribution: see
tests/mc/test_msc_distribution.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["KernelChoice", "msc_unsupported", "msc_library_problem", "choose_spin_kernel"]

RULES = ("metropolis", "heatbath")


@dataclass(frozen=True)
class KernelChoice:
    """``kernel`` in {"msc", "compiled", "torch"}; ``implementation`` of msc ("compiled" or
    "torch", else None); ``why``: one clause for the log."""

    kernel: str
    implementation: str | None
    why: str


def msc_unsupported(model, algorithm: str) -> str | None:
    """Why the multi-spin-coded kernel cannot run this model (a ModelConfig), or None if it can."""
    name = model.name
    if algorithm not in RULES:
        return f"it runs Metropolis or heat bath, this run uses {algorithm}"
    if name == "ising":
        if float(model.h) != 0.0:
            return f"it needs model.h = 0 (got {model.h})"
        if float(model.J) == 0.0:
            return "it needs model.J != 0"
        return None
    if name == "edwards_anderson":
        if model.disorder != "pm1":
            return f"it needs ±J couplings (model.disorder: pm1), this run has {model.disorder}"
        return None
    return f"it is for ising / edwards_anderson, this run is {name}"


def msc_library_problem() -> str | None:
    """None when the compiled MSC kernel loads (building it on first use), else why not."""
    from hpc_rg.mc.compiled import KernelUnavailable
    from hpc_rg.mc.msc import compiled as msc_compiled

    try:
        msc_compiled.load_library()
    except KernelUnavailable as exc:
        return str(exc)
    return None


def choose_spin_kernel(requested: str, model, algorithm: str, device="cpu") -> KernelChoice:
    """The kernel for ``sample.kernel = requested`` (see the module notes)."""
    from hpc_rg.mc import compiled

    dev = torch.device(device)
    msc_note = ""  # why auto passed over the multi-spin-coded kernel, where that needs saying
    if requested in ("auto", "msc"):
        reason = msc_unsupported(model, algorithm)
        if reason is None:
            if dev.type != "cpu":
                return KernelChoice("msc", "torch", f"multi-spin coded, 64 chains per int64 word, "
                                                    f"torch on {device}")
            failed = msc_library_problem()
            if failed is None:
                from hpc_rg.mc.msc import compiled as msc_compiled
                isa = msc_compiled.default_isa()
                return KernelChoice("msc", "compiled", f"multi-spin coded, 64 chains per word, "
                                                       f"compiled {isa} "
                                                       f"({msc_compiled.vector_words()} words per vector)")
            if requested == "msc":
                return KernelChoice("msc", "torch", f"multi-spin coded, torch version (slower): "
                                                    f"the compiled one is unavailable: {failed}")
            msc_note = f"; the faster multi-spin-coded kernel is unavailable: {failed}"
        elif requested == "msc":  # config validation rejects this; kept for direct callers
            raise ValueError(f"sample.kernel=msc: {reason}")
    if requested in ("compiled", "torch"):  # insisted on: compiled warns where it cannot run
        return KernelChoice(requested, None, f"sample.kernel: {requested}")
    kernel, why = compiled.choose_kernel("auto", model.name, algorithm, device)
    return KernelChoice(kernel, None, why + msc_note)
