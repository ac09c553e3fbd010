"""Values derived from a config: ``auto`` resolutions, the sample stage's work units and
the lattice sizes a run writes."""

from __future__ import annotations

import dataclasses

from .sections import Config


def resolve_auto(cfg: Config, world_size: int | None) -> Config:
    """``cfg`` with ``sample.chains: auto`` replaced by a number of chains per grid point.

    auto is the smallest count that gives every replica group of a ``world_size``-rank job
    at least one chain, ``ceil(groups / grid points)`` (1 when the ranks are unknown, for
    Edwards-Anderson, whose unit is the disorder sample, and when there are at least as
    many grid points as groups -- so such a deck gives the same chains, and the same
    results, on every rank count).
    """
    s, spec = cfg.sample, cfg.model.spec
    if s.chains != "auto":
        return cfg
    points = len(cfg.parameter_grid)
    groups = 1
    if world_size is not None and s.ranks_per_replica >= 1:
        groups = max(1, world_size // s.ranks_per_replica)
    chains = 1
    if not spec.disordered and points:
        chains = max(1, -(-groups // points))
    note = ()
    if not spec.disordered:
        why = f"{groups} replica group(s), {points} {spec.point_name}(s)"
        caution = "" if chains == 1 else (
            "; another rank count may resolve to other chains and other numbers: set "
            f"sample.chains: {chains} to keep them")
        note = (f"sample.chains: auto -> {chains} chain(s) per grid point ({why}){caution}",)
    return dataclasses.replace(cfg, sample=dataclasses.replace(s, chains=chains),
                               resolved=cfg.resolved + note)


def resolved_blocking(cfg: Config) -> str:
    """The blocking transform of ``train.blocking`` with ``auto`` resolved by model and dims."""
    b = cfg.train.blocking
    if b != "auto":
        return b
    return cfg.model.spec.default_blocking(cfg.model.dims)


def work_units(cfg: Config) -> int:
    """Independent Markov chains of the sample stage (what ranks are spread over).

    Clean models: parameter points x chains (a tempering ladder may be spread over ranks).
    Edwards-Anderson: disorder samples (a replica group holds every replica and
    temperature of its samples, so overlaps stay local).
    """
    if cfg.model.spec.disordered:
        return cfg.model.disorder_samples
    return cfg.sample.chains * len(cfg.parameter_grid)


def upscale_input_L(cfg: Config) -> int:
    """The Monte Carlo size the upscale chain starts from (``upscale.input_L``, 0: sample.L)."""
    return cfg.upscale.input_L or cfg.sample.L


def upscale_input_blockings(cfg: Config) -> int:
    """How many times the chain's Monte Carlo inputs are blocked before the first level
    (``upscale.input_blockings``; auto: ``train.target_blockings``)."""
    b = cfg.upscale.input_blockings
    return cfg.train.target_blockings if b == "auto" else int(b)


def upscale_start_L(cfg: Config) -> int:
    """Size of the chain's first input: :func:`upscale_input_L` / 2**input_blockings."""
    return upscale_input_L(cfg) >> max(upscale_input_blockings(cfg), 0)  # < 0: a config error


def upscale_levels(cfg: Config) -> list[int]:
    """Output sizes 2 L0, 4 L0, ..., target_L (default 4 L0), L0 = :func:`upscale_start_L`."""
    L = upscale_start_L(cfg)
    target = cfg.upscale.target_L or 4 * L
    out = []
    while 0 < L < target:
        L *= 2
        out.append(L)
    return out


def run_sizes(cfg: Config) -> tuple[int, ...]:
    """Every lattice size the run writes: Monte Carlo sizes, then the upscaled levels."""
    sizes = list(cfg.sample.sizes)
    if "upscale" in cfg.present or "train" in cfg.present:
        sizes += upscale_levels(cfg)
    return tuple(sorted(set(sizes)))

