"""Post-processing tools for hpc_rg output files, each ``python -m hpc_rg.tools.NAME --help``.

Every tool reads HDF5 files written by the pipeline (schema in docs/hdf5-layout.md) and
reports bad input (missing file, not an hpc_rg output, missing group) as one line on
stderr with exit status 2; see :mod:`hpc_rg.tools.common`.
"""
