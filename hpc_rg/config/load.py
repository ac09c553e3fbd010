"""Reading an input deck: YAML, ``--set`` overrides, type coercion into the sections.

:func:`load_config` collects *all* problems of a deck (unknown keys with a did-you-mean,
wrong types, values out of range, inconsistent combinations) and raises one
:class:`~hpc_rg.errors.ConfigError` holding one line per problem, each naming the file,
the key, the value given and what is accepted.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Literal, get_args, get_origin

import yaml

from ..errors import ConfigError
from .messages import did_you_mean, show
from .resolve import resolve_auto
from .sections import (MODEL_KEYS, SECTIONS, Config, IntOrAuto, ModelConfig, RangeSpec,
                       TemperingConfig)
from .validate import validate


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
            problems.append(f"{where}: unknown section {name!r}{did_you_mean(name, SECTIONS)}; "
                            f"accepted sections: {', '.join(SECTIONS)}")
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            problems.append(f"{where}: section {name} must be a mapping of keys, "
                            f"got {show(value)}")
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
            problems.append(f"{prefix}.{key}: unknown key{extra}{did_you_mean(key, accepted)}"
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
            problems.append(f"{key}={show(value)}: expected a mapping with keys "
                            f"{', '.join(f.name for f in dataclasses.fields(tp))}")
            return _BAD
        built = _build(tp, value, key, problems)
        return _BAD if built is None else built
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            problems.append(f"{key}={show(value)}: accepted values are "
                            f"{', '.join(map(str, choices))}{did_you_mean(str(value), choices)}")
            return _BAD
        return value
    if tp is dict:
        if not isinstance(value, dict):
            problems.append(f"{key}={show(value)}: expected a mapping")
            return _BAD
        return dict(value)
    if tp == tuple[int, ...]:
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            problems.append(f"{key}={show(value)}: expected a list of integers")
            return _BAD
        return tuple(value)
    if origin is tuple:  # a grid: list of numbers or {min, max, count, spacing}
        if isinstance(value, dict):
            spec = _build(RangeSpec, value, key, problems)
            if spec is None:
                return _BAD
            if spec.count < 1 or not (spec.max >= spec.min):
                problems.append(f"{key}={show(value)}: need count >= 1 and max >= min")
                return _BAD
            if spec.spacing == "geometric" and spec.min <= 0:
                problems.append(f"{key}={show(value)}: geometric spacing needs min > 0")
                return _BAD
            return spec.values()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            problems.append(f"{key}={show(value)}: expected a non-empty list of numbers "
                            f"or a mapping {{min, max, count, spacing: linear|geometric}}")
            return _BAD
        return tuple(float(v) for v in value)
    if tp == IntOrAuto:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            problems.append(f"{key}={show(value)}: expected an integer or auto")
            return _BAD
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{key}={show(value)}: expected true or false")
            return _BAD
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            problems.append(f"{key}={show(value)}: expected an integer")
            return _BAD
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{key}={show(value)}: expected a finite number")
            return _BAD
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            problems.append(f"{key}={show(value)}: expected a string")
            return _BAD
        return value
    raise TypeError(f"unsupported config type {tp}")  # a bug in this module, not user input


def _hints(cls) -> dict:
    import typing
    return typing.get_type_hints(cls)

