"""Multi-spin-coded (MSC) ±J Edwards-Anderson / Ising checkerboard kernel: one spin per bit.

* :mod:`~hpc_rg.mc.msc.layout` -- the bit layout (spins, coupling planes, per-lane flip
  thresholds), packing to and from ±1, energy and overlap per lane.
* :mod:`~hpc_rg.mc.msc.rng` -- the counter-based random words (one bit per lane).
* :mod:`~hpc_rg.mc.msc.sweep_torch` -- the reference sweep (torch, CPU or CUDA).
* :mod:`~hpc_rg.mc.msc.compiled` -- the bit-identical compiled CPU sweep (C++).

Not yet used by the Ensemble / sample stage.
"""
