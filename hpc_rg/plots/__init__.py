"""PNG plots of Monte Carlo and super-resolved ensembles, one module per kind family.

:func:`open_inputs` opens a run's ``samples.h5`` / ``upscaled.h5``; :func:`make_plots`
writes every kind asked for (:data:`KINDS`) that applies. The numbers they draw come from
:mod:`hpc_rg.analysis`; ``tools/plot`` (:mod:`hpc_rg.tools.plot`) is the command line.
Matplotlib is imported only when a figure is made.
"""

from .inputs import Inputs, open_inputs
from .kinds import KINDS, make_plots

__all__ = ["Inputs", "KINDS", "make_plots", "open_inputs"]
