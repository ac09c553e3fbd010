"""The HDF5 output contract: every file, group, dataset and attribute name lives here.

docs/hdf5-layout.md describes the same layout for users; bump SCHEMA_VERSION when it changes.
"""

SCHEMA_VERSION = 1

# files in run.output
SAMPLES_FILE = "samples.h5"
UPSCALED_FILE = "upscaled.h5"
ANALYSIS_FILE = "analysis.h5"
CHECKPOINT_DIR = "checkpoints"
MODEL_FILE = "model.pt"  # trained super-resolution network (tensor-only torch file)
PARTIAL_SUFFIX = ".partial"

# root attributes (provenance)
ATTR_VERSION = "hpc_rg_version"
ATTR_SCHEMA = "schema_version"
ATTR_CONFIG = "config_yaml"
ATTR_CREATED = "created_utc"
ATTR_RANKS = "mpi_ranks"
ATTR_SEED = "seed"
ATTR_GIT = "git_commit"
ATTR_STAGE = "stage"
ATTR_COMPLETE = "complete"  # True only after the stage finished (the file was renamed too)
ATTR_WRITER = "writer"  # "mpio" or "vds"

# per lattice size group /L16, /L32, ...
def size_group(L: int) -> str:
    return f"L{int(L)}"


GROUP_ATTR_MODEL = "model"
#: models whose Monte Carlo groups hold replicas of disorder samples (DISORDERED_AXES), read
#: as replica-pair overlaps; the same as ModelSpec.disordered (tests/models check this)
DISORDERED_MODELS = ("edwards_anderson",)
#: models whose configurations are real fields (float32) rather than ±1 spins (int8); the
#: same as ModelSpec.continuous
CONTINUOUS_MODELS = ("phi4",)
GROUP_ATTR_DIMS = "dims"
GROUP_ATTR_L = "L"
GROUP_ATTR_SOURCE = "source"
SOURCES = ("monte_carlo", "superres", "superres_mh")
GROUP_ATTR_CHUNKS_DONE = "chunks_done"  # kept-configuration chunks fully written
GROUP_ATTR_SIZE_COMPLETE = "size_complete"  # every chunk of this size written
# Monte Carlo size groups: how the ensemble was made
GROUP_ATTR_ALGORITHM = "algorithm"
GROUP_ATTR_THERMALIZE = "thermalize"
GROUP_ATTR_THIN = "thin"
GROUP_ATTR_SAMPLES_PER_CHAIN = "samples_per_chain"
GROUP_ATTR_CHAINS = "chains"
GROUP_ATTR_TEMPERING = "tempering"  # parallel tempering on; its statistics: tempering_<key>
TEMPERING_PREFIX = "tempering_"
TEMPERING_ACCEPTANCE = TEMPERING_PREFIX + "acceptance"  # per neighbouring pair of the ladder
TEMPERING_ROUND_TRIPS = TEMPERING_PREFIX + "round_trips"
TEMPERING_ATTEMPTS = TEMPERING_PREFIX + "attempts"
GROUP_ATTR_SCANNED = "scanned"  # phi4: the scanned coupling, "kappa" or "mu2"
GROUP_ATTR_RANKS_PER_REPLICA = "ranks_per_replica"
GROUP_ATTR_SEED = "seed"
GROUP_ATTR_SWEEPS = "sweeps"
GROUP_ATTR_KERNEL = "kernel"  # the spin kernel that ran, and why (hpc_rg.mc.kernels)
# super-resolved level groups
GROUP_ATTR_LEVEL = "level"  # 1 = first upscaled size; made last at creation
GROUP_ATTR_INPUT_L = "input_L"  # the Monte Carlo size the chain's inputs were read at
# times the input_L configurations were blocked before level 1 (0: the chain starts at input_L)
GROUP_ATTR_INPUT_BLOCKINGS = "input_blockings"
# the network's train.target_blockings (0: nearest-neighbour pairs; k: fixed-point mode)
GROUP_ATTR_TARGET_BLOCKINGS = "target_blockings"
GROUP_ATTR_TRAIN_L = "train_L"
GROUP_ATTR_INPUT_COUNT = "input_count"
GROUP_ATTR_BLOCKING = "blocking"
GROUP_ATTR_RESCALED = "rescaled"
# the size L whose blocking flow f_L (L blocked vs L/2 Monte Carlo) labels the level's T_eff
GROUP_ATTR_FLOW_L = "flow_L"
# the level is larger than flow_L: its T_eff assumes f does not change with L (unmeasured)
GROUP_ATTR_FLOW_EXTRAPOLATED = "flow_extrapolated"
GROUP_ATTR_OVERLAP_CONFIGS = "overlap_configs"
GROUP_ATTR_NETWORK_TEMPERATURES = "network_temperatures"

# datasets in a size group
CONFIGS = "configs"  # int8 +-1 spins or float32 fields
ENERGY = "energy"  # per site
MAGNETIZATION = "magnetization"  # per site (signed)
OVERLAP = "overlap"  # EA: q per replica pair
LINK_OVERLAP = "link_overlap"  # EA: q_l per replica pair
PHI_MEAN = "phi_mean"  # phi4: spatial mean of phi per configuration
PHI2_MEAN = "phi2_mean"  # phi4: spatial mean of phi^2
ACTION = "action"  # phi4: total action
TEMPERATURES = "temperatures"
COUPLINGS = "couplings"
NOMINAL = "nominal_temperatures"  # super-resolved levels: the input grid point of each row
CONSISTENCY = "consistency"  # CNN levels: fraction of coarse sites with block(fine) == coarse
# flow levels corrected by Metropolis-Hastings (source = superres_mh)
MH_ACCEPTED = "mh_accepted"  # dataset (T, N) int8: step n of the chain accepted its proposal
MH_ACCEPTANCE = "acceptance"  # group attr (T,): accepted / proposed
ESS_PER_N = "ess_per_n"  # group attr (T,): ESS/N of the proposals' importance weights
REVERSE_KL = "reverse_kl"  # group attr (T,): log mean w - mean log w (nats)
TAU_INT = "tau_int"  # group attr (T,): integrated autocorrelation time of the chain's energy
DATASET_ATTR_AXES = "axes"  # names of the leading axes, comma separated
# EA Monte Carlo groups: the equilibration certificate (hpc_rg.analysis.equilibration)
EQUILIBRATED = "equilibrated"  # dataset (D,) bool: every test passed at every temperature
EQUILIBRATION_PASSED = "equilibration_passed"  # dataset (D, T) bool: tests passed at T
SAMPLE_ROUND_TRIPS = "round_trips"  # dataset (D,) int64: summed over replicas; -1: no PT
DRIFT_PREFIX = "drift_"  # datasets drift_<obs> (D, T): mean[S/2,S) - mean[S/4,S/2)
DRIFT_Z_PREFIX = "drift_z_"  # datasets drift_z_<obs> (D, T): drift / its error
DRIFT_OBSERVABLES = ("energy", "link_overlap", "overlap2")  # the <obs> of those names
IDENTITY_RESIDUAL = "identity_residual"  # dataset (D, T): e + (d/T)(1 - q_l), last bin
GROUP_ATTR_EQUILIBRATION = "equilibration"  # one-line summary of the certificate
GROUP_ATTR_EQUILIBRATED_COUNT = "equilibrated_count"  # samples equilibrated
GROUP_ATTR_DRIFT_LIMIT = "drift_limit"  # |drift_z| above this fails
GROUP_ATTR_IDENTITY_Z = "identity_z"  # (T,) Gaussian couplings: disorder-averaged test
GROUP_ATTR_IDENTITY_LIMIT = "identity_limit"  # |identity_z| above this fails (inf: untested)
# disorder-averaged relative growth of q² from the first to the second half of the kept
# configurations (colder temperatures), its z over samples and the warning limit
GROUP_ATTR_ENSEMBLE_DRIFT = "ensemble_drift_q2"
GROUP_ATTR_ENSEMBLE_DRIFT_Z = "ensemble_drift_q2_z"
GROUP_ATTR_ENSEMBLE_DRIFT_LIMIT = "ensemble_drift_q2_limit"
# the check across sizes (hpc_rg.pipeline.size_check), on the larger group of each pair of
# neighbouring Monte Carlo sizes of one samples.h5: chi_SG (EA) or N<m^2> must not fall
# below the smaller size's
GROUP_ATTR_SIZE_CHECK = "size_check"  # one-line verdict
GROUP_ATTR_SIZE_CHECK_PASSED = "size_check_passed"  # bool
GROUP_ATTR_SIZE_CHECK_AGAINST = "size_check_against"  # int: the smaller size
GROUP_ATTR_SIZE_CHECK_MIN_Z = "size_check_min_z"  # smallest per-temperature z
GROUP_ATTR_SIZE_CHECK_LOG_RATIO = "size_check_log_ratio"  # mean ln(chi_L / chi_small)
GROUP_ATTR_SIZE_CHECK_LOG_RATIO_ERR = "size_check_log_ratio_err"
GROUP_ATTR_SIZE_CHECK_LOG_RATIO_Z = "size_check_log_ratio_z"
GROUP_ATTR_SIZE_CHECK_LIMITS = "size_check_limits"  # (per-temperature, combined) one-sided
GROUP_ATTR_EQUILIBRATION_SIGMA = "equilibration_sigma"
GROUP_ATTR_MIN_ROUND_TRIPS = "min_round_trips"
# which disorder samples a downstream output used (hpc_rg.io.equilibrated): attributes of
# upscaled.h5 level groups and analysis.h5 groups, keys of the model.pt metadata
ATTR_DISORDER_SAMPLES_USED = "disorder_samples_used"  # int64 (D_used,): ids in samples.h5
ATTR_EQUILIBRATED_ONLY = "equilibrated_only"  # bool: restricted to certified samples

# leading axes
CLEAN_AXES = ("temperature", "sample")
DISORDERED_AXES = ("disorder", "temperature", "sample", "replica")
PAIR_AXES = ("disorder", "temperature", "sample", "pair")
