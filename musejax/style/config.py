"""The style classifier's config: frozen dataclasses with their defaults (made once from musejax/configs/style.py
or a run's config.json) and their checks."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Iterable

from musejax.config import CkptConfig, ConfigError, OptimConfig, TaskConfig, apply_overrides, group, load_config
from musejax.config import saved_config_dict, to_dataclass
from musejax.style.data import ACCOMPANIMENTS, BALANCE_MODES
from musejax.style.model import ENCODER_KINDS
from musejax.data.texture_shifts import ROLL_SHIFTS


def texture_shift_names(text: str) -> tuple[str, ...]:
    """"melody,grid" -> ("melody", "grid")."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


# Each field is declared here once, with its default (the default run, `musejax classify --train`: a small
# convolutional encoder over 8-bar piano-roll windows of the bundled corpora); musejax/configs/style.py holds
# the variants.


@dataclasses.dataclass(frozen=True)
class StyleDataConfig:
    corpus: str = "all"  # bundled corpus names ("," separated; "all" = the eight bundled styles) or a folder
    # folder corpus: "folder" (first sub-folder is the style) or a CSV/JSON label file ("" = none)
    labels: str = ""
    merge_styles: str = "irish=irish-fiddle,fiddle=irish-fiddle"  # "old=new,..." relabelling ("" = none)
    steps_per_quarter: int = 4  # piano-roll grid (shared with the LM's cache)
    onsets: bool = True  # add an onset channel ((T, 2, 88)): repeated notes differ from held ones
    window_steps: int = 128  # 8 bars of 4/4 per window; a piece is classified by averaging its windows
    transpose_semitones: int = 6  # random transposition of training windows (+-), so the key is no cue
    # share of training windows given one random texture shift (musejax/data/texture_shifts.py), so that texture (one
    # line or several, the grid, the note values) is no cue either: the style survives a melody heard alone, with
    # chords, on a coarser grid or written in other note values (experiments/style_robustness.py measures it;
    # the search: docs/tuning/style.md)
    texture_shift_rate: float = 0.6
    # "," separated, from texture_shifts.ROLL_SHIFTS; a shift named twice is drawn twice as often (and gets two shifted
    # copies for the out-of-style Gaussians)
    texture_shifts: str = "melody,accompaniment,grid,stretch,stretch"
    # the accompaniments the "accompaniment" shift adds to training windows (the out-of-style rule's shifted
    # copies keep the plain ones): "varied" (pattern, bass or none, register, voicing and a chord per bar or half
    # bar drawn at random: data/harmony.py random_accompaniment) | "plain" (block chords, a chord per beat or
    # oom-pah: real folk tunes over held chords without a bass came out "unknown style"; experiments/style_heldout.py,
    # docs/tuning/style.md)
    accompaniments: str = "varied"
    max_pieces_per_style: int = 0  # >0: at most N training pieces per style (quick runs)
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    cache_dir: str = ""  # "" = $MUSEJAX_CACHE or ~/.cache/musejax
    workers: int = 0  # processes parsing an uncached corpus (0 = all cores)
    LEGACY_VALUES: ClassVar[dict[str, Any]] = {"texture_shift_rate": 0.0, "texture_shifts": "",  # runs before them
                                               "accompaniments": "plain"}


@dataclasses.dataclass(frozen=True)
class StyleModelConfig:
    kind: str = "conv"  # conv (1-D convolutions over time, keys as channels) | gru
    channels: tuple[int, ...] = (64, 96, 128, 128)  # conv blocks; each halves the time axis (receptive field ~4 bars)
    kernel_size: int = 5
    hidden: int = 128  # gru units (kind=gru)
    embed_dim: int = 128  # window / piece embedding (recommendation, Frechet distance)
    dropout: float = 0.2  # before the linear head


@dataclasses.dataclass(frozen=True)
class StyleTrainConfig:
    # texture-shifted windows make the task harder: 2500 steps left valid macro-F1 at 0.93, and varied accompaniments
    # at 7000 left the quarter grid and note values x2 at 0.868 / 0.886 on valid (0.910 / 0.942 at 9000)
    steps: int = 9000
    batch_size: int = 64
    seed: int = 0
    balance: str = "sampling"  # "sampling" | "loss" | "none": how the styles are balanced
    log_every_steps: int = 50
    eval_every_steps: int = 250  # valid macro-F1 (piece level) and a checkpoint
    eval_batch_size: int = 256  # windows per forward pass in evaluation


@dataclasses.dataclass(frozen=True)
class StyleClassifyConfig:
    coverage: float = 0.95  # share of valid pieces the out-of-style threshold accepts
    # 1: besides one Gaussian per style over its training pieces, one per style and texture shift
    # (config.data.texture_shifts) over copies of up to 300 of them, the nearest setting the distance, and the
    # threshold calibrated on valid pieces and such copies, so that a style heard in another texture is still
    # accepted (0 = the pieces as they are, one Gaussian per style)
    shifted_copies: int = 1
    # 1: each Gaussian's squared Mahalanobis distances divided by the median over its own training pieces; 0: as
    # they are (all Gaussians share one covariance). 0 separates works of other composers from the styles better:
    # out-of-style AUROC on the valid out-of-style set (style_robustness.py --split valid), docs/tuning/style.md
    scaled_distance: int = 0
    LEGACY_VALUES: ClassVar[dict[str, Any]] = {"shifted_copies": 0, "scaled_distance": 1}  # runs before them


@dataclasses.dataclass(frozen=True)
class StyleConfig(TaskConfig):
    KIND = "style"
    name: str = "style"
    data: StyleDataConfig = group(StyleDataConfig)
    model: StyleModelConfig = group(StyleModelConfig)
    optim: OptimConfig = group(OptimConfig, learning_rate=2e-3)
    train: StyleTrainConfig = group(StyleTrainConfig)
    classify: StyleClassifyConfig = group(StyleClassifyConfig)
    ckpt: CkptConfig = group(CkptConfig)  # keep_best by valid macro-F1


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
    if not 0.0 <= config.data.texture_shift_rate <= 1.0:
        problems.append(f"config.data.texture_shift_rate must be in [0, 1], got {config.data.texture_shift_rate}")
    unknown = [s for s in texture_shift_names(config.data.texture_shifts) if s not in ROLL_SHIFTS]
    if unknown:
        problems.append(f"config.data.texture_shifts: unknown shift {unknown[0]!r} (known: {', '.join(ROLL_SHIFTS)})")
    if config.data.accompaniments not in ACCOMPANIMENTS:
        problems.append(f"config.data.accompaniments must be one of {', '.join(ACCOMPANIMENTS)}, got "
                        f"{config.data.accompaniments!r}")
    for name in ("shifted_copies", "scaled_distance"):
        if getattr(config.classify, name) not in (0, 1):
            problems.append(f"config.classify.{name} must be 0 or 1, got {getattr(config.classify, name)}")
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
