"""The super-resolution method interface: what the ``train`` and ``upscale`` stages need of
a method (the CNN of :mod:`.cnn`, the flows of :mod:`.flow`).

A :class:`Method` trains (writing ``model.pt``) and loads a trained model as an
:class:`Upscaler`. The upscale stage (:mod:`hpc_rg.pipeline.upscale`) owns the loop around
it: it opens or resumes ``upscaled.h5.partial``, asks the upscaler to create the file's
structure, runs its batch rounds (each round writes configurations and per-row scalars of
every level), polls the stop flag, checkpoints the upscaler's resumable state, and finally
asks it for the finishing statistics (diagnostics, certificates) and the summary.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..io import schema


def levels_of(cfg) -> list[int]:
    """Output sizes 2 L0, 4 L0, ..., target_L (default 4 L0) of the upscale stage, L0 =
    ``upscale.input_L`` (default sample.L)."""
    from ..config import upscale_levels
    return upscale_levels(cfg)


def input_runs(a: int, b: int, N: int, N_all: int) -> list[tuple[int, int]]:
    """Flat input indices of upscaled rows a..b-1 as contiguous runs [(start, stop), ...].

    Row n of N upscaled configurations descends from input n·N_all // N of the N_all
    available (evenly spread over chains, disorder samples and Monte Carlo time when
    ``upscale.samples`` < N_all; row n = input n when all are used).
    """
    runs: list[list[int]] = []
    for n in range(a, b):
        i = n * N_all // N
        if runs and runs[-1][1] == i:
            runs[-1][1] += 1
        else:
            runs.append([i, i + 1])
    return [(u, v) for u, v in runs]


def levels_complete(h5, sizes, datasets) -> bool:
    """Every level group with ``datasets`` and the ``level`` attribute (made last)."""
    try:
        for Lp in sizes:
            g = schema.size_group(Lp)
            if not (h5.has(g) and all(h5.has(f"{g}/{d}") for d in datasets)
                    and schema.GROUP_ATTR_LEVEL in h5.attrs(g)):
                return False
    except (KeyError, OSError, ValueError):
        return False
    return True


class Upscaler(ABC):
    """A trained model applied level after level to this rank's share of the inputs.

    Attributes set by implementations: ``sizes`` (the level sizes), ``rounds`` (batch
    rounds, the same on every rank: the largest rank's count of work items).
    """

    sizes: list[int]
    rounds: int

    @abstractmethod
    def create_file(self, h5) -> None:
        """Collective: provenance, one group per level with its datasets and attributes."""

    @abstractmethod
    def structure_complete(self, h5) -> bool:
        """Does a reopened partial file hold everything :meth:`create_file` makes?"""

    def state(self) -> dict:
        """Resumable state beyond the rounds done (saved with every checkpoint)."""
        return {}

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state` of a checkpoint."""

    @abstractmethod
    def step(self, r: int, inputs):
        """Round ``r`` of this rank (nothing when it has fewer work items than ``rounds``):
        yields ``(L, selection, configs, scalars)`` for every level, with ``configs`` the
        stored configurations (numpy, storage dtype) of rows ``selection`` = (point, rows)
        and ``scalars`` a dict of per-row float arrays named by :mod:`hpc_rg.io.schema`.
        ``inputs`` is the ``/L<sample.L>`` group of the open ``samples.h5``."""

    @abstractmethod
    def finish(self, h5) -> None:
        """Collective, before the file is closed: diagnostics and certificates as level
        attributes."""

    @abstractmethod
    def report(self, path) -> None:
        """Rank 0, after the file is complete: the per-level summary and certificates."""


class Method(ABC):
    """A super-resolution method chosen by ``train.method``."""

    @abstractmethod
    def train(self, cfg, comms, stop, resume: bool, device) -> None:
        """Collective: learn the method's model from ``samples.h5``; write ``model.pt``."""

    @abstractmethod
    def upscaler(self, cfg, comms, device) -> Upscaler:
        """Collective: the trained model of this run as an :class:`Upscaler`."""
