"""The frozen dataclasses of an input deck, one per YAML section, and :class:`Config`.

Every key of every section is a field here; docs/inputs.md lists them with types,
defaults and meaning. :mod:`.load` builds them from YAML, :mod:`.validate` checks them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

import yaml

from ..models.spec import MODELS, SPECS, ModelSpec, spec_for

#: the model names, and per model its algorithms, ``model:`` keys and blockings, in the
#: order of :mod:`hpc_rg.models.spec` (messages list them in this order)
ALGORITHMS = {name: spec.algorithms for name, spec in SPECS.items()}
MODEL_KEYS = {name: spec.keys for name, spec in SPECS.items()}
BLOCKINGS_FOR = {name: spec.blockings for name, spec in SPECS.items()}
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

    name: Literal[MODELS] = "ising"
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

    @property
    def spec(self) -> ModelSpec:
        """What the program knows about this model (:mod:`hpc_rg.models.spec`)."""
        return spec_for(self.name)


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
class EquilibrationConfig:
    """``sample.equilibration:`` the per-disorder-sample equilibration certificate
    (Edwards-Anderson; :mod:`hpc_rg.analysis.equilibration`)."""

    #: tempering round trips (summed over the sample's replicas) every sample must complete
    #: (0: no round-trip test, e.g. without parallel tempering)
    min_round_trips: int = 1
    #: the binning and identity tests fail beyond this many (Gaussian-equivalent) errors
    sigma: float = 4.0
    #: train, upscale and analyze use only the samples that passed (false: every sample;
    #: hpc_rg.io.equilibrated)
    only_passed: bool = True


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
    #: Edwards-Anderson only (ignored, and left out of the resolved config, otherwise)
    equilibration: EquilibrationConfig = field(default_factory=EquilibrationConfig)
    ranks_per_replica: int = 1  #: slab domain decomposition along the first lattice axis
    chains: IntOrAuto = "auto"  #: chains per temperature (clean models); auto: fill the ranks
    thermalize: int = 1000  #: sweeps before the first kept configuration
    samples: int = 1000  #: configurations kept per chain
    thin: int = 10  #: sweeps between kept configurations
    chunk: int = 100  #: kept configurations per write / checkpoint
    metropolis_width: float = 1.0  #: phi4 Metropolis proposal half-width
    hmc: HmcConfig = field(default_factory=HmcConfig)
    langevin: LangevinConfig = field(default_factory=LangevinConfig)
    #: spin kernel (auto: fastest here; msc: multi-spin coded, ±J models; compiled / torch: float
    #: checkerboard); see hpc_rg.mc.kernels
    kernel: Literal["auto", "msc", "torch", "compiled"] = "auto"
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
    #: odd kernel of a linear block convolution (exact FFT log-det) in front of the local
    #: flow (unconditional levels only); 0: off
    linear_kernel: int = 0
    n_freq: int = 4  #: continuous flow: basis functions (1 linear + sines)
    n_time: int = 3  #: continuous flow: Fourier time terms
    ode_steps: int = 16  #: continuous flow: RK4 steps
    learning_rate: float = 1e-3  #: Adam
    #: per level: constant, or cosine decay from learning_rate to 0 over the level's steps
    lr_schedule: Literal["constant", "cosine"] = "constant"
    steps: int = 200  #: optimizer steps per level
    batch: int = 32  #: coarse configurations per rank and temperature per step
    transfer: bool = True  #: level k+1 starts from level k's weights
    #: train level 1 only; every later level gets its weights unchanged (no training)
    reuse_first_level: bool = False
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
    #: fixed-point mode (issue #18): targets are the sample.L configurations blocked this
    #: many times (size sample.L / 2**k), inputs blocked once more; 0: the paper's mode
    target_blockings: int = 0
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

    #: Monte Carlo size the chain starts from: sample.L or one of sample.reference_sizes
    #: (0: sample.L); e.g. the L/2 reference, to compare a level with sample.L Monte Carlo
    input_L: int = 0
    #: block the input_L Monte Carlo configurations this many times before the first level,
    #: so the chain starts at input_L / 2**b (auto: train.target_blockings)
    input_blockings: IntOrAuto = "auto"
    target_L: int = 0  #: final size; start * 2**k (0: 4 * start, start = input_L / 2**b)
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
        if self.model.spec.has_temperature:
            return self.sample.temperatures
        return self.sample.couplings

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if not self.model.spec.disordered:
            d["sample"].pop("equilibration")
        d.pop("source")
        d.pop("present")
        d.pop("resolved")
        return d

    def to_yaml(self) -> str:
        """The resolved config (defaults filled in, ranges expanded) as YAML."""
        return yaml.safe_dump(_plain(self.to_dict()), sort_keys=False)


SECTIONS = {"run": RunConfig, "model": ModelConfig, "sample": SampleConfig,
            "train": TrainConfig, "upscale": UpscaleConfig, "analyze": AnalyzeConfig}


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj
