"""Typed, frozen run configuration loaded from a YAML input deck.

Every key of every section is a field of a frozen dataclass below; docs/inputs.md lists
them with types, defaults and meaning. :func:`load_config` collects *all* problems of a
deck (unknown keys with a did-you-mean, wrong types, values out of range, inconsistent
combinations) and raises one :class:`~hpc_rg.errors.ConfigError` holding one line per
problem, each naming the file, the key, the value given and what is accepted.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from .errors import ConfigError

MODELS = ("ising", "edwards_anderson", "phi4")
ALGORITHMS = {
    "ising": ("metropolis", "heatbath", "wolff", "swendsen_wang"),
    "edwards_anderson": ("metropolis", "heatbath"),
    "phi4": ("metropolis", "hmc", "langevin", "wolff"),
}
CLUSTER_ALGORITHMS = ("wolff", "swendsen_wang")
STAGES = ("sample", "train", "upscale", "analyze")
#: an integer key that may also be ``auto`` (resolved when the rank count is known)
IntOrAuto = Union[int, Literal["auto"]]


@dataclass(frozen=True)
class RunConfig:
    """``run:`` section: naming, output location, seed and device."""

    name: str = "hpc_rg"
    output: str = ""  #: output directory; default ``runs/<name>`` (relative to the working dir)
    seed: int = 12345
    device: Literal["auto", "cpu", "cuda"] = "auto"
    progress_seconds: float = 10.0  #: minimum wall time between rank-0 progress lines


@dataclass(frozen=True)
class ModelConfig:
    """``model:`` section. Which keys are accepted depends on ``name`` (see MODEL_KEYS)."""

    name: Literal["ising", "edwards_anderson", "phi4"] = "ising"
    dims: int = 2
    # ising: H = -J sum_<ij> s_i s_j - h sum_i s_i
    J: float = 1.0
    h: float = 0.0
    # edwards_anderson: H = -sum_<ij> J_ij s_i s_j, J_ij = +-1 or N(0, 1)
    disorder: Literal["pm1", "gaussian"] = "gaussian"
    disorder_samples: int = 1
    replicas: int = 2
    # phi4: parametrization 'bauer' scans kappa at fixed lam;
    #       parametrization 'bachtis' scans mu2 at fixed kappa, lam (see docs/inputs.md)
    parametrization: Literal["bauer", "bachtis"] = "bauer"
    kappa: float = 1.0
    lam: float = 0.02


MODEL_KEYS = {
    "ising": ("name", "dims", "J", "h"),
    "edwards_anderson": ("name", "dims", "disorder", "disorder_samples", "replicas"),
    "phi4": ("name", "dims", "parametrization", "kappa", "lam"),
}


@dataclass(frozen=True)
class RangeSpec:
    """A grid ``{min, max, count, spacing}``; geometric spacing is common for PT ladders."""

    min: float = 1.0
    max: float = 2.0
    count: int = 2
    spacing: Literal["linear", "geometric"] = "linear"

    def values(self) -> tuple[float, ...]:
        if self.count == 1:
            return (float(self.min),)
        if self.spacing == "geometric":
            r = (self.max / self.min) ** (1.0 / (self.count - 1))
            return tuple(float(self.min * r**i) for i in range(self.count))
        step = (self.max - self.min) / (self.count - 1)
        return tuple(float(self.min + step * i) for i in range(self.count))


@dataclass(frozen=True)
class TemperingConfig:
    """``sample.tempering:`` replica exchange between neighbouring temperatures."""

    enabled: bool = False
    every: int = 10  #: sweeps between exchange attempts
    warn_below: float = 0.1  #: warn when a pair's acceptance is below this


@dataclass(frozen=True)
class HmcConfig:
    """``sample.hmc:`` leapfrog HMC for phi4."""

    step_size: float = 0.1
    steps: int = 10


@dataclass(frozen=True)
class LangevinConfig:
    """``sample.langevin:`` Langevin (Euler-Maruyama; MALA accept/reject when metropolized)."""

    step_size: float = 0.01
    metropolized: bool = True


@dataclass(frozen=True)
class SampleConfig:
    """``sample:`` Monte Carlo stage."""

    L: int = 16
    temperatures: tuple[float, ...] = ()  #: list, or {min, max, count, spacing}; spin models
    couplings: tuple[float, ...] = ()  #: phi4 only: kappa (bauer) or mu2 (bachtis) grid
    algorithm: str = "metropolis"
    tempering: TemperingConfig = field(default_factory=TemperingConfig)
    ranks_per_replica: int = 1  #: slab domain decomposition along the first lattice axis
    chains: IntOrAuto = "auto"  #: chains per temperature (clean models); auto: fill the ranks
    thermalize: int = 1000  #: sweeps before the first kept configuration
    samples: int = 1000  #: configurations kept per chain
    thin: int = 10  #: sweeps between kept configurations
    chunk: int = 100  #: kept configurations per write / checkpoint
    metropolis_width: float = 1.0  #: phi4 Metropolis proposal half-width
    hmc: HmcConfig = field(default_factory=HmcConfig)
    langevin: LangevinConfig = field(default_factory=LangevinConfig)
    kernel: Literal["auto", "torch", "compiled"] = "auto"  #: checkerboard kernel (auto: fastest here)
    #: Monte Carlo also at these sizes (same temperatures, chains, samples): the L/2
    #: ensemble fixes the temperature rescaling; 2L, 4L are references for validation
    reference_sizes: tuple[int, ...] = ()

    @property
    def sizes(self) -> tuple[int, ...]:
        """Every lattice size sampled, main size first."""
        return (self.L,) + tuple(x for x in self.reference_sizes if x != self.L)


@dataclass(frozen=True)
class NetworkConfig:
    """``train.network:`` the fully convolutional super-resolution network."""

    depth: int = 3  #: convolution layers after the x2 nearest-neighbour upsampling
    width: int = 16  #: channels of the hidden layers
    kernel: int = 3  #: odd kernel size (circular padding keeps the lattice size)
    conditioned: bool = False  #: one temperature-conditioned model instead of one per T
    two_pass: bool = False  #: sample sublattice A, then B given A (fine-scale correlations)


@dataclass(frozen=True)
class FlowConfig:
    """``train.flow:`` flow super-resolution levels (``train.method: flow_rg`` or
    ``flow_checkerboard``), trained by reverse KL one level at a time."""

    local_flow: Literal["coupling", "continuous"] = "coupling"  #: the local bijection
    layers: int = 4  #: affine coupling layers per level
    width: int = 16  #: hidden channels of the conditioner CNNs
    depth: int = 2  #: convolutions per conditioner
    kernel: int = 3  #: odd kernel size (circular padding)
    sigma: float = 1.0  #: initial noise width (zero-sum / Gaussian)
    learn_sigma: bool = True
    z2: bool = True  #: Z2-equivariant couplings (needs model.h = 0)
    conditional: bool = False  #: feed U(coarse) to the conditioners
    scale_bound: float = 2.0  #: bound of the coupling log-scales
    n_freq: int = 4  #: continuous flow: basis functions (1 linear + sines)
    n_time: int = 3  #: continuous flow: Fourier time terms
    ode_steps: int = 16  #: continuous flow: RK4 steps
    learning_rate: float = 1e-3  #: Adam
    steps: int = 200  #: optimizer steps per level
    batch: int = 32  #: coarse configurations per rank and temperature per step
    transfer: bool = True  #: level k+1 starts from level k's weights
    retrain_steps: int = 0  #: levels >= 2: optimizer steps (0: ``steps``), Bauer's retraining
    retrain_lr_factor: float = 1.0  #: levels >= 2: learning rate x this (Bauer: 0.2)
    ess_patience: int = 0  #: stop a level when its averaged batch ESS/N stalls this long (0: off)
    alpha: float = 0.0  #: Ising relaxation shift (0: 2 d beta |J| + 0.1)
    reg_weight: float = 0.0  #: magnetization regulariser weight gamma (Shiina)
    reg_steps: int = 0  #: steps the regulariser is on (per level)
    reg_schedule: Literal["step", "linear"] = "step"  #: constant then off, or linear decay
    ir_matching: bool = False  #: phi4: learn the coarse hopping parameter with level 1 (Bauer)
    ir_langevin_steps: int = 40  #: Langevin steps moving the coarse fields per training step
    ir_grad_steps: int = 5  #: of which back-propagated through
    ir_tau: float = 0.05  #: Langevin step
    ir_hmc_trajectories: int = 60  #: exact HMC moves of stored coarse fields to the learned kappa
    reweight_ess: float = 0.85  #: R_W: resample the log Z reference set below this ESS/N
    uv_matching: bool = False  #: phi4: learn the fine hopping parameter of every level (Bauer)
    uv_reference: int = 256  #: exact fine-lattice samples per point for the log Z gradient
    uv_hmc_trajectories: int = 100  #: HMC trajectories thermalising that set at the start
    uv_refresh_trajectories: int = 5  #: HMC trajectories moving it to the current kappa
    uv_lr_factor: float = 0.1  #: the fine kappa's learning rate = the level's x this


@dataclass(frozen=True)
class TrainConfig:
    """``train:`` supervised training of the L/2 -> L network on blocked Monte Carlo pairs."""

    method: Literal["cnn", "flow_rg", "flow_checkerboard"] = "cnn"
    flow: FlowConfig = field(default_factory=FlowConfig)
    blocking: Literal["auto", "majority", "majority_random", "decimation", "sign_mean",
                      "overlap"] = "auto"
    network: NetworkConfig = field(default_factory=NetworkConfig)
    energy_weight: float = 0.0  #: gamma of the energy term gamma |E(sigma) - E(p)|^2
    epochs: int = 100  #: at most this many passes over the training split
    batch_size: int = 64  #: configurations per rank per optimizer step
    learning_rate: float = 1e-3
    validation_fraction: float = 0.1  #: held-out share of each temperature's samples
    patience: int = 10  #: stop after this many epochs without validation improvement
    checkpoint_every: int = 100  #: optimizer steps between resumable checkpoints
    deepspeed: dict = field(default_factory=dict)  #: merged over the built-in defaults


@dataclass(frozen=True)
class LatentHMCConfig:
    """``upscale.hmc:`` flow methods: HMC in the flow's latent space instead of independence
    Metropolis-Hastings (Shiina et al. 2021 sec. III C)."""

    #: per configuration and level (0: off, independence MH); auto: latent HMC with
    #: ``auto_trajectories`` when the ESS/N of the flow's proposals (a pilot of 128 per
    #: grid point and level) is below ``auto_below`` somewhere, else independence MH
    trajectories: IntOrAuto = "auto"
    leapfrog_steps: int = 10  #: leapfrog steps per trajectory
    step_size: float = 0.2  #: leapfrog step in latent units
    auto_below: float = 0.2  #: auto: proposals' ESS/N (pilot) under which latent HMC is used
    auto_trajectories: int = 60  #: auto: trajectories when latent HMC is chosen


@dataclass(frozen=True)
class UpscaleConfig:
    """``upscale:`` apply the trained network repeatedly, L -> 2L -> ... -> target_L."""

    target_L: int = 0  #: final size; sample.L * 2**k (0: 4 * sample.L)
    batch: int = 16  #: configurations per forward pass per rank (bounds the memory)
    samples: int = 0  #: configurations per temperature to upscale (0: all)
    rescale_temperature: bool = True  #: attach the RG-flow temperature to each level
    consistent: bool = False  #: spins: draw each block from its pre-images, block(SR) = input
    mh: bool = True  #: flow methods: independence Metropolis-Hastings on every level
    mh_chains: int = 1  #: flow methods: MH chains per temperature (the unit dealt to ranks)
    hmc: LatentHMCConfig = field(default_factory=LatentHMCConfig)
    min_effective: int = 100  #: flow levels: effectively independent configurations to certify


@dataclass(frozen=True)
class AnalyzeConfig:
    """``analyze:`` observables with errors of samples.h5 / upscaled.h5 -> analysis.h5."""

    sizes: tuple[int, ...] = ()  #: lattice sizes to analyse (empty: every size of the run)
    two_point_r: tuple[int, ...] = ()  #: distances of G(r) (empty: 1 .. L/2)
    jackknife_bins: int = 0  #: blocks for clean models (0: ~32, a multiple of the chains)
    exponents: bool = True  #: finite-size-scaling fits over the sizes (>= 2 sizes)
    plots: bool = True  #: PNGs of every plot kind that applies (tools/plot) in run.output/plots


@dataclass(frozen=True)
class Config:
    """The whole validated input deck. ``source`` is the file it came from."""

    run: RunConfig = field(default_factory=RunConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    upscale: UpscaleConfig = field(default_factory=UpscaleConfig)
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)
    source: str = "<memory>"
    #: sections written in the deck; ``--stage all`` runs sample plus the stages given
    present: tuple[str, ...] = ()
    #: how ``auto`` values were resolved, one sentence each (dry run, log)
    resolved: tuple[str, ...] = ()

    @property
    def output_dir(self) -> Path:
        return Path(self.run.output or f"runs/{self.run.name}")

    @property
    def parameter_grid(self) -> tuple[float, ...]:
        """Temperatures (spin models) or scanned couplings (phi4), in order."""
        return self.sample.couplings if self.model.name == "phi4" else self.sample.temperatures

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("source")
        d.pop("present")
        d.pop("resolved")
        return d

    def to_yaml(self) -> str:
        """The resolved config (defaults filled in, ranges expanded) as YAML."""
        return yaml.safe_dump(_plain(self.to_dict()), sort_keys=False)


SECTIONS = {"run": RunConfig, "model": ModelConfig, "sample": SampleConfig,
            "train": TrainConfig, "upscale": UpscaleConfig, "analyze": AnalyzeConfig}


# ----------------------------------------------------------------------------- loading
def load_config(path, overrides=(), world_size: int | None = None) -> Config:
    """Read, override and validate a YAML deck.

    Parameters
    ----------
    path : str or Path
        The input deck.
    overrides : sequence of str
        ``section.key=value`` (value parsed as YAML), applied before validation.
    world_size : int, optional
        Number of MPI ranks; enables the checks that depend on it.

    Raises
    ------
    ConfigError
        With one line per problem.
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such input file") from None
    except OSError as e:
        raise ConfigError(f"{where}: cannot read input file ({e.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "invalid YAML"
        raise ConfigError(f"{where}: not valid YAML{at}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: the top level must be a mapping of sections "
                          f"({', '.join(SECTIONS)}), got {type(raw).__name__}")
    problems: list[str] = []
    for item in overrides:
        _apply_override(raw, item, where, problems)
    cfg = _build_config(raw, where, problems)
    if cfg is not None:
        cfg = resolve_auto(cfg, world_size)
        validate(cfg, problems, world_size)
    if problems:
        raise ConfigError(problems)
    return cfg


def config_from_dict(raw: dict, where="<memory>", world_size=None) -> Config:
    """Build and validate a Config from a plain dict (tests, notebooks)."""
    problems: list[str] = []
    cfg = _build_config(dict(raw), where, problems)
    if cfg is not None:
        cfg = resolve_auto(cfg, world_size)
        validate(cfg, problems, world_size)
    if problems:
        raise ConfigError(problems)
    return cfg


def resolve_auto(cfg: Config, world_size: int | None) -> Config:
    """``cfg`` with ``sample.chains: auto`` replaced by a number of chains per grid point.

    auto is the smallest count that gives every replica group of a ``world_size``-rank job
    at least one chain, ``ceil(groups / grid points)`` (1 when the ranks are unknown, for
    Edwards-Anderson, whose unit is the disorder sample, and when there are at least as
    many grid points as groups -- so a deck that ran before gives the same chains, and
    the same results on every rank count, as before).
    """
    s = cfg.sample
    if s.chains != "auto":
        return cfg
    points = len(cfg.parameter_grid)
    groups = 1
    if world_size is not None and s.ranks_per_replica >= 1:
        groups = max(1, world_size // s.ranks_per_replica)
    chains = 1
    if cfg.model.name != "edwards_anderson" and points:
        chains = max(1, -(-groups // points))
    note = ()
    if cfg.model.name != "edwards_anderson":
        why = (f"{groups} replica group(s), {points} "
               f"{'coupling' if cfg.model.name == 'phi4' else 'temperature'}(s)")
        caution = "" if chains == 1 else (
            "; another rank count may resolve to other chains and other numbers: set "
            f"sample.chains: {chains} to keep them")
        note = (f"sample.chains: auto -> {chains} chain(s) per grid point ({why}){caution}",)
    return dataclasses.replace(cfg, sample=dataclasses.replace(s, chains=chains),
                               resolved=cfg.resolved + note)


def _apply_override(raw: dict, item: str, where: str, problems: list[str]) -> None:
    if "=" not in item or "." not in item.split("=", 1)[0]:
        problems.append(f"--set {item!r}: expected section.key=value, e.g. sample.L=32")
        return
    dotted, value = item.split("=", 1)
    keys = dotted.strip().split(".")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    node = raw
    for k in keys[:-1]:
        child = node.get(k)
        if child is None:
            child = node[k] = {}
        if not isinstance(child, dict):
            problems.append(f"--set {item!r}: {k} is not a section")
            return
        node = child
    node[keys[-1]] = parsed


def _build_config(raw: dict, where: str, problems: list[str]) -> Config | None:
    sections = {}
    for name, value in raw.items():
        if name not in SECTIONS:
            problems.append(f"{where}: unknown section {name!r}{_did_you_mean(name, SECTIONS)}; "
                            f"accepted sections: {', '.join(SECTIONS)}")
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            problems.append(f"{where}: section {name} must be a mapping of keys, "
                            f"got {_show(value)}")
            continue
        allowed = None
        if name == "model":
            mname = value.get("name", ModelConfig.name)
            allowed = MODEL_KEYS.get(mname)
        built = _build(SECTIONS[name], value, f"{where}: {name}", problems, allowed)
        if built is not None:
            sections[name] = built
    if problems:
        return None
    return Config(**sections, source=where, present=tuple(raw))


def _build(cls, data: dict, prefix: str, problems: list[str], allowed=None):
    """Make dataclass ``cls`` from ``data``, appending a line to ``problems`` per defect."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    accepted = list(allowed if allowed is not None else fields)
    kwargs = {}
    ok = True
    for key, value in data.items():
        if key not in accepted:
            extra = ""
            if key in fields and allowed is not None:
                extra = f" (not used by {cls.__name__.replace('Config', '').lower()} "\
                        f"name={data.get('name', 'ising')})"
            if not accepted:
                extra = " (this stage takes no keys yet)"
            problems.append(f"{prefix}.{key}: unknown key{extra}{_did_you_mean(key, accepted)}"
                            + (f"; accepted keys: {', '.join(accepted)}" if accepted else ""))
            ok = False
            continue
        converted = _convert(hints[key], value, f"{prefix}.{key}", problems)
        if converted is _BAD:
            ok = False
        else:
            kwargs[key] = converted
    return cls(**kwargs) if ok else None


_BAD = object()


def _convert(tp, value, key: str, problems: list[str]):
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if tp is TemperingConfig and isinstance(value, bool):
            return TemperingConfig(enabled=value)
        if not isinstance(value, dict):
            problems.append(f"{key}={_show(value)}: expected a mapping with keys "
                            f"{', '.join(f.name for f in dataclasses.fields(tp))}")
            return _BAD
        built = _build(tp, value, key, problems)
        return _BAD if built is None else built
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            problems.append(f"{key}={_show(value)}: accepted values are "
                            f"{', '.join(map(str, choices))}{_did_you_mean(str(value), choices)}")
            return _BAD
        return value
    if tp is dict:
        if not isinstance(value, dict):
            problems.append(f"{key}={_show(value)}: expected a mapping")
            return _BAD
        return dict(value)
    if tp == tuple[int, ...]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            problems.append(f"{key}={_show(value)}: expected a list of integers")
            return _BAD
        return tuple(value)
    if origin is tuple:  # a grid: list of numbers or {min, max, count, spacing}
        if isinstance(value, dict):
            spec = _build(RangeSpec, value, key, problems)
            if spec is None:
                return _BAD
            if spec.count < 1 or not (spec.max >= spec.min):
                problems.append(f"{key}={_show(value)}: need count >= 1 and max >= min")
                return _BAD
            if spec.spacing == "geometric" and spec.min <= 0:
                problems.append(f"{key}={_show(value)}: geometric spacing needs min > 0")
                return _BAD
            return spec.values()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            problems.append(f"{key}={_show(value)}: expected a non-empty list of numbers "
                            f"or a mapping {{min, max, count, spacing: linear|geometric}}")
            return _BAD
        return tuple(float(v) for v in value)
    if tp == IntOrAuto:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            problems.append(f"{key}={_show(value)}: expected an integer or auto")
            return _BAD
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{key}={_show(value)}: expected true or false")
            return _BAD
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            problems.append(f"{key}={_show(value)}: expected an integer")
            return _BAD
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{key}={_show(value)}: expected a finite number")
            return _BAD
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            problems.append(f"{key}={_show(value)}: expected a string")
            return _BAD
        return value
    raise TypeError(f"unsupported config type {tp}")  # a bug in this module, not user input


def _hints(cls) -> dict:
    import typing
    return typing.get_type_hints(cls)


def _did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    if text.endswith("\n..."):
        text = text[:-4].strip()
    if text.endswith("..."):
        text = text[:-3].strip()
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# -------------------------------------------------------------------------- validation
def work_units(cfg: Config) -> int:
    """Independent Markov chains of the sample stage (what ranks are spread over).

    Clean models: parameter points x chains (a tempering ladder may be spread over ranks).
    Edwards-Anderson: disorder samples (a replica group holds every replica and
    temperature of its samples, so overlaps stay local).
    """
    if cfg.model.name == "edwards_anderson":
        return cfg.model.disorder_samples
    return cfg.sample.chains * len(cfg.parameter_grid)


def validate(cfg: Config, problems: list[str], world_size: int | None = None) -> None:
    """Append one line per inconsistency of ``cfg`` to ``problems``."""
    w = cfg.source
    m, s, r = cfg.model, cfg.sample, cfg.run
    if m.dims not in (1, 2, 3):
        problems.append(f"{w}: model.dims={m.dims}: accepted values are 1, 2, 3")
    if m.name == "edwards_anderson":
        if m.dims not in (2, 3):
            problems.append(f"{w}: model.dims={m.dims}: edwards_anderson needs dims 2 or 3")
        if m.replicas < 2:
            problems.append(f"{w}: model.replicas={m.replicas}: need at least 2 replicas "
                            f"for overlaps")
        if m.disorder_samples < 1:
            problems.append(f"{w}: model.disorder_samples={m.disorder_samples}: need >= 1")
    if m.name == "phi4":
        if s.temperatures:
            problems.append(f"{w}: sample.temperatures: phi4 takes a coupling grid instead; "
                            f"use sample.couplings (kappa for parametrization bauer, "
                            f"mu2 for bachtis)")
        if not s.couplings:
            problems.append(f"{w}: sample.couplings: required for model phi4; give a list or "
                            f"{{min, max, count}} of {'kappa' if m.parametrization == 'bauer' else 'mu2'} "
                            f"(parametrization {m.parametrization})")
        if m.lam < 0:
            problems.append(f"{w}: model.lam={m.lam}: must be >= 0")
    else:
        if s.couplings:
            problems.append(f"{w}: sample.couplings: only for model phi4; "
                            f"{m.name} takes sample.temperatures")
        if not s.temperatures:
            problems.append(f"{w}: sample.temperatures: required for model {m.name}; give a "
                            f"list or {{min, max, count, spacing}}")
        elif min(s.temperatures) <= 0:
            problems.append(f"{w}: sample.temperatures={list(s.temperatures)}: "
                            f"temperatures must be > 0")
    accepted = ALGORITHMS.get(m.name, ())
    if s.algorithm not in accepted:
        problems.append(f"{w}: sample.algorithm={s.algorithm}: accepted for {m.name} are "
                        f"{', '.join(accepted)}{_did_you_mean(s.algorithm, accepted)}")
    if s.L < 2 or s.L % 2:
        problems.append(f"{w}: sample.L={s.L}: must be an even integer >= 2 "
                        f"(checkerboard updates on a periodic lattice)")
    if s.ranks_per_replica < 1:
        problems.append(f"{w}: sample.ranks_per_replica={s.ranks_per_replica}: must be >= 1")
    elif s.L >= 2 and s.L % s.ranks_per_replica:
        problems.append(f"{w}: sample.L={s.L} is not divisible by "
                        f"sample.ranks_per_replica={s.ranks_per_replica}")
    elif s.L // s.ranks_per_replica < 2:
        problems.append(f"{w}: sample.ranks_per_replica={s.ranks_per_replica}: slabs would be "
                        f"thinner than 2 planes for L={s.L}; use at most {s.L // 2}")
    if s.ranks_per_replica > 1 and s.algorithm in CLUSTER_ALGORITHMS:
        problems.append(f"{w}: sample.algorithm={s.algorithm} cannot run with "
                        f"sample.ranks_per_replica={s.ranks_per_replica}: cluster updates are "
                        f"not domain-decomposed; use ranks_per_replica: 1 or a local algorithm")
    if m.name == "ising" and s.algorithm in CLUSTER_ALGORITHMS and m.h != 0:
        problems.append(f"{w}: sample.algorithm={s.algorithm} needs model.h=0 (got {m.h}): "
                        f"cluster updates here are for the zero-field ferromagnet; use "
                        f"metropolis or heatbath")
    if s.ranks_per_replica > 1 and m.name == "phi4" and s.algorithm in ("hmc", "langevin"):
        problems.append(f"{w}: sample.algorithm={s.algorithm} cannot run with "
                        f"sample.ranks_per_replica={s.ranks_per_replica}; use metropolis")
    for key in ("thin", "samples", "chunk", "chains"):
        if getattr(s, key) < 1:
            problems.append(f"{w}: sample.{key}={getattr(s, key)}: must be >= 1")
    if s.thermalize < 0:
        problems.append(f"{w}: sample.thermalize={s.thermalize}: must be >= 0")
    if s.tempering.enabled and len(cfg.parameter_grid) < 2:
        problems.append(f"{w}: sample.tempering.enabled=true needs at least 2 temperatures")
    if s.tempering.every < 1:
        problems.append(f"{w}: sample.tempering.every={s.tempering.every}: must be >= 1")
    if s.tempering.enabled and m.name == "phi4":
        problems.append(f"{w}: sample.tempering: parallel tempering is for spin models "
                        f"(temperatures); phi4 scans couplings")
    if s.hmc.step_size <= 0 or s.hmc.steps < 1:
        problems.append(f"{w}: sample.hmc={dataclasses.asdict(s.hmc)}: need step_size > 0, "
                        f"steps >= 1")
    if s.langevin.step_size <= 0:
        problems.append(f"{w}: sample.langevin.step_size={s.langevin.step_size}: must be > 0")
    for size in s.reference_sizes:
        if size < 2 or size % 2 or (s.ranks_per_replica >= 1 and size % s.ranks_per_replica):
            problems.append(f"{w}: sample.reference_sizes={list(s.reference_sizes)}: {size} must "
                            f"be an even integer >= 2 divisible by sample.ranks_per_replica")
    if s.kernel == "compiled" and (m.name == "phi4" or s.algorithm not in ("metropolis",
                                                                            "heatbath")):
        problems.append(f"{w}: sample.kernel=compiled: only for ising/edwards_anderson with "
                        f"metropolis or heatbath; use kernel: torch")
    _validate_train(cfg, problems)
    _validate_upscale(cfg, problems)
    _validate_analyze(cfg, problems)
    if r.progress_seconds < 0:
        problems.append(f"{w}: run.progress_seconds={r.progress_seconds}: must be >= 0")
    units = work_units(cfg)
    if world_size is not None and s.ranks_per_replica >= 1 and units >= 1:
        # units < 1 (no grid, no disorder samples) is reported above, by the key at fault
        if world_size % s.ranks_per_replica:
            problems.append(f"{w}: sample.ranks_per_replica={s.ranks_per_replica} does not "
                            f"divide the {world_size} MPI ranks of this job")
        else:
            groups = world_size // s.ranks_per_replica
            if groups > units:
                problems.append(f"{w}: {world_size} MPI ranks make {groups} replica groups but "
                                f"the sample stage has only {units} "
                                f"{'disorder samples' if m.name == 'edwards_anderson' else 'independent chains'}"
                                f"; use at most {units * s.ranks_per_replica} ranks, more "
                                f"{'model.disorder_samples' if m.name == 'edwards_anderson' else 'sample.chains (or sample.chains: auto) or temperatures'}"
                                f", or a larger sample.ranks_per_replica")


def resolved_blocking(cfg: Config) -> str:
    """The blocking transform of ``train.blocking`` with ``auto`` resolved by model and dims."""
    b = cfg.train.blocking
    if b != "auto":
        return b
    if cfg.model.name == "edwards_anderson":
        return "overlap"
    if cfg.model.name == "phi4":
        return "sign_mean"
    return "decimation" if cfg.model.dims == 1 else "majority"


BLOCKINGS_FOR = {"ising": ("majority", "majority_random", "decimation"),
                 "edwards_anderson": ("overlap",),
                 "phi4": ("sign_mean", "decimation")}


def _validate_train(cfg: Config, problems: list[str]) -> None:
    w, t, m = cfg.source, cfg.train, cfg.model
    n = t.network
    if n.depth < 1 or n.width < 1 or n.kernel < 1 or n.kernel % 2 == 0:
        problems.append(f"{w}: train.network={_show(dataclasses.asdict(n))}: need depth >= 1, "
                        f"width >= 1 and an odd kernel >= 1")
    b = resolved_blocking(cfg)
    if b not in BLOCKINGS_FOR[m.name]:
        problems.append(f"{w}: train.blocking={t.blocking}: accepted for {m.name} are auto, "
                        f"{', '.join(BLOCKINGS_FOR[m.name])}")
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
    if t.method != "cnn":
        _validate_flow(cfg, problems)


def _validate_flow(cfg: Config, problems: list[str]) -> None:
    w, f, m = cfg.source, cfg.train.flow, cfg.model
    k = f"{w}: train.flow"
    if m.name not in ("phi4", "ising"):
        problems.append(f"{w}: train.method={cfg.train.method}: flows are for model phi4 and "
                        f"ising (continuous relaxation), not {m.name}; use method: cnn")
    if m.name == "ising" and m.h != 0:
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
    elif 0 < f.alpha and m.name == "ising" and cfg.sample.temperatures and \
            f.alpha <= 2 * m.dims * abs(m.J) / min(cfg.sample.temperatures):
        problems.append(f"{k}.alpha={f.alpha}: must exceed 2 dims |J| / T_min = "
                        f"{2 * m.dims * abs(m.J) / min(cfg.sample.temperatures):.4g} "
                        f"(positive-definite relaxation); or 0 for automatic")
    if f.reg_weight < 0 or f.reg_steps < 0:
        problems.append(f"{k}: reg_weight={f.reg_weight}, reg_steps={f.reg_steps}: must be >= 0")
    if f.local_flow == "continuous" and f.conditional:
        problems.append(f"{k}.local_flow=continuous: works only with conditional: false")
    if f.z2 and m.name == "ising" and m.h != 0:
        problems.append(f"{k}.z2=true needs model.h=0")
    if f.ir_matching and m.name != "phi4":
        problems.append(f"{k}.ir_matching=true: learns the coarse hopping parameter of phi4; "
                        f"model {m.name} has none (set ir_matching: false)")
    if f.uv_matching and (m.name != "phi4" or m.parametrization != "bauer"):
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


def _validate_upscale(cfg: Config, problems: list[str]) -> None:
    w, u, L = cfg.source, cfg.upscale, cfg.sample.L
    target = u.target_L or 4 * L
    k = target // L if L > 0 else 0
    if target <= L or target % L or k & (k - 1):
        problems.append(f"{w}: upscale.target_L={u.target_L}: must be sample.L={L} times a "
                        f"power of 2 (e.g. {2 * L}, {4 * L}, {8 * L})")
    if u.batch < 1:
        problems.append(f"{w}: upscale.batch={u.batch}: must be >= 1")
    if u.samples < 0:
        problems.append(f"{w}: upscale.samples={u.samples}: must be >= 0 (0 = all)")
    if u.consistent and (cfg.train.network.two_pass or cfg.model.name == "phi4"
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


def run_sizes(cfg: Config) -> tuple[int, ...]:
    """Every lattice size the run writes: Monte Carlo sizes, then the upscaled levels."""
    sizes = list(cfg.sample.sizes)
    if "upscale" in cfg.present or "train" in cfg.present:
        L, target = cfg.sample.L, cfg.upscale.target_L or 4 * cfg.sample.L
        while 0 < L < target:
            L *= 2
            sizes.append(L)
    return tuple(sorted(set(sizes)))


def _validate_analyze(cfg: Config, problems: list[str]) -> None:
    w, a = cfg.source, cfg.analyze
    have = run_sizes(cfg)
    bad = [L for L in a.sizes if L not in have]
    if bad:
        problems.append(f"{w}: analyze.sizes={_show(list(a.sizes))}: size {bad[0]} is not made "
                        f"by this run; sizes are {', '.join(map(str, have))}")
    if any(r < 0 for r in a.two_point_r):
        problems.append(f"{w}: analyze.two_point_r={_show(list(a.two_point_r))}: distances "
                        f"must be >= 0")
    if a.jackknife_bins == 1 or a.jackknife_bins < 0:
        problems.append(f"{w}: analyze.jackknife_bins={a.jackknife_bins}: must be 0 (auto) or >= 2")
