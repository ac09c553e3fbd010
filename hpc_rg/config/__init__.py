"""Typed, frozen run configuration loaded from a YAML input deck.

:mod:`.sections` holds the frozen dataclass of each YAML section and :class:`Config`;
:mod:`.load` reads a deck (YAML, ``--set`` overrides, type coercion); :mod:`.resolve`
turns ``auto`` values into numbers and derives work units and sizes; :mod:`.validate`
and :mod:`.validate_stages` check keys against each other. Every problem of a deck
becomes one line of a single :class:`~hpc_rg.errors.ConfigError`.
"""

from .load import config_from_dict, load_config
from .resolve import (resolve_auto, resolved_blocking, run_sizes, upscale_input_L,
                      upscale_input_blockings, upscale_start_L,
                      upscale_levels, work_units)
from .sections import (ALGORITHMS, BLOCKINGS_FOR, CLUSTER_ALGORITHMS, MODEL_KEYS, MODELS,
                       SECTIONS, STAGES, AnalyzeConfig, Config, FlowConfig, HmcConfig,
                       IntOrAuto, LangevinConfig, LatentHMCConfig, ModelConfig,
                       NetworkConfig, RangeSpec, RunConfig, SampleConfig, TemperingConfig,
                       TrainConfig, UpscaleConfig)
from .validate import validate

__all__ = [
    "ALGORITHMS", "BLOCKINGS_FOR", "CLUSTER_ALGORITHMS", "MODEL_KEYS", "MODELS", "SECTIONS",
    "STAGES", "AnalyzeConfig", "Config", "FlowConfig", "HmcConfig", "IntOrAuto",
    "LangevinConfig", "LatentHMCConfig", "ModelConfig", "NetworkConfig", "RangeSpec",
    "RunConfig", "SampleConfig", "TemperingConfig", "TrainConfig", "UpscaleConfig",
    "config_from_dict", "load_config", "resolve_auto", "resolved_blocking", "run_sizes",
    "upscale_input_L", "upscale_input_blockings", "upscale_start_L", "upscale_levels", "validate", "work_units",
]
