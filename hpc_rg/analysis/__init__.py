"""Analysis: statistics of MC series (:mod:`~hpc_rg.analysis.stats`), thermodynamic
observables with jackknife errors (:mod:`~hpc_rg.analysis.observables`) and exact
reference results (:mod:`~hpc_rg.analysis.exact`). NumPy only; no torch, no MPI.
"""
