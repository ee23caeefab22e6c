"""Style classifier config: a small convolutional encoder over 8-bar piano-roll windows of the bundled corpora.

`musejax classify --train` uses it as is (5000 steps: ~8-12 min on 2 CPU cores once the corpora are parsed and
cached; the first parse of the eight corpora took 13.5 min on 2 busy cores); `--config style:tiny` is the seconds-long variant tests and CI use (on their own corpus).
The input is the piano-roll only (no tempo, program, key-signature or length metadata); transposition of
training windows keeps the model from keying on the notated key, and texture shifts of half of them (melody
only, chords added, a coarser grid, note values x2 / x0.5; musejax/style/shifts.py) from keying on the texture.
The out-of-style Gaussians also see a shifted copy of each training piece (config.classify.shifted_copies).
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
