"""Style classifier config: a small convolutional encoder over 8-bar piano-roll windows of the bundled corpora.

`musejax classify --train` uses it as is (about 2500 steps: ~5 min on 2 quiet CPU cores once the corpora are
parsed and cached); `--config style:tiny` is the seconds-long variant tests and CI use (on their own corpus).
The input is the piano-roll only (no tempo, program, key-signature or length metadata); transposition of
training windows keeps the model from keying on the notated key.
"""

from __future__ import annotations

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: None (default) or "tiny"."""
    config = ml_collections.ConfigDict()
    config.kind = "style"  # the task that trains it (recorded in every run's config.json)
    config.name = "style"

    config.data = data = ml_collections.ConfigDict()
    data.corpus = "all"  # bundled corpus names ("," separated; "all" = the eight bundled styles) or a folder
    data.labels = ""  # folder corpus: "folder" (first sub-folder is the style) or a CSV/JSON path -> label file
    # relabel before training ("" = keep every label): O'Neill's Irish tunes and Ryan's fiddle tunes (largely
    # the same Irish/Scottish dance repertoire) are the one "Irish/fiddle" style of the issue: 7 styles
    data.merge_styles = "irish=irish-fiddle,fiddle=irish-fiddle"
    data.steps_per_quarter = 4  # piano-roll grid (shared with the LM's cache)
    data.onsets = True  # add an onset channel ((T, 2, 88)): repeated notes differ from held ones
    data.window_steps = 128  # 8 bars of 4/4 per window; a piece is classified by averaging its windows
    data.transpose_semitones = 6  # random transposition of training windows (+-), so the key is no cue
    data.max_pieces_per_style = 0  # >0: at most N training pieces per style (quick runs)
    data.valid_fraction = 0.1
    data.test_fraction = 0.1
    data.cache_dir = ""  # "" = $MUSEJAX_CACHE or ~/.cache/musejax
    data.workers = 0  # processes parsing an uncached corpus (0 = all cores)

    config.model = model = ml_collections.ConfigDict()
    model.kind = "conv"  # conv (1-D convolutions over time, keys as channels) | gru
    model.channels = (64, 96, 128, 128)  # conv blocks; each halves the time axis (receptive field ~4 bars)
    model.kernel_size = 5
    model.hidden = 128  # gru units (kind=gru)
    model.embed_dim = 128  # window / piece embedding (recommendation, Frechet distance)
    model.dropout = 0.2  # before the linear head

    config.optim = optim = ml_collections.ConfigDict()
    optim.optimizer = "adamw"
    optim.learning_rate = 2e-3
    optim.warmup_steps = 100
    optim.schedule = "cosine"
    optim.end_learning_rate_factor = 0.05
    optim.weight_decay = 1e-4
    optim.grad_clip_norm = 1.0
    optim.b1 = 0.9
    optim.b2 = 0.999

    config.train = train = ml_collections.ConfigDict()
    train.steps = 2500
    train.batch_size = 64
    train.seed = 0
    # class imbalance: "sampling" (each batch draws styles uniformly, then a piece, then a window),
    # "loss" (pieces drawn uniformly, loss weighted by inverse style frequency) or "none"
    train.balance = "sampling"
    train.log_every_steps = 50
    train.eval_every_steps = 250  # valid macro-F1 (piece level) and a checkpoint
    train.eval_batch_size = 256  # windows per forward pass in evaluation

    config.classify = classify = ml_collections.ConfigDict()
    # out-of-style rule: a piece is "unknown style" when its distance to the nearest style (Mahalanobis, in the
    # embedding space) exceeds the threshold that keeps this share of the valid pieces (see musejax/style/classify.py)
    classify.coverage = 0.95

    config.ckpt = ckpt = ml_collections.ConfigDict()
    ckpt.keep_best = 1  # by valid macro-F1
    ckpt.keep_latest = 1

    if arg == "tiny":
        data.window_steps = 32
        data.transpose_semitones = 2
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
