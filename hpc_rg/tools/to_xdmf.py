"""to_xdmf: an XDMF sidecar so ParaView / VisIt open the configurations of an hpc_rg file.

Usage::

    tools/to_xdmf FILE [--L 16 32] [--max-configs K] [--center cell|node] [--out X.xdmf]
    python -m hpc_rg.tools.to_xdmf run/upscaled.h5      # writes run/upscaled.xdmf

Writes an XDMF 3 file (default: next to FILE, ``.h5`` replaced by ``.xdmf``) that points
into FILE, so no data is copied; keep the two together (the reference is the HDF5 file's
path relative to the XDMF file; the VDS writer's ``NAME.h5.ranks/`` must stay beside too).

For each size group with a ``configs`` dataset, 2D or 3D, of the clean layout
(T, N, L, L[, L]) or the Edwards–Anderson one (D, T, S, R, L, L, L), there is one temporal
Collection ``L<n>`` whose steps are single configurations: per temperature (φ⁴: coupling)
the first K (``--max-configs``, default 4; 0 = all) in index order of the other leading
axes, named e.g. ``L16 T=2.269185 sample 3`` or ``L4 T=0.8 disorder 0 sample 0 replica 1``.
Each step is a uniform ``2DCoRectMesh`` / ``3DCoRectMesh`` grid (origin 0, spacing 1, axes in
the dataset's order) with one scalar attribute — ``spin`` (int8 → Char, 1 byte), ``phi``
(float32 → Float, 4 bytes) or ``overlap`` (EA super-resolved overlap configurations) — read
through a ``HyperSlab`` of ``FILE:/L<n>/configs``. ``--center cell`` (default) draws each
site as a cell (voxel), ``--center node`` as a mesh point.

The sidecar is written as ``X.xdmf.partial`` and renamed when complete.

Exit codes: 0 written; 2 bad input (missing file, not HDF5 / not an hpc_rg output, an
incomplete ``.partial`` file, a size given with ``--L`` missing or without 2D/3D
configurations, no configurations at all) or the sidecar cannot be written.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..io.outputs import open_output, select_sizes, temperature_grid
from ..errors import InputFileError, OutputError
from ..io import schema
from .common import ToolParser, run_tool

LATTICE_AXES = ("x", "y", "z")


def number_type(dtype) -> tuple[str, int]:
    """XDMF (NumberType, Precision) of a NumPy dtype."""
    dt = np.dtype(dtype)
    kind = {"f": "Float", "i": "Char" if dt.itemsize == 1 else "Int",
            "u": "UChar" if dt.itemsize == 1 else "UInt"}.get(dt.kind)
    if kind is None:
        raise InputFileError(f"configs of dtype {dt} cannot be described in XDMF")
    return kind, dt.itemsize


def configs_layout(group):
    """(dataset, lattice dims, temperature axis, leading axis names) of ``group/configs``,
    or a string saying why the group is skipped."""
    if schema.CONFIGS not in group:
        return f"{group.name}: no '{schema.CONFIGS}' dataset"
    ds = group[schema.CONFIGS]
    axes = [a for a in str(ds.attrs.get(schema.DATASET_ATTR_AXES, "")).split(",") if a]
    dims = sum(a in LATTICE_AXES for a in axes) or int(group.attrs.get(schema.GROUP_ATTR_DIMS, 0))
    if dims not in (2, 3):
        return f"{group.name}: {dims}D configurations (XDMF grids here are 2D or 3D)"
    lead = ds.ndim - dims
    names = axes[:lead] if len(axes) == ds.ndim else (
        list(schema.DISORDERED_AXES) if lead == 4 else list(schema.CLEAN_AXES))
    if "temperature" not in names or lead < 2:
        return f"{group.name}: '{schema.CONFIGS}' has unexpected axes {axes or ds.shape}"
    return ds, dims, names.index("temperature"), names


def _item(parent, text: str, **attrs):
    e = ET.SubElement(parent, "DataItem", {k: str(v) for k, v in attrs.items()})
    e.text = text
    return e


def size_collection(domain, L: int, group, h5ref: str, max_configs: int, center: str) -> int:
    """Append the temporal collection of ``group``'s configurations; returns the grid count."""
    ds, dims, t_axis, names = configs_layout(group)
    lead = ds.ndim - dims
    kind, precision = number_type(ds.dtype)
    grid_name, temps = temperature_grid(group)
    nominal = group[schema.NOMINAL][...] if schema.NOMINAL in group else temps
    label = "T" if grid_name == schema.TEMPERATURES else "coupling"
    attr_name = ("overlap" if bool(group.attrs.get("overlap_configs", False))
                 else "phi" if ds.dtype.kind == "f" else "spin")
    lattice = ds.shape[lead:]
    points = [n + 1 for n in lattice] if center == "cell" else list(lattice)
    others = [i for i in range(lead) if i != t_axis]
    coll = ET.SubElement(domain, "Grid", Name=f"L{L}", GridType="Collection",
                         CollectionType="Temporal")
    step = 0
    for t in range(ds.shape[t_axis]):
        T = temps[t] if np.isfinite(temps[t]) else nominal[t]
        tname = f"{label}={T:.10g}" + ("" if np.isfinite(temps[t]) else " (nominal)")
        combos = itertools.product(*(range(ds.shape[i]) for i in others))
        if max_configs > 0:
            combos = itertools.islice(combos, max_configs)
        for combo in combos:
            index = {t_axis: t, **dict(zip(others, combo))}
            start = [index[i] for i in range(lead)] + [0] * dims
            count = [1] * lead + list(lattice)
            where = " ".join(f"{names[i]} {index[i]}" for i in others)
            grid = ET.SubElement(coll, "Grid", Name=f"L{L} {tname} {where}", GridType="Uniform")
            ET.SubElement(grid, "Time", Value=str(step))
            ET.SubElement(grid, "Topology", TopologyType=f"{dims}DCoRectMesh",
                          Dimensions=" ".join(map(str, points)))
            geo = ET.SubElement(grid, "Geometry",
                                GeometryType="ORIGIN_DXDYDZ" if dims == 3 else "ORIGIN_DXDY")
            _item(geo, " ".join(["0"] * dims), Dimensions=dims, NumberType="Float",
                  Precision=8, Format="XML")
            _item(geo, " ".join(["1"] * dims), Dimensions=dims, NumberType="Float",
                  Precision=8, Format="XML")
            att = ET.SubElement(grid, "Attribute", Name=attr_name, AttributeType="Scalar",
                                Center="Cell" if center == "cell" else "Node")
            slab = ET.SubElement(att, "DataItem", ItemType="HyperSlab",
                                 Dimensions=" ".join(map(str, lattice)), NumberType=kind,
                                 Precision=str(precision))
            _item(slab, "\n".join(" ".join(map(str, row)) for row in
                                  (start, [1] * ds.ndim, count)),
                  Dimensions=f"3 {ds.ndim}", NumberType="Int", Format="XML")
            _item(slab, f"{h5ref}:{ds.name}", Dimensions=" ".join(map(str, ds.shape)),
                  NumberType=kind, Precision=precision, Format="HDF")
            step += 1
    return step


def build_xdmf(f, h5ref: str, sizes=None, max_configs: int = 4, center: str = "cell"):
    """(XML element tree root, {L: grid count}, notes on skipped groups)."""
    root = ET.Element("Xdmf", Version="3.0")
    domain = ET.SubElement(root, "Domain", Name=Path(h5ref).name)
    counts, notes = {}, []
    for L, g in select_sizes(f, sizes):
        why = configs_layout(g)
        if isinstance(why, str):
            if sizes is not None:
                raise InputFileError(f"{f.filename}: {why}")
            notes.append(f"skipped {why}")
            continue
        counts[L] = size_collection(domain, L, g, h5ref, max_configs, center)
    if not counts:
        raise InputFileError(f"{f.filename}: no 2D/3D configurations to expose "
                             f"({'; '.join(notes)})")
    return root, counts, notes


def default_out(path: Path) -> Path:
    return path.with_suffix(".xdmf") if path.suffix == ".h5" else path.with_name(path.name + ".xdmf")


def write_atomic(root, out: Path) -> None:
    ET.indent(root)
    text = ('<?xml version="1.0" ?>\n<!DOCTYPE Xdmf SYSTEM "Xdmf.dtd" []>\n'
            + ET.tostring(root, encoding="unicode") + "\n")
    tmp = out.with_name(out.name + schema.PARTIAL_SUFFIX)
    try:
        tmp.write_text(text)
        os.replace(tmp, out)
    except OSError as e:
        raise OutputError(f"{out}: cannot write the XDMF file ({e.strerror or e})") from None


def main(argv=None) -> int:
    ap = ToolParser(prog="to_xdmf", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", metavar="FILE")
    ap.add_argument("--L", type=int, nargs="+", help="lattice sizes (default: all)")
    ap.add_argument("--max-configs", type=int, default=4, metavar="K",
                    help="configurations per temperature (default 4; 0 = all)")
    ap.add_argument("--center", choices=("cell", "node"), default="cell",
                    help="a site is a cell (voxel, default) or a mesh node")
    ap.add_argument("--out", help="XDMF file (default: FILE with .xdmf)")
    args = ap.parse_args(argv)
    path = Path(args.file)
    if path.name.endswith(schema.PARTIAL_SUFFIX):
        raise InputFileError(f"{path}: an incomplete output (the stage is running or was "
                             f"killed); convert the finished file")
    out = Path(args.out) if args.out else default_out(path)
    with open_output(path) as f:
        h5ref = os.path.relpath(path.resolve(), out.resolve().parent)
        root, counts, notes = build_xdmf(f, h5ref, args.L, args.max_configs, args.center)
    write_atomic(root, out)
    for n in notes:
        print(n)
    print(f"{out}: {sum(counts.values())} configurations "
          f"({', '.join(f'L{L}: {n}' for L, n in counts.items())}) from {h5ref}")
    return 0


def cli() -> int:
    return run_tool("to_xdmf", main)


if __name__ == "__main__":
    sys.exit(cli())
