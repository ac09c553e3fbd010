"""Cross-key checks of the ``train:`` (CNN and flow), ``upscale:`` and ``analyze:`` sections."""

from __future__ import annotations

import dataclasses

from .messages import show
from .resolve import resolved_blocking, run_sizes
from .sections import Config


def validate_train(cfg: Config, problems: list[str]) -> None:
    """``train:`` (network, blocking, optimiser) and, for the flow methods, ``train.flow``."""
    w, t, m = cfg.source, cfg.train, cfg.model
    blockings = m.spec.blockings
    n = t.network
    if n.depth < 1 or n.width < 1 or n.kernel < 1 or n.kernel % 2 == 0:
        problems.append(f"{w}: train.network={show(dataclasses.asdict(n))}: need depth >= 1, "
                        f"width >= 1 and an odd kernel >= 1")
    b = resolved_blocking(cfg)
    if b not in blockings:
        problems.append(f"{w}: train.blocking={t.blocking}: accepted for {m.name} are auto, "
                        f"{', '.join(blockings)}")
    elif b.startswith("majority") and m.dims == 1:
        problems.append(f"{w}: train.blocking={t.blocking}: majority rule with b=2 is for "
                        f"dims 2 and 3; use decimation in 1D")
    for key in ("epochs", "batch_size", "patience", "checkpoint_every"):
        if getattr(t, key) < 1:
            problems.append(f"{w}: train.{key}={getattr(t, key)}: must be >= 1")
    if t.learning_rate <= 0:
        problems.append(f"{w}: train.learning_rate={t.learning_rate}: must be > 0")
    if t.energy_weight < 0:
        problems.append(f"{w}: train.energy_weight={t.energy_weight}: must be >= 0")
    if not 0 < t.validation_fraction < 1:
        problems.append(f"{w}: train.validation_fraction={t.validation_fraction}: must be "
                        f"between 0 and 1 (exclusive)")
    if cfg.sample.L < 4:
        problems.append(f"{w}: sample.L={cfg.sample.L}: training pairs need L >= 4 "
                        f"(input L/2 >= 2)")
    k = t.target_blockings
    if k < 0:
        problems.append(f"{w}: train.target_blockings={k}: must be >= 0 (0: the paper's "
                        f"nearest-neighbour pairs)")
    elif k > 0 and t.method != "cnn":
        problems.append(f"{w}: train.target_blockings={k}: the fixed-point mode is for "
                        f"train.method: cnn (got {t.method}); set train.target_blockings: 0")
    elif k > 0 and (cfg.sample.L % 2 ** (k + 1) or cfg.sample.L >> (k + 1) < 2):
        problems.append(f"{w}: train.target_blockings={k}: sample.L={cfg.sample.L} must be "
                        f"divisible by 2**{k + 1} = {2 ** (k + 1)} with input size "
                        f"sample.L / 2**{k + 1} >= 2")
    if t.method != "cnn":
        _validate_flow(cfg, problems)


def _validate_flow(cfg: Config, problems: list[str]) -> None:
    """``train.flow`` of the flow methods."""
    w, f, m = cfg.source, cfg.train.flow, cfg.model
    spec = m.spec
    k = f"{w}: train.flow"
    if not spec.flow_scalars:  # no flow level is defined for it
        problems.append(f"{w}: train.method={cfg.train.method}: flows are for model phi4 and "
                        f"ising (continuous relaxation), not {m.name}; use method: cnn")
    if "h" in spec.keys and m.h != 0:
        problems.append(f"{w}: train.method={cfg.train.method}: the Ising relaxation needs "
                        f"model.h=0 (got {m.h})")
    for key in ("layers", "width", "depth", "steps", "batch", "n_freq", "n_time", "ode_steps"):
        if getattr(f, key) < 1:
            problems.append(f"{k}.{key}={getattr(f, key)}: must be >= 1")
    if f.kernel < 1 or f.kernel % 2 == 0:
        problems.append(f"{k}.kernel={f.kernel}: must be an odd integer >= 1")
    for key in ("sigma", "learning_rate", "scale_bound", "retrain_lr_factor", "uv_lr_factor"):
        if getattr(f, key) <= 0:
            problems.append(f"{k}.{key}={getattr(f, key)}: must be > 0")
    for key in ("retrain_steps", "ess_patience"):
        if getattr(f, key) < 0:
            problems.append(f"{k}.{key}={getattr(f, key)}: must be >= 0 (0: off)")
    if f.alpha < 0:
        problems.append(f"{k}.alpha={f.alpha}: must be >= 0 (0: automatic)")
    elif 0 < f.alpha and "J" in spec.keys and cfg.sample.temperatures and \
            f.alpha <= 2 * m.dims * abs(m.J) / min(cfg.sample.temperatures):
        problems.append(f"{k}.alpha={f.alpha}: must exceed 2 dims |J| / T_min = "
                        f"{2 * m.dims * abs(m.J) / min(cfg.sample.temperatures):.4g} "
                        f"(positive-definite relaxation); or 0 for automatic")
    if f.reg_weight < 0 or f.reg_steps < 0:
        problems.append(f"{k}: reg_weight={f.reg_weight}, reg_steps={f.reg_steps}: must be >= 0")
    if f.local_flow == "continuous" and f.conditional:
        problems.append(f"{k}.local_flow=continuous: works only with conditional: false")
    if f.linear_kernel < 0 or (f.linear_kernel > 0 and f.linear_kernel % 2 == 0):
        problems.append(f"{k}.linear_kernel={f.linear_kernel}: must be 0 (off) or an odd "
                        f"integer >= 1")
    elif f.linear_kernel > 0 and f.conditional:
        problems.append(f"{k}.linear_kernel={f.linear_kernel}: works only with conditional: "
                        f"false (the block convolution moves block means); set linear_kernel: "
                        f"0 or conditional: false")
    if f.reuse_first_level:
        clash = [(key, getattr(f, key), off) for key, off in
                 (("retrain_steps", "0"), ("retrain_lr_factor", "1.0"), ("uv_matching", "false"))
                 if str(getattr(f, key)).lower() != off]
        if clash:
            problems.append(f"{k}.reuse_first_level=true: levels >= 2 are not trained (they "
                            f"reuse level 1's weights), so "
                            f"{', '.join(f'{key}={v}' for key, v, _ in clash)} cannot apply; "
                            f"set {', '.join(f'{key}: {off}' for key, _, off in clash)} "
                            f"or reuse_first_level: false")
    if f.lr_schedule != "constant" and "scheduler" in cfg.train.deepspeed:
        problems.append(f"{k}.lr_schedule={f.lr_schedule}: train.deepspeed also sets a "
                        f"scheduler; keep one (lr_schedule: constant or no train.deepspeed."
                        f"scheduler)")
    if f.z2 and "h" in spec.keys and m.h != 0:
        problems.append(f"{k}.z2=true needs model.h=0")
    if f.ir_matching and "kappa" not in spec.keys:
        problems.append(f"{k}.ir_matching=true: learns the coarse hopping parameter of phi4; "
                        f"model {m.name} has none (set ir_matching: false)")
    if f.uv_matching and ("kappa" not in spec.keys or m.parametrization != "bauer"):
        problems.append(f"{k}.uv_matching=true: learns the fine hopping parameter of phi4 in "
                        f"the Bauer parametrization (model.parametrization: bauer); set "
                        f"uv_matching: false")
    if f.uv_matching and f.ir_matching:
        problems.append(f"{k}: ir_matching and uv_matching are both true; choose one (Bauer "
                        f"et al. learn either the coarse or the fine couplings)")
    if f.uv_reference < 2 or f.uv_hmc_trajectories < 1 or f.uv_refresh_trajectories < 1:
        problems.append(f"{k}: uv_reference={f.uv_reference}, uv_hmc_trajectories="
                        f"{f.uv_hmc_trajectories}, uv_refresh_trajectories="
                        f"{f.uv_refresh_trajectories}: need uv_reference >= 2, "
                        f"uv_hmc_trajectories >= 1, uv_refresh_trajectories >= 1")
    if not 1 <= f.ir_grad_steps <= f.ir_langevin_steps or f.ir_tau <= 0 or \
            f.ir_hmc_trajectories < 1 or not 0 < f.reweight_ess <= 1:
        problems.append(f"{k}: ir_langevin_steps={f.ir_langevin_steps}, ir_grad_steps="
                        f"{f.ir_grad_steps}, ir_tau={f.ir_tau}, ir_hmc_trajectories="
                        f"{f.ir_hmc_trajectories}, reweight_ess={f.reweight_ess}: need "
                        f"1 <= ir_grad_steps <= ir_langevin_steps, ir_tau > 0, "
                        f"ir_hmc_trajectories >= 1, 0 < reweight_ess <= 1")


def validate_upscale(cfg: Config, problems: list[str]) -> None:
    """``upscale:`` target size, batches, consistency and the latent-HMC correction."""
    w, u = cfg.source, cfg.upscale
    L = u.input_L or cfg.sample.L
    if u.input_L and u.input_L not in cfg.sample.sizes:
        problems.append(f"{w}: upscale.input_L={u.input_L}: must be a Monte Carlo size of the "
                        f"run, sample.L={cfg.sample.L} or one of sample.reference_sizes="
                        f"{list(cfg.sample.reference_sizes)}")
        L = cfg.sample.L
    elif u.input_L and u.input_L != cfg.sample.L and cfg.train.method != "cnn":
        problems.append(f"{w}: upscale.input_L={u.input_L}: train.method={cfg.train.method} "
                        f"upscales from sample.L={cfg.sample.L} only; remove upscale.input_L "
                        f"or use train.method: cnn")
    what = "sample.L" if L == cfg.sample.L else "upscale.input_L"
    b = u.input_blockings
    if b == "auto":
        b = max(cfg.train.target_blockings, 0)
    elif b < 0:
        problems.append(f"{w}: upscale.input_blockings={b}: must be auto or >= 0")
        b = 0
    elif b > 0 and cfg.train.method != "cnn":
        problems.append(f"{w}: upscale.input_blockings={b}: blocked chain inputs are for "
                        f"train.method: cnn (got {cfg.train.method}); set it to 0")
        b = 0
    if b > 0:
        if L % 2 ** b or L >> b < 2:
            problems.append(f"{w}: upscale.input_blockings={b}: {what}={L} must be divisible "
                            f"by 2**{b} = {2 ** b} with a start size >= 2")
            b = 0
        else:
            what, L = f"{what}/2**{b}", L >> b
    target = u.target_L or 4 * L
    k = target // L if L > 0 else 0
    if target <= L or target % L or k & (k - 1):
        problems.append(f"{w}: upscale.target_L={u.target_L}: must be {what}={L} times a "
                        f"power of 2 (e.g. {2 * L}, {4 * L}, {8 * L})")
    if u.batch < 1:
        problems.append(f"{w}: upscale.batch={u.batch}: must be >= 1")
    if u.samples < 0:
        problems.append(f"{w}: upscale.samples={u.samples}: must be >= 0 (0 = all)")
    if u.consistent and (cfg.train.network.two_pass or cfg.model.spec.continuous
                         or resolved_blocking(cfg) in ("majority_random", "sign_mean")):
        problems.append(f"{w}: upscale.consistent=true: needs the one-pass spin output and "
                        f"deterministic blocking (majority, overlap or decimation); set "
                        f"upscale.consistent: false or train.network.two_pass: false")
    h = u.hmc
    if h.trajectories == "auto":  # resolved by the upscale stage from the trained flow
        if h.auto_trajectories < 1 or not 0 <= h.auto_below <= 1:
            problems.append(f"{w}: upscale.hmc: auto_trajectories={h.auto_trajectories}, "
                            f"auto_below={h.auto_below}: need auto_trajectories >= 1 and "
                            f"0 <= auto_below <= 1")
        h = dataclasses.replace(h, trajectories=0)
    if h.trajectories < 0 or h.leapfrog_steps < 1 or not h.step_size > 0:
        problems.append(f"{w}: upscale.hmc: trajectories={h.trajectories}, leapfrog_steps="
                        f"{h.leapfrog_steps}, step_size={h.step_size}: need trajectories >= 0, "
                        f"leapfrog_steps >= 1, step_size > 0")
    elif h.trajectories and (cfg.train.method == "cnn" or not u.mh):
        problems.append(f"{w}: upscale.hmc.trajectories={h.trajectories}: latent HMC corrects "
                        f"the flow methods only; needs train.method flow_rg or "
                        f"flow_checkerboard and upscale.mh: true (or set trajectories: 0)")
    if u.mh_chains < 1:
        problems.append(f"{w}: upscale.mh_chains={u.mh_chains}: must be >= 1")
    elif u.samples and u.samples < u.mh_chains:
        problems.append(f"{w}: upscale.mh_chains={u.mh_chains}: more chains than "
                        f"upscale.samples={u.samples}")


def validate_analyze(cfg: Config, problems: list[str]) -> None:
    """``analyze:`` sizes, distances and jackknife bins."""
    w, a = cfg.source, cfg.analyze
    have = run_sizes(cfg)
    bad = [L for L in a.sizes if L not in have]
    if bad:
        problems.append(f"{w}: analyze.sizes={show(list(a.sizes))}: size {bad[0]} is not made "
                        f"by this run; sizes are {', '.join(map(str, have))}")
    if any(r < 0 for r in a.two_point_r):
        problems.append(f"{w}: analyze.two_point_r={show(list(a.two_point_r))}: distances "
                        f"must be >= 0")
    if a.jackknife_bins == 1 or a.jackknife_bins < 0:
        problems.append(f"{w}: analyze.jackknife_bins={a.jackknife_bins}: must be 0 (auto) or >= 2")
