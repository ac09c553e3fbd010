"""The plot kinds, which models and files each applies to, and :func:`make_plots`."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputFileError
from ..models.spec import MODELS, spec_for
from .common import Skip
from .correlation import plot_correlation
from .curves import plot_binder, plot_curves
from .flow_diagnostics import plot_ess
from .histograms import plot_histograms
from .phi4 import plot_phi4
from .snapshots import plot_snapshots
from .tempering import plot_tempering

KINDS = ("histograms", "curves", "binder", "phi4", "snapshots", "correlation", "tempering", "ess")


def _models(applies) -> tuple[str, ...]:
    return tuple(name for name in MODELS if applies(spec_for(name)))


#: models a kind applies to: histograms and curves need clean spins, binder overlaps
APPLIES = {"histograms": _models(lambda s: s.field == "spin" and not s.disordered),
           "curves": _models(lambda s: s.field == "spin" and not s.disordered),
           "binder": _models(lambda s: s.disordered), "phi4": _models(lambda s: s.continuous),
           "snapshots": MODELS, "correlation": MODELS, "tempering": MODELS, "ess": MODELS}
#: files a kind needs: "samples", "upscaled", "both" or "any"
NEEDS = {"histograms": "both", "curves": "any", "binder": "samples", "phi4": "any",
         "snapshots": "upscaled", "correlation": "any", "tempering": "samples", "ess": "upscaled"}


def make_plots(inp, out, kinds=("all",), indices=None, config=0, max_configs=2000, verbose=False,
               echo=True):
    """Write the plots of ``kinds`` for ``inp``; returns the PNG paths (each printed on
    stdout as it is written when ``echo``).

    A kind asked for by name that does not apply (model, missing file or data) raises
    InputFileError; with ``all`` it is skipped (a note on stderr with ``verbose``).
    """
    explicit = "all" not in kinds
    todo = [k for k in KINDS if k in kinds] if explicit else list(KINDS)
    plotters = {"histograms": lambda: plot_histograms(inp, out, indices),
                "curves": lambda: plot_curves(inp, out),
                "binder": lambda: plot_binder(inp, out),
                "phi4": lambda: plot_phi4(inp, out),
                "snapshots": lambda: plot_snapshots(inp, out, indices, config),
                "correlation": lambda: plot_correlation(inp, out, indices, max_configs),
                "tempering": lambda: plot_tempering(inp, out),
                "ess": lambda: plot_ess(inp, out)}
    files = ", ".join(f.filename for f in (inp.samples, inp.upscaled) if f is not None)
    paths = []
    made_dir = False
    for k in todo:
        try:
            if inp.model not in APPLIES[k]:
                raise Skip(f"{files}: --kind {k} needs model "
                           f"{' or '.join(APPLIES[k])}, the data are {inp.model}")
            need = NEEDS[k]
            if need in ("samples", "both"):
                inp.need("samples", k)
            if need in ("upscaled", "both"):
                inp.need("upscaled", k)
            if not made_dir:
                Path(out).mkdir(parents=True, exist_ok=True)
                made_dir = True
            new = plotters[k]()
        except Skip as e:
            if explicit:
                raise InputFileError(str(e)) from None
            if verbose:
                print(f"plot: skipped {k}: {e}", file=sys.stderr)
            continue
        if echo:
            for p in new:
                print(p, flush=True)
        paths += new
    return paths
