"""PNG of the temperature-rescaling curves of ``tools/rescale --plot``: the observables vs T
(Monte Carlo L/2 and blocked L) and the fitted flow f(T) with the identity line."""

from __future__ import annotations

import numpy as np

from ..analysis.rescale import FlowCurves


def plot_flow_curves(c: FlowCurves, path) -> None:
    """PNG: observables vs T (MC L/2 and blocked L) and f(T) vs T with the identity."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(c.observables)
    fig, axes = plt.subplots(1, n + 1, figsize=(4.2 * (n + 1), 3.6))
    for ax, k in zip(axes, c.observables):
        ax.errorbar(c.T_small, c.mc[k], c.mc_err[k], fmt="o-", ms=3, label=f"MC L={c.L // 2}")
        ax.errorbar(c.T, c.blocked[k], c.blocked_err[k], fmt="s--", ms=3,
                    label=f"blocked MC L={c.L}")
        ax.set_xlabel("T")
        ax.set_ylabel(k)
        ax.legend(fontsize=8)
    ax = axes[-1]
    lo, hi = float(np.nanmin(c.T)), float(np.nanmax(c.T))
    ax.plot([lo, hi], [lo, hi], "k:", lw=1, label="f(T) = T")
    if c.flow is not None:
        v = c.flow.valid
        ax.errorbar(c.flow.T[v], c.flow.f[v], np.nan_to_num(c.flow.f_err[v]), fmt="o-", ms=3,
                    label="f(T)")
        if (~v).any():
            ax.plot(c.flow.T[~v], c.flow.f[~v], "x", color="gray", label="not used")
    else:
        ax.text(0.5, 0.5, "no flow fitted", transform=ax.transAxes, ha="center")
    ax.set_xlabel("T")
    ax.set_ylabel("f(T)")
    ax.legend(fontsize=8)
    fig.suptitle(f"temperature flow of {c.blocking} blocking, L={c.L} -> {c.L // 2}")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as e:
        from ..errors import OutputError
        raise OutputError(f"{path}: cannot write plot ({e.strerror or e})") from None
    finally:
        plt.close(fig)
