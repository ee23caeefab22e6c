"""Default language-model config: a GRU piano-roll LM with a NADE output (RNN-NADE) on the bundled Bach chorales.

`musejax train` uses it as is; `musejax train --config lm:tiny` is the few-second variant tests and CI use.
Sizes are chosen so the default run (cold data build included) finishes within 10 minutes on 2 CPU cores; every
other value by valid NLL and sample quality on the valid split. The measurements: docs/tuning/lm.md.
"""

from __future__ import annotations

import ml_collections

from musejax.config import default_config
from musejax.lm.config import Config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: None (default) or "tiny". The default's values are the fields' defaults in musejax/lm/config.py (each
    declared and explained there once); this file keeps the variants, docs/tuning/lm.md why."""
    config = default_config(Config)
    data, model, optim, train, sample = config.data, config.model, config.optim, config.train, config.sample
    if arg == "tiny":
        data.max_pieces = 12
        data.window_steps = 16
        data.hop_steps = 8
        data.eval_window_steps = 32
        data.transpose_semitones = 2
        model.position_period = 8  # windows start every 8 steps
        model.hidden = 16
        model.nade_hidden = 8
        model.embed_dim = 8
        model.dropout = 0.1  # kept on so tests see the dropout RNG stream
        optim.learning_rate = 1e-2
        optim.warmup_steps = 2
        train.steps = 20
        train.batch_size = 8
        train.log_every_steps = 5
        train.eval_every_steps = 10
        train.eval_batch_size = 8
        sample.n = 1
        sample.steps = 16
        sample.board_n = 0  # tests turn it on where they check it
    elif arg:
        raise ValueError(f"musejax/configs/lm.py: unknown variant {arg!r} (use lm or lm:tiny)")
    return config
