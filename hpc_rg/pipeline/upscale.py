"""The ``upscale`` stage: apply the trained network repeatedly, L -> 2L -> ... -> target_L.

The inputs are the size-L Monte Carlo configurations of ``samples.h5`` (EA: overlaps).
Work is cut into fixed global batches of ``upscale.batch`` configurations of one
temperature; batches are dealt to ranks in contiguous blocks and every batch goes
through all levels on its rank's device, so memory per rank is bounded by one batch at
the largest size (never by the ensemble). Each rank writes its own slices of every level
``/L2L, /L4L, ...`` of ``upscaled.h5`` (mpio). Random numbers are keyed by (seed, level,
global configuration id, site) and batch composition does not depend on the rank count,
so 1 and N ranks write the same file content.
"""

from __future__ import annotations

import logging

import numpy as np

from ..errors import StoppedBySignal
from ..io import schema
from ..io.checkpoint import RankCheckpoints
from ..io.provenance import provenance
from ..io.writer import open_output, partial_is_usable
from ..parallel.distribute import block_range
from .progress import Progress
from .train import open_samples, size_group

log = logging.getLogger("hpc_rg")

CONSISTENCY = "consistency"  # fraction of coarse sites with block(fine) == coarse
NOMINAL = "nominal_temperatures"
CHECKPOINT_EVERY = 8  # loop iterations (batches per rank) between checkpoints


def levels_of(cfg) -> list[int]:
    """Output sizes 2L, 4L, ..., target_L."""
    L, target = cfg.sample.L, cfg.upscale.target_L or 4 * cfg.sample.L
    out = []
    while L < target:
        L *= 2
        out.append(L)
    return out


def run_upscale(cfg, comms, stop, resume: bool, device) -> None:
    """Upscale the Monte Carlo ensemble (collective over ``comms.world``)."""
    if cfg.train.method != "cnn":  # flow super-resolution (hpc_rg.flows)
        from .flow_stages import run_upscale_flow
        return run_upscale_flow(cfg, comms, stop, resume, device)
    import torch

    from ..superres import load
    from ..superres.ensemble_io import coarse_blocking, ensemble_size, grid, read_runs
    from ..superres.observables import observables

    out = cfg.output_dir
    final = out / schema.UPSCALED_FILE
    model = load(out / schema.MODEL_FILE, device)
    sizes = levels_of(cfg)
    L0, dims, field = cfg.sample.L, cfg.model.dims, model.field
    with open_samples(cfg) as f:
        g0 = size_group(f, L0, f.filename)
        N_all, temps = ensemble_size(g0), grid(g0)
    N = min(cfg.upscale.samples or N_all, N_all)
    n_T, B = len(temps), cfg.upscale.batch
    per_T = -(-N // B)
    my_batches = list(block_range(n_T * per_T, comms.size, comms.rank))
    from mpi4py import MPI
    rounds = comms.world.allreduce(len(my_batches), op=MPI.MAX)

    ckpts = RankCheckpoints(out / schema.CHECKPOINT_DIR, "upscale", comms.world)
    state = ckpts.load_latest() if resume else None
    partial_path = final.with_name(final.name + schema.PARTIAL_SUFFIX)
    partial = comms.bcast_root(partial_path.exists())
    h5 = None
    if state is not None and partial:
        # the checkpoint is saved only after the data it counts were flushed; a partial file
        # that cannot be reopened (killed while HDF5 metadata were written) is rebuilt
        if partial_is_usable(final, comms.world):
            seq, saved = state
            done = saved["done"]
            h5 = open_output(final, comms.world, "r+")
            if not comms.bcast_root(_structure_complete(h5, sizes)):
                h5.close(complete=False)
                h5 = None
            else:
                log.info(f"[upscale] resuming: {done}/{rounds} batch rounds done")
        if h5 is None:
            log.warning(f"[upscale] {partial_path}: unreadable or incomplete; starting the "
                        f"stage again from scratch")
    elif resume and partial:
        log.info(f"[upscale] {partial_path}: no checkpoint yet; starting the stage again")
    if h5 is None:
        ckpts.clear()
        seq, done = -1, 0
        h5 = open_output(final, comms.world, "w")
        _create_file(h5, cfg, comms, model, sizes, temps, N, N_all)
    conf_dtype = np.float32 if field == "phi4" else np.int8
    blocking = coarse_blocking(model.blocking)
    progress = Progress("upscale", rounds, "batches", cfg.run.progress_seconds,
                        active=comms.is_root, start=done)
    seed = cfg.run.seed
    rescale = cfg.upscale.rescale_temperature
    with open_samples(cfg) as f:
        g0 = f[schema.size_group(L0)]
        for r in range(done, rounds):
            if r < len(my_batches):
                j = my_batches[r]
                k, a = divmod(j, per_T)
                a *= B
                b = min(a + B, N)
                x = torch.from_numpy(read_runs(g0, input_runs(a, b, N, N_all), t=k)).to(device)
                ids = torch.arange(a, b) + k * N
                for level, Lp in enumerate(sizes, start=1):
                    net, t_out, _ = model.network_for(k, level, rescale)
                    y = model.step(x, net, level, seed, ids, t_out, cfg.upscale.consistent)
                    agree = _consistency(x, y, blocking, dims, field)
                    obs = observables(y, field, dims)
                    grp = schema.size_group(Lp)
                    sel = (k, slice(a, b))
                    h5.put(f"{grp}/{schema.CONFIGS}", sel, y.cpu().numpy().astype(conf_dtype))
                    h5.put(f"{grp}/{CONSISTENCY}", sel, agree.cpu().numpy())
                    for name, values in _scalars(obs, field, cfg).items():
                        h5.put(f"{grp}/{name}", sel, values.cpu().numpy())
                    x = y
            if (r + 1) % CHECKPOINT_EVERY == 0 or stop.requested(comms):
                h5.flush()
                seq += 1
                ckpts.save(seq, {"done": r + 1})
                if stop.requested(comms):
                    h5.close(complete=False)
                    raise StoppedBySignal(f"upscale stage stopped by signal after {r + 1}/"
                                          f"{rounds} batch rounds; rerun with --resume")
            progress.update(r + 1)
    certs = comms.bcast_root(_certificates(cfg, h5, sizes) if comms.is_root else None)
    for Lp, (attrs, _) in zip(sizes, certs):
        h5.set_attrs(schema.size_group(Lp), attrs)
    h5.close(complete=True)
    ckpts.comm.Barrier()
    ckpts.clear()
    log.info(f"[upscale] wrote {final}")
    if comms.is_root:
        _print_summary(final, sizes)
        from .certify import report
        report([(Lp, c, None) for Lp, (_, c) in zip(sizes, certs)], "T")


def _certificates(cfg, h5, sizes) -> list:
    """(attrs, Certificate) per CNN level (rank 0): approximate (``exact = false``) and,
    where ``samples.h5`` has Monte Carlo of the level's size, its bias and z-scores there
    (the Monte Carlo curve interpolated to the level's effective temperatures)."""
    from ..analysis import certificate as cert
    from .certify import level_attrs
    out = []
    for Lp in sizes:
        g = schema.size_group(Lp)
        grid_name = schema.COUPLINGS if h5.has(f"{g}/{schema.COUPLINGS}") else schema.TEMPERATURES
        grid = h5.read(f"{g}/{grid_name}")
        c = cert.approximate("cnn", len(grid), "CNN super-resolution is approximate: it has no "
                             "exactness correction")
        # one chain per point: the rows follow the Monte Carlo input order
        out.append((level_attrs(cfg, h5, Lp, c, grid, grid_name[:-1], 1, interpolate=True), c))
    return out


def _structure_complete(h5, sizes) -> bool:
    """Every level group with its datasets and attributes (the last thing made at creation)."""
    try:
        for Lp in sizes:
            g = schema.size_group(Lp)
            if not (h5.has(g) and h5.has(f"{g}/{schema.CONFIGS}") and h5.has(f"{g}/{NOMINAL}")
                    and "level" in h5.attrs(g)):
                return False
    except (KeyError, OSError, ValueError):
        return False
    return True


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


def _consistency(x, y, blocking: str, dims: int, field: str):
    """Spins: fraction of coarse sites with block(y) == x. φ⁴: fraction with the same sign
    (block values of a continuous field never coincide exactly)."""
    import torch

    from ..rg.blocking import block, consistency
    if field != "phi4":
        return consistency(x, y, blocking, dims)
    agree = torch.sign(block(y, blocking, dims)) == torch.sign(x)
    return agree.flatten(1).to(torch.float64).mean(1)


def _scalars(obs: dict, field: str, cfg) -> dict:
    """Per-configuration scalars stored per level (names from the HDF5 contract)."""
    if field == "phi4":
        return {schema.PHI_MEAN: obs["phi"], schema.PHI2_MEAN: obs["phi2"],
                schema.MAGNETIZATION: obs["phi"]}
    if cfg.model.name == "edwards_anderson":
        return {schema.OVERLAP: obs["m"], schema.LINK_OVERLAP: -obs["e_nn"] / cfg.model.dims}
    m = cfg.model
    return {schema.MAGNETIZATION: obs["m"], schema.ENERGY: m.J * obs["e_nn"] - m.h * obs["m"]}


def _create_file(h5, cfg, comms, model, sizes, temps, N, N_all) -> None:
    """Collective: provenance, one group per level with datasets and temperatures."""
    root = provenance(cfg, comms.size, "upscale", commit=None if comms.is_root else "")
    root = comms.bcast_root(root)
    h5.set_attrs("/", root)
    field = model.field
    dtype = np.float32 if field == "phi4" else np.int8
    n_T = len(temps)
    names = list(_scalars({"m": 0, "e_nn": 0, "phi": 0, "phi2": 0}, field, cfg))
    flow_attrs = model.flow.to_attrs() if model.flow is not None else {}
    for level, Lp in enumerate(sizes, start=1):
        g = schema.size_group(Lp)
        lat = (Lp,) * cfg.model.dims
        axes = ",".join(schema.CLEAN_AXES)
        h5.create_dataset(f"{g}/{schema.CONFIGS}", (n_T, N) + lat, dtype,
                          chunks=(1, 1) + lat,
                          attrs={schema.DATASET_ATTR_AXES: axes + "," + ",".join("xyz"[:len(lat)])})
        for name in names + [CONSISTENCY]:
            h5.create_dataset(f"{g}/{name}", (n_T, N), np.float64,
                              attrs={schema.DATASET_ATTR_AXES: axes})
        choice = [model.network_for(k, level, cfg.upscale.rescale_temperature)
                  for k in range(n_T)]
        eff = np.array([c[2] for c in choice])
        net_T = np.array([c[1] if c[1] is not None else model.temperatures[c[0]]
                          for c in choice])
        grid_name = schema.COUPLINGS if field == "phi4" else schema.TEMPERATURES
        h5.create_dataset(f"{g}/{grid_name}", (n_T,), np.float64)
        h5.create_dataset(f"{g}/{NOMINAL}", (n_T,), np.float64)
        if comms.is_root:
            h5.put(f"{g}/{grid_name}", (), eff)
            h5.put(f"{g}/{NOMINAL}", (), np.asarray(temps, dtype=np.float64))
        attrs = {schema.GROUP_ATTR_MODEL: cfg.model.name, schema.GROUP_ATTR_DIMS: cfg.model.dims,
                 schema.GROUP_ATTR_L: Lp, schema.GROUP_ATTR_SOURCE: "superres",
                 "level": level, "input_L": cfg.sample.L, "train_L": model.meta.get("train_L"),
                 "input_count": N_all,
                 "blocking": model.blocking or "", "rescaled": bool(
                     cfg.upscale.rescale_temperature and model.rescales),
                 "overlap_configs": cfg.model.name == "edwards_anderson",
                 "network_temperatures": net_T}
        attrs.update(flow_attrs)
        h5.set_attrs(g, attrs)


def _print_summary(path, sizes) -> None:
    import h5py
    from ..analysis.summary import OUTSIDE_FLOW_NOTE, format_flow_value
    lines = []
    outside = False
    with h5py.File(path, "r") as f:
        for Lp in sizes:
            g = f[schema.size_group(Lp)]
            grid_name = schema.COUPLINGS if schema.COUPLINGS in g else schema.TEMPERATURES
            eff, nominal = g[grid_name][()], g[NOMINAL][()]
            first = schema.OVERLAP if schema.OVERLAP in g else schema.MAGNETIZATION
            m = np.abs(g[first][()])
            cons = g[CONSISTENCY][()]
            e = g[schema.ENERGY][()] if schema.ENERGY in g else None
            for k in range(len(eff)):
                outside |= not np.isfinite(eff[k])
                row = (f"L={Lp:<5d} T_in={nominal[k]:<9.5f} "
                       f"T_eff={format_flow_value(eff[k], '.5f'):<9s} "
                       f"<|{'q' if first == schema.OVERLAP else 'm'}|>={m[k].mean():.4f}")
                if e is not None:
                    row += f" <e>={e[k].mean():.4f}"
                lines.append(row + f" consistency={cons[k].mean():.4f}")
            bad = int((~np.isfinite(m)).sum())
            if bad:  # an iterated network can run away (φ⁴ far outside its training range)
                log.warning(f"[upscale] L={Lp}: {bad} of {m.size} configurations hold non-finite "
                            f"values (the network diverged under iteration); do not use this "
                            f"level, see docs/validation.md")
    if outside:
        lines.append(f"T_eff {OUTSIDE_FLOW_NOTE}")
    log.info("[upscale] levels:\n" + "\n".join(lines))
