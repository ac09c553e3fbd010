"""Job scripts for SLURM and PBS: ``python -m hpc_rg.jobs render ...`` (see :mod:`.render`).

The templates in ``templates/`` are the one source: :mod:`.render` fills them for one deck
with the rank layout worked out (:mod:`.layout`), and :mod:`.examples` renders the portable
examples shipped in ``jobs/`` at the top of the repository (jobs/README.md).
"""
