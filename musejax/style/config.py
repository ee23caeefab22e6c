"""The style classifier's config: frozen dataclasses (made once from musejax/configs/style.py or a run's
config.json) and their checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

from musejax.config import CkptConfig, ConfigError, OptimConfig, TaskConfig, apply_overrides, load_config
from musejax.config import saved_config_dict
from musejax.config import to_dataclass
from musejax.style.data import BALANCE_MODES
from musejax.style.model import ENCODER_KINDS


@dataclasses.dataclass(frozen=True)
class StyleDataConfig:
    corpus: str  # bundled corpus names ("," separated, "all") or a folder
    labels: str  # folder corpus: "folder" or a CSV/JSON label file ("" = none)
    merge_styles: str  # "old=new,..." relabelling ("" = none)
    steps_per_quarter: int
    onsets: bool  # piano-roll with an onset channel
    window_steps: int  # window length in steps; pieces are classified by averaging windows
    transpose_semitones: int  # random transposition of training windows (+-)
    max_pieces_per_style: int  # 0 = all training pieces
    valid_fraction: float
    test_fraction: float
    cache_dir: str
    workers: int  # parse processes for an uncached corpus (0 = all cores)


@dataclasses.dataclass(frozen=True)
class StyleModelConfig:
    kind: str  # "conv" | "gru"
    channels: tuple[int, ...]
    kernel_size: int
    hidden: int
    embed_dim: int
    dropout: float


@dataclasses.dataclass(frozen=True)
class StyleTrainConfig:
    steps: int
    batch_size: int
    seed: int
    balance: str  # "sampling" | "loss" | "none"
    log_every_steps: int
    eval_every_steps: int
    eval_batch_size: int


@dataclasses.dataclass(frozen=True)
class StyleClassifyConfig:
    coverage: float  # share of valid pieces the out-of-style threshold accepts


@dataclasses.dataclass(frozen=True)
class StyleConfig(TaskConfig):
    KIND = "style"
    name: str
    data: StyleDataConfig
    model: StyleModelConfig
    optim: OptimConfig
    train: StyleTrainConfig
    classify: StyleClassifyConfig
    ckpt: CkptConfig


def check_style_config(config: StyleConfig) -> StyleConfig:
    """Validate what the loop relies on (errors name the key)."""
    problems = []
    t, m = config.train, config.model
    for key in ("steps", "batch_size", "log_every_steps", "eval_every_steps", "eval_batch_size"):
        if getattr(t, key) < 1:
            problems.append(f"config.train.{key} must be >= 1, got {getattr(t, key)}")
    if t.balance not in BALANCE_MODES:
        problems.append(f"config.train.balance must be one of {', '.join(BALANCE_MODES)}, got {t.balance!r}")
    if m.kind not in ENCODER_KINDS:
        problems.append(f"config.model.kind must be one of {', '.join(ENCODER_KINDS)}, got {m.kind!r}")
    if config.data.window_steps < 2 ** len(m.channels):
        problems.append(f"config.data.window_steps={config.data.window_steps} is shorter than the "
                        f"{2 ** len(m.channels)} steps the conv blocks pool over")
    if not 0.0 < config.classify.coverage <= 1.0:
        problems.append(f"config.classify.coverage must be in (0, 1], got {config.classify.coverage}")
    if problems:
        raise ConfigError("; ".join(problems))
    return config


def resolve_style_config(spec: str = "style", overrides: Iterable[str] = ()) -> StyleConfig:
    """`musejax/configs/<spec>` + `--config.a.b=v` overrides -> a validated StyleConfig."""
    return check_style_config(to_dataclass(apply_overrides(load_config(spec), overrides), StyleConfig))


def saved_style_config(run_dir: str | Path, overrides: Iterable[str] = ()) -> StyleConfig:
    """A classifier run's config.json (+ overrides) as a StyleConfig."""
    return check_style_config(to_dataclass(saved_config_dict(run_dir, StyleConfig, "style classifier", overrides),
                                           StyleConfig))
