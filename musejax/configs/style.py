"""Style classifier config: a small convolutional encoder over 8-bar piano-roll windows of the bundled corpora.

`musejax classify --train` uses it as is (7000 steps: ~8 min on 2 idle CPU cores once the corpora are parsed and
cached; the first parse of the eight corpora took 13.5 min on 2 busy cores); `--config style:tiny` is the
seconds-long variant tests and CI use (on their own corpus).
The input is the piano-roll only (no tempo, program, key-signature or length metadata); transposition of
training windows keeps the model from keying on the notated key, and texture shifts of 60% of them (melody
only, chords added, a coarser grid, and twice as often note values x2 / x0.5; musejax/data/texture_shifts.py) from
keying on the texture. The out-of-style Gaussians also see shifted copies of the training pieces
(config.classify.shifted_copies).
Chosen on the valid split (`python experiments/style_robustness.py --run RUN --split valid`, 1,205 pieces):
accuracy under the worst shifts, macro-F1 unshifted, out-of-style AUROC and share flagged (40 pieces):

| run | melody | chords | quarter grid | values x2 | values x0.5 | macro-F1 | AUROC / flagged |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| rate 0.5, the four shifts once, 5000 steps (before) | 0.914 | 0.905 | 0.900 | 0.889 | 0.891 | 0.960 | 0.978 / 81% |
| the same, 7000 steps | 0.901 | 0.916 | 0.889 | 0.909 | 0.887 | 0.966 | 0.976 / 90% |
| rate 0.7, the four once, 6000 steps | | | 0.888 | 0.899 | 0.912 | 0.954 | - / 62% |
| rate 0.5, stretch twice, 5000 steps | 0.859 | 0.894 | 0.917 | 0.909 | 0.903 | 0.962 | 0.985 / 86% |
| rate 0.5, stretch twice, 7000 steps | 0.885 | 0.915 | 0.899 | 0.931 | 0.908 | 0.967 | 0.964 / 67% |
| rate 0.6, stretch twice, 7000 steps (the default) | 0.920 | 0.923 | 0.894 | 0.925 | 0.923 | 0.970 | 0.957 / 57% |

The default lifts the worst shift on valid (0.889 -> 0.894) and every other one to >= 0.92, at the cost of the
out-of-style rule flagging fewer outside pieces (its Gaussians are wider).
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
