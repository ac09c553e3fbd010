"""Opening the files of one plot: a run directory or ``samples.h5`` / ``upscaled.h5``,
checked (schema version, complete, size groups), as an :class:`Inputs`."""

from __future__ import annotations

from pathlib import Path

from ..io.outputs import grid, open_output, read, select_sizes, size_groups
from ..errors import InputFileError
from ..io import schema
from ..models.spec import spec_for
from .common import SYMBOLS, Skip

STAGE_ROLE = {"sample": "samples", "upscale": "upscaled"}
ROLE_FILE = {"samples": schema.SAMPLES_FILE, "upscaled": schema.UPSCALED_FILE}
ROLE_STAGE = {"samples": "sample", "upscaled": "upscale"}


class Inputs:
    """The opened files of one plot: ``samples`` and/or ``upscaled`` (h5py Files or None)."""

    def __init__(self, samples=None, upscaled=None, default_out=None, sizes=None):
        self.samples, self.upscaled = samples, upscaled
        self.default_out = default_out
        self.sizes = None if sizes is None else set(sizes)
        files = [f for f in (samples, upscaled) if f is not None]
        models = {str(size_groups(f)[0][1].attrs.get(schema.GROUP_ATTR_MODEL, "")) for f in files}
        if len(models) != 1:
            raise InputFileError(f"{samples.filename} and {upscaled.filename} hold different "
                                 f"models ({', '.join(sorted(models))}); give files of one run")
        self.model = models.pop()
        g = size_groups(files[0])[0][1]
        self.dims = int(g.attrs.get(schema.GROUP_ATTR_DIMS, 2))

    @property
    def spec(self):
        """The :class:`~hpc_rg.models.spec.ModelSpec` of the data's model."""
        return spec_for(self.model)

    def close(self):
        for f in (self.samples, self.upscaled):
            if f is not None:
                f.close()

    def first(self):
        return self.samples if self.samples is not None else self.upscaled

    def need(self, role, kind):
        """The file of ``role``; Skip naming what is missing if it was not given."""
        f = getattr(self, role)
        if f is None:
            where = (f"{self.default_out.parent / ROLE_FILE[role]} is missing" if self._run_dir
                     else f"no {ROLE_FILE[role]} among the files given")
            raise Skip(f"--kind {kind} needs the {ROLE_STAGE[role]} stage's output ({where})")
        return f

    _run_dir = False

    # -- groups
    def _keep(self, groups):
        return [(L, g) for L, g in groups if self.sizes is None or L in self.sizes]

    def mc(self):
        """[(L, group)] of the Monte Carlo sizes (after ``--sizes``), smallest first."""
        return self._keep(size_groups(self.samples)) if self.samples is not None else []

    def levels(self, filtered=True):
        """[(L, group)] of the super-resolved levels ordered by level (after ``--sizes``)."""
        if self.upscaled is None:
            return []
        groups = sorted(size_groups(self.upscaled), key=lambda p: int(p[1].attrs.get(schema.GROUP_ATTR_LEVEL, p[0])))
        return self._keep(groups) if filtered else groups

    def input_group(self, kind):
        """(L, group) of the Monte Carlo input of the super-resolution (level 1 ``input_L``);
        without upscaled.h5 the smallest sampled size."""
        samples = self.need("samples", kind)
        if self.upscaled is None:
            return size_groups(samples)[0]
        _, g1 = self.levels(filtered=False)[0]
        if schema.GROUP_ATTR_INPUT_L not in g1.attrs:
            raise InputFileError(f"{self.upscaled.filename}: group {g1.name} has no attribute "
                                 f"'input_L' (the Monte Carlo size it was made from)")
        L = int(g1.attrs[schema.GROUP_ATTR_INPUT_L])
        if schema.size_group(L) not in samples:
            raise InputFileError(f"{samples.filename}: no group /L{L} (the input size of "
                                 f"{self.upscaled.filename}); give the samples.h5 of the same run")
        return L, samples[schema.size_group(L)]

    def chains(self):
        """Independent series concatenated along the sample axis of the input ensemble."""
        if self.samples is None or self.upscaled is None:
            return 1
        _, g = self.input_group("curves")
        if self.spec.disordered:  # the disorder samples the levels were made from
            used = self.levels(filtered=False)[0][1].attrs.get(schema.ATTR_DISORDER_SAMPLES_USED)
            return len(used) if used is not None else int(g.attrs.get("disorder_samples", 1))
        return int(g.attrs.get(schema.GROUP_ATTR_CHAINS, 1))

    def disorder_ids(self, g):
        """File ids of the disorder samples of the Monte Carlo group ``g`` that the plots
        average (``sample.equilibration.only_passed`` of the run's deck, as ``analyze``);
        None for a group without disorder samples."""
        from ..analysis.tables import run_config
        from ..io.equilibrated import only_passed_of, usable_disorder_samples
        return usable_disorder_samples(g, only_passed_of(run_config(g.file)), warn=False).ids

    def scan_grid(self):
        """Nominal temperatures (couplings) of the super-resolution inputs."""
        if self.upscaled is not None:
            _, g1 = self.levels(filtered=False)[0]
            if schema.NOMINAL in g1:
                return read(g1, schema.NOMINAL)
            return grid(g1)
        return grid(size_groups(self.samples)[0][1])

    def scanned(self):
        """Name of the scan variable: 'T' or the φ⁴ coupling's symbol."""
        if self.spec.has_temperature:
            return "T"
        for f in (self.samples, self.upscaled):
            if f is not None:
                for _, g in size_groups(f):
                    if schema.GROUP_ATTR_SCANNED in g.attrs:
                        name = str(g.attrs[schema.GROUP_ATTR_SCANNED])
                        return SYMBOLS.get(name, name)
        return "coupling"


def _check_file(f):
    """Raise InputFileError unless ``f`` is a complete schema-1 hpc_rg output with size groups."""
    v = int(f.attrs[schema.ATTR_SCHEMA])
    if v != schema.SCHEMA_VERSION:
        raise InputFileError(f"{f.filename}: schema_version {v} is not supported "
                             f"(this hpc_rg reads {schema.SCHEMA_VERSION})")
    select_sizes(f)  # raises when there are no /L<size> groups
    if not bool(f.attrs.get(schema.ATTR_COMPLETE, False)):
        raise InputFileError(f"{f.filename}: incomplete (root attribute complete is false; "
                             f"the stage has not finished)")


def _role(f):
    stage = str(f.attrs.get(schema.ATTR_STAGE, ""))
    if stage in STAGE_ROLE:
        return STAGE_ROLE[stage]
    sources = {str(g.attrs.get(schema.GROUP_ATTR_SOURCE, "")) for _, g in size_groups(f)}
    if any(s.startswith("superres") for s in sources):
        return "upscaled"
    raise InputFileError(f"{f.filename}: written by stage '{stage}'; plot reads 'sample' "
                         f"({schema.SAMPLES_FILE}) and 'upscale' ({schema.UPSCALED_FILE}) outputs")


def open_inputs(paths, sizes=None) -> Inputs:
    """Open a run directory (one path) or HDF5 files; checks them; returns :class:`Inputs`."""
    paths = [Path(p) for p in paths]
    run_dir = len(paths) == 1 and paths[0].is_dir()
    if run_dir:
        run = paths[0]
        paths = [run / ROLE_FILE[r] for r in ("samples", "upscaled") if (run / ROLE_FILE[r]).is_file()]
        if not paths:
            raise InputFileError(f"{run}: no {schema.SAMPLES_FILE} or {schema.UPSCALED_FILE} "
                                 f"(not a finished run directory; give its run.output)")
    else:
        for p in paths:
            if p.is_dir():
                raise InputFileError(f"{p}: is a directory; give one run directory alone, "
                                     f"or HDF5 files")
    opened, files = {}, []
    try:
        for p in paths:
            f = open_output(p)
            files.append(f)
            _check_file(f)
            role = _role(f)
            if role in opened:
                raise InputFileError(f"{p}: a second {ROLE_STAGE[role]}-stage output (also "
                                     f"{opened[role].filename}); give at most one of each")
            opened[role] = f
        inputs = Inputs(opened.get("samples"), opened.get("upscaled"),
                        default_out=(run / "plots" if run_dir else paths[0].parent / "plots"),
                        sizes=sizes)
        inputs._run_dir = run_dir
    except BaseException:
        for f in files:
            f.close()
        raise
    if sizes is not None:
        have = {L for f in (inputs.samples, inputs.upscaled) if f is not None for L, _ in size_groups(f)}
        missing = [L for L in sizes if L not in have]
        if missing:
            names = ", ".join(f.filename for f in (inputs.samples, inputs.upscaled) if f is not None)
            inputs.close()
            raise InputFileError(f"{names}: no group /L{missing[0]} (--sizes; have "
                                 f"{', '.join('/L%d' % L for L in sorted(have))})")
    return inputs
