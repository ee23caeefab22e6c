"""Default language-model config: a GRU piano-roll LM with a NADE output (RNN-NADE) on the bundled Bach chorales.

`musejax train` uses it as is; `musejax train --config lm:tiny` is the few-second variant tests and CI use.
Sizes are chosen so the default run (cold data build included) finishes within 10 minutes on 2 CPU cores.
Chosen by valid NLL (nats per sixteenth step) on the bundled split, each run measured with `musejax train`:
- NADE vs Bernoulli output at equal steps (400 steps of 32 x 256-step windows): valid 4.64 vs 5.19.
- 256-step windows (most chorales whole: median 192, 90% <= 308 steps) with batch 16 for 1200 steps: valid
  3.400, test 3.476, against the former Bernoulli default (64-step windows, batch 32, 2000 steps): 3.578 / 3.657;
  64-step NADE windows (batch 32, 400 steps) reached 4.97 where 256-step ones reached 4.64.
- Whole samples: without regularisation the better-fitted model drifted while it sampled (notes per frame
  3.7 -> 4.5 and mean pitch 59 -> 50 from the first to the last quarter of 256-step samples; real chorales
  3.9 and 61). Dropout 0.3 lowered valid NLL to 3.025 but notes piled up (3.7 -> 10.4 per frame); flipping
  each input key with probability 0.01 in training stopped the pile-up (3.4 -> 3.5, pitch 59.9 -> 59.2) at
  valid 3.058. Key order: high-low 3.371 vs low-high 3.400 (no dropout), so high-low. (1200 steps each.)
Samples default to whole pieces: each draws its length from the training chorales' lengths (sample.steps = 0).
NADE weights W, V start from LeCun-normal (they started at N(0, 0.01), where the NADE's key interactions, a
product of two near-zero matrices, were slow to grow). Valid / test NLL, and wall time of `musejax train` with a
cold corpus build on the idle 2-core machine:
  NADE hidden 64, N(0, 0.01), 1600 steps (the former default)   2.564 / 2.620   473 s
  NADE hidden 64, LeCun, 1600 steps (the default)                2.425 / 2.445
  NADE hidden 150, LeCun, 1400 steps                             2.283 / 2.315   503 s
  NADE hidden 150, LeCun, 1600 steps                             2.218 / 2.254   623 s (over 10 minutes)
Hidden 150 fits better, but its train step costs 3.35x the Bernoulli step (experiments/bench_nade.py), against
2.0x at 64 and the 2x budget, and its samples were no better: overlap ratios >= 0.8 against the VALID chorales
(`experiments/sample_quality.py --against valid`, of 19, seeds 0 / 1) 12 / 14 at T=0.85 for 150 x 1400 steps,
14 / 13 at T=0.8 for the default. So 64 stays; the polyphonic benchmark (configs/polyphonic.py) uses 150.
Sampling temperature 0.8, chosen the same way on the default (seeds 0 / 1): T=1.0 7, 0.9 8 / 9, 0.85 12 / 11,
0.8 14 / 13, 0.75 12 / 10, 0.7 10. Lower temperatures drop voices, higher ones add notes outside the key.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: None (default) or "tiny"."""
    config = ml_collections.ConfigDict()
    config.kind = "lm"  # the task that trains it (recorded in every run's config.json)
    config.name = "lm"

    config.data = data = ml_collections.ConfigDict()
    data.corpus = "bach-chorales"  # bundled corpus name(s) ("," separated) or a folder of MIDI/MusicXML/ABC/kern
    data.encoding = "pianoroll"  # pianoroll (polyphonic, Bernoulli per key) | melody | performance (events)
    data.steps_per_quarter = 4  # sixteenth-note grid
    data.window_steps = 256  # 16 bars of 4/4: most chorales whole, so the model learns to run a whole piece
    data.hop_steps = 128  # longer pieces in overlapping windows
    data.eval_window_steps = 0  # 0 = whole pieces for valid/test NLL
    data.transpose_semitones = 5  # random transposition of training windows, up to a fourth either way
    data.max_pieces = 0  # >0: at most this many pieces per split (quick runs)
    data.valid_fraction = 0.1
    data.test_fraction = 0.1
    data.cache_dir = ""  # "" = $MUSEJAX_CACHE or ~/.cache/musejax

    config.model = model = ml_collections.ConfigDict()
    model.cell = "gru"  # gru (cuDNN/torch.nn.GRU formulation) | gru-cho (Cho et al. 2014) | lstm | rnn (tanh)
    model.hidden = 256
    model.layers = 1
    model.dropout = 0.3  # before the readout and the NADE's biases: the NADE overfits without it
    model.impl = "auto"  # auto (Triton on NVIDIA GPUs, else XLA) | xla | triton
    model.embed_dim = 64  # event token embedding (melody / performance only)
    model.style_dim = 0  # >0: condition on the piece's style label with an embedding of this size
    model.weight_noise = 0.0  # std of Gaussian weight noise in training (0 = off)
    model.output = "nade"  # piano-roll frames: nade (RNN-NADE: keys depend on each other) | bernoulli (independent)
    model.nade_hidden = 64  # NADE hidden units (150 fits better at 1.6x the step time: docstring)
    model.nade_order = "high-low"  # the NADE's key order: high-low | low-high
    model.input_flips = 0.01  # training: flip each key of the input frames with this probability

    config.optim = optim = ml_collections.ConfigDict()
    optim.optimizer = "adamw"
    optim.learning_rate = 3e-3
    optim.warmup_steps = 100
    optim.schedule = "cosine"  # cosine | linear | constant (after warm-up)
    optim.end_learning_rate_factor = 0.05
    optim.weight_decay = 1e-4
    optim.grad_clip_norm = 1.0  # global norm; 0 = off
    optim.b1 = 0.9
    optim.b2 = 0.999

    config.train = train = ml_collections.ConfigDict()
    train.steps = 1600
    train.batch_size = 16  # global; must divide by the number of GPUs/TPU cores (CPU: musejax/train/mesh.py)
    train.seed = 0
    train.log_every_steps = 50
    train.eval_every_steps = 400
    train.eval_batch_size = 40  # valid/test have ~36-39 whole chorales: one batch each

    config.sample = sample = ml_collections.ConfigDict()
    sample.n = 4  # samples written to <run>/samples after training
    sample.steps = 0  # 0 = whole pieces: each sample as long as a training piece drawn at random
    sample.temperature = 0.8  # also `musejax sample`'s default; chosen on the valid split (docstring)
    sample.top_k = config_dict.placeholder(int)  # events only
    sample.top_p = config_dict.placeholder(float)  # events only
    sample.threshold = config_dict.placeholder(float)  # piano-roll: None = Bernoulli sampling
    sample.seed = 0
    sample.board_n = 2  # at each evaluation, pieces sampled into TensorBoard (piano-roll + audio); 0 = off
    sample.board_steps = 64  # their length: 4 bars of sixteenths
    sample.board_metrics_every = 5  # every N evaluations also their `musejax evaluate` metrics vs the valid pieces

    config.ckpt = ckpt = ml_collections.ConfigDict()
    ckpt.keep_best = 1  # by valid NLL
    ckpt.keep_latest = 1

    if arg == "tiny":
        data.max_pieces = 12
        data.window_steps = 16
        data.hop_steps = 8
        data.eval_window_steps = 32
        data.transpose_semitones = 2
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
