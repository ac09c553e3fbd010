"""What the program knows about each lattice model, in one place.

A :class:`ModelSpec` answers the questions that config validation, the Monte Carlo ensemble,
the super-resolution stages, analysis, tools and plots ask of a model (what its field is,
which grid it scans, which algorithms and blockings it accepts, which scalars are stored),
so that none of them compares model names. ``spec_for(name)`` is the lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..io import schema


@dataclass(frozen=True)
class ModelSpec:
    """One lattice model.

    Attributes
    ----------
    name : the ``model.name`` of the deck.
    field : ``"spin"`` (±1 spins, stored int8) or ``"phi4"`` (real field, stored float32).
    grid : the grid dataset it scans: ``temperatures`` (T) or ``couplings`` (φ⁴ κ or μ²).
    keys : the ``model:`` keys it accepts.
    algorithms : the ``sample.algorithm`` values it accepts.
    blockings : the ``train.blocking`` values it accepts.
    disordered : quenched couplings, replicas and overlaps (Edwards–Anderson).
    cnn_scalars : per-configuration scalars of a CNN-upscaled level, in storage order.
    flow_scalars : the same for a flow-upscaled level.
    chain_observable : the scalar whose autocorrelation measures a flow chain's mixing.
    """

    name: str
    field: str
    grid: str
    keys: tuple[str, ...]
    algorithms: tuple[str, ...]
    blockings: tuple[str, ...]
    disordered: bool = False
    cnn_scalars: tuple[str, ...] = ()
    flow_scalars: tuple[str, ...] = ()
    chain_observable: str = schema.ENERGY

    @property
    def continuous(self) -> bool:
        """A real-valued field (φ⁴) rather than ±1 spins."""
        return self.field == "phi4"

    @property
    def dtype(self):
        """Storage dtype of a configuration: int8 spins or float32 fields."""
        import numpy as np  # lazily: the config (and --check) import this module
        return np.float32 if self.continuous else np.int8

    @property
    def point_name(self) -> str:
        """One grid point's name in messages and attributes: ``temperature`` / ``coupling``."""
        return self.grid[:-1]

    @property
    def has_temperature(self) -> bool:
        """Grid points are temperatures (β = 1/T enters χ and C)."""
        return self.grid == schema.TEMPERATURES

    def default_blocking(self, dims: int) -> str:
        """``train.blocking: auto`` resolved."""
        if self.name == "ising" and dims == 1:
            return "decimation"
        return self.blockings[0]


ISING = ModelSpec(
    name="ising", field="spin", grid=schema.TEMPERATURES, keys=("name", "dims", "J", "h"),
    algorithms=("metropolis", "heatbath", "wolff", "swendsen_wang"),
    blockings=("majority", "majority_random", "decimation"),
    cnn_scalars=(schema.MAGNETIZATION, schema.ENERGY),
    flow_scalars=(schema.MAGNETIZATION, schema.ENERGY))
EDWARDS_ANDERSON = ModelSpec(
    name="edwards_anderson", field="spin", grid=schema.TEMPERATURES,
    keys=("name", "dims", "disorder", "disorder_samples", "replicas"),
    algorithms=("metropolis", "heatbath"), blockings=("overlap",), disordered=True,
    cnn_scalars=(schema.OVERLAP, schema.LINK_OVERLAP))
PHI4 = ModelSpec(
    name="phi4", field="phi4", grid=schema.COUPLINGS,
    keys=("name", "dims", "parametrization", "kappa", "lam"),
    algorithms=("metropolis", "hmc", "langevin", "wolff"), blockings=("sign_mean", "decimation"),
    cnn_scalars=(schema.PHI_MEAN, schema.PHI2_MEAN, schema.MAGNETIZATION),
    flow_scalars=(schema.PHI_MEAN, schema.PHI2_MEAN, schema.MAGNETIZATION, schema.ACTION),
    chain_observable=schema.ACTION)

SPECS = {s.name: s for s in (ISING, EDWARDS_ANDERSON, PHI4)}
MODELS = tuple(SPECS)


def spec_for(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``model.name`` (KeyError for an unknown name)."""
    return SPECS[name]
