"""Chung et al. 2014 ("Empirical evaluation of gated recurrent neural networks on sequence modeling"), music
part: tanh-RNN vs GRU vs LSTM of about 20k parameters each, polyphonic piano-roll at quarter-note resolution.

    musejax train --config chung2014:gru      (also :lstm, :tanh)
    ... --config.data.corpus="/path/JSB Chorales.pickle"   # the BL2012 split instead of the bundled chorales

The paper lists tanh 100 units, GRU 46, LSTM 36 at "about 20k parameters"; with 88 inputs and 88 sigmoid
outputs counted here those give 27.9k / 22.9k / 21.4k, so the sizes below are chosen to match the parameter
budget instead: tanh 77 (19.7k), GRU 42 (20.2k), LSTM 34 (19.9k).

Training (tuned by valid NLL with experiments/chung2014.py on the bundled chorales in BL2012 form): AdamW
with decoupled weight decay 0.5 stands in for the paper's RMSprop + weight noise; whole pieces (windows of
128 quarter notes hold all but the longest chorales) so training starts every sequence from the zero state
as evaluation does; 8000 steps of 32 (~880 epochs) with valid NLL every 100 steps, so early stopping at the
best valid checkpoint catches the tanh RNN, which overfits after ~150 epochs.
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
    config.model.cell, config.model.hidden = VARIANTS[variant]
    config.model.layers = 1
    config.model.dropout = 0.0
    config.optim.optimizer = "adamw"  # the regulariser; 0.3 overfits sooner, 1.0 underfits
    config.optim.learning_rate = 3e-3
    config.optim.warmup_steps = 50
    config.optim.weight_decay = 0.5
    config.optim.grad_clip_norm = 1.0  # the paper rescales the gradient norm to 1 too
    config.train.steps = 8000
    config.train.batch_size = 32
    config.train.log_every_steps = 100
    config.train.eval_every_steps = 100  # the best-valid checkpoint is the early-stopping point
    config.sample.steps = 64  # 16 bars of 4/4 in quarter notes
    return config
