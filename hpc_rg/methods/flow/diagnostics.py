"""What a flow-upscaled level says about itself: its group attributes (how it was made),
and after the run its diagnostics per grid point (acceptance, ESS/N and reverse KL of the
proposals, τ_int of the chains) and its certificate (:mod:`hpc_rg.analysis.certificate`)."""

from __future__ import annotations

import numpy as np

from ...io import schema


def level_attrs(cfg, meta, spec, level: int, Lp: int, N: int, N_all: int, temps,
                how: str) -> dict:
    """Group attributes of level ``level`` (size ``Lp``) made at file creation."""
    f, u = cfg.train.flow, cfg.upscale
    fine = meta.get("fine_couplings")
    attrs = {schema.GROUP_ATTR_MODEL: cfg.model.name, schema.GROUP_ATTR_DIMS: cfg.model.dims,
             schema.GROUP_ATTR_L: Lp,
             schema.GROUP_ATTR_SOURCE: "superres_mh" if u.mh else "superres",
             schema.GROUP_ATTR_LEVEL: level, schema.GROUP_ATTR_INPUT_L: cfg.sample.L,
             schema.GROUP_ATTR_TRAIN_L: cfg.sample.L, schema.GROUP_ATTR_INPUT_COUNT: N_all,
             schema.GROUP_ATTR_BLOCKING: "", schema.GROUP_ATTR_RESCALED: bool(fine),
             schema.GROUP_ATTR_OVERLAP_CONFIGS: False,
             schema.GROUP_ATTR_NETWORK_TEMPERATURES: np.asarray(temps, np.float64),
             "method": meta["method"], "mh_chains": min(u.mh_chains, N),
             "local_flow": f.local_flow, "correction": how}
    if u.hmc.trajectories:
        h = u.hmc
        attrs.update(hmc_trajectories=h.trajectories, hmc_leapfrog_steps=h.leapfrog_steps,
                     hmc_step_size=h.step_size)
    if not spec.continuous:
        attrs["relaxation_alpha"] = np.asarray([t["alpha"] for t in meta["targets"]])
    if meta.get("coarse_couplings") is not None:  # IR matching: κ_L of the coarse action
        attrs["ir_coarse_kappa"] = np.asarray(meta["coarse_couplings"], dtype=np.float64)
    if fine:  # UV matching: the fine κ this level samples (= its effective couplings)
        attrs["uv_fine_kappa"] = np.asarray(fine[level - 1], dtype=np.float64)
    return attrs


def finish_levels(up, h5):
    """Collective: every level's diagnostics and certificate as group attributes of ``h5``;
    returns (summary lines, certificates, worst acceptance) of the upscaler ``up``."""
    from ...flows.sampler import LevelStats
    comms, sizes, n_T = up.comms, up.sizes, len(up.temps)
    rows = []
    for ui in up.mine:
        t = up.units[ui][0]
        lo, hi = up.unit_rows(ui)
        for li, Lp in enumerate(sizes):
            series = h5.read(f"{schema.size_group(Lp)}/{up.spec.chain_observable}",
                             (t, slice(lo, hi)))
            rows.append((li, t, ui, up.states[ui][li].stats.to_list(), _tau(series), hi - lo))
    rows = sorted(sum(comms.world.allgather(rows), []), key=lambda r: (r[0], r[1], r[2]))
    all_acc, level_stats = [], []
    for li, Lp in enumerate(sizes):
        acc, ess, kl, tau, n_acc = (np.full(n_T, np.nan) for _ in range(5))
        for t in range(n_T):
            mine_t = [r for r in rows if r[0] == li and r[1] == t]
            tot = LevelStats()
            for r in mine_t:
                tot = tot.merge(LevelStats.from_list(r[3]))
            acc[t], ess[t], kl[t] = tot.acceptance, tot.ess_per_n, tot.reverse_kl
            n_acc[t] = tot.n_acc
            taus = [(r[4], r[5]) for r in mine_t if np.isfinite(r[4])]
            if taus:
                tau[t] = sum(a * n for a, n in taus) / sum(n for _, n in taus)
        all_acc += list(acc)
        level_stats.append((acc, ess, kl, tau, n_acc))
        h5.set_attrs(schema.size_group(Lp), {schema.MH_ACCEPTANCE: acc, schema.ESS_PER_N: ess,
                                             schema.REVERSE_KL: kl, schema.TAU_INT: tau})
    certs = comms.bcast_root(_certificates(up.cfg, h5, sizes, level_stats, up.N, up.C, up.spec)
                             if comms.is_root else None)
    summary = []
    for li, Lp in enumerate(sizes):
        attrs, c = certs[li]
        h5.set_attrs(schema.size_group(Lp), attrs)
        acc, ess, kl, tau, _ = level_stats[li]
        summary += [f"L={Lp:<5d} {up.spec.point_name}={up.temps[t]:<9.5f} "
                    f"acceptance={acc[t]:.3f} ESS/N={ess[t]:.3f} KL={kl[t]:.4f} "
                    f"tau_int={tau[t]:.2f} N_eff={c.n_effective[t]:.0f} "
                    f"{'certified' if c.certified_points[t] else 'NOT certified'}"
                    + _z_text(attrs, t) for t in range(n_T)]
    return summary, [c for _, c in certs], float(np.nanmin(all_acc))


def _certificates(cfg, h5, sizes, level_stats, N: int, C: int, spec) -> list:
    """(attrs, Certificate) per level (rank 0): see :mod:`hpc_rg.analysis.certificate`."""
    from ...analysis import certificate as cert
    from ..certify import level_attrs as certificate_attrs
    hmc = cfg.upscale.hmc
    out = []
    for li, Lp in enumerate(sizes):
        g = schema.size_group(Lp)
        acc, _, _, tau, n_acc = level_stats[li]
        n_T = len(acc)
        if not cfg.upscale.mh:
            c = cert.approximate("flow", n_T, "uncorrected flow samples (upscale.mh: false) are "
                                 "approximate; set upscale.mh: true to make them exact")
        elif hmc.trajectories:
            moved = h5.read(f"{g}/{schema.MH_ACCEPTED}").sum(axis=1)
            c = cert.certify_hmc(acc, moved, N)
        else:
            c = cert.certify_mh(tau, n_acc.astype(np.int64), N // C, C,
                                cfg.upscale.min_effective)
        grid = h5.read(f"{g}/{spec.grid}")
        # latent-HMC rows are independent (their tau ~ 1/2); MH rows are C chains per point
        attrs = certificate_attrs(cfg, h5, Lp, c, grid, spec.point_name,
                                  1 if hmc.trajectories else C, interpolate=False)
        out.append((attrs, c))
    return out


def _z_text(attrs: dict, t: int) -> str:
    zs = [f"z({k[2:]})={attrs[k][t]:+.1f}" for k in sorted(attrs) if k.startswith("z_")
          and np.isfinite(attrs[k][t])]
    return (" vs MC: " + " ".join(zs)) if zs else ""


def _tau(series) -> float:
    """τ_int of one chain's observable series (NaN when too short or constant)."""
    from ...flows.mh import chain_autocorr_time
    s = np.asarray(series, dtype=np.float64)
    if s.size < 4 or not np.all(np.isfinite(s)) or np.ptp(s) == 0:
        return float("nan")
    try:
        return float(np.asarray(chain_autocorr_time(s)[0]).reshape(-1)[0])
    except (ValueError, FloatingPointError):
        return float("nan")
