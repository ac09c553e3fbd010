"""The ``sample`` stage: Monte Carlo on every rank, written collectively to ``samples.h5``.

Sizes ``sample.L`` then ``sample.reference_sizes`` are sampled in turn, one group
``/L<size>`` each (a reference size has its own seed, derived from ``run.seed`` and L).
Thermalize ``sample.thermalize`` sweeps, then keep ``sample.samples`` configurations per
chain every ``sample.thin`` sweeps. Every ``sample.chunk`` kept configurations the ranks
write their own slices (configurations are never gathered), record ``chunks_done``, flush,
and only then checkpoint (a checkpoint never claims data that is not in the file); a
SIGTERM checkpoints the partial chunk too, so ``--resume`` continues bit-identically. After
a SIGKILL the resume restarts from the last checkpoint and rewrites the chunk that was in
progress; a ``samples.h5.partial`` that cannot be reopened, or lacks the structure made
at creation, is rebuilt from scratch (with a warning), never resumed. Edwards–Anderson
groups end with the equilibration certificate of every disorder sample
(:mod:`hpc_rg.pipeline.equilibration`), logged as one summary line. A run with several
sizes ends with the check across sizes (:mod:`hpc_rg.pipeline.size_check`): a larger size
whose susceptibility falls below a smaller one's is not in equilibrium, whatever its
certificate says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import OutputError, StoppedBySignal
from ..io import schema
from ..io.checkpoint import RankCheckpoints
from ..io.layout import SizeLayout
from ..io.provenance import stage_provenance
from ..io.writer import open_output
from .equilibration import write_certificate
from .size_check import record_size_check
from .loop import partial_path, reopen_partial
from ..models.spec import spec_for
from ..progress import Progress

log = logging.getLogger("hpc_rg")


@dataclass
class ChunkBuffer:
    """Kept measurements of the chunk in progress (this rank's chains and slab)."""

    labels: list = field(default_factory=list)  # per kept sample: temp index (B,)
    configs: list = field(default_factory=list)  # per kept sample: (B, *local_shape)
    scalars: list = field(default_factory=list)  # per kept sample: {name: (B,)}
    pairs: list = field(default_factory=list)  # per kept sample: {name: (D_local, T, P)}

    def __len__(self):
        return len(self.labels)

    def append(self, ens) -> None:
        self.labels.append(ens.temp_index.copy())
        self.configs.append(ens.configs())
        self.scalars.append(ens.measure())
        self.pairs.append(ens.pair_observables()[1])


def size_config(cfg, L: int):
    """``cfg`` for sampling at size ``L``; reference sizes get their own derived seed."""
    import dataclasses

    from ..rng import derive_seed
    if L == cfg.sample.L:
        return cfg
    run = dataclasses.replace(cfg.run, seed=derive_seed(cfg.run.seed, "size", L) >> 1)
    return dataclasses.replace(cfg, run=run, sample=dataclasses.replace(cfg.sample, L=L))


def run_sample(cfg, comms, stop, resume: bool, device) -> None:
    """Run the sample stage at every size of ``sample.sizes`` (collective over ``comms.world``)."""
    _announce_kernel(cfg, comms, device)
    out = cfg.output_dir
    final = out / schema.SAMPLES_FILE
    partial_exists = comms.bcast_root(partial_path(final).exists())
    h5 = None
    if resume and partial_exists:
        h5 = reopen_partial(final, comms, lambda f: _structure_complete(f, cfg), "sample")
        partial_exists = h5 is not None
    if h5 is None:
        if resume and not partial_exists:
            log.info("[sample] nothing to resume; starting from scratch")
        for L in cfg.sample.sizes:
            RankCheckpoints(out / schema.CHECKPOINT_DIR, _ckpt_name(cfg, L), comms.world).clear()
        h5 = open_output(final, comms.world, "w")
        _create_file(h5, cfg, comms)
    for L in cfg.sample.sizes:
        g = schema.size_group(L)
        if h5.attrs(g).get(schema.GROUP_ATTR_SIZE_COMPLETE, False):
            continue
        _sample_size(size_config(cfg, L), cfg, comms, stop, h5, resume and partial_exists, device)
    h5.close(complete=True)
    for L in cfg.sample.sizes:
        RankCheckpoints(out / schema.CHECKPOINT_DIR, _ckpt_name(cfg, L), comms.world).clear()
    log.info(f"[sample] wrote {final}")
    if comms.is_root:
        for L in cfg.sample.sizes:
            _print_summary(final, schema.size_group(L), cfg.sample.equilibration.only_passed)
    failure = None
    if comms.is_root and len(cfg.sample.sizes) > 1:
        try:
            record_size_check(final, cfg.sample.equilibration.only_passed)
        except (OSError, KeyError, ValueError) as e:  # every rank stops alike, none hangs
            failure = f"{final}: the check across sizes could not be recorded: {e}"
    failure = comms.bcast_root(failure)
    if failure:
        raise OutputError(failure)



def _announce_kernel(cfg, comms, device) -> None:
    """Build the compiled kernels once (rank 0 first) when they may be used, and log which
    spin kernel the chains run and why (one line)."""
    from ..mc import compiled
    from ..mc.kernels import choose_spin_kernel, msc_unsupported

    s, m = cfg.sample, cfg.model
    if s.algorithm not in compiled.RULES or m.spec.continuous:
        return  # cluster moves, HMC, Langevin, phi^4: no spin kernel to choose
    if s.kernel != "torch" and str(device).startswith("cpu"):
        msc_built = False
        if s.kernel in ("auto", "msc") and msc_unsupported(m, s.algorithm) is None:
            msc_built = _build_msc_once(comms.world)
        if not msc_built:
            compiled.build_once(comms.world)
    choice = choose_spin_kernel(s.kernel, m, s.algorithm, device)
    kernel, why = choice.kernel, choice.why
    if kernel != "msc":
        kernel, why = compiled.choose_kernel(s.kernel, m.name, s.algorithm, device)
    if comms.is_root and not (s.kernel == "compiled" and kernel == "torch"):  # that one warns
        log.info(f"[sample] Monte Carlo kernel: {kernel} ({why})")


def _build_msc_once(comm) -> bool:
    """Collective: rank 0 builds (or finds) the multi-spin-coded kernel, then the others load
    it; returns whether it built (a failure is reported by the kernel choice, never raised)."""
    from ..mc.kernels import msc_library_problem

    ok = comm.Get_rank() != 0 or msc_library_problem() is None
    return bool(comm.bcast(ok, root=0))


def _ckpt_name(cfg, L: int) -> str:
    return "sample" if L == cfg.sample.L else f"sample_L{L}"


def _sample_size(cfg, main_cfg, comms, stop, h5, resume: bool, device) -> None:
    """Thermalize and sample one lattice size into group ``/L<size>`` (collective)."""
    from ..mc.ensemble import Ensemble  # torch-heavy; imported when the stage runs

    layout = SizeLayout.from_config(cfg)
    ckpts = RankCheckpoints(cfg.output_dir / schema.CHECKPOINT_DIR,
                            _ckpt_name(main_cfg, layout.L), comms.world)
    ens = Ensemble(cfg, comms, device)
    state = ckpts.load_latest() if resume else None
    g = schema.size_group(layout.L)
    if state is not None and state[1]["chunks_done"] > int(h5.attrs(g).get(
            schema.GROUP_ATTR_CHUNKS_DONE, 0)):
        # the data of a chunk the checkpoint calls done never reached the file: redo the size
        log.warning(f"[sample] L={layout.L}: checkpoint #{state[0]} is ahead of the data in "
                    f"{h5.partial}; sampling this size again from the start")
        state = None
    if state is not None:
        seq, saved = state
        ens.load_state_dict(saved["ensemble"])
        buf = ChunkBuffer(**saved["buffer"])
        chunks_done = saved["chunks_done"]
        log.info(f"[sample] L={layout.L}: resuming from checkpoint #{seq}: {ens.sweeps_done} "
                 f"sweeps done, {chunks_done} chunks written")
    else:
        seq, buf, chunks_done = -1, ChunkBuffer(), 0
    s = cfg.sample
    total = s.thermalize + s.samples * s.thin
    progress = Progress(f"sample L={layout.L}", total, "sweeps", cfg.run.progress_seconds,
                        active=comms.is_root, start=ens.sweeps_done)
    chunk_starts = list(range(0, s.samples, s.chunk))

    def checkpoint():
        nonlocal seq
        seq += 1
        ckpts.save(seq, {"ensemble": ens.state_dict(), "buffer": vars(buf),
                         "chunks_done": chunks_done, "layout": repr(layout)})

    def stop_now():
        if stop.requested(comms):
            h5.flush()
            checkpoint()
            h5.close(complete=False)
            raise StoppedBySignal(f"sample stage stopped by signal after {ens.sweeps_done} "
                                  f"sweeps at L={layout.L}; checkpoint saved in {ckpts.root}; "
                                  f"rerun with --resume")

    # thermalization, in blocks so a stop signal is seen and the stage can be resumed
    block = max(1, s.thin)
    while ens.sweeps_done < s.thermalize:
        n = min(block * 10, s.thermalize - ens.sweeps_done)
        ens.sweep(n)
        progress.update(ens.sweeps_done, "thermalizing")
        stop_now()
    # production: kept configuration k is taken after sweep thermalize + (k+1)*thin
    while chunks_done < len(chunk_starts):
        k0 = chunk_starts[chunks_done]
        k1 = min(k0 + s.chunk, s.samples)
        while len(buf) < k1 - k0:
            ens.sweep(s.thin)
            buf.append(ens)
            progress.update(ens.sweeps_done)
            stop_now()
        _write_chunk(h5, g, layout, ens, comms, buf, k0)
        chunks_done += 1
        h5.set_attrs(g, {schema.GROUP_ATTR_CHUNKS_DONE: chunks_done})
        h5.flush()  # data and chunks_done on disk before the checkpoint that says so
        buf = ChunkBuffer()
        checkpoint()
    progress.update(ens.sweeps_done, force=True)
    _finish_group(h5, g, ens, comms)
    if layout.disordered:
        write_certificate(h5, g, cfg, ens, comms)
    h5.set_attrs(g, {schema.GROUP_ATTR_SIZE_COMPLETE: True})
    h5.flush()
    checkpoint()


def _structure_complete(h5, cfg) -> bool:
    """Does the reopened partial file hold every group and dataset :func:`_create_file`
    makes (a job killed during creation leaves them missing)?"""
    try:
        for L in cfg.sample.sizes:
            size_cfg = size_config(cfg, L)
            layout = SizeLayout.from_config(size_cfg)
            g = schema.size_group(L)
            if not h5.has(g) or schema.GROUP_ATTR_SIZE_COMPLETE not in h5.attrs(g):
                return False
            if any(not h5.has(f"{g}/{name}") for name in layout.datasets()):
                return False
    except (KeyError, OSError, ValueError):
        return False
    return True


def _print_summary(path, g: str, only_passed: bool = True) -> None:
    """Log the per-temperature table of size group ``g``. Edwards–Anderson: averaged over
    the disorder samples the later stages use (:func:`hpc_rg.io.equilibrated.
    usable_disorder_samples`: only the certified ones when ``only_passed``), the heading
    says over how many."""
    import h5py

    from ..analysis.summary import format_table, summary_rows
    from ..errors import ConfigError
    from ..io.equilibrated import usable_disorder_samples
    with h5py.File(path, "r") as f:
        group, over = f[g], ""
        try:
            used = usable_disorder_samples(group, only_passed, warn=False, stage="sample")
        except ConfigError:  # none certified: the stage has said so; the table shows them all
            D = int(group[schema.CONFIGS].shape[0])
            used, over = None, f", averaged over all {D} samples (none certified)"
        if used is not None and used.ids is not None:
            if used.equilibrated_only:
                over = f", averaged over {len(used.ids)}/{used.total} certified samples"
            else:
                over = f", averaged over all {used.total} samples"
            if len(used.ids) < used.total:
                group = _DisorderSubset(group, used.ids)
        header, rows = summary_rows(group)
    log.info(f"[sample] {g}{over} (jackknife errors in parentheses):\n" + format_table(header, rows))


class _DisorderSubset:
    """A size group as :func:`hpc_rg.analysis.summary.summary_rows` reads it, with the
    per-disorder-sample observables restricted to the samples ``ids`` (axis 0)."""

    PER_SAMPLE = (schema.ENERGY, schema.MAGNETIZATION, schema.OVERLAP, schema.LINK_OVERLAP)

    def __init__(self, group, ids):
        self.attrs, self._group, self._ids = group.attrs, group, np.asarray(ids, dtype=np.int64)

    def __getitem__(self, name):
        if name in self.PER_SAMPLE:
            return self._group[name][()][self._ids]
        return self._group[name]

    def __contains__(self, name):
        return name in self._group


def _create_file(h5, cfg, comms) -> None:
    """Collective: provenance and the empty groups of every sampled size."""
    h5.set_attrs("/", stage_provenance(cfg, comms, "sample"))
    for L in cfg.sample.sizes:
        size_cfg = size_config(cfg, L)
        _create_layout(h5, size_cfg, comms, SizeLayout.from_config(size_cfg))


def _create_layout(h5, cfg, comms, layout: SizeLayout) -> None:
    g = schema.size_group(layout.L)
    for name, (shape, dtype, chunks, axes) in layout.datasets().items():
        h5.create_dataset(f"{g}/{name}", shape, dtype, chunks=chunks,
                          attrs={schema.DATASET_ATTR_AXES: axes})
    grid_name = spec_for(cfg.model.name).grid
    h5.create_dataset(f"{g}/{grid_name}", (layout.n_params,), np.float64)
    if comms.is_root:
        h5.put(f"{g}/{grid_name}", (), np.asarray(cfg.parameter_grid, dtype=np.float64))
    m, s = cfg.model, cfg.sample
    attrs = {schema.GROUP_ATTR_MODEL: m.name, schema.GROUP_ATTR_DIMS: m.dims,
             schema.GROUP_ATTR_L: layout.L, schema.GROUP_ATTR_SOURCE: "monte_carlo",
             schema.GROUP_ATTR_CHUNKS_DONE: 0,
             schema.GROUP_ATTR_ALGORITHM: s.algorithm, schema.GROUP_ATTR_THERMALIZE: s.thermalize,
             schema.GROUP_ATTR_THIN: s.thin, schema.GROUP_ATTR_SAMPLES_PER_CHAIN: s.samples,
             schema.GROUP_ATTR_CHAINS: layout.chains,
             schema.GROUP_ATTR_TEMPERING: s.tempering.enabled,
             schema.GROUP_ATTR_RANKS_PER_REPLICA: s.ranks_per_replica,
             schema.GROUP_ATTR_SEED: cfg.run.seed, schema.GROUP_ATTR_SIZE_COMPLETE: False}
    attrs.update((k, getattr(m, k)) for k in spec_for(m.name).keys if k not in ("name", "dims"))
    if spec_for(m.name).continuous:  # φ⁴: which coupling the grid scans
        attrs[schema.GROUP_ATTR_SCANNED] = "kappa" if m.parametrization == "bauer" else "mu2"
    h5.set_attrs(g, attrs)


def _runs(labels: np.ndarray):
    """Split a sequence of labels into runs (start, stop, label) of equal consecutive values."""
    start = 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            yield start, i, int(labels[start])
            start = i


def _write_chunk(h5, g: str, layout: SizeLayout, ens, comms, buf: ChunkBuffer, k0: int) -> None:
    """Write the buffered chunk: each rank its chains' slab; scalars from slab rank 0."""
    labels = np.stack(buf.labels)  # (K, B)
    configs = np.stack(buf.configs)  # (K, B, *local)
    lat = tuple(slice(x, x + n) for x, n in zip((ens.x0,) + (0,) * (layout.dims - 1),
                                                  ens.local_shape))
    write_scalars = comms.slab_rank == 0
    scalars = {name: np.stack([m[name] for m in buf.scalars]) for name in layout.scalar_names()}
    if layout.disordered:
        _write_chunk_by_temperature(h5, g, ens, configs, labels, scalars, lat, k0, write_scalars)
    else:
        _write_chunk_by_chain(h5, g, layout, ens, configs, labels, scalars, lat, k0, write_scalars)
    if layout.disordered and write_scalars and len(ens.d_indices):
        d0, Dl = int(ens.d_indices[0]), len(ens.d_indices)  # not pair_observables(): collective
        for name in layout.pair_names():
            values = np.stack([p[name] for p in buf.pairs])  # (K, D_local, T, P)
            sel = (slice(d0, d0 + Dl), slice(None), slice(k0, k0 + len(buf)), slice(None))
            h5.put(f"{g}/{name}", sel, np.moveaxis(values, 0, 2))


def _write_chunk_by_temperature(h5, g, ens, configs, labels, scalars, lat, k0, write_scalars):
    """Disordered models: the rank's disorder samples are whole (every replica, every
    temperature), so the chunk is reordered to the file's ``(d, t, k, r)`` axes in memory and
    written as one hyperslab per dataset (not one small write per chain and label run: with
    tempering after every sweep the labels change at every kept sample)."""
    K, B = labels.shape
    Dl, R, T = len(ens.d_indices), ens.R, ens.T
    if not Dl:
        return
    who = np.argsort(labels.reshape(K, Dl, R, T), axis=-1)  # member at temperature t
    base = (np.arange(Dl)[:, None] * R + np.arange(R)[None, :]) * T  # (Dl, R)
    idx = base[None, :, :, None] + who  # (K, Dl, R, T): local chain at (d, r, t)
    order = np.transpose(idx, (1, 3, 0, 2))  # (Dl, T, K, R)
    d0 = int(ens.d_indices[0])
    sel = (slice(d0, d0 + Dl), slice(None), slice(k0, k0 + K), slice(None))
    kk = np.broadcast_to(np.arange(K)[None, None, :, None], order.shape)
    h5.put(f"{g}/{schema.CONFIGS}", sel + lat, configs[kk, order])
    if write_scalars:
        for name, values in scalars.items():
            h5.put(f"{g}/{name}", sel, values[kk, order])


def _write_chunk_by_chain(h5, g, layout, ens, configs, labels, scalars, lat, k0, write_scalars):
    """Clean models: each chain's runs of equal temperature label, one write each."""
    for b, chain in enumerate(ens.chain_ids):
        for a, z, t in _runs(labels[:, b]):
            sel = layout.chain_slot(int(chain), t, k0 + a, k0 + z)
            h5.put(f"{g}/{schema.CONFIGS}", sel + lat, configs[a:z, b])
            if write_scalars:
                for name, values in scalars.items():
                    h5.put(f"{g}/{name}", sel, values[a:z, b])


def _finish_group(h5, g: str, ens, comms) -> None:
    """Collective: diagnostics of the finished run as group attributes."""
    stats = ens.tempering_stats() or {}
    attrs = {}
    for key, value in stats.items():
        attrs[schema.TEMPERING_PREFIX + key] = np.asarray(value)
    attrs[schema.GROUP_ATTR_SWEEPS] = int(ens.sweeps_done)
    attrs[schema.GROUP_ATTR_KERNEL] = f"{ens.kernel} ({ens.kernel_reason})"
    h5.set_attrs(g, comms.bcast_root(attrs))
