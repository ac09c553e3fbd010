"""Lattice models: Hamiltonians/actions, local fields and forces, per-configuration observables.

Pure tensor code with a leading batch axis, no MPI: :mod:`~hpc_rg.models.lattice`
(neighbour sums, checkerboard parity, halo conventions), :mod:`~hpc_rg.models.ising`,
:mod:`~hpc_rg.models.edwards_anderson`, :mod:`~hpc_rg.models.phi4`.
"""
