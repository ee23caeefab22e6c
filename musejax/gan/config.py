"""The GAN run's config: frozen dataclasses with their defaults (made once from `musejax/configs/gan.py` or a
run's config.json by `musejax.config`) and their checks.

The optimizer and checkpoint groups reuse the language model's `OptimConfig` and `CkptConfig`, one
optimizer per network (g_optim, d_optim).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Iterable

from musejax.config import (apply_overrides, CkptConfig, ConfigError, group, load_config, OptimConfig, saved_config_dict,
    TaskConfig, to_dataclass)
from musejax.gan.model import MODES


# Each field is declared here once, with its default (the default run, `musejax gan train`: a hybrid MuseGAN on
# the four-voice Bach chorales, S, A, T, B as four tracks); musejax/configs/gan.py holds the variants,
# docs/tuning/gan.md why.


@dataclasses.dataclass(frozen=True)
class GanDataConfig:
    corpus: str = "bach-chorales"  # bundled corpus name(s) ("," separated) or a folder of MIDI/MusicXML
    n_tracks: int = 4  # voices -> tracks (S, A, T, B for the chorales)
    n_bars: int = 4  # bars per segment
    steps_per_bar: int = 16  # 4/4 bars of sixteenths
    steps_per_quarter: int = 4
    min_pitch: int = 36  # lowest MIDI pitch of the pitch axis (C2)
    # pitches from min_pitch: a multiple of 12, the generator makes whole octaves (48: C2..B5, covers the
    # chorales' 36..81)
    n_pitches: int = 48
    # random transposition of training segments, +-semitones (only shifts that stay in range; 0 = off)
    transpose_semitones: int = 5
    max_pieces: int = 0  # use only the first N training pieces (0 = all)
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    cache_dir: str = ""  # "" = $MUSEJAX_CACHE or ~/.cache/musejax


@dataclasses.dataclass(frozen=True)
class GanModelConfig:
    # MuseGAN's multitrack modes: hybrid (shared + per-track noise) | composer (one generator) | jamming (per track)
    mode: str = "hybrid"
    latent_dim: int = 32  # size of each noise vector
    temporal_hidden: int = 128  # width of the temporal generators
    bar_widths: tuple[int, ...] = (256, 128, 128, 64, 64, 32)  # bar generator widths: dense, then per transposed conv
    # discriminator convolution channels (4: octave, beat, bar, bar-pair convolutions)
    d_channels: tuple[int, ...] = (64, 128, 256, 256)
    d_hidden: int = 512  # discriminator dense width
    # minibatch standard deviation feature over groups of N examples (counters mode collapse; 0 = off)
    d_minibatch_std_group: int = 4
    # the untrained generator's cell density (output bias = its logit; the chorales': ~1 of 48 pitches per voice)
    initial_density: float = 0.02
    style_dim: int = 0  # >0: conditional GAN on the piece's style (projection discriminator); 0 = off


@dataclasses.dataclass(frozen=True)
class GanLossConfig:
    kind: str = "wgan-gp"  # "wgan-gp" (Gulrajani et al. 2017, MuseGAN's choice) | "minimax" (non-saturating G loss)
    gp_weight: float = 10.0  # gradient-penalty weight (wgan-gp)
    n_critic: int = 3  # discriminator steps per generator step
    # D sees fakes binarised at 0.5 (straight-through gradient), as the samples will be (BinaryMuseGAN)
    binary_fakes: bool = True


@dataclasses.dataclass(frozen=True)
class GanTrainConfig:
    steps: int = 750  # generator steps (n_critic x as many discriminator steps)
    batch_size: int = 64  # global batch of real and of generated segments
    seed: int = 0  # data order, augmentation, init and noise all derive from it
    log_every_steps: int = 25
    sample_every_steps: int = 150  # a grid of samples (PNG + MIDI) under <run>/samples/ every N steps (0 = off)
    checkpoint_every_steps: int = 150  # and at the end


@dataclasses.dataclass(frozen=True)
class GanSampleConfig:
    n: int = 16  # samples in each grid, and written at the end of training
    threshold: float | None = 0.5  # binarise p > threshold; None = Bernoulli sampling
    seed: int = 0
    qpm: float = 100.0  # tempo of the written MIDI
    board_n: int = 2  # segments of each grid also in TensorBoard (piano-roll image + audio); 0 = off
    # every N grids (1: each) also their `musejax evaluate` metrics against the held-out segments (0 = never)
    board_metrics_every: int = 1
    # runs saved before the TensorBoard samples existed reload with them off
    LEGACY_VALUES: typing.ClassVar[dict[str, Any]] = {"board_n": 0, "board_metrics_every": 5}


# MuseGAN / DCGAN Adam settings, one optimizer per network, at a constant learning rate.
GAN_ADAM = dict(optimizer="adam", learning_rate=1e-3, warmup_steps=0, schedule="constant",
                end_learning_rate_factor=1.0, weight_decay=0.0, grad_clip_norm=0.0, b1=0.5, b2=0.9)


@dataclasses.dataclass(frozen=True)
class GanConfig(TaskConfig):
    KIND = "gan"
    name: str = "gan"
    data: GanDataConfig = group(GanDataConfig)
    model: GanModelConfig = group(GanModelConfig)
    loss: GanLossConfig = group(GanLossConfig)
    g_optim: OptimConfig = group(OptimConfig, **GAN_ADAM)
    d_optim: OptimConfig = group(OptimConfig, **GAN_ADAM)
    train: GanTrainConfig = group(GanTrainConfig)
    sample: GanSampleConfig = group(GanSampleConfig)
    ckpt: CkptConfig = group(CkptConfig, keep_latest=2)  # keep_best is unused (no validation loss)


LOSS_KINDS = ("wgan-gp", "minimax")
# Groups that decide what a run computes; a resumed run must not change them.
RESUME_GROUPS = ("data", "model", "loss", "g_optim", "d_optim", "train")


def resolve_gan_config(spec: str = "gan", overrides: Iterable[str] = ()) -> GanConfig:
    """`musejax/configs/<spec>` + `--config.a.b=v` overrides -> a validated GanConfig."""
    return check_gan_config(to_dataclass(apply_overrides(load_config(spec), overrides), GanConfig))


def saved_gan_config(run_dir: str | Path, overrides: Iterable[str] = ()) -> GanConfig:
    """A run's config.json (+ overrides) as a GanConfig."""
    values = saved_config_dict(run_dir, GanConfig, "GAN", overrides, hint="; use `musejax sample` for it")
    return check_gan_config(to_dataclass(values, GanConfig))


def check_gan_config(config: GanConfig) -> GanConfig:
    """Validate the values the model and loop rely on (errors name the key)."""

    d, m, l, t = config.data, config.model, config.loss, config.train
    problems = []
    if d.n_pitches % 12 or d.n_pitches < 12:
        problems.append(f"config.data.n_pitches={d.n_pitches} must be a positive multiple of 12")
    if d.steps_per_bar % d.steps_per_quarter:
        problems.append(f"config.data.steps_per_bar={d.steps_per_bar} must be whole quarters of "
                        f"config.data.steps_per_quarter={d.steps_per_quarter}")
    if m.mode not in MODES:
        problems.append(f"config.model.mode must be one of {', '.join(MODES)}, got {m.mode!r}")
    if not 0.0 < m.initial_density < 1.0:
        problems.append(f"config.model.initial_density must be in (0, 1), got {m.initial_density}")
    if len(m.d_channels) != 4 or not m.bar_widths:
        problems.append("config.model.d_channels needs 4 values and config.model.bar_widths at least 1")
    if l.kind not in LOSS_KINDS:
        problems.append(f"config.loss.kind must be one of {', '.join(LOSS_KINDS)}, got {l.kind!r}")
    if l.n_critic < 1:
        problems.append(f"config.loss.n_critic must be >= 1, got {l.n_critic}")
    for key in ("steps", "batch_size", "log_every_steps", "checkpoint_every_steps"):
        if getattr(t, key) < 1:
            problems.append(f"config.train.{key} must be >= 1, got {getattr(t, key)}")
    if t.sample_every_steps < 0 or config.sample.n < 1:
        problems.append("config.train.sample_every_steps must be >= 0 and config.sample.n >= 1")
    if config.sample.threshold is not None and not 0.0 <= config.sample.threshold < 1.0:
        problems.append(f"config.sample.threshold must be in [0, 1) or None, got {config.sample.threshold}")
    if problems:
        raise ConfigError("; ".join(problems))
    return config
