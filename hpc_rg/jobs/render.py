"""Write a ready SLURM or PBS job script for an input deck, sized from its work units.

``python -m hpc_rg.jobs render --scheduler slurm|pbs CONFIG --nodes N [--gpus-per-node G]
[--cores-per-node C] [--threads-per-rank T] [--time HH:MM:SS] [--account A] [--partition P]
[--array K] [--set section.key=value ...] [--out job.sh]``

Rank count. The sample stage spreads its work units (:func:`hpc_rg.config.work_units`:
Edwards-Anderson disorder samples, else chains x temperatures) over replica groups of
``sample.ranks_per_replica`` ranks; training and upscaling take any rank count. The
natural rank count is units x ranks_per_replica. CPU: the largest rank count that fits
``nodes x cores-per-node / threads-per-rank``, fills every node equally and gives every
replica group the same number of units. GPU: one rank per GPU, the largest GPUs-per-node
<= ``--gpus-per-node`` with the same properties. One line on stderr explains the choice.

Templates live in ``templates/<scheduler>_<cpu|gpu>.tmpl`` next to this file:
:class:`string.Template` with the delimiter ``@@`` (``@@{nodes}``), because job scripts
are full of shell ``$``.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shlex
import string
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import HpcRgError

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
SCHEDULERS = ("slurm", "pbs")
SUFFIX = {"slurm": ".sbatch", "pbs": ".pbs"}
STOP_BEFORE_S = 120  #: SIGTERM this many seconds before the wall time
TIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")


class JobRenderError(HpcRgError):
    """Bad arguments to ``hpc_rg.jobs render`` (exit 2, one line)."""


class JobTemplate(string.Template):
    """``@@{name}`` placeholders; ``$`` stays shell syntax."""

    delimiter = "@@"


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
    if cfg.model.name == "edwards_anderson":
        return "disorder samples"
    grid = "couplings" if cfg.model.name == "phi4" else "temperatures"
    return f"chains ({cfg.sample.chains} x {len(cfg.parameter_grid)} {grid})"


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


# ----------------------------------------------------------------------------- CLI
class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 through run_tool
        raise JobRenderError(message)


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(prog="python -m hpc_rg.jobs render",
                description="Write a SLURM or PBS job script for an input deck, with the rank "
                            "count chosen from its work units.",
                epilog="Example: python -m hpc_rg.jobs render --scheduler slurm "
                       "inputs/ea3d.yaml --nodes 2 --time 12:00:00 --out ea3d.sbatch")
    p.add_argument("config", help="YAML input deck")
    p.add_argument("--scheduler", required=True, help="slurm or pbs")
    p.add_argument("--nodes", type=int, required=True, help="number of nodes (>= 1)")
    p.add_argument("--gpus-per-node", type=int, default=0,
                   help="GPUs per node: one rank per GPU, run.device=cuda (default 0: CPU job)")
    p.add_argument("--cores-per-node", type=int, default=32,
                   help="CPU cores per node (default 32)")
    p.add_argument("--threads-per-rank", type=int, default=1,
                   help="CPU jobs: cores per rank, e.g. cores per socket for one rank per socket "
                        "(default 1: one rank per core)")
    p.add_argument("--time", default="04:00:00", help="wall time HH:MM:SS (default 04:00:00)")
    p.add_argument("--account", help="account / project to charge")
    p.add_argument("--partition", help="SLURM partition / PBS queue")
    p.add_argument("--array", type=int, metavar="K",
                   help="K >= 2 array tasks: task i runs with run.output=OUTPUT/task<i> and "
                        "run.seed=SEED+i (independent disorder ensembles / chains)")
    p.add_argument("--name", help="job name (default: run.name of the deck)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.KEY=VALUE", help="config override, also passed to the job")
    p.add_argument("--out", help="write the script here (default: standard output)")
    return p.parse_args(argv)


def _check_args(a) -> None:
    if a.scheduler not in SCHEDULERS:
        raise JobRenderError(f"--scheduler {a.scheduler}: accepted are {', '.join(SCHEDULERS)}")
    for key, low in (("nodes", 1), ("gpus_per_node", 0), ("cores_per_node", 1),
                     ("threads_per_rank", 1)):
        if getattr(a, key) < low:
            raise JobRenderError(f"--{key.replace('_', '-')} {getattr(a, key)}: must be >= {low}")
    if a.gpus_per_node and a.threads_per_rank != 1:
        raise JobRenderError("--threads-per-rank is for CPU jobs; GPU jobs get "
                             "--cores-per-node / --gpus-per-node threads per rank")
    if a.gpus_per_node > a.cores_per_node:
        raise JobRenderError(f"--gpus-per-node {a.gpus_per_node} is more than --cores-per-node "
                             f"{a.cores_per_node}: one rank per GPU needs a core each")
    if not TIME.match(a.time):
        raise JobRenderError(f"--time {a.time}: expected HH:MM:SS, e.g. 04:00:00 or 48:00:00")
    h, m, s = (int(x) for x in a.time.split(":"))
    if h * 3600 + m * 60 + s <= 2 * STOP_BEFORE_S:
        raise JobRenderError(f"--time {a.time}: must be more than {2 * STOP_BEFORE_S} s "
                             f"(SIGTERM comes {STOP_BEFORE_S} s before the end)")
    if a.array is not None and a.array < 2:
        raise JobRenderError(f"--array {a.array}: need K >= 2 tasks (leave --array out for "
                             f"one job)")
    for key in ("account", "partition", "name"):
        v = getattr(a, key)
        if v is not None and not re.fullmatch(r"[A-Za-z0-9_.+-]+", v):
            raise JobRenderError(f"--{key} {v!r}: use letters, digits and _ . + - only")


def template_path(scheduler: str, gpu: bool) -> Path:
    path = TEMPLATE_DIR / f"{scheduler}_{'gpu' if gpu else 'cpu'}.tmpl"
    if not path.is_file():
        raise JobRenderError(f"no {'GPU' if gpu else 'CPU'} template for {scheduler}: "
                             f"{path} is missing (broken install?)")
    return path


def render(argv=None) -> tuple[str, Layout]:
    """Parse ``argv``, load the deck and return (script text, layout)."""
    a = parse_args(argv)
    _check_args(a)
    from ..config import load_config, work_units

    config = Path(a.config)
    if not config.is_file():
        raise JobRenderError(f"{config}: no such input file")
    cfg = load_config(config, a.overrides)  # world_size=None: checks independent of ranks
    gpu = a.gpus_per_node > 0
    tmpl = template_path(a.scheduler, gpu)
    lay = plan_layout(work_units(cfg), cfg.sample.ranks_per_replica, a.nodes, a.cores_per_node,
                      a.gpus_per_node, a.threads_per_rank, what=unit_name(cfg))
    load_config(config, a.overrides, world_size=lay.ranks)  # the job's own check must pass

    overrides = list(a.overrides)
    if not gpu and cfg.run.device == "cuda":
        overrides.append("run.device=cpu")
    set_args = "".join(f" --set {shlex.quote(o)}" for o in overrides)
    out = Path(a.out).resolve() if a.out else None
    name = a.name or cfg.run.name
    sched = a.scheduler
    if sched == "slurm":
        account = f"#SBATCH --account={a.account}" if a.account else "##SBATCH --account=EDIT"
        partition = f"#SBATCH --partition={a.partition}" if a.partition \
            else "##SBATCH --partition=EDIT"
        array = f"#SBATCH --array=0-{a.array - 1}" if a.array else \
            "##SBATCH --array=0-7      # render with --array K for K independent ensembles"
        log_name = "%x-%A_%a.out" if a.array else "%x-%j.out"
    else:
        account = f"#PBS -A {a.account}" if a.account else "##PBS -A EDIT"
        partition = f"#PBS -q {a.partition}" if a.partition else "##PBS -q EDIT"
        array = (f"#PBS -J 0-{a.array - 1}\n##PBS -t 0-{a.array - 1}       # Torque" if a.array
                 else "##PBS -J 0-7      # render with --array K for K independent ensembles")
        log_name = ""
    argv_text = " ".join(shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv))
    venv = os.environ.get("VIRTUAL_ENV") or (sys.prefix if sys.prefix != sys.base_prefix
                                             else ".venv")
    values = dict(
        config=str(config), argv=argv_text, layout=lay.explanation,
        script_name=out.name if out else f"job{SUFFIX[sched]}",
        script_path=str(out) if out else "$0",
        array_note=f"{a.array} tasks" if a.array else "not used here",
        name=name, nodes=lay.nodes, ranks=lay.ranks, tasks_per_node=lay.tasks_per_node,
        cpus_per_task=lay.cpus_per_task, gpus_per_node=lay.gpus_per_node,
        cores_per_node=a.cores_per_node, time=a.time, signal=f"B:TERM@{STOP_BEFORE_S}",
        log_name=log_name, account_line=account, partition_line=partition, array_line=array,
        workdir=shlex.quote(str(Path.cwd())), output=shlex.quote(str(cfg.output_dir)),
        seed=cfg.run.seed, venv=shlex.quote(str(venv)), set_args=set_args)
    try:
        text = JobTemplate(tmpl.read_text()).substitute(values)
    except (KeyError, ValueError) as e:
        raise JobRenderError(f"{tmpl}: bad placeholder {e}") from None
    return text, lay


def main(argv=None) -> int:
    text, lay = render(argv)
    a = parse_args(argv)
    if a.out:
        out = Path(a.out)
        try:
            out.write_text(text)
            out.chmod(0o755)
        except OSError as e:
            raise JobRenderError(f"--out {out}: cannot write ({e.strerror or e})") from None
        sys.stderr.write(f"hpc_rg.jobs: {lay.explanation}\n")
        sys.stderr.write(f"hpc_rg.jobs: wrote {out}; submit with "
                         f"{'sbatch' if a.scheduler == 'slurm' else 'qsub'} {out}\n")
    else:
        sys.stderr.write(f"hpc_rg.jobs: {lay.explanation}\n")
        sys.stdout.write(text)
    return 0


def cli(argv=None) -> int:
    from ..tools.common import run_tool
    return run_tool("hpc_rg.jobs", main, argv)
