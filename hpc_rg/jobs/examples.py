"""The shipped example job scripts in ``jobs/``, rendered from the same templates.

``python -m hpc_rg.jobs examples [DIR]`` (default: ``jobs/`` of this checkout) writes
``slurm/{cpu,gpu,array}.sbatch`` and ``pbs/{cpu,gpu,array}.pbs`` for ``inputs/ea3d.yaml``.
They are portable: WORKDIR is the submit directory (run them from the repository), VENV is
``.venv`` there, and CONFIG / OUTPUT / SEED can be set in the environment. A test asserts
that the files in ``jobs/`` equal what this writes, byte for byte.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .render import SUBMIT, JobRenderError, Site, parse_args, render_args

REPO = Path(__file__).resolve().parents[2]
DECK = "inputs/ea3d.yaml"
#: file under jobs/ -> render arguments after the deck
EXAMPLES = {
    "slurm/cpu.sbatch": ["--scheduler", "slurm", "--nodes", "2", "--name", "hpc_rg"],
    "slurm/gpu.sbatch": ["--scheduler", "slurm", "--nodes", "2", "--gpus-per-node", "4",
                         "--name", "hpc_rg-gpu"],
    "slurm/array.sbatch": ["--scheduler", "slurm", "--nodes", "1", "--array", "8",
                           "--name", "hpc_rg-array"],
    "pbs/cpu.pbs": ["--scheduler", "pbs", "--nodes", "2", "--name", "hpc_rg"],
    "pbs/gpu.pbs": ["--scheduler", "pbs", "--nodes", "2", "--gpus-per-node", "4",
                    "--name", "hpc_rg-gpu"],
    "pbs/array.pbs": ["--scheduler", "pbs", "--nodes", "1", "--array", "8",
                      "--name", "hpc_rg-array"],
}
SUBMIT_DIR = {"slurm": "SLURM_SUBMIT_DIR", "pbs": "PBS_O_WORKDIR"}


def example_site(rel: str, args: list[str]) -> Site:
    """A :class:`Site` that runs in the submit directory with its ``.venv``."""
    sched = args[args.index("--scheduler") + 1]
    path = f"jobs/{rel}"
    submit = SUBMIT[sched]
    env_config = "CONFIG=inputs/x.yaml " + submit if sched == "slurm" else \
        f"{submit} -v CONFIG=inputs/x.yaml"
    return Site(config=DECK, workdir=f"${{{SUBMIT_DIR[sched]}:-.}}", venv=".venv",
                script_path=f"$WORKDIR/{path}",
                origin=f"python -m hpc_rg.jobs examples  (render {DECK} {' '.join(args)};\n"
                       f"#             portable: runs in the submit directory with its .venv)",
                submit=f"{submit} {path}   or   {env_config} {path}   (from the repository)")


def example_texts(root: Path = REPO) -> dict[str, str]:
    """Relative path under ``jobs/`` -> script text, decks read from ``root``."""
    texts = {}
    for rel, args in EXAMPLES.items():
        a = parse_args([DECK, *args])
        texts[rel], _ = render_args(a, example_site(rel, args), root / DECK)
    return texts


def write_examples(dest: Path, root: Path = REPO) -> list[Path]:
    """Write every example under ``dest`` (executable); returns the paths written."""
    written = []
    for rel, text in example_texts(root).items():
        out = dest / rel
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
            out.chmod(0o755)
        except OSError as e:
            raise JobRenderError(f"{out}: cannot write ({e.strerror or e})") from None
        written.append(out)
    return written


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        raise JobRenderError("usage: python -m hpc_rg.jobs examples [DIR]  (default: jobs/ "
                             "of this checkout)")
    dest = Path(argv[0]) if argv else REPO / "jobs"
    for out in write_examples(dest):
        sys.stderr.write(f"hpc_rg.jobs: wrote {out}\n")
    return 0


def cli(argv=None) -> int:
    from ..tools.common import run_tool
    return run_tool("hpc_rg.jobs", main, argv)
