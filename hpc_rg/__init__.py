"""hpc_rg: inverse renormalization group super-resolution of lattice models.

Importing the package has no side effects: it neither initialises MPI nor imports
torch or deepspeed. Submodules import what they need.
"""

__version__ = "0.1.0"
