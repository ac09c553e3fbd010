"""Analysis: statistics of MC series (:mod:`~hpc_rg.analysis.stats`), thermodynamic
observables with jackknife errors (:mod:`~hpc_rg.analysis.observables`), exact reference
results (:mod:`~hpc_rg.analysis.exact`), correlation functions, finite-size scaling,
reading the output files (:mod:`~.outputs`), the statistics the plots draw
(:mod:`~.ensemble_stats`), and the per-(size, temperature) tables of the post-processing
tools (:mod:`~.tables`, which takes an MPI communicator explicitly; :mod:`~.rescale`
imports torch for the blocking). The other modules are NumPy only.
"""
