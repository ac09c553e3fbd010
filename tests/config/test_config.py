"""Every config error message: one line each, naming file, key, value and what is accepted."""

import pytest

from hpc_rg.config import load_config
from hpc_rg.errors import ConfigError

GOOD = """
run: {name: t, output: OUT, seed: 1}
model: {name: ising, dims: 2}
sample: {L: 8, temperatures: [2.0, 3.0], thermalize: 10, samples: 10, thin: 1}
"""


def problems(write_yaml, text, **kw):
    path = write_yaml(text)
    with pytest.raises(ConfigError) as e:
        load_config(path, **kw)
    for line in e.value.problems:
        assert str(path) in line or line.startswith("--set"), line
        assert "\n" not in line
    return e.value.problems


def test_good_config_loads_and_resolves(write_yaml):
    cfg = load_config(write_yaml(GOOD))
    assert cfg.sample.temperatures == (2.0, 3.0)
    assert cfg.model.J == 1.0 and cfg.sample.algorithm == "metropolis"
    with pytest.raises(Exception):
        cfg.sample.L = 4  # frozen
    assert "temperatures:\n  - 2.0" in cfg.to_yaml()


def test_range_temperatures(write_yaml):
    cfg = load_config(write_yaml(GOOD.replace("[2.0, 3.0]", "{min: 1, max: 4, count: 3, spacing: geometric}")))
    assert cfg.sample.temperatures == pytest.approx((1.0, 2.0, 4.0))
    cfg = load_config(write_yaml(GOOD.replace("[2.0, 3.0]", "{min: 1, max: 2, count: 3}")))
    assert cfg.sample.temperatures == pytest.approx((1.0, 1.5, 2.0))


def test_unknown_key_did_you_mean(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("thin: 1", "thinn: 1"))
    assert "sample.thinn: unknown key" in p and "did you mean 'thin'" in p and "accepted keys" in p


def test_unknown_section(write_yaml):
    (p,) = problems(write_yaml, GOOD + "sampel: {}\n")
    assert "unknown section 'sampel'" in p and "did you mean 'sample'" in p


def test_wrong_types_all_reported(write_yaml):
    ps = problems(write_yaml, GOOD.replace("L: 8", "L: eight").replace("seed: 1", "seed: 1.5"))
    assert len(ps) == 2
    assert any("sample.L=eight: expected an integer" in p for p in ps)
    assert any("run.seed=1.5: expected an integer" in p for p in ps)


def test_bad_choice(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("name: ising", "name: isin"))
    assert "model.name=isin: accepted values are ising, edwards_anderson, phi4" in p
    assert "did you mean 'ising'" in p


def test_model_keys_depend_on_model(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("dims: 2}", "dims: 2, replicas: 4}"))
    assert "model.replicas: unknown key (not used by model name=ising)" in p


def test_algorithm_per_model(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("thin: 1", "thin: 1, algorithm: hmc"))
    assert "sample.algorithm=hmc: accepted for ising are metropolis, heatbath, wolff, swendsen_wang" in p


def test_L_divisible_by_ranks_per_replica(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("L: 8", "L: 30").replace("thin: 1", "thin: 1, ranks_per_replica: 4"))
    assert "sample.L=30 is not divisible by sample.ranks_per_replica=4" in p


def test_odd_L(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("L: 8", "L: 7"))
    assert "sample.L=7: must be an even integer" in p


def test_cluster_with_decomposition(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("thin: 1", "thin: 1, algorithm: wolff, ranks_per_replica: 2"))
    assert "cannot run with sample.ranks_per_replica=2" in p


def test_more_ranks_than_work(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("thin: 1", "thin: 1, chains: 1"), world_size=4)
    assert "4 MPI ranks make 4 replica groups but the sample stage has only 2 independent chains" in p
    assert "sample.chains: auto" in p  # the way out is named


@pytest.mark.parametrize("temps, ranks, rpr, chains", [
    ("[2.0]", 2, 1, 2), ("[2.0]", 1, 1, 1), ("[2.0]", None, 1, 1), ("[2.0, 3.0]", 4, 1, 2),
    ("[2.0, 3.0]", 3, 1, 2), ("[2.0, 2.2, 2.4]", 2, 1, 1), ("[2.0]", 4, 2, 2), ("[2.0]", 256, 1, 256)])
def test_chains_auto_fills_the_replica_groups(write_yaml, temps, ranks, rpr, chains):
    """Default chains: auto -> ceil(groups / grid points): every group has work, and a deck
    with at least as many temperatures as groups keeps the one chain it always had."""
    text = GOOD.replace("[2.0, 3.0]", temps).replace("thin: 1", f"thin: 1, ranks_per_replica: {rpr}")
    cfg = load_config(write_yaml(text), world_size=ranks)
    assert cfg.sample.chains == chains
    (note,) = cfg.resolved
    assert note.startswith(f"sample.chains: auto -> {chains} chain(s) per grid point")
    assert ("set sample.chains" in note) == (chains > 1)
    explicit = load_config(write_yaml(text.replace("thin: 1,", "thin: 1, chains: 3,")))
    assert explicit.sample.chains == 3 and explicit.resolved == ()


def test_chains_auto_is_not_for_edwards_anderson_and_bad_values_are_named(write_yaml):
    ea = GOOD.replace("model: {name: ising, dims: 2}",
                      "model: {name: edwards_anderson, dims: 3, disorder_samples: 4}")
    cfg = load_config(write_yaml(ea), world_size=4)
    assert cfg.sample.chains == 1 and cfg.resolved == ()
    (p,) = problems(write_yaml, GOOD.replace("thin: 1", "thin: 1, chains: many"))
    assert "sample.chains=many: expected an integer or auto" in p
    (p,) = problems(write_yaml, GOOD.replace("thin: 1", "thin: 1, chains: 0"), world_size=2)
    assert "sample.chains=0: must be >= 1" in p  # and no "0 independent chains" line


@pytest.mark.parametrize("ranks", [None, 1, 2, 8])
def test_missing_grid_is_named_not_the_rank_count(write_yaml, ranks):
    """A deck without its grid gets exactly the line that names the missing key, on any rank
    count (before: "... has only 0 independent chains; use at most 0 ranks")."""
    phi4 = GOOD.replace("model: {name: ising, dims: 2}", "model: {name: phi4, dims: 2, lam: 0.02}") \
        .replace("temperatures: [2.0, 3.0], ", "")
    (p,) = problems(write_yaml, phi4, world_size=ranks)
    assert "sample.couplings: required for model phi4" in p and "kappa" in p
    for model in ("ising", "edwards_anderson"):
        text = GOOD.replace("name: ising", f"name: {model}").replace("dims: 2", "dims: 3") \
            .replace("temperatures: [2.0, 3.0], ", "").replace("dims: 3}", "dims: 3, disorder_samples: 8}"
                                                                if model == "edwards_anderson" else "dims: 3}")
        (p,) = problems(write_yaml, text, world_size=ranks)
        assert f"sample.temperatures: required for model {model}" in p
    ea0 = GOOD.replace("model: {name: ising, dims: 2}",
                       "model: {name: edwards_anderson, dims: 3, disorder_samples: 0}")
    (p,) = problems(write_yaml, ea0, world_size=ranks)
    assert "model.disorder_samples=0: need >= 1" in p


def test_ranks_not_multiple_of_slab(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("thin: 1", "thin: 1, ranks_per_replica: 2"), world_size=3)
    assert "ranks_per_replica=2 does not divide the 3 MPI ranks" in p


def test_phi4_needs_couplings(write_yaml):
    text = GOOD.replace("model: {name: ising, dims: 2}", "model: {name: phi4, dims: 2, lam: 0.02}")
    ps = problems(write_yaml, text)
    assert any("sample.temperatures: phi4 takes a coupling grid instead" in p for p in ps)
    assert any("sample.couplings: required for model phi4" in p for p in ps)


def test_tempering_needs_two_temperatures(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("[2.0, 3.0]", "[2.0]").replace("thin: 1", "thin: 1, tempering: true"))
    assert "tempering.enabled=true needs at least 2 temperatures" in p


def test_negative_temperature(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("[2.0, 3.0]", "[-1.0, 3.0]"))
    assert "temperatures must be > 0" in p


def test_invalid_yaml(write_yaml):
    (p,) = problems(write_yaml, "run: {name: [\n")
    assert "not valid YAML" in p


def test_top_level_not_mapping(write_yaml):
    (p,) = problems(write_yaml, "- 1\n- 2\n")
    assert "top level must be a mapping" in p


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(tmp_path / "nope.yaml")
    assert "no such input file" in str(e.value)


def test_overrides(write_yaml):
    cfg = load_config(write_yaml(GOOD), overrides=["sample.L=16", "sample.tempering.every=3",
                                                   "run.device=cpu"])
    assert cfg.sample.L == 16 and cfg.sample.tempering.every == 3 and cfg.run.device == "cpu"
    (p,) = problems(write_yaml, GOOD, overrides=["sampleL=16"])
    assert "expected section.key=value" in p


def test_analyze_section_keys(write_yaml):
    (p,) = problems(write_yaml, GOOD + "analyze: {epochs: 3}\n")
    assert "analyze.epochs: unknown key; accepted keys: sizes, two_point_r, jackknife_bins, exponents" in p
    cfg = load_config(write_yaml(GOOD + "analyze: {two_point_r: [1, 2], exponents: false}\n"))
    assert cfg.analyze.two_point_r == (1, 2) and cfg.analyze.exponents is False


def test_train_and_upscale_keys(write_yaml):
    cfg = load_config(write_yaml(GOOD + "train: {epochs: 3, network: {depth: 2}, "
                                 "deepspeed: {zero_optimization: {stage: 1}}}\n"
                                 "upscale: {target_L: 64}\n"))
    assert cfg.train.epochs == 3 and cfg.train.network.depth == 2
    assert cfg.train.deepspeed == {"zero_optimization": {"stage": 1}}
    assert cfg.upscale.target_L == 64
    ps = problems(write_yaml, GOOD + "train: {blocking: overlap, network: {kernel: 4}, "
                                     "validation_fraction: 1.5, deepspeed: 3}\n"
                                     "upscale: {target_L: 48}\n")
    text = "\n".join(ps)
    assert "train.deepspeed=3: expected a mapping" in text
    ps = problems(write_yaml, GOOD + "train: {blocking: overlap, network: {kernel: 4}, "
                                     "validation_fraction: 1.5}\nupscale: {target_L: 48}\n")
    text = "\n".join(ps)
    assert "train.blocking=overlap: accepted for ising are auto, majority" in text
    assert "odd kernel" in text and "train.validation_fraction=1.5" in text
    assert "upscale.target_L=48: must be sample.L=8 times a power of 2" in text


def test_reference_sizes(write_yaml):
    cfg = load_config(write_yaml(GOOD + "".join([])), overrides=["sample.reference_sizes=[4,16]"])
    assert cfg.sample.sizes == (8, 4, 16)
    (p,) = problems(write_yaml, GOOD, overrides=["sample.reference_sizes=[7]"])
    assert "sample.reference_sizes=[7]: 7 must be an even integer" in p


def test_every_shipped_input_is_valid():
    from pathlib import Path
    for deck in sorted((Path(__file__).resolve().parents[2] / "inputs").glob("*.yaml")):
        load_config(deck)


def test_cluster_needs_zero_field(write_yaml):
    (p,) = problems(write_yaml, GOOD.replace("dims: 2}", "dims: 2, h: 0.1}").replace("thin: 1", "thin: 1, algorithm: wolff"))
    assert "sample.algorithm=wolff needs model.h=0" in p


def test_ea_ranks_limited_by_disorder_samples(write_yaml):
    text = GOOD.replace("model: {name: ising, dims: 2}", "model: {name: edwards_anderson, dims: 3, disorder_samples: 2}")
    (p,) = problems(write_yaml, text, world_size=4)
    assert "4 replica groups but the sample stage has only 2 disorder samples" in p
    load_config(write_yaml(text.replace("thin: 1", "thin: 1, ranks_per_replica: 2")), world_size=4)


def test_consistent_upscale_needs_one_pass_spins(write_yaml):
    (p,) = problems(write_yaml, GOOD + "train: {network: {two_pass: true}}\n"
                    "upscale: {consistent: true}\n")
    assert "upscale.consistent=true: needs the one-pass spin output" in p
    cfg = load_config(write_yaml(GOOD + "upscale: {consistent: true}\n"))
    assert cfg.upscale.consistent is True


def test_fixed_point_mode_keys(write_yaml):
    """train.target_blockings / upscale.input_blockings (issue #18): the chain starts at the
    blocked size, auto follows the training, and impossible values are named."""
    from hpc_rg.config import upscale_input_blockings, upscale_levels, upscale_start_L
    deck = GOOD.replace("L: 8,", "L: 32,")
    cfg = load_config(write_yaml(deck + "train: {target_blockings: 2}\nupscale: {target_L: 64}\n"))
    assert upscale_input_blockings(cfg) == 2 and upscale_start_L(cfg) == 8
    assert upscale_levels(cfg) == [16, 32, 64]
    cfg = load_config(write_yaml(deck + "train: {target_blockings: 2}\n"
                                        "upscale: {input_blockings: 0}\n"))
    assert upscale_start_L(cfg) == 32 and upscale_levels(cfg) == [64, 128]
    ps = problems(write_yaml, deck + "train: {target_blockings: 4}\n"
                                     "upscale: {input_blockings: -1, target_L: 48}\n")
    text = "\n".join(ps)
    assert "train.target_blockings=4: sample.L=32 must be divisible by 2**5 = 32 with input " \
           "size sample.L / 2**5 >= 2" in text
    assert "upscale.input_blockings=-1: must be auto or >= 0" in text
    (p,) = problems(write_yaml, deck + "upscale: {input_blockings: 1, target_L: 48}\n")
    assert "upscale.target_L=48: must be sample.L/2**1=16 times a power of 2" in p
    ps = problems(write_yaml, deck.replace("name: ising, dims: 2", "name: ising, dims: 2, h: 0")
                  + "train: {method: flow_rg, target_blockings: 1}\n")
    assert any("train.target_blockings=1: the fixed-point mode is for train.method: cnn" in p
               for p in ps)


def test_flow_linear_kernel_and_reuse_first_level_keys(write_yaml):
    """train.flow.linear_kernel (issue #17): 0 or odd >= 1, unconditional levels only;
    train.flow.reuse_first_level: not with keys that train or retrain levels >= 2."""
    base = GOOD.replace("dims: 2}", "dims: 2, h: 0}")

    def deck(keys):
        return base + "train: {method: flow_rg, flow: {" + keys + "}}\n"
    cfg = load_config(write_yaml(deck("")))
    assert cfg.train.flow.linear_kernel == 0 and cfg.train.flow.reuse_first_level is False
    cfg = load_config(write_yaml(deck("linear_kernel: 5, reuse_first_level: true")))
    assert cfg.train.flow.linear_kernel == 5 and cfg.train.flow.reuse_first_level is True
    for bad in (-1, 2, 4):
        (p,) = problems(write_yaml, deck(f"linear_kernel: {bad}"))
        assert f"train.flow.linear_kernel={bad}: must be 0 (off) or an odd integer >= 1" in p
    (p,) = problems(write_yaml, deck("linear_kernel: 3, conditional: true"))
    assert "train.flow.linear_kernel=3: works only with conditional: false" in p
    (p,) = problems(write_yaml, deck("linear_kernel: 2.5"))
    assert "train.flow.linear_kernel" in p
    (p,) = problems(write_yaml, deck("reuse_first_level: true, retrain_steps: 10, "
                                     "retrain_lr_factor: 0.2"))
    assert "train.flow.reuse_first_level=true: levels >= 2 are not trained" in p
    assert "retrain_steps=10, retrain_lr_factor=0.2 cannot apply" in p
    load_config(write_yaml(deck("retrain_steps: 10, retrain_lr_factor: 0.2")))


def test_flow_lr_schedule_key(write_yaml):
    """train.flow.lr_schedule: constant (default) or cosine; one line for anything else and
    for a cosine schedule beside a DeepSpeed scheduler."""
    base = GOOD.replace("dims: 2}", "dims: 2, h: 0}")

    def deck(keys, extra=""):
        return base + "train: {method: flow_rg, flow: {" + keys + "}" + extra + "}\n"
    assert load_config(write_yaml(deck(""))).train.flow.lr_schedule == "constant"
    assert load_config(write_yaml(deck("lr_schedule: cosine"))).train.flow.lr_schedule == \
        "cosine"
    (p,) = problems(write_yaml, deck("lr_schedule: cosin"))
    assert "train.flow.lr_schedule=cosin: accepted values are constant, cosine" in p
    (p,) = problems(write_yaml, deck("lr_schedule: cosine",
                                     ", deepspeed: {scheduler: {type: WarmupLR}}"))
    assert "train.flow.lr_schedule=cosine: train.deepspeed also sets a scheduler" in p
    load_config(write_yaml(deck("", ", deepspeed: {scheduler: {type: WarmupLR}}")))
