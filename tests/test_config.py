"""Configs: loading by name, command-line overrides (types, unknown keys), dataclass conversion, JSON round trip."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import jax
import pytest

from musejax.config import ConfigError, apply_overrides, available_configs, load_config, save_config_json, split_override_args, to_dataclass
from musejax.lm.config import Config, load_config_json, resolve_config


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
        to_dataclass(values, Config)
    values = resolve_config("lm:tiny").to_dict()
    del values["train"]["seed"]
    with pytest.raises(ConfigError, match=r"config\.train\.seed is missing"):
        to_dataclass(values, Config)


def test_json_round_trip(tmp_path):
    config = resolve_config("chung2014:lstm", ["--config.sample.top_p=0.9"])
    save_config_json(config, tmp_path / "config.json")
    assert load_config_json(tmp_path / "config.json") == config
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config_json(tmp_path / "missing.json")


def test_train_command_collects_overrides():
    from musejax.cli import train as train_command

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


def test_the_place_in_the_bar_needs_windows_that_start_on_it():
    from musejax.lm.build import build_lm

    meta = {"loss_kind": "bernoulli", "feature_shape": [88], "styles": [], "vocab_size": 0,
            "encoding": {"name": "pianoroll"}}
    assert build_lm(resolve_config("lm"), meta).model.position_period == 16
    with pytest.raises(ConfigError, match=r"config\.data\.hop_steps \(100\) must be a multiple"):
        build_lm(resolve_config("lm", ["--config.data.hop_steps=100"]), meta)
    with pytest.raises(ConfigError, match=r"eval_window_steps \(40\)"):
        build_lm(resolve_config("lm", ["--config.data.eval_window_steps=40"]), meta)
    events = build_lm(resolve_config("lm", ["--config.data.hop_steps=100"]),
                      {**meta, "loss_kind": "categorical", "vocab_size": 9, "encoding": {"name": "performance"}})
    assert events.model.position_period == 0  # performance events have no grid


FIXTURES = Path(__file__).parent / "fixtures" / "configs-2026-12"  # config.json as written on 2026-12-02


@pytest.mark.parametrize("kind", ["lm", "gan", "style"])
def test_a_saved_run_reloads_from_its_own_config_json_without_its_config_module(tmp_path, kind):
    from musejax.config import saved_config_dict
    from musejax.gan.config import GanConfig
    from musejax.style.config import StyleConfig

    cls = {"lm": Config, "gan": GanConfig, "style": StyleConfig}[kind]
    values = json.loads((FIXTURES / f"{kind}-tiny.json").read_text())
    assert "kind" not in values  # the format before the kind was recorded: kept loading
    values["name"] = f"{kind}_renamed_since:tiny"  # no such config module
    (tmp_path / "config.json").write_text(json.dumps(values))
    config = to_dataclass(saved_config_dict(tmp_path, cls, kind, ["--config.train.steps=7"]), cls)
    assert config.train.steps == 7 and config.name == f"{kind}_renamed_since:tiny"
    reloaded = config.to_dict()
    sample = reloaded.get("sample", {})
    added = {key: sample.pop(key) for key in list(sample) if key not in values["sample"]}
    # keys added since: the values those runs sampled with
    assert added == ({} if kind == "style" else {"board_n": 0, "board_metrics_every": 5} if kind == "gan" else
                     {"board_n": 0, "board_steps": 64, "board_metrics_every": 5, "count_temperature": 1.0,
                      "max_copy_bars": 0.0})
    if kind == "lm":  # the note count, the place in the bar, ... came later: a run from before reloads without them
        model, data = reloaded["model"], reloaded["data"]
        assert {key: model.pop(key) for key in list(model) if key not in values["model"]} == {
            "nade_count": False, "nade_count_input": "state", "position_period": 0, "transpose_input": False,
            "end_quarters": 0, "bar_lines": False}
        assert {key: data.pop(key) for key in list(data) if key not in values["data"]} == {
            "texture_shift_rate": 0.0, "texture_shifts": "", "length_bucket_steps": 0}
    if kind == "style":  # the texture shifts came later: a run from before reloads with them off
        added = {key: reloaded[group].pop(key) for group in ("data", "classify") for key in list(reloaded[group])
                 if key not in values[group]}
        assert added == {"texture_shift_rate": 0.0, "texture_shifts": "", "shifted_copies": 0,
                         "accompaniments": "plain", "scaled_distance": 1}
    assert {k: v for k, v in reloaded.items() if k not in ("kind", "train")} == \
        {k: (v if not isinstance(v, dict) else {a: tuple(b) if isinstance(b, list) else b for a, b in v.items()})
         for k, v in values.items() if k != "train"}
    save_config_json(config, tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["kind"] == kind
    with pytest.raises(ConfigError, match=r"config\.train\.steps.*'x'"):
        saved_config_dict(tmp_path, cls, kind, ["--config.train.steps=x"])
    other = GanConfig if cls is not GanConfig else Config
    with pytest.raises(ConfigError, match=f"not a nope run \\(a {kind} run"):
        saved_config_dict(tmp_path, other, "nope")


def test_a_saved_none_field_takes_an_override_of_its_declared_type(tmp_path):
    from musejax.config import saved_config_dict

    save_config_json(resolve_config("lm:tiny"), tmp_path / "config.json")
    assert json.loads((tmp_path / "config.json").read_text())["sample"]["top_k"] is None
    config = to_dataclass(saved_config_dict(tmp_path, Config, "lm", ["--config.sample.top_k=5"]), Config)
    assert config.sample.top_k == 5
    with pytest.raises(ConfigError, match="top_k"):
        saved_config_dict(tmp_path, Config, "lm", ["--config.sample.top_k=many"])


def test_a_config_module_names_its_task_and_another_task_refuses_it():
    from musejax.gan.config import resolve_gan_config
    from musejax.style.config import resolve_style_config

    assert load_config("chung2014:gru").kind == "lm" and load_config("gan:tiny").kind == "gan"
    with pytest.raises(ConfigError, match=r"'lm:tiny' is a 'lm' config, not a 'gan' one \(`musejax train` trains"):
        resolve_gan_config("lm:tiny")
    with pytest.raises(ConfigError, match=r"not a 'style' one \(`musejax gan train` trains it\)"):
        resolve_style_config("gan")
    with pytest.raises(ConfigError, match=r"not a 'lm' one \(`musejax classify --train` trains it\)"):
        resolve_config("style:tiny")


def test_each_field_is_declared_once_in_its_dataclass_and_the_config_files_only_change_values():
    """The config modules start from the dataclass defaults (`default_config`): the default config IS the
    dataclass's defaults, and a config file can set no key its dataclass does not declare."""
    from musejax.config import default_config
    from musejax.gan.config import GanConfig, resolve_gan_config
    from musejax.style.config import StyleConfig, resolve_style_config

    for cls, resolve, spec in ((Config, resolve_config, "lm"), (GanConfig, resolve_gan_config, "gan"),
                               (StyleConfig, resolve_style_config, "style")):
        assert resolve(spec) == cls()
        assert to_dataclass(default_config(cls), cls) == cls()
    config = default_config(GanConfig)
    apply_overrides(config, ["--config.sample.threshold=none", "--config.loss.gp_weight=5"])
    assert config.sample.threshold is None and isinstance(config.loss.gp_weight, float)
    with pytest.raises(ConfigError, match=r"unknown config key config\.model\.widths"):
        apply_overrides(default_config(GanConfig), ["--config.model.widths=3"])


def test_a_run_saved_before_a_field_existed_loads_with_the_value_it_was_trained_with(tmp_path):
    """Fields added later (the NADE output, weight noise, input flips) take the value older runs computed
    with, not today's default; any other missing key is an error."""
    values = json.loads((FIXTURES / "lm-tiny.json").read_text())
    for key in ("output", "nade_hidden", "nade_order", "input_flips", "weight_noise"):
        values["model"].pop(key, None)
    model = to_dataclass(values, Config).model
    assert (model.output, model.nade_hidden, model.nade_order, model.input_flips) == ("bernoulli", 150, "low-high", 0.0)
    del values["model"]["hidden"]
    with pytest.raises(ConfigError, match=r"config\.model\.hidden is missing"):
        to_dataclass(values, Config)
