"""Default GAN config: a hybrid MuseGAN on the four-voice Bach chorales (S, A, T, B as four tracks).

`musejax gan train` uses it as is; `musejax gan train --config gan:tiny` is the seconds-long variant tests use.
Segments are 4 bars of 16 sixteenth steps. The pitch axis is MIDI 36..83 (C2..B5, 4 octaves): the chorales'
voices span 36..81, the generator makes whole octaves (n_pitches a multiple of 12) and the discriminator's
first layer looks at one octave at a time.

Chosen by measurement (experiments/gan_quality.py, equal wall-clock budgets on 2 CPU cores):
- loss WGAN-GP: the minimax loss (non-saturating G, 1 D step per G step, 1500 steps) collapses here (1.7% of
  1000 samples distinct, mean pairwise Jaccard distance 0.003 vs 0.95 between training segments), with or
  without the minibatch-std feature; WGAN-GP keeps every sample distinct (0.97).
- n_critic 3 for 750 steps rather than 5 for 500 (same time): closer on every metric.
- initial_density 0.02 (output bias at the data's cell density): from the unbiased start (0.5), 500 steps left
  the notes fragmented (14% of notes an eighth or longer, vs 97% in the data) and some bars empty; from the
  data's density, 67-69% and no empty bar.
- binary_fakes (BinaryMuseGAN's straight-through binarisation): D judges what the samples will be.
The default run, cold data build included, took 10.5 min on 2 CPU cores shared with another training job.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict


def _adam(learning_rate: float) -> ml_collections.ConfigDict:
    optim = ml_collections.ConfigDict()
    optim.optimizer = "adam"
    optim.learning_rate = learning_rate
    optim.warmup_steps = 0
    optim.schedule = "constant"  # cosine | linear | constant
    optim.end_learning_rate_factor = 1.0
    optim.weight_decay = 0.0  # adamw only
    optim.grad_clip_norm = 0.0  # 0 = off
    optim.b1 = 0.5  # MuseGAN / DCGAN Adam settings
    optim.b2 = 0.9
    return optim


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: None (default) or "tiny"."""
    config = ml_collections.ConfigDict()
    config.kind = "gan"  # the task that trains it (recorded in every run's config.json)
    config.name = "gan"

    config.data = data = ml_collections.ConfigDict()
    data.corpus = "bach-chorales"  # bundled corpus name(s) ("," separated) or a folder of MIDI/MusicXML
    data.n_tracks = 4  # S, A, T, B
    data.n_bars = 4
    data.steps_per_bar = 16  # 4/4 bars of sixteenths
    data.steps_per_quarter = 4
    data.min_pitch = 36  # C2
    data.n_pitches = 48  # C2..B5: whole octaves, covers the chorales' 36..81
    data.transpose_semitones = 5  # random transposition of training segments (only shifts that stay in range)
    data.max_pieces = 0  # 0 = all training pieces
    data.valid_fraction = 0.1
    data.test_fraction = 0.1
    data.cache_dir = ""  # "" = $MUSEJAX_CACHE or ~/.cache/musejax

    config.model = model = ml_collections.ConfigDict()
    model.mode = "hybrid"  # hybrid (shared + per-track noise) | composer (one generator) | jamming (per track)
    model.latent_dim = 32  # each noise vector
    model.temporal_hidden = 128
    model.bar_widths = (256, 128, 128, 64, 64, 32)  # dense, then per transposed convolution
    model.d_channels = (64, 128, 256, 256)  # octave, beat, bar, bar-pair convolutions
    model.d_hidden = 512
    model.d_minibatch_std_group = 4  # minibatch standard deviation feature (0 = off): counters mode collapse
    model.initial_density = 0.02  # the untrained generator's cell density (the chorales': ~1 of 48 pitches per voice)
    model.style_dim = 0  # >0: conditional on the style label (projection discriminator)

    config.loss = loss = ml_collections.ConfigDict()
    loss.kind = "wgan-gp"  # wgan-gp | minimax (non-saturating generator loss)
    loss.gp_weight = 10.0
    loss.n_critic = 3  # discriminator steps per generator step
    loss.binary_fakes = True  # D sees fakes binarised at 0.5, straight-through gradients (BinaryMuseGAN)

    config.g_optim = _adam(1e-3)
    config.d_optim = _adam(1e-3)

    config.train = train = ml_collections.ConfigDict()
    train.steps = 750  # generator steps (2250 discriminator steps)
    train.batch_size = 64
    train.seed = 0
    train.log_every_steps = 25
    train.sample_every_steps = 150  # grid PNG + MIDI under <run>/samples (0 = off)
    train.checkpoint_every_steps = 150

    config.sample = sample = ml_collections.ConfigDict()
    sample.n = 16
    sample.threshold = config_dict.FieldReference(0.5, field_type=float)  # p > threshold; None = Bernoulli
    sample.seed = 0
    sample.qpm = 100.0
    sample.board_n = 2  # segments of each grid also in TensorBoard (piano-roll + audio); 0 = off
    sample.board_metrics_every = 5  # every N grids their `musejax evaluate` metrics vs the held-out segments

    config.ckpt = ckpt = ml_collections.ConfigDict()
    ckpt.keep_best = 1  # unused by the GAN (no validation loss); the latest are kept
    ckpt.keep_latest = 2

    if arg == "tiny":
        data.max_pieces = 12
        model.latent_dim = 8
        model.temporal_hidden = 16
        model.bar_widths = (16, 8)
        model.d_channels = (8, 8, 16, 16)
        model.d_hidden = 16
        loss.n_critic = 2
        train.steps = 4
        train.batch_size = 8
        train.log_every_steps = 2
        train.sample_every_steps = 2
        train.checkpoint_every_steps = 2
        sample.n = 2
        sample.board_n = 0  # tests turn it on where they check it
    elif arg:
        raise ValueError(f"musejax/configs/gan.py: unknown variant {arg!r} (use gan or gan:tiny)")
    return config
