"""Per-configuration observables of super-resolution inputs and outputs: see
:mod:`hpc_rg.rg.observables` (their home)."""

from ..rg.observables import curve_names, observables

__all__ = ["curve_names", "observables"]
