"""Style classifier config: a small convolutional encoder over 8-bar piano-roll windows of the bundled corpora.

`musejax classify --train` uses it as is (9000 steps: ~7.5 min on 2 idle CPU cores once the corpora are cached);
`--config style:tiny` is the seconds-long variant tests and CI use (on their own corpus). The input is the
piano-roll only; transposition and texture shifts of the training windows keep the model from keying on the
notated key and the texture. The search on the valid split: docs/tuning/style.md.
"""

from __future__ import annotations

import ml_collections

from musejax.config import default_config
from musejax.style.config import StyleConfig


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: None (default) or "tiny". The default's values are the fields' defaults in musejax/style/config.py
    (each declared and explained there once); this file keeps the variants."""
    config = default_config(StyleConfig)
    data, model, optim, train = config.data, config.model, config.optim, config.train
    if arg == "tiny":
        data.window_steps = 32
        data.transpose_semitones = 2
        data.texture_shifts = "grid,stretch"  # the test corpus's two styles differ by texture alone: keep it
        data.texture_shift_rate = 0.5  # and half its windows as they are (calibrated on it)
        data.valid_fraction = 0.25
        data.test_fraction = 0.25
        model.channels = (8, 8)
        model.kernel_size = 3
        model.hidden = 8
        model.embed_dim = 8
        model.dropout = 0.1
        optim.learning_rate = 1e-2
        optim.warmup_steps = 2
        train.steps = 30
        train.batch_size = 8
        train.log_every_steps = 10
        train.eval_every_steps = 15
        train.eval_batch_size = 32
    elif arg:
        raise ValueError(f"musejax/configs/style.py: unknown variant {arg!r} (use style or style:tiny)")
    return config
