"""How a job's MPI ranks are spread over nodes, chosen from the deck's work units.

The sample stage spreads its work units (:func:`hpc_rg.config.work_units`: Edwards-Anderson
disorder samples, else chains x grid points) over replica groups of
``sample.ranks_per_replica`` ranks; training and upscaling take any rank count. The natural
rank count is units x ranks_per_replica. CPU: the largest rank count that fits
``nodes x cores_per_node / threads_per_rank``, fills every node equally and gives every
replica group the same number of units. GPU: one rank per GPU, the largest GPUs-per-node
<= ``gpus_per_node`` with the same properties.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..errors import HpcRgError
from ..models.spec import spec_for


class JobRenderError(HpcRgError):
    """Bad arguments to ``hpc_rg.jobs render`` (exit 2, one line)."""


@dataclass(frozen=True)
class Layout:
    """How a job is spread: ``ranks == nodes * tasks_per_node``."""

    nodes: int
    ranks: int
    tasks_per_node: int
    cpus_per_task: int
    gpus_per_node: int  #: 0 on CPU nodes
    groups: int  #: replica groups = ranks / ranks_per_replica
    units: int
    explanation: str


def unit_name(cfg) -> str:
    """The deck's work units in words, e.g. ``chains (4 x 9 temperatures)``."""
    spec = spec_for(cfg.model.name)
    if spec.disordered:
        return "disorder samples"
    return f"chains ({cfg.sample.chains} x {len(cfg.parameter_grid)} {spec.grid})"


@functools.lru_cache(maxsize=None)
def _divisors_desc(n: int) -> tuple[int, ...]:
    return tuple(sorted((d for d in range(1, n + 1) if n % d == 0), reverse=True))


def _cpu_fit(units, rpr, nodes, slots):
    """Largest (ranks, groups) with groups | units, ranks % nodes == 0, ranks/nodes <= slots."""
    for g in _divisors_desc(units):
        r = g * rpr
        if r % nodes == 0 and r // nodes <= slots:
            return r, g
    return None


def plan_layout(units: int, rpr: int, nodes: int, cores_per_node: int, gpus_per_node: int = 0,
                threads_per_rank: int = 1, what: str = "work units") -> Layout:
    """Choose the rank layout (see the module docstring); raises JobRenderError."""
    natural = units * rpr
    short = what.split(" (")[0]
    need = f"{units} {what} x ranks_per_replica {rpr}"
    head = f"{need} = at most {natural} rank(s)"
    if gpus_per_node:
        for g in range(gpus_per_node, 0, -1):
            r = nodes * g
            if r % rpr == 0 and units % (r // rpr) == 0:
                groups = r // rpr
                note = "" if g == gpus_per_node else \
                    f" (not all {gpus_per_node}: {nodes * gpus_per_node} ranks would not split " \
                    f"the {units} {short} evenly)"
                return Layout(nodes, r, g, max(1, cores_per_node // g), g, groups, units,
                              f"{head}; one rank per GPU: {nodes} node(s) x {g} GPU(s){note} = "
                              f"{r} ranks, {groups} replica group(s) with {units // groups} "
                              f"{short} each")
        ok = [n for n in range(nodes - 1, 0, -1)
              if any(n * g % rpr == 0 and units % (n * g // rpr) == 0
                     for g in range(1, gpus_per_node + 1))]
        hint = f"use --nodes {ok[0]}" if ok else \
            "change model.disorder_samples / sample.chains or sample.ranks_per_replica"
        raise JobRenderError(f"{nodes} GPU node(s) with one rank per GPU cannot share {need} "
                             f"evenly; {hint}")
    slots = cores_per_node // threads_per_rank
    if slots < 1:
        raise JobRenderError(f"--threads-per-rank {threads_per_rank} is more than "
                             f"--cores-per-node {cores_per_node}")
    fit = _cpu_fit(units, rpr, nodes, slots)
    if fit is None:
        ok = [n for n in range(nodes - 1, 0, -1) if _cpu_fit(units, rpr, n, slots)]
        hint = f"use --nodes {ok[0]}" if ok else (
            f"sample.ranks_per_replica={rpr} needs more than {slots} rank(s) per node; "
            f"use more nodes, raise --cores-per-node or lower ranks_per_replica")
        raise JobRenderError(f"{nodes} node(s) x {slots} rank slot(s) cannot be filled evenly "
                             f"by {need}; {hint}")
    r, g = fit
    tpn = r // nodes
    cpt = max(1, cores_per_node // tpn)
    cap = nodes * slots
    why = "all of them" if r == natural else \
        f"{r}, the most that fit {nodes} node(s) x {slots} slot(s) = {cap} and split evenly"
    return Layout(nodes, r, tpn, cpt, 0, g, units,
                  f"{head}; using {why}: {nodes} node(s) x {tpn} rank(s) x {cpt} thread(s), "
                  f"{g} replica group(s) with {units // g} {short} each")
