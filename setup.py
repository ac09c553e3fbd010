"""hpc_rg: inverse renormalization group super-resolution of lattice models on HPC systems."""
import re
from pathlib import Path

from setuptools import find_packages, setup

version = re.search(r'__version__ = "([^"]+)"', Path("hpc_rg/__init__.py").read_text()).group(1)

setup(
    name="hpc_rg",
    version=version,
    description="Inverse-RG super-resolution of lattice models (Ising, spin glass, phi^4) with MPI",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["hpc_rg", "hpc_rg.*"]),
    package_data={"hpc_rg": ["mc/*.cpp", "mc/msc/*.cpp", "jobs/templates/*.tmpl"]},
    install_requires=["torch", "numpy", "pyyaml", "mpi4py", "h5py"],
    extras_require={"train": ["deepspeed"], "test": ["pytest", "pytest-mpi", "pytest-xdist"], "plot": ["matplotlib"]},
    entry_points={"console_scripts": ["hpc-rg=hpc_rg.__main__:main"]},
)
