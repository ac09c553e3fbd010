"""``snapshots``: one configuration across the super-resolution levels (Efthymiou Fig. 1
style): spins and EA overlaps in two colours, φ⁴ fields on a diverging colour map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.outputs import grid, read_configs, require_dataset
from ..errors import InputFileError
from ..io import schema
from .common import (SPIN_COLOURS, Skip, file_tag, fmt_value, model_title, new_figure, save_png,
                     temperature_indices)


def snapshot_panels(inp, t: int, n: int):
    """The arrays ``snapshots`` draws for temperature index ``t``, configuration ``n``.

    Returns [(label, L, value, array)] — label ``"MC"`` (the input, when samples.h5 is
    given) or ``"SR"``; ``value`` its temperature (T_eff for SR); ``array`` the full
    configuration (EA: overlap ρ) as stored, (L,)*dims.
    """
    inp.need("upscaled", "snapshots")
    levels = inp.levels(filtered=False)
    N = require_dataset(levels[0][1], schema.CONFIGS).shape[1]
    if not 0 <= n < N:
        raise InputFileError(f"{inp.upscaled.filename}: --config {n} out of range 0..{N - 1} "
                             f"({N} configurations per temperature)")
    panels = []
    if inp.samples is not None:
        L0, g0 = inp.input_group("snapshots")
        if inp.sizes is None or L0 in inp.sizes:
            # upscale.samples < all: row n descends from input n·C // N (hdf5-layout.md)
            src = n * int(levels[0][1].attrs.get(schema.GROUP_ATTR_INPUT_COUNT, N)) // N
            panels.append(("MC", L0, float(grid(g0)[t]), read_configs(g0, t, src, src + 1)[0]))
    for L, g in inp.levels():
        panels.append(("SR", L, float(grid(g)[t]), np.asarray(require_dataset(g, schema.CONFIGS)[t, n])))
    return panels


def middle_slice(a, dims):
    """2D view of a configuration: the array itself (2D), a row (1D), the middle z slice (3D+)."""
    a = np.asarray(a)
    if dims == 1:
        return a[None, :]
    while a.ndim > 2:
        a = a[..., a.shape[-1] // 2]
    return a


def plot_snapshots(inp, out, indices=None, n=0):
    """One configuration across the super-resolution levels, side by side."""
    from matplotlib.colors import ListedColormap

    sym = inp.scanned()
    paths = []
    nominal_T = inp.scan_grid()
    for t in temperature_indices(inp, indices, "snapshots", None):
        panels = snapshot_panels(inp, t, n)
        if not panels:
            raise Skip("--kind snapshots: no sizes left after --sizes")
        field = inp.spec.continuous
        ea = inp.spec.disordered
        w = 3.3 if inp.dims != 1 else 4.5
        fig, axes = new_figure(1, len(panels), (w * len(panels) + (1.0 if field else 0.6),
                                             4.0 if inp.dims != 1 else 2.2))
        if field:
            vmax = max(float(np.max(np.abs(a))) for *_, a in panels) or 1.0
            cmap, vmin = "RdBu_r", -vmax
        else:
            cmap, vmin, vmax = ListedColormap(SPIN_COLOURS), -1, 1
        im = None
        for ax, (src, L, value, a) in zip(axes, panels):
            img = middle_slice(a, inp.dims)
            im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                           aspect="equal" if inp.dims != 1 else "auto")
            ax.set_xticks([])
            ax.set_yticks([])
            what = f"{sym}_eff" if src == "SR" else sym
            ax.set_title(f"{'Monte Carlo' if src == 'MC' else 'super-resolved'} L={L}\n"
                         f"{fmt_value(value, what)}", fontsize=10)
        cb = fig.colorbar(im, ax=list(axes), shrink=0.8, pad=0.02)
        if field:
            cb.set_label("φ")
        else:
            cb.set_ticks([-0.5, 0.5])
            cb.set_ticklabels(["−1", "+1"])
            cb.set_label("ρ = s·s′ (overlap)" if ea else "spin s")
        extra = f", middle slice z={panels[-1][1] // 2} of the largest" if inp.dims >= 3 else ""
        fig.suptitle(f"{model_title(inp)}: configuration {n} at nominal {sym}={nominal_T[t]:.4g}"
                     f" across the levels{extra}", fontsize=11)
        paths.append(save_png(fig, Path(out) / f"snapshots_t{t:02d}_{file_tag(sym, nominal_T[t])}_n{n}.png"))
    return paths
