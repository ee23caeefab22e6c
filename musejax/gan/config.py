"""The GAN run's config as frozen dataclasses (made once from `musejax/configs/gan.py` by `musejax.config`).

The optimizer and checkpoint groups reuse the language model's `OptimConfig` and `CkptConfig`, one
optimizer per network (g_optim, d_optim).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

from musejax.config import CkptConfig, ConfigError, OptimConfig, TaskConfig, apply_overrides, load_config
from musejax.config import saved_config_dict
from musejax.config import to_dataclass


@dataclasses.dataclass(frozen=True)
class GanDataConfig:
    corpus: str  # bundled corpus name(s) ("," separated) or a folder
    n_tracks: int  # voices -> tracks (S, A, T, B for the chorales)
    n_bars: int  # bars per segment
    steps_per_bar: int
    steps_per_quarter: int
    min_pitch: int  # lowest MIDI pitch of the pitch axis
    n_pitches: int  # a multiple of 12 (the generator makes whole octaves)
    transpose_semitones: int  # random transposition of training segments, +-semitones (0 = off)
    max_pieces: int  # use only the first N training pieces (0 = all)
    valid_fraction: float
    test_fraction: float
    cache_dir: str  # "" = $MUSEJAX_CACHE or ~/.cache/musejax


@dataclasses.dataclass(frozen=True)
class GanModelConfig:
    mode: str  # "hybrid" | "composer" | "jamming" (MuseGAN's multitrack modes)
    latent_dim: int  # size of each noise vector
    temporal_hidden: int  # width of the temporal generators
    bar_widths: tuple[int, ...]  # bar generator widths, dense first, then per transposed convolution
    d_channels: tuple[int, ...]  # discriminator convolution channels (4: octave, beat, bar, bar pairs)
    d_hidden: int  # discriminator dense width
    d_minibatch_std_group: int  # minibatch-std feature over groups of N examples (against mode collapse; 0 = off)
    initial_density: float  # the untrained generator's cell density (output bias = its logit)
    style_dim: int  # >0: conditional GAN on the piece's style (projection discriminator); 0 = off


@dataclasses.dataclass(frozen=True)
class GanLossConfig:
    kind: str  # "wgan-gp" (Gulrajani et al. 2017, MuseGAN's choice) | "minimax" (non-saturating G loss)
    gp_weight: float  # gradient-penalty weight (wgan-gp)
    n_critic: int  # discriminator steps per generator step
    binary_fakes: bool  # D sees fakes binarised at 0.5 (straight-through gradient), as the samples will be


@dataclasses.dataclass(frozen=True)
class GanTrainConfig:
    steps: int  # generator steps
    batch_size: int  # global batch of real and of generated segments
    seed: int  # data order, augmentation, init and noise all derive from it
    log_every_steps: int
    sample_every_steps: int  # a grid of samples (PNG + MIDI) under <run>/samples/ every N steps (0 = off)
    checkpoint_every_steps: int  # and at the end


@dataclasses.dataclass(frozen=True)
class GanSampleConfig:
    n: int  # samples in each grid, and written at the end of training
    threshold: float | None  # binarise p > threshold; None = Bernoulli sampling
    seed: int
    qpm: float  # tempo of the written MIDI
    # TensorBoard samples (defaults here too: runs saved before these keys existed reload with them)
    board_n: int = 0  # segments of each grid logged as piano-roll image + audio (0 = off)
    board_metrics_every: int = 5  # every N grids also their metrics against the held-out segments (0 = never)


@dataclasses.dataclass(frozen=True)
class GanConfig(TaskConfig):
    KIND = "gan"
    name: str
    data: GanDataConfig
    model: GanModelConfig
    loss: GanLossConfig
    g_optim: OptimConfig
    d_optim: OptimConfig
    train: GanTrainConfig
    sample: GanSampleConfig
    ckpt: CkptConfig


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
    from musejax.gan.model import MODES

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
