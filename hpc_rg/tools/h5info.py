"""h5info: what is in an hpc_rg output file, where it came from, and whether it is complete.

Usage::

    tools/h5info FILE [FILE ...] [--config] [--json]
    python -m hpc_rg.tools.h5info run/samples.h5 run/upscaled.h5 run/model.pt

For an HDF5 output (``samples.h5``, ``upscaled.h5``, or ``NAME.h5.partial`` of a stage still
running or killed) it prints

* a header: file, stage, and ``complete`` / ``INCOMPLETE`` (root attribute ``complete``;
  a ``.partial`` file is always incomplete);
* provenance from the root attributes: hpc_rg_version, schema_version, created_utc,
  mpi_ranks, seed, git_commit, writer, and the first lines of the stored deck
  (``config_yaml``; ``--config`` prints it in full);
* per size group ``/L<n>``: source (monte_carlo / superres ...), model, level,
  ``size_complete`` and ``chunks_done``; for Edwards–Anderson Monte Carlo groups the
  equilibration certificate's summary line ("124/128 disorder samples equilibrated at all
  temperatures; 4 not: ids ..."); for outputs made from an Edwards–Anderson ensemble the
  disorder samples they used (``disorder samples used: 3 [0, 2, 3], certified equilibrated
  only``); then the other group attributes (arrays longer
  than 8 values are summarised as ``[n values, min .. max]``);
* every dataset with its shape, dtype and ``axes`` attribute (``virtual`` for the VDS
  writer); 1-d datasets of at most 8 values (temperatures) are shown in full.

For ``model.pt`` (the train stage's network) it prints the model, lattice dimension,
blocking, training lattice size, the network spec (depth, width, kernel, conditioned,
parameter count), its temperatures, the training summary (epochs, best validation loss,
history length), the temperature flow, the disorder samples trained on (Edwards–Anderson)
and the provenance. Reading it imports torch.

``--json`` prints one JSON document (a list with one object per file) instead.

Exit codes: 0 printed; 2 a file is missing, is not HDF5 / a model file, or is not an
hpc_rg output (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from ..io.outputs import open_output, size_groups
from ..io import schema
from .common import ToolParser, run_tool

PROVENANCE = (schema.ATTR_VERSION, schema.ATTR_SCHEMA, schema.ATTR_STAGE, schema.ATTR_CREATED,
              schema.ATTR_RANKS, schema.ATTR_SEED, schema.ATTR_GIT, schema.ATTR_WRITER)
GROUP_HEAD = (schema.GROUP_ATTR_SOURCE, schema.GROUP_ATTR_MODEL, schema.GROUP_ATTR_DIMS,
              schema.GROUP_ATTR_L, schema.GROUP_ATTR_LEVEL, schema.GROUP_ATTR_SIZE_COMPLETE, schema.GROUP_ATTR_CHUNKS_DONE)
CONFIG_LINES = 6
SHORT = 8  # arrays up to this many values are shown in full


def plain(v):
    """An attribute value as a JSON-able Python value (bytes decoded, numpy unwrapped)."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray):
        return [plain(x) for x in v.tolist()] if v.dtype.kind in "OS" else v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def fmt(v) -> str:
    """Compact text for an attribute value; long arrays become ``[n values, min .. max]``."""
    v = plain(v)
    if isinstance(v, list):
        flat = np.asarray(v, dtype=object).ravel().tolist()
        if len(flat) > SHORT:
            try:
                a = np.asarray(flat, dtype=np.float64)
                return f"[{len(flat)} values, {np.nanmin(a):.6g} .. {np.nanmax(a):.6g}]"
            except (TypeError, ValueError):
                return f"[{len(flat)} values]"
        return "[" + ", ".join(fmt(x) for x in flat) + "]"
    if isinstance(v, float):
        return f"{v:.10g}"
    return str(v)


def hdf5_info(path: Path) -> dict:
    """Everything h5info reports about one HDF5 output, as plain data."""
    partial = path.name.endswith(schema.PARTIAL_SUFFIX)
    try:  # a stage still running holds the file: open a .partial file without the HDF5 lock
        f = open_output(path, driver_kwargs=dict(locking=False) if partial else None)
    except (TypeError, ValueError):  # h5py/HDF5 too old for locking=
        f = open_output(path)
    with f:
        root = {k: plain(f.attrs[k]) for k in f.attrs}
        info = {"file": str(path), "kind": "hdf5", "partial": partial,
                "complete": bool(root.get(schema.ATTR_COMPLETE, False)) and not partial,
                "provenance": {k: root[k] for k in PROVENANCE if k in root},
                "config_yaml": root.get(schema.ATTR_CONFIG, ""),
                "attrs": {k: v for k, v in root.items()
                          if k not in PROVENANCE + (schema.ATTR_CONFIG, schema.ATTR_COMPLETE)},
                "groups": [], "datasets": []}
        sizes = {g.name for _, g in size_groups(f)}

        def describe(obj):
            if hasattr(obj, "keys"):  # group
                out = {"name": obj.name, "size_group": obj.name in sizes,
                       "attrs": {k: plain(obj.attrs[k]) for k in obj.attrs},
                       "datasets": [], "groups": []}
                for key in obj:
                    child = obj.get(key)
                    if child is None:  # dangling link (VDS source missing is not this)
                        continue
                    sub = describe(child)
                    out["groups" if "groups" in sub else "datasets"].append(sub)
                return out
            d = {"name": obj.name.rsplit("/", 1)[-1], "shape": list(obj.shape),
                 "dtype": str(obj.dtype), "axes": plain(obj.attrs.get(schema.DATASET_ATTR_AXES, "")),
                 "virtual": bool(obj.is_virtual)}
            if obj.ndim == 1 and obj.shape[0] <= SHORT and obj.dtype.kind in "fiub":
                d["values"] = obj[...].tolist()
            return d

        top = describe(f)
        order = {g.name: L for L, g in size_groups(f)}  # /L4 before /L16
        info["groups"] = sorted(top["groups"], key=lambda g: (g["name"] not in order,
                                                              order.get(g["name"], 0), g["name"]))
        info["datasets"] = top["datasets"]
    return info


def model_info(path: Path) -> dict:
    """Metadata of a ``model.pt`` written by the train stage."""
    from ..superres.modelfile import load_model
    bank, meta = load_model(path)
    spec = dict(meta.get("spec", {}))
    return {"file": str(path), "kind": "model",
            "model": meta.get("model"), "dims": meta.get("dims"), "field": meta.get("field"),
            "blocking": meta.get("blocking"), "train_L": meta.get("train_L"),
            "temperatures": spec.pop("temperatures", None), "network": spec,
            "parameters": int(sum(p.numel() for p in bank.parameters())),
            "training": {k: meta.get(k) for k in ("epochs_run", "best_epoch",
                                                  "best_validation_loss", "stopped_early")},
            "history_length": len(meta.get("history") or []),
            "flow": meta.get("flow"), "exact_flow": meta.get("exact_flow"),
            "disorder": {k: meta[k] for k in (schema.ATTR_DISORDER_SAMPLES_USED,
                                              schema.ATTR_EQUILIBRATED_ONLY) if k in meta},
            "provenance": {k: v for k, v in (meta.get("provenance") or {}).items()
                           if k in PROVENANCE and k != schema.ATTR_STAGE},
            "config_yaml": (meta.get("provenance") or {}).get(schema.ATTR_CONFIG, "")}


def file_info(path) -> dict:
    path = Path(path)
    if path.is_file() and not path.name.endswith((".h5", ".h5" + schema.PARTIAL_SUFFIX)) \
            and zipfile.is_zipfile(path):  # torch.save writes a zip archive
        return model_info(path)
    return hdf5_info(path)


# ----------------------------------------------------------------------------- text output
def _config_lines(text: str, full: bool) -> list[str]:
    """The deck in full, or one line per top-level section (``model: name=ising dims=2 ...``)."""
    lines = text.rstrip().splitlines()
    if full:
        return lines
    try:
        import yaml
        deck = yaml.safe_load(text)
    except Exception:  # not YAML after all: show its first lines
        deck = None
    if not isinstance(deck, dict):
        return lines[:CONFIG_LINES] + (["..."] if len(lines) > CONFIG_LINES else [])

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and v:
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}={fmt(v)}"
    out = []
    for section, body in deck.items():
        line = f"{section}: " + (" ".join(flat(body)) if isinstance(body, dict) and body
                                 else "{}" if body == {} else fmt(body))
        out.append(line if len(line) <= 120 else line[:117] + "...")
    return out + ["(--config prints the full deck)"]


def _dataset_line(d: dict, indent: str) -> str:
    shape = "(" + ", ".join(map(str, d["shape"])) + ("," if len(d["shape"]) == 1 else "") + ")"
    s = f"{indent}{d['name']:<22} {shape:<24} {d['dtype']:<8}"
    if d["axes"]:
        s += f" [{d['axes']}]"
    if d["virtual"]:
        s += " virtual"
    if "values" in d:
        s += " = " + fmt(d["values"])
    return s.rstrip()


def _group_lines(g: dict, indent: str = "") -> list[str]:
    a = g["attrs"]
    head = [f"{k}={fmt(a[k])}" for k in GROUP_HEAD if k in a]
    if g["size_group"] and schema.GROUP_ATTR_SIZE_COMPLETE in a:
        head.insert(0, "size complete" if a[schema.GROUP_ATTR_SIZE_COMPLETE] else "SIZE INCOMPLETE")
        head.remove(f"size_complete={fmt(a['size_complete'])}")
    elif g["size_group"] and a.get(schema.GROUP_ATTR_SOURCE) == "monte_carlo":
        head.insert(0, "SIZE INCOMPLETE (no size_complete)")
    if g["size_group"] and a.get(schema.GROUP_ATTR_SOURCE) is not None:  # what it is, at a glance
        from ..analysis.certificate import status
        head.append({"monte_carlo": "", "certified": "CERTIFIED", "not_certified": "NOT CERTIFIED",
                     "approximate": "APPROXIMATE (exact=false)",
                     "unknown": "no certificate (written before certificates)"}[status(a)])
        head = [h for h in head if h]
    lines = [f"{indent}{g['name']}  " + "  ".join(head)]
    if schema.GROUP_ATTR_EQUILIBRATION in a:  # EA Monte Carlo: the per-sample certificate
        lines.append(f"{indent}  equilibration: {fmt(a[schema.GROUP_ATTR_EQUILIBRATION])}")
    if schema.ATTR_DISORDER_SAMPLES_USED in a:  # made from an EA ensemble: which samples
        lines.append(f"{indent}  {_used_line(a)}")
    rest = [f"{k}={fmt(v)}" for k, v in a.items()
            if k not in GROUP_HEAD + (schema.GROUP_ATTR_EQUILIBRATION,) + USED_KEYS]
    line = indent + "  @"
    for item in rest:  # wrap the remaining attributes at ~100 characters
        if len(line) + len(item) > 100 and line.strip() != "@":
            lines.append(line)
            line = indent + "   "
        line += " " + item
    if rest:
        lines.append(line)
    lines += [_dataset_line(d, indent + "  ") for d in g["datasets"]]
    for sub in g["groups"]:
        lines += _group_lines(sub, indent + "  ")
    return lines


USED_KEYS = (schema.ATTR_DISORDER_SAMPLES_USED, schema.ATTR_EQUILIBRATED_ONLY)
MAX_IDS = 32  # disorder sample ids shown


def _used_line(a: dict) -> str:
    """``disorder samples used: 3 [0, 2, 3], certified equilibrated only`` (the first
    ``MAX_IDS`` ids)."""
    ids = np.atleast_1d(np.asarray(plain(a[schema.ATTR_DISORDER_SAMPLES_USED]))).tolist()
    how = ("certified equilibrated only" if a.get(schema.ATTR_EQUILIBRATED_ONLY)
           else "not restricted to equilibrated ones")
    more = ", ..." if len(ids) > MAX_IDS else ""
    return (f"disorder samples used: {len(ids)} [{', '.join(map(str, ids[:MAX_IDS]))}{more}], "
            f"{how}")


def render(info: dict, full_config: bool = False) -> str:
    if info["kind"] == "model":
        return _render_model(info, full_config)
    p = info["provenance"]
    state = "complete" if info["complete"] else (
        "INCOMPLETE (a .partial file: the stage is running or was killed)" if info["partial"]
        else "INCOMPLETE (root attribute complete is false)")
    out = [f"{info['file']}: stage {p.get(schema.ATTR_STAGE, '?')}, {state}",
           "  " + ", ".join(f"{k}={fmt(v)}" for k, v in p.items() if k != schema.ATTR_STAGE)]
    if info["attrs"]:
        out.append("  @ " + " ".join(f"{k}={fmt(v)}" for k, v in info["attrs"].items()))
    if info["config_yaml"]:
        out.append("  config_yaml:")
        out += ["    " + line for line in _config_lines(info["config_yaml"], full_config)]
    out += [_dataset_line(d, "  ") for d in info["datasets"]]
    for g in info["groups"]:
        out += _group_lines(g)
    return "\n".join(out)


def _render_model(info: dict, full_config: bool) -> str:
    net, tr, p = info["network"], info["training"], info["provenance"]
    flow = info["flow"] or info["exact_flow"]
    out = [f"{info['file']}: trained super-resolution network",
           f"  model={info['model']} dims={info['dims']} field={info['field']} "
           f"blocking={info['blocking']} train_L={info['train_L']}",
           f"  temperatures ({len(info['temperatures'] or [])}) = {fmt(info['temperatures'])}",
           "  network: " + " ".join(f"{k}={fmt(v)}" for k, v in net.items())
           + f" parameters={info['parameters']}",
           "  training: " + " ".join(f"{k}={fmt(v)}" for k, v in tr.items())
           + f" history={info['history_length']} epochs",
           "  flow: " + ("none" if not flow else
                         ", ".join(f"{k}={fmt(v)}" for k, v in flow.items())
                         if isinstance(flow, dict) else fmt(flow)),
           "  " + ", ".join(f"{k}={fmt(v)}" for k, v in p.items())]
    if info.get("disorder"):
        out.insert(-1, "  " + _used_line(info["disorder"]))
    if info["config_yaml"]:
        out.append("  config_yaml:")
        out += ["    " + line for line in _config_lines(info["config_yaml"], full_config)]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = ToolParser(prog="h5info", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", metavar="FILE")
    ap.add_argument("--config", action="store_true", help="print the stored config_yaml in full")
    ap.add_argument("--json", action="store_true", help="machine-readable output (a JSON list)")
    args = ap.parse_args(argv)
    infos = []
    for i, path in enumerate(args.files):
        info = file_info(path)
        if args.json:
            infos.append(info)
        else:
            print(("\n" if i else "") + render(info, args.config), flush=True)
    if args.json:
        json.dump(infos, sys.stdout, indent=1, default=plain)
        sys.stdout.write("\n")
    return 0


def cli() -> int:
    return run_tool("h5info", main)


if __name__ == "__main__":
    sys.exit(cli())
