"""Multi-spin-coded (MSC) ±J Edwards-Anderson / Ising checkerboard kernel: one spin per bit.

* :mod:`~hpc_rg.mc.msc.layout` -- the bit layout (spins, coupling planes, per-lane flip
  thresholds), packing to and from ±1, energy and overlap per lane.
* :mod:`~hpc_rg.mc.msc.rng` -- the counter-based random words (one bit per lane).
* :mod:`~hpc_rg.mc.msc.sweep_torch` -- the reference sweep (torch, CPU or CUDA).
* :mod:`~hpc_rg.mc.msc.compiled` -- the bit-identical compiled CPU sweep (C++), per-lane bit
  strings and unsatisfied-bond counts.
* :mod:`~hpc_rg.mc.msc.chains` -- the chains of a sample-stage Ensemble held as words (lane map
  by global chain id, tempering as threshold changes, slabs, state for resume).
* :mod:`~hpc_rg.mc.msc.observables` -- energies, magnetisations and overlaps from exact bit counts.

The Ensemble runs it under ``sample.kernel: auto`` / ``msc`` (:mod:`hpc_rg.mc.kernels`).
"""
