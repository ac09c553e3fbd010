"""Job scripts for SLURM and PBS: ``python -m hpc_rg.jobs render ...`` (see :mod:`.render`).

The hand-edited templates are in ``jobs/`` at the top of the repository (jobs/README.md);
this package writes the same kind of script for one deck with the rank layout worked out.
"""
