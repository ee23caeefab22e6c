"""Experiment configs: `ml_collections.ConfigDict` in, frozen dataclasses out.

A task's config is a frozen dataclass whose fields carry their defaults: the one place each field is declared.
`musejax/configs/<name>.py` exports `get_config(arg=None) -> ConfigDict`, built from those defaults by
`default_config(cls)` with what the experiment changes. `load_config("lm:tiny")` imports it,
`apply_overrides(config, ["--config.model.hidden=512"])` applies command-line overrides (unknown keys and
values of the wrong type are errors naming the key), and `to_dataclass(config, cls)` turns the result into the
frozen dataclass of the config's task (e.g. `musejax.lm.config.Config`) every module sees. Only this file (and
the config files) import ml_collections.

The overrides are parsed here rather than by ml_collections' `config_flags`: those are absl flags, global to the
process and parsed by `absl.app`, which does not fit argparse sub-commands (`musejax train`, `musejax gan train`,
`musejax classify --train` each take their own config); the values are still checked by ConfigDict's own typed
assignment.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import json
import pkgutil
import typing
from pathlib import Path
from typing import Any, Iterable

import ml_collections
from ml_collections import config_dict
import musejax.configs
from musejax.errors import UserError

OVERRIDE_PREFIX = "--config."


class ConfigError(UserError):
    """A config name, key or value the user got wrong (message names it)."""


def group(cls: type, **changes: Any) -> Any:
    """A config group field that defaults to `cls()` with `changes` (e.g. the GAN's own Adam settings)."""
    return dataclasses.field(default_factory=lambda: cls(**changes))


# The config groups every task shares (each task's own groups are in musejax/<task>/config.py). Each field is
# declared once, with its default (the language model's) and what it means.


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    optimizer: str = "adamw"  # "adam" | "adamw"
    learning_rate: float = 1e-2  # peak learning rate (after warm-up; the LM default, chosen on valid: docs/tuning/lm.md)
    warmup_steps: int = 100
    schedule: str = "cosine"  # decay after warm-up: "cosine" | "linear" | "constant"
    end_learning_rate_factor: float = 0.05  # final learning rate = factor * peak
    weight_decay: float = 1e-4  # AdamW only
    grad_clip_norm: float = 1.0  # global-norm clipping (0 = off)
    b1: float = 0.9
    b2: float = 0.999


@dataclasses.dataclass(frozen=True)
class CkptConfig:
    keep_best: int = 1  # checkpoints kept by the task's metric (the LM: lowest valid NLL)
    keep_latest: int = 1  # the latest ones (always at least the last)


TRAINED_BY = {"lm": "musejax train", "gan": "musejax gan train", "style": "musejax classify --train"}


class TaskConfig:
    """What every task's top-level config shares: its task kind (recorded in the run's config.json, so a run
    reloads from its own directory) and `to_dict`, the JSON form saved there and in every checkpoint."""

    KIND: typing.ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, **dataclasses.asdict(self)}


# ----------------------------------------------------------------------------------------------- loading


def available_configs() -> list[str]:
    """Names of the config modules in musejax/configs."""

    return sorted(m.name for m in pkgutil.iter_modules(musejax.configs.__path__) if not m.name.startswith("_"))


def load_config(spec: str) -> ml_collections.ConfigDict:
    """`"lm"` or `"lm:tiny"` -> musejax.configs.lm.get_config("tiny"); `name` is set to the spec."""
    name, _, arg = spec.partition(":")
    if name not in available_configs():
        raise ConfigError(f"unknown config {name!r} (from {spec!r}); available: {', '.join(available_configs())}")
    module = importlib.import_module(f"musejax.configs.{name}")
    config = module.get_config(arg or None)
    config.name = spec
    return config


# --------------------------------------------------------------------------------------------- overrides


def split_override_args(argv: Iterable[str]) -> tuple[list[str], list[str]]:
    """Separate `--config.a.b=v` / `--config.a.b v` overrides from other arguments."""
    overrides, others = [], []
    argv = list(argv)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith(OVERRIDE_PREFIX):
            if "=" not in arg:
                if i + 1 >= len(argv):
                    raise ConfigError(f"override {arg} has no value (use {arg}=VALUE)")
                arg = f"{arg}={argv[i + 1]}"
                i += 1
            overrides.append(arg)
        else:
            others.append(arg)
        i += 1
    return overrides, others


def accept_config_overrides(parser: argparse.ArgumentParser) -> None:
    """Make `parser.parse_args` collect `--config.a.b=v` arguments into `args.config_overrides` (argparse has
    no wildcard options); every other unknown argument is still an error."""

    def parse_args(args=None, namespace=None):
        import sys

        argv = sys.argv[1:] if args is None else list(args)
        try:
            overrides, rest = split_override_args(argv)
        except ConfigError as err:
            parser.error(str(err))
        parsed = argparse.ArgumentParser.parse_args(parser, rest, namespace)
        parsed.config_overrides = overrides
        return parsed

    parser.parse_args = parse_args  # type: ignore[method-assign]


def _parse_value(key: str, text: str, field_type: type, current: Any, nullable: bool) -> Any:
    if text.lower() in ("none", "null") and nullable:
        return None
    try:
        if field_type is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError("expected true/false")
        if field_type is int:
            return int(text)
        if field_type is float:
            return float(text)
        if field_type is str:
            return text
        if field_type is type(None):  # a plain None field: take a Python literal, else the text
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return text
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as err:
        raise ConfigError(
            f"config.{key}: cannot use {text!r} as {field_type.__name__} (current value {current!r}): {err}"
        ) from None
    if field_type in (tuple, list) and isinstance(value, (tuple, list)):
        return field_type(value)
    if not isinstance(value, field_type):
        raise ConfigError(f"config.{key}: {text!r} is not a {field_type.__name__} (current value {current!r})")
    return value


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> ml_collections.ConfigDict:
    """Apply `--config.a.b=value` strings in place (values parsed by the field's type) and return config."""
    for override in overrides:
        text = override[len(OVERRIDE_PREFIX) :] if override.startswith(OVERRIDE_PREFIX) else override
        key, sep, value_text = text.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r} is not of the form --config.group.key=value")
        *parents, leaf = key.split(".")
        node = config
        for depth, part in enumerate(parents):
            if part not in node or not isinstance(node[part], ml_collections.ConfigDict):
                where = ".".join(parents[: depth + 1])
                raise ConfigError(f"unknown config key config.{where} (in {override!r})")
            node = node[part]
        if leaf not in node:
            known = ", ".join(sorted(node.keys()))
            raise ConfigError(f"unknown config key config.{key} (in {override!r}); known here: {known}")
        if isinstance(node[leaf], ml_collections.ConfigDict):
            raise ConfigError(f"config.{key} is a group; override one of its keys (in {override!r})")
        # placeholder fields (config_dict.placeholder) may be None; other fields keep their type
        nullable = node[leaf] is None or isinstance(node._fields.get(leaf), config_dict.FieldReference)
        node[leaf] = _parse_value(key, value_text, node.get_type(leaf), node[leaf], nullable)
    return config


# ---------------------------------------------------------------------------------- dataclass conversion


def _to_dataclass(values: dict[str, Any], cls: type, path: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown config key {path}.{unknown[0]} (known: {', '.join(sorted(names))})")
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name not in values:
            legacy = getattr(cls, "LEGACY_VALUES", {})  # fields added later: the value older runs computed with
            if field.name in legacy:
                kwargs[field.name] = legacy[field.name]
                continue
            raise ConfigError(f"config key {path}.{field.name} is missing")
        value = values[field.name]
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {path}.{field.name} must be a group, got {value!r}")
            value = _to_dataclass(value, hint, f"{path}.{field.name}")
        elif hint is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[field.name] = value
    return cls(**kwargs)


def to_dataclass(config: ml_collections.ConfigDict | dict[str, Any], cls: type) -> Any:
    """Turn a ConfigDict (or its JSON dict) into the frozen dataclass `cls` (unknown/missing keys are errors;
    a recorded task kind must be cls's)."""
    values = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
    kind = values.pop("kind", None)
    if kind is not None and kind != getattr(cls, "KIND", kind):
        raise ConfigError(f"config {values.get('name', '')!r} is a {kind!r} config, not a {cls.KIND!r} one "
                          f"(`{TRAINED_BY.get(kind, 'its own command')}` trains it)")
    return _to_dataclass(values, cls, "config")


LEGACY_KINDS = ("gan", "style")  # config.json written before it recorded "kind": the config name's prefix


def saved_kind(values: dict[str, Any]) -> str:
    """The task kind of a saved config: its "kind", or for older runs the kind its config name starts with."""
    if "kind" in values:
        return str(values["kind"])
    name = str(values.get("name", ""))
    return next((kind for kind in LEGACY_KINDS if name.startswith(kind)), "lm")


def _typed_config_dict(values: dict[str, Any], cls: type) -> ml_collections.ConfigDict:
    """Values as a ConfigDict typed by the dataclass `cls`: a field of type `X | None` becomes a reference of
    type X that may be None, a float field holds a float, so command-line overrides are parsed and checked by
    the field's type."""
    hints = typing.get_type_hints(cls)
    config = ml_collections.ConfigDict()
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"saved config has unknown key {key!r} (known: {', '.join(sorted(names))})")
        hint = hints[key]
        optional = [t for t in typing.get_args(hint) if t is not type(None)] if type(None) in typing.get_args(hint) else []
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"saved config key {key!r} must be a group, got {value!r}")
            config[key] = _typed_config_dict(value, hint)
        elif optional:
            field_type = optional[0] if len(optional) == 1 else object
            value = float(value) if field_type is float and isinstance(value, int) else value
            config[key] = config_dict.FieldReference(value, field_type=field_type)
        elif hint is float and isinstance(value, int) and not isinstance(value, bool):
            config[key] = float(value)
        else:
            config[key] = tuple(value) if isinstance(value, list) else value
    return config


def default_config(cls: type) -> ml_collections.ConfigDict:
    """The defaults of the task config `cls` (its kind included) as a typed ConfigDict: the one declaration
    of every field is the dataclass; a config file starts from this and changes what differs."""
    config = _typed_config_dict(dataclasses.asdict(cls()), cls)
    config.kind = cls.KIND  # the task that trains it (recorded in every run's config.json)
    return config


def config_dict_from_saved(values: dict[str, Any], cls: type) -> ml_collections.ConfigDict:
    """A saved config (config.json as a dict) as a typed ConfigDict, from its own values and the dataclass `cls`
    alone: no config module is imported, so a run outlives the config file it came from (renamed or gone)."""
    values = dict(values)
    kind = saved_kind(values)
    values.pop("kind", None)
    if kind != cls.KIND:
        raise ConfigError(f"a {kind!r} run's config, not a {cls.KIND!r} one")
    return _typed_config_dict(values, cls)


def save_config_json(config: TaskConfig, path: str | Path) -> None:
    Path(path).write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")


def saved_config_dict(run_dir: str | Path, cls: type, what: str, overrides: Iterable[str] = (),
                      hint: str = "") -> ml_collections.ConfigDict:
    """A run's config.json (+ `--config.a.b=v` overrides) as a typed ConfigDict; ConfigError unless the run is
    of cls's task kind: `what` names the run kind in the message, `hint` is appended."""
    path = Path(run_dir) / "config.json"
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the run's config: {err}") from None
    if saved_kind(values) != cls.KIND:
        raise ConfigError(f"{path}: not a {what} run (a {saved_kind(values)} run, config {values.get('name')!r}){hint}")
    try:
        return apply_overrides(config_dict_from_saved(values, cls), overrides)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
