"""Cross-key checks of a built config: model, sample stage, run and the rank count; the
later stages' sections are checked by :mod:`.validate_stages`."""

from __future__ import annotations

import dataclasses

from .messages import did_you_mean
from .resolve import work_units
from .sections import CLUSTER_ALGORITHMS, Config
from .validate_stages import validate_analyze, validate_train, validate_upscale


def validate(cfg: Config, problems: list[str], world_size: int | None = None) -> None:
    """Append one line per inconsistency of ``cfg`` to ``problems``.

    ``world_size`` (the MPI ranks of the job), when given, is checked against the sample
    stage's work units.
    """
    _validate_model(cfg, problems)
    _validate_sample(cfg, problems)
    validate_train(cfg, problems)
    validate_upscale(cfg, problems)
    validate_analyze(cfg, problems)
    if cfg.run.progress_seconds < 0:
        problems.append(f"{cfg.source}: run.progress_seconds={cfg.run.progress_seconds}: "
                        f"must be >= 0")
    if world_size is not None:
        _validate_rank_count(cfg, world_size, problems)


def _validate_model(cfg: Config, problems: list[str]) -> None:
    """``model:`` and the grid it scans (``sample.temperatures`` or ``sample.couplings``)."""
    w, m, s = cfg.source, cfg.model, cfg.sample
    spec = m.spec
    if m.dims not in (1, 2, 3):
        problems.append(f"{w}: model.dims={m.dims}: accepted values are 1, 2, 3")
    if spec.disordered:
        if m.dims not in (2, 3):
            problems.append(f"{w}: model.dims={m.dims}: {m.name} needs dims 2 or 3")
        if m.replicas < 2:
            problems.append(f"{w}: model.replicas={m.replicas}: need at least 2 replicas "
                            f"for overlaps")
        if m.disorder_samples < 1:
            problems.append(f"{w}: model.disorder_samples={m.disorder_samples}: need >= 1")
    if not spec.has_temperature:
        if s.temperatures:
            problems.append(f"{w}: sample.temperatures: phi4 takes a coupling grid instead; "
                            f"use sample.couplings (kappa for parametrization bauer, "
                            f"mu2 for bachtis)")
        if not s.couplings:
            problems.append(f"{w}: sample.couplings: required for model phi4; give a list or "
                            f"{{min, max, count}} of {'kappa' if m.parametrization == 'bauer' else 'mu2'} "
                            f"(parametrization {m.parametrization})")
        if m.lam < 0:
            problems.append(f"{w}: model.lam={m.lam}: must be >= 0")
    else:
        if s.couplings:
            problems.append(f"{w}: sample.couplings: only for model phi4; "
                            f"{m.name} takes sample.temperatures")
        if not s.temperatures:
            problems.append(f"{w}: sample.temperatures: required for model {m.name}; give a "
                            f"list or {{min, max, count, spacing}}")
        elif min(s.temperatures) <= 0:
            problems.append(f"{w}: sample.temperatures={list(s.temperatures)}: "
                            f"temperatures must be > 0")


def _validate_sample(cfg: Config, problems: list[str]) -> None:
    """``sample:``: algorithm, lattice and slabs, chain lengths, tempering, kernel."""
    w, m, s = cfg.source, cfg.model, cfg.sample
    spec = m.spec
    accepted = spec.algorithms
    if s.algorithm not in accepted:
        problems.append(f"{w}: sample.algorithm={s.algorithm}: accepted for {m.name} are "
                        f"{', '.join(accepted)}{did_you_mean(s.algorithm, accepted)}")
    if s.L < 2 or s.L % 2:
        problems.append(f"{w}: sample.L={s.L}: must be an even integer >= 2 "
                        f"(checkerboard updates on a periodic lattice)")
    if s.ranks_per_replica < 1:
        problems.append(f"{w}: sample.ranks_per_replica={s.ranks_per_replica}: must be >= 1")
    elif s.L >= 2 and s.L % s.ranks_per_replica:
        problems.append(f"{w}: sample.L={s.L} is not divisible by "
                        f"sample.ranks_per_replica={s.ranks_per_replica}")
    elif s.L // s.ranks_per_replica < 2:
        problems.append(f"{w}: sample.ranks_per_replica={s.ranks_per_replica}: slabs would be "
                        f"thinner than 2 planes for L={s.L}; use at most {s.L // 2}")
    if s.ranks_per_replica > 1 and s.algorithm in CLUSTER_ALGORITHMS:
        problems.append(f"{w}: sample.algorithm={s.algorithm} cannot run with "
                        f"sample.ranks_per_replica={s.ranks_per_replica}: cluster updates are "
                        f"not domain-decomposed; use ranks_per_replica: 1 or a local algorithm")
    if "h" in spec.keys and s.algorithm in CLUSTER_ALGORITHMS and m.h != 0:
        problems.append(f"{w}: sample.algorithm={s.algorithm} needs model.h=0 (got {m.h}): "
                        f"cluster updates here are for the zero-field ferromagnet; use "
                        f"metropolis or heatbath")
    if s.ranks_per_replica > 1 and spec.continuous and s.algorithm in ("hmc", "langevin"):
        problems.append(f"{w}: sample.algorithm={s.algorithm} cannot run with "
                        f"sample.ranks_per_replica={s.ranks_per_replica}; use metropolis")
    for key in ("thin", "samples", "chunk", "chains"):
        if getattr(s, key) < 1:
            problems.append(f"{w}: sample.{key}={getattr(s, key)}: must be >= 1")
    if s.thermalize < 0:
        problems.append(f"{w}: sample.thermalize={s.thermalize}: must be >= 0")
    if s.tempering.enabled and len(cfg.parameter_grid) < 2:
        problems.append(f"{w}: sample.tempering.enabled=true needs at least 2 temperatures")
    if s.tempering.every < 1:
        problems.append(f"{w}: sample.tempering.every={s.tempering.every}: must be >= 1")
    if s.tempering.enabled and not spec.has_temperature:
        problems.append(f"{w}: sample.tempering: parallel tempering is for spin models "
                        f"(temperatures); phi4 scans couplings")
    eq = s.equilibration
    if eq.min_round_trips < 0:
        problems.append(f"{w}: sample.equilibration.min_round_trips={eq.min_round_trips}: "
                        f"must be >= 0 (0: no round-trip test)")
    if not eq.sigma > 0:
        problems.append(f"{w}: sample.equilibration.sigma={eq.sigma}: must be > 0 (errors "
                        f"beyond which a sample is not equilibrated; 4 is a good default)")
    if s.hmc.step_size <= 0 or s.hmc.steps < 1:
        problems.append(f"{w}: sample.hmc={dataclasses.asdict(s.hmc)}: need step_size > 0, "
                        f"steps >= 1")
    if s.langevin.step_size <= 0:
        problems.append(f"{w}: sample.langevin.step_size={s.langevin.step_size}: must be > 0")
    for size in s.reference_sizes:
        if size < 2 or size % 2 or (s.ranks_per_replica >= 1 and size % s.ranks_per_replica):
            problems.append(f"{w}: sample.reference_sizes={list(s.reference_sizes)}: {size} must "
                            f"be an even integer >= 2 divisible by sample.ranks_per_replica")
    if s.kernel == "compiled" and (spec.continuous or s.algorithm not in ("metropolis",
                                                                          "heatbath")):
        problems.append(f"{w}: sample.kernel=compiled: only for ising/edwards_anderson with "
                        f"metropolis or heatbath; use kernel: torch")
    if s.kernel == "msc":
        from hpc_rg.mc.kernels import msc_unsupported

        why = msc_unsupported(cfg.model, s.algorithm)
        if why is not None:
            problems.append(f"{w}: sample.kernel=msc: {why}; use kernel: auto")


def _validate_rank_count(cfg: Config, world_size: int, problems: list[str]) -> None:
    """The job's ``world_size`` MPI ranks against ``sample.ranks_per_replica`` and the
    sample stage's work units."""
    w, s = cfg.source, cfg.sample
    disordered = cfg.model.spec.disordered
    units = work_units(cfg)
    if s.ranks_per_replica >= 1 and units >= 1:
        # units < 1 (no grid, no disorder samples) is reported above, by the key at fault
        if world_size % s.ranks_per_replica:
            problems.append(f"{w}: sample.ranks_per_replica={s.ranks_per_replica} does not "
                            f"divide the {world_size} MPI ranks of this job")
        else:
            groups = world_size // s.ranks_per_replica
            if groups > units:
                problems.append(f"{w}: {world_size} MPI ranks make {groups} replica groups but "
                                f"the sample stage has only {units} "
                                f"{'disorder samples' if disordered else 'independent chains'}"
                                f"; use at most {units * s.ranks_per_replica} ranks, more "
                                f"{'model.disorder_samples' if disordered else 'sample.chains (or sample.chains: auto) or temperatures'}"
                                f", or a larger sample.ranks_per_replica")

