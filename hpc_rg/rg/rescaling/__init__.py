"""Temperature rescaling: the flow ``T -> f(T)`` of one blocking step and its inverse.

* :mod:`.flow` — :class:`TemperatureFlow` (the measured map, its inverse, iteration, fixed
  point, HDF5 attributes and model-file form);
* :mod:`.fit` — :func:`fit_flow`, matching blocked observables to small-lattice curves;
* :mod:`.curves` — :func:`curve_stats`, the measured curves of an ensemble (collective);
* :mod:`.exact_1d` — the exact 1D Ising decimation map and :func:`ising1d_flow`.

NumPy only, except :mod:`.curves` (torch, MPI), which is imported on first use.
"""

from .exact_1d import (decimated_temperature, decimation_coupling, inverse_decimation_coupling,
                       ising1d_flow, superresolved_temperature)
from .fit import fit_flow
from .flow import TemperatureFlow, flow_from_meta, flow_to_meta

__all__ = ["TemperatureFlow", "fit_flow", "ising1d_flow", "flow_to_meta", "flow_from_meta",
           "decimation_coupling", "inverse_decimation_coupling", "decimated_temperature",
           "superresolved_temperature"]
