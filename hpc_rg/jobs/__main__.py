"""``python -m hpc_rg.jobs render --scheduler slurm|pbs CONFIG --nodes N ...`` writes a job
script for a deck; ``python -m hpc_rg.jobs examples [DIR]`` writes the shipped examples.

Bad input: one line on stderr, exit 2.
"""

import sys

USAGE = "usage: python -m hpc_rg.jobs render --scheduler slurm|pbs CONFIG --nodes N [options]"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE + "\n(python -m hpc_rg.jobs render --help lists the options; "
              "python -m hpc_rg.jobs examples [DIR] writes the examples of jobs/)")
        return 0
    if argv and argv[0] == "examples":
        from .examples import cli
        return cli(argv[1:])
    if not argv or argv[0] != "render":
        sys.stderr.write(f"hpc_rg.jobs: error: expected the command 'render' ({USAGE})\n")
        return 2
    from .render import cli
    return cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
