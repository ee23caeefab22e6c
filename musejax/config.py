"""Experiment configs: `ml_collections.ConfigDict` in, frozen dataclasses out.

`musejax/configs/<name>.py` exports `get_config(arg=None) -> ConfigDict`. `load_config("lm:tiny")` imports it,
`apply_overrides(config, ["--config.model.hidden=512"])` applies command-line overrides (unknown keys and
values of the wrong type are errors naming the key), and `to_dataclass(config)` turns the result into the
frozen `Config` every module sees. Only this file (and the config files) import ml_collections.
"""

from __future__ import annotations

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

OVERRIDE_PREFIX = "--config."


class ConfigError(ValueError):
    """A config name, key or value the user got wrong (message names it)."""


@dataclasses.dataclass(frozen=True)
class DataConfig:
    corpus: str  # bundled corpus name (`musejax data list`), several joined by ",", or a folder
    encoding: str  # "pianoroll" | "melody" | "performance"
    steps_per_quarter: int  # time resolution of the piano-roll / melody encodings
    window_steps: int  # training window length in time steps
    hop_steps: int  # hop between training windows (0 = window_steps, no overlap)
    eval_window_steps: int  # valid/test window length (0 = whole pieces: the literature's per-step NLL)
    transpose_semitones: int  # random transposition of training windows, +-semitones (0 = off)
    max_pieces: int  # use at most the first N pieces of each split (0 = all; quick runs)
    valid_fraction: float
    test_fraction: float
    cache_dir: str  # "" = $MUSEJAX_CACHE or ~/.cache/musejax


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    cell: str  # "gru" (cuDNN/torch formulation) | "gru-cho" (Cho et al. 2014) | "lstm" | "rnn" (tanh)
    hidden: int  # recurrent units per layer
    layers: int
    dropout: float  # between layers and before the readout (training only)
    impl: str  # "auto" | "xla" | "triton" (GRU recurrence implementation)
    embed_dim: int  # token embedding size for event encodings (unused by the piano-roll LM)
    style_dim: int  # style-conditioning embedding size (0 = unconditioned)
    # std of Gaussian noise added to every parameter in each training step (Graves 2011's weight noise, the
    # regulariser of Chung et al. 2014); gradients are taken at the noisy weights. 0 = off.
    weight_noise: float = 0.0
    # piano-roll frame distribution: "bernoulli" (independent keys) | "nade" (RNN-NADE: keys depend on each other);
    # event encodings always predict a softmax over the next event
    output: str = "bernoulli"
    nade_hidden: int = 150  # NADE hidden units (output="nade")
    nade_order: str = "low-high"  # the NADE's key order: "low-high" | "high-low"
    # training only: each key of the piano-roll input frames is flipped with this probability (0 = off; events:
    # not used)
    input_flips: float = 0.0


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    optimizer: str  # "adam" | "adamw"
    learning_rate: float  # peak learning rate (after warm-up)
    warmup_steps: int
    schedule: str  # decay after warm-up: "cosine" | "linear" | "constant"
    end_learning_rate_factor: float  # final learning rate = factor * peak
    weight_decay: float  # AdamW only
    grad_clip_norm: float  # global-norm clipping (0 = off)
    b1: float
    b2: float


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int  # total optimizer steps
    batch_size: int  # global batch, divisible by the number of devices
    seed: int  # data order, augmentation, init and dropout all derive from it
    log_every_steps: int
    eval_every_steps: int  # valid NLL (and a checkpoint) every N steps and at the end
    eval_batch_size: int


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    n: int  # samples written to <run>/samples at the end of training
    steps: int  # length of each sample in time steps / events (0 = a training piece's length, drawn at random)
    temperature: float
    top_k: int | None  # event LMs: keep the k most likely events
    top_p: float | None  # event LMs: nucleus sampling
    threshold: float | None  # piano-roll: a key sounds if p > threshold (None = Bernoulli sampling)
    seed: int
    # TensorBoard samples (defaults here too: runs saved before these keys existed reload with them)
    board_n: int = 0  # pieces sampled at each evaluation, logged as piano-roll image + audio (0 = off)
    board_steps: int = 64  # their length in time steps / events
    board_metrics_every: int = 5  # every N evaluations also their metrics against the valid pieces (0 = never)


@dataclasses.dataclass(frozen=True)
class CkptConfig:
    keep_best: int  # checkpoints kept by lowest valid NLL (the latest is always kept too)
    keep_latest: int


TRAINED_BY = {"lm": "musejax train", "gan": "musejax gan train", "style": "musejax classify --train"}


class TaskConfig:
    """What every task's top-level config shares: its task kind (recorded in the run's config.json, so a run
    reloads from its own directory) and `to_dict`, the JSON form saved there and in every checkpoint."""

    KIND: typing.ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.KIND, **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
    KIND = "lm"
    name: str  # the config spec it came from, e.g. "lm:tiny"
    data: DataConfig
    model: ModelConfig
    optim: OptimConfig
    train: TrainConfig
    sample: SampleConfig
    ckpt: CkptConfig


# ----------------------------------------------------------------------------------------------- loading


def available_configs() -> list[str]:
    """Names of the config modules in musejax/configs."""
    import musejax.configs

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


def accept_config_overrides(parser: "argparse.ArgumentParser") -> None:
    """Make `parser.parse_args` collect `--config.a.b=v` arguments into `args.config_overrides` (argparse has
    no wildcard options); every other unknown argument is still an error."""
    import argparse

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
            if field.default is not dataclasses.MISSING:
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


def to_dataclass(config: ml_collections.ConfigDict | dict[str, Any], cls: type = Config) -> Any:
    """Turn a ConfigDict (or its JSON dict) into the frozen dataclass `cls` (unknown/missing keys are errors;
    a recorded task kind must be cls's)."""
    values = config.to_dict() if isinstance(config, ml_collections.ConfigDict) else dict(config)
    kind = values.pop("kind", None)
    if kind is not None and kind != getattr(cls, "KIND", kind):
        raise ConfigError(f"config {values.get('name', '')!r} is a {kind!r} config, not a {cls.KIND!r} one "
                          f"(`{TRAINED_BY.get(kind, 'its own command')}` trains it)")
    return _to_dataclass(values, cls, "config")


def resolve_config(spec: str, overrides: Iterable[str] = ()) -> Config:
    """`load_config(spec)` + `apply_overrides` + `to_dataclass` in one call."""
    return to_dataclass(apply_overrides(load_config(spec), overrides))


LEGACY_KINDS = ("gan", "style")  # config.json written before it recorded "kind": the config name's prefix


def saved_kind(values: dict[str, Any]) -> str:
    """The task kind of a saved config: its "kind", or for older runs the kind its config name starts with."""
    if "kind" in values:
        return str(values["kind"])
    name = str(values.get("name", ""))
    return next((kind for kind in LEGACY_KINDS if name.startswith(kind)), "lm")


def _typed_config_dict(values: dict[str, Any], cls: type) -> ml_collections.ConfigDict:
    """Saved values as a ConfigDict typed by the dataclass `cls` (a None field of type `X | None` becomes a
    placeholder of X), so command-line overrides are parsed and checked as for a config file."""
    hints = typing.get_type_hints(cls)
    config = ml_collections.ConfigDict()
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"saved config has unknown key {key!r} (known: {', '.join(sorted(names))})")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"saved config key {key!r} must be a group, got {value!r}")
            config[key] = _typed_config_dict(value, hint)
        elif value is None:
            inner = [t for t in typing.get_args(hint) if t is not type(None)]
            config[key] = config_dict.placeholder(inner[0] if len(inner) == 1 else object)
        else:
            config[key] = tuple(value) if isinstance(value, list) else value
    return config


def config_dict_from_saved(values: dict[str, Any], cls: type = Config) -> ml_collections.ConfigDict:
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


def load_config_json(path: str | Path) -> Config:
    """Read a run's config.json back into a `Config`."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config: {err}") from None
    try:
        return to_dataclass(values)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
