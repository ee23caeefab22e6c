"""Default GAN config: a hybrid MuseGAN on the four-voice Bach chorales (S, A, T, B as four tracks).

`musejax gan train` uses it as is; `musejax gan train --config gan:tiny` is the seconds-long variant tests use.
Segments are 4 bars of 16 sixteenth steps; pitches MIDI 36..83 (whole octaves, the chorales' 36..81). Loss,
critic steps, initial density and binarisation were chosen by experiments/gan_quality.py: docs/tuning/gan.md.
"""

from __future__ import annotations

import ml_collections

from musejax.config import default_config
from musejax.gan.config import GanConfig


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: None (default) or "tiny". The default's values are the fields' defaults in musejax/gan/config.py
    (each declared and explained there once); this file keeps the variants, docs/tuning/gan.md why."""
    config = default_config(GanConfig)
    data, model, loss, train, sample = config.data, config.model, config.loss, config.train, config.sample
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
