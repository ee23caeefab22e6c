"""Configs: loading by name, command-line overrides (types, unknown keys), dataclass conversion, JSON round trip."""

from __future__ import annotations

import argparse
import dataclasses
import math

import jax
import pytest

from musejax.config import (
    Config, ConfigError, apply_overrides, available_configs, load_config, load_config_json, resolve_config,
    save_config_json, split_override_args, to_dataclass)


def test_default_and_tiny_configs_load_as_frozen_dataclasses():
    for spec in ("lm", "lm:tiny", "chung2014", "chung2014:tanh", "chung2014:lstm"):
        config = resolve_config(spec)
        assert isinstance(config, Config) and config.name == spec
        with pytest.raises(dataclasses.FrozenInstanceError):
            config.model.hidden = 3  # type: ignore[misc]
    assert resolve_config("lm:tiny").train.steps < resolve_config("lm").train.steps
    assert {"lm", "chung2014"} <= set(available_configs())


def test_overrides_are_coerced_to_the_field_type():
    config = resolve_config("lm:tiny", [
        "--config.model.hidden=512", "--config.optim.learning_rate=1", "--config.model.cell=lstm",
        "--config.sample.top_k=5", "--config.sample.threshold=0.5", "--config.data.corpus=some/folder"])
    assert config.model.hidden == 512 and isinstance(config.model.hidden, int)
    assert config.optim.learning_rate == 1.0 and isinstance(config.optim.learning_rate, float)
    assert config.model.cell == "lstm" and config.data.corpus == "some/folder"
    assert config.sample.top_k == 5 and config.sample.threshold == 0.5
    back = resolve_config("lm:tiny", ["--config.sample.top_k=5", "--config.sample.top_k=none"])
    assert back.sample.top_k is None


def test_bool_override_and_bad_values():
    config = load_config("lm:tiny")
    config.data.flag = False  # a bool field, as any config may have
    apply_overrides(config, ["--config.data.flag=true"])
    assert config.data.flag is True
    with pytest.raises(ConfigError, match="config.data.flag"):
        apply_overrides(config, ["--config.data.flag=maybe"])
    with pytest.raises(ConfigError, match=r"config\.model\.hidden.*'abc'"):
        resolve_config("lm", ["--config.model.hidden=abc"])
    with pytest.raises(ConfigError, match="config.train.steps"):
        resolve_config("lm", ["--config.train.steps=1.5"])


def test_unknown_keys_are_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"unknown config key config\.model\.hiden"):
        resolve_config("lm", ["--config.model.hiden=3"])
    with pytest.raises(ConfigError, match=r"unknown config key config\.modle"):
        resolve_config("lm", ["--config.modle.hidden=3"])
    with pytest.raises(ConfigError, match="is a group"):
        resolve_config("lm", ["--config.model=3"])
    with pytest.raises(ConfigError, match="form"):
        resolve_config("lm", ["--config.model.hidden"])
    with pytest.raises(ConfigError, match="unknown config 'nope'"):
        load_config("nope:tiny")


def test_split_override_args_accepts_both_spellings():
    overrides, rest = split_override_args(["--workdir", "x", "--config.model.hidden", "8", "--config.train.steps=3"])
    assert overrides == ["--config.model.hidden=8", "--config.train.steps=3"]
    assert rest == ["--workdir", "x"]
    with pytest.raises(ConfigError, match="no value"):
        split_override_args(["--config.model.hidden"])


def test_to_dataclass_rejects_unknown_and_missing_keys():
    values = resolve_config("lm:tiny").to_dict()
    values["optim"]["momentum"] = 0.9
    with pytest.raises(ConfigError, match=r"config\.optim\.momentum"):
        to_dataclass(values)
    values = resolve_config("lm:tiny").to_dict()
    del values["train"]["seed"]
    with pytest.raises(ConfigError, match=r"config\.train\.seed is missing"):
        to_dataclass(values)


def test_json_round_trip(tmp_path):
    config = resolve_config("chung2014:lstm", ["--config.sample.top_p=0.9"])
    save_config_json(config, tmp_path / "config.json")
    assert load_config_json(tmp_path / "config.json") == config
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config_json(tmp_path / "missing.json")


def test_train_command_collects_overrides():
    from musejax.commands import train as train_command

    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(["--config", "lm:tiny", "--config.model.hidden", "8", "--workdir", "w",
                              "--config.train.steps=3"])
    assert args.config == "lm:tiny" and str(args.workdir) == "w"
    assert args.config_overrides == ["--config.model.hidden=8", "--config.train.steps=3"]
    with pytest.raises(SystemExit):
        parser.parse_args(["--bogus"])


@pytest.mark.parametrize("variant", ["tanh", "gru", "lstm"])
def test_chung2014_models_have_about_20k_parameters(variant):
    from musejax.lm.build import build_lm

    config = resolve_config(f"chung2014:{variant}")
    lm = build_lm(config, {"loss_kind": "bernoulli", "feature_shape": [88], "styles": [], "vocab_size": 0})
    params = jax.eval_shape(lm.init_params, jax.random.key(0))
    n_params = sum(math.prod(p.shape) for p in jax.tree.leaves(params))
    assert 18_000 <= n_params <= 22_000
    assert config.data.steps_per_quarter == 1
