"""Chung et al. 2014 ("Empirical evaluation of gated recurrent neural networks on sequence modeling"), music
part: tanh-RNN vs GRU vs LSTM of about 20k parameters each, polyphonic piano-roll at quarter-note resolution.

    musejax train --config chung2014:gru      (also :lstm, :tanh)
    ... --config.data.corpus="/path/JSB Chorales.pickle"   # the BL2012 split instead of the bundled chorales

The paper lists tanh 100 units, GRU 46, LSTM 36 at "about 20k parameters"; with 88 inputs and 88 sigmoid
outputs counted here those give 27.9k / 22.9k / 21.4k, so the sizes below are chosen to match the parameter
budget instead: tanh 77 (19.7k), GRU 42 (20.2k), LSTM 34 (19.9k). The rest (Adam instead of RMSprop with
weight noise, windows, steps) is this project's starting point.
"""

from __future__ import annotations

import ml_collections

from musejax.configs import lm

# variant -> (model.cell, hidden units)
VARIANTS = {"tanh": ("rnn", 77), "gru": ("gru", 42), "lstm": ("lstm", 34)}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: "tanh" | "gru" (default) | "lstm"."""
    variant = arg or "gru"
    if variant not in VARIANTS:
        raise ValueError(f"musejax/configs/chung2014.py: unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
    config = lm.get_config()
    config.name = f"chung2014:{variant}"
    config.data.corpus = "bach-chorales"  # JSB-like; or a BL2012 .pickle file for the paper's exact split
    config.data.steps_per_quarter = 1  # quarter-note resolution as in BL2012
    config.data.window_steps = 64
    config.data.hop_steps = 16
    config.data.transpose_semitones = 0  # the paper trains without augmentation
    config.model.cell, config.model.hidden = VARIANTS[variant]
    config.model.layers = 1
    config.model.dropout = 0.0
    config.optim.optimizer = "adam"
    config.optim.learning_rate = 3e-3
    config.optim.warmup_steps = 50
    config.optim.weight_decay = 0.0
    config.optim.grad_clip_norm = 1.0
    config.train.steps = 3000
    config.train.batch_size = 32
    config.train.eval_every_steps = 250
    config.sample.steps = 64  # 16 bars of 4/4 in quarter notes
    return config
