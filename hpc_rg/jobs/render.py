"""Write a ready SLURM or PBS job script for an input deck, sized from its work units.

``python -m hpc_rg.jobs render --scheduler slurm|pbs CONFIG --nodes N [--gpus-per-node G]
[--cores-per-node C] [--threads-per-rank T] [--time HH:MM:SS] [--account A] [--partition P]
[--array K] [--set section.key=value ...] [--out job.sh]``

The rank count comes from :func:`.layout.plan_layout`; one line on stderr explains the choice.
Templates live in ``templates/<scheduler>_<cpu|gpu>.tmpl`` next to this file:
:class:`string.Template` with the delimiter ``@@`` (``@@{nodes}``), because job scripts
are full of shell ``$``. They are the one source of every job script, the shipped examples
in ``jobs/`` included (:mod:`.examples`).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import string
import sys
from dataclasses import dataclass
from pathlib import Path

from .layout import JobRenderError, Layout, plan_layout, unit_name

__all__ = ["JobRenderError", "Layout", "plan_layout", "render", "render_args", "Site", "cli"]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
SCHEDULERS = ("slurm", "pbs")
SUFFIX = {"slurm": ".sbatch", "pbs": ".pbs"}
SUBMIT = {"slurm": "sbatch", "pbs": "qsub"}
STOP_BEFORE_S = 120  #: SIGTERM this many seconds before the wall time
TIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)$")


class JobTemplate(string.Template):
    """``@@{name}`` placeholders; ``$`` stays shell syntax."""

    delimiter = "@@"


@dataclass(frozen=True)
class Site:
    """Where a script runs from, as shell text: the parts that differ between a script
    rendered for one checkout and a portable example."""

    config: str  #: the deck path as the script names it (relative to WORKDIR)
    workdir: str  #: default of WORKDIR
    venv: str  #: default of VENV
    script_path: str  #: default of JOB_SCRIPT (PBS resubmission)
    origin: str  #: the "Written by:" line
    submit: str  #: the "Submit:" line


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


def _scheduler_lines(a) -> dict[str, str]:
    """Account, partition/queue, array and log-file lines of the scheduler header."""
    if a.scheduler == "slurm":
        return dict(
            account_line=f"#SBATCH --account={a.account}" if a.account
            else "##SBATCH --account=EDIT",
            partition_line=f"#SBATCH --partition={a.partition}" if a.partition
            else "##SBATCH --partition=EDIT",
            array_line=f"#SBATCH --array=0-{a.array - 1}" if a.array
            else "##SBATCH --array=0-7      # render with --array K for K independent ensembles",
            log_name="%x-%A_%a.out" if a.array else "%x-%j.out")
    return dict(
        account_line=f"#PBS -A {a.account}" if a.account else "##PBS -A EDIT",
        partition_line=f"#PBS -q {a.partition}" if a.partition else "##PBS -q EDIT",
        array_line=(f"#PBS -J 0-{a.array - 1}\n##PBS -t 0-{a.array - 1}       # Torque"
                    if a.array else
                    "##PBS -J 0-7      # render with --array K for K independent ensembles"),
        log_name="")


def render_args(a: argparse.Namespace, site: Site, config: Path) -> tuple[str, Layout]:
    """The script for parsed arguments ``a`` (deck read from ``config``) at ``site``."""
    _check_args(a)
    from ..config import load_config, work_units

    if not config.is_file():
        raise JobRenderError(f"{Path(a.config)}: no such input file")
    cfg = load_config(config, a.overrides)  # world_size=None: checks independent of ranks
    gpu = a.gpus_per_node > 0
    tmpl = template_path(a.scheduler, gpu)
    lay = plan_layout(work_units(cfg), cfg.sample.ranks_per_replica, a.nodes, a.cores_per_node,
                      a.gpus_per_node, a.threads_per_rank, what=unit_name(cfg))
    load_config(config, a.overrides, world_size=lay.ranks)  # the job's own check must pass

    overrides = list(a.overrides)
    if not gpu and cfg.run.device == "cuda":
        overrides.append("run.device=cpu")
    values = dict(
        _scheduler_lines(a), config=site.config, origin=site.origin, submit=site.submit,
        layout=lay.explanation, script_path=site.script_path,
        array_note=f"{a.array} tasks" if a.array else "not used here",
        name=a.name or cfg.run.name, nodes=lay.nodes, ranks=lay.ranks,
        tasks_per_node=lay.tasks_per_node, cpus_per_task=lay.cpus_per_task,
        gpus_per_node=lay.gpus_per_node, cores_per_node=a.cores_per_node, time=a.time,
        signal=f"B:TERM@{STOP_BEFORE_S}", workdir=site.workdir,
        output=shlex.quote(str(cfg.output_dir)), seed=cfg.run.seed, venv=site.venv,
        set_args="".join(f" --set {shlex.quote(o)}" for o in overrides))
    try:
        text = JobTemplate(tmpl.read_text()).substitute(values)
    except (KeyError, ValueError) as e:
        raise JobRenderError(f"{tmpl}: bad placeholder {e}") from None
    return text, lay


def render(argv=None) -> tuple[str, Layout]:
    """Parse ``argv``, load the deck and return (script text, layout) for this checkout."""
    a = parse_args(argv)
    out = Path(a.out).resolve() if a.out else None
    argv_text = " ".join(shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv))
    venv = os.environ.get("VIRTUAL_ENV") or (sys.prefix if sys.prefix != sys.base_prefix
                                             else ".venv")
    name = out.name if out else f"job{SUFFIX.get(a.scheduler, '')}"
    where = "(from any directory; " if a.scheduler == "slurm" else "("
    site = Site(config=str(Path(a.config)), workdir=shlex.quote(str(Path.cwd())),
                venv=shlex.quote(str(venv)), script_path=str(out) if out else "$0",
                origin=f"python -m hpc_rg.jobs render {argv_text}",
                submit=f"{SUBMIT.get(a.scheduler, '')} {name}      "
                       f"{where}the job runs in WORKDIR below)")
    return render_args(a, site, Path(a.config))


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
        sys.stderr.write(f"hpc_rg.jobs: wrote {out}; submit with {SUBMIT[a.scheduler]} {out}\n")
    else:
        sys.stderr.write(f"hpc_rg.jobs: {lay.explanation}\n")
        sys.stdout.write(text)
    return 0


def cli(argv=None) -> int:
    from ..tools.common import run_tool
    return run_tool("hpc_rg.jobs", main, argv)
