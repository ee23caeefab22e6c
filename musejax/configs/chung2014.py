"""Chung et al. 2014 ("Empirical evaluation of gated recurrent neural networks on sequence modeling"), music
part: tanh-RNN vs GRU vs LSTM of about 20k parameters each, polyphonic piano-roll at quarter-note resolution.

    musejax train --config chung2014:gru      (also :lstm, :tanh)
    ... --config.data.corpus="/path/JSB Chorales.pickle"   # the BL2012 split instead of the bundled chorales

Sizes match the paper's parameter budget (tanh 77, GRU 42, LSTM 34 units); training was tuned by the GRU's valid
NLL on BL2012's JSB Chorales: docs/tuning/chung2014.md.
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
    config.data.window_steps = 128  # whole pieces, as the paper (a longer one is cut into 128-step windows)
    config.data.hop_steps = 128
    config.data.transpose_semitones = 0  # the paper trains without augmentation
    config.data.texture_shift_rate = 0.0
    config.data.length_bucket_steps = 0  # full-window batches, as the recorded figures were measured
    config.model.cell, config.model.hidden = VARIANTS[variant]
    config.model.layers = 1
    config.model.output = "bernoulli"  # the paper's independent-key output
    config.model.position_period = 0  # the paper's model reads the frames only
    config.model.end_quarters = 0  # (nor how far the piece's end is)
    config.model.dropout = 0.0
    config.model.weight_noise = 0.05  # the paper's regulariser (Gaussian weight noise in training)
    config.optim.optimizer = "adamw"  # plus decoupled weight decay
    config.optim.learning_rate = 1e-2
    config.optim.warmup_steps = 50
    config.optim.weight_decay = 0.3
    config.optim.grad_clip_norm = 1.0  # the paper rescales the gradient norm to 1 too
    config.train.steps = 8000
    config.train.batch_size = 32
    config.train.log_every_steps = 100
    config.train.eval_every_steps = 100  # the best-valid checkpoint is the early-stopping point
    config.sample.steps = 64  # 16 bars of 4/4 in quarter notes
    config.sample.board_n = 0  # a likelihood benchmark: no TensorBoard samples, the time goes to training
    return config
