"""Chung et al. 2014 ("Empirical evaluation of gated recurrent neural networks on sequence modeling"), music
part: tanh-RNN vs GRU vs LSTM of about 20k parameters each, polyphonic piano-roll at quarter-note resolution.

    musejax train --config chung2014:gru      (also :lstm, :tanh)
    ... --config.data.corpus="/path/JSB Chorales.pickle"   # the BL2012 split instead of the bundled chorales

The paper lists tanh 100 units, GRU 46, LSTM 36 at "about 20k parameters"; with 88 inputs and 88 sigmoid
outputs counted here those give 27.9k / 22.9k / 21.4k, so the sizes below are chosen to match the parameter
budget instead: tanh 77 (19.7k), GRU 42 (20.2k), LSTM 34 (19.9k).

Training, tuned by valid NLL of the GRU on BL2012's JSB Chorales (quarter notes; `--data FILE`): Gaussian
weight noise (std 0.05, the paper's regulariser) with AdamW (lr 1e-2, decoupled weight decay 0.3, gradient
norm clipped to 1, cosine decay); whole pieces (windows of 128 quarter notes hold all but the longest
chorales), so training starts every sequence from the zero state as evaluation does; 8000 steps of 32 with
valid NLL every 100 steps, the best-valid checkpoint being the early-stopping point. GRU valid NLL on JSB in
that search (test in brackets): weight decay 0.5 alone 8.534 (8.614); 0.3 8.533 (8.594); 1.0 8.583;
lr 1e-2 8.510 (8.608); 46 units 8.556; dropout 0.2 + decay 0.1 8.610; weight noise 0.05 + decay 0.1
8.452 (8.520); noise 0.075 + lr 1e-2 8.493 (8.596); noise 0.05 + decay 0.3 + lr 1e-2 (the defaults) 8.431 (8.527).
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
    config.model.cell, config.model.hidden = VARIANTS[variant]
    config.model.layers = 1
    config.model.output = "bernoulli"  # the paper's independent-key output
    config.model.position_period = 0  # the paper's model reads the frames only
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
