"""HDF5 output: the schema (every name in one place), writers, provenance, atomic files."""
