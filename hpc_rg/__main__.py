"""Command line: ``python -m hpc_rg [CONFIG.yaml] [--stage S] [--set k=v ...] [--resume]``.

Runs the same as one process, under ``mpirun -n N`` and under ``srun``. Exit codes:
0 success, 2 bad input (one line per problem, nothing written), 3 stopped by a signal
(resume with ``--resume``), 1 anything else (the whole MPI job is aborted).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .config import STAGES

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "inputs" / "quickstart.yaml"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="hpc_rg", description="Inverse-RG super-resolution of lattice models.",
        epilog="Without CONFIG runs inputs/quickstart.yaml. Under MPI: mpirun -n 2 python -m hpc_rg X.yaml")
    p.add_argument("config", nargs="?", help="YAML input deck (default: inputs/quickstart.yaml)")
    p.add_argument("--stage", choices=STAGES + ("all",), default="all",
                   help="run one stage or all of them (default: all)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set sample.L=32 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its checkpoints; skip finished stages")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the config, print the plan, write nothing")
    p.add_argument("--check", action="store_true",
                   help="print the software environment and exit non-zero if something is missing")
    p.add_argument("--version", action="version", version=f"hpc_rg {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.check:
        from .check import run_check
        return run_check()
    from .errors import HpcRgError
    from .parallel.comms import world_comm
    from .progress import setup_logging

    world = world_comm()
    rank, size = world.Get_rank(), world.Get_size()
    log = setup_logging(rank, size, args.verbose)
    config_path = Path(args.config) if args.config else DEFAULT_CONFIG
    try:
        cfg, stages = _prepare(args, config_path, world)
    except HpcRgError as e:  # identical on every rank: each returns, rank 0 tells
        if rank == 0:
            for line in str(e).splitlines():
                sys.stderr.write(f"hpc_rg: error: {line}\n")
        return e.exit_code
    if args.dry_run:
        if rank == 0:
            _print_plan(cfg, stages, size)
        return 0
    return _run(cfg, stages, args, world, log)


def _prepare(args, config_path, world):
    from .config import load_config
    from .errors import HpcRgError
    from .pipeline.driver import check_output_state, stages_for

    cfg = load_config(config_path, args.overrides, world_size=world.Get_size())
    stages = stages_for(args.stage, cfg)
    problem = None
    if world.Get_rank() == 0:
        try:
            check_output_state(cfg, stages, args.resume)
        except HpcRgError as e:
            problem = e
    problem = world.bcast(problem, root=0)
    if problem is not None:
        raise problem
    return cfg, stages


def _print_plan(cfg, stages, size) -> None:
    from .io.layout import SizeLayout

    lay = SizeLayout.from_config(cfg)
    s = cfg.sample
    n = lay.L ** lay.dims
    chains = lay.disorder * lay.replicas * lay.n_params * lay.chains
    print(f"# hpc_rg {__version__} dry run: {cfg.source}, {size} MPI rank(s), "
          f"{size // s.ranks_per_replica} replica group(s) x {s.ranks_per_replica} slab rank(s)")
    print(f"# stages: {', '.join(stages)}; output: {cfg.output_dir}")
    for note in cfg.resolved:
        print(f"# {note}")
    print(f"# sample: {chains} chains of {lay.L}^{lay.dims}, "
          f"{s.thermalize + s.samples * s.thin} sweeps each; samples.h5 configs "
          f"{lay.leading + lay.lattice} {lay.config_dtype.__name__} "
          f"({chains * s.samples * n * (4 if cfg.model.name == 'phi4' else 1) / 2**20:.1f} MiB)")
    print(cfg.to_yaml(), end="")


def _run(cfg, stages, args, world, log) -> int:
    from .errors import HpcRgError, StoppedBySignal
    from .parallel.abort import abort_world, report_bug
    from .parallel.comms import Comms
    from .pipeline.driver import run_pipeline
    from .pipeline.signals import StopFlag

    from .parallel.malloc import keep_heap_memory

    keep_heap_memory()  # large lattice temporaries: reuse heap, no page faults per sweep
    stop = StopFlag().install()
    comms = None
    try:
        comms = Comms(world, cfg.sample.ranks_per_replica, cfg.run.device)
        device = comms.setup_device()
        log.info(f"hpc_rg {__version__}: {cfg.source} on {comms.size} rank(s), device {device}")
        for note in cfg.resolved:
            log.info(note)
        run_pipeline(cfg, comms, stages, stop, args.resume, device)
    except StoppedBySignal as e:  # collective decision: every rank gets here
        if world.Get_rank() == 0:
            sys.stderr.write(f"hpc_rg: {e}\n")
        return e.exit_code
    except HpcRgError as e:
        if e.collective:  # every rank raised it alike: say it once, exit cleanly
            if world.Get_rank() == 0:
                sys.stderr.write(f"hpc_rg: error: {e}\n")
            return e.exit_code
        abort_world(world, f"error: {e}", e.exit_code)  # maybe one rank only: take the job down
    except BaseException as e:  # a bug (or KeyboardInterrupt outside a stage)
        report_bug(world, e)
    finally:
        if comms is not None:
            comms.free()
    log.info("hpc_rg: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
