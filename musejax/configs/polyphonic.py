"""The polyphonic benchmark (experiments/polyphonic.py): a GRU piano-roll LM with a NADE output (RNN-NADE,
Boulanger-Lewandowski et al. 2012) or independent Bernoulli keys, on a BL2012 file (JSB Chorales, Nottingham,
MuseData, Piano-midi.de; .pickle / .json / .mat) at the file's own time grid.

    musejax train --config polyphonic --config.data.corpus="/path/JSB Chorales.pickle"       # RNN-NADE
    musejax train --config polyphonic:bernoulli --config.data.corpus=...                    # Bernoulli output
    python experiments/polyphonic.py --data "JSB Chorales.pickle" [--model bernoulli]       # + results table

Data: BL2012 results are per time step of whole pieces without augmentation, so valid/test are whole pieces
(eval_window_steps 0) and training does not transpose (transpose_semitones > 0 turns it on). Training windows
are long (128 steps, hop 64): JSB's pieces (about 60 steps) are whole in one window; the longer pieces of the
other sets are cut into overlapping windows. steps_per_quarter only matters for a corpus given by name.

Sizes: one GRU layer of 200 units and a NADE of 150 hidden units that draws the note count first (the lm
default, model.nade_count), dropout 0.5; Adam at a peak of 1e-2 with
gradient clipping and a cosine decay; the best valid NLL (checked every 200 steps) picks the checkpoint. The step count is sized for
JSB (229 training pieces, about 230 windows of 128 steps) on two CPU cores: 6000 steps of 16 windows, about
400 epochs. Each set's run must fit in an hour on this machine. Timed on scratch files of the BL2012 sets' piece
counts and lengths (random chords: times only, 2026-12-06), the NADE trained at 10-14 steps/s; the whole default
run on a MuseData-sized file (524 / 135 / 124 pieces, up to 4,300 steps, 30 evaluations of every valid piece)
took 12.4 min, and 400 steps on a Piano-midi.de-sized one 40 s; experiments/polyphonic.py records the wall
time of each run. These are first guesses, not tuned: tune by valid NLL only (`--config.model.hidden=...`,
`--config.model.dropout=...`, `--config.optim.learning_rate=...`, `--config.train.steps=...`) and list the
search here. Larger sets (Nottingham 694, MuseData 524 training pieces, Piano-midi.de's long pieces) see
fewer epochs in the same steps: scale config.train.steps with the time budget.
Search on the valid split of the bundled chorales in BL2012 format (experiments/polyphonic.py without --data;
valid / test NLL at the best valid step; 2026-12-03):
  Adam 1e-3, dropout 0.3, 1500 steps (the first guess)    valid 6.584   test 6.797   best step 1500 (of 1500)
  Adam 1e-2, dropout 0.3, 1500 steps                      valid 5.638   test 5.953   best step 400
  Adam 1e-2, dropout 0.5, 1500 steps                      valid 5.569   test 5.785   best step 400
  Adam 1e-2, dropout 0.5, 800 steps                       valid 5.577   test 5.802   best step 400
  the same, note count first (model.nade_count, default)  valid 5.186   test 5.354   best step 400
  the same, the count read from the NADE's hidden biases  valid 5.399   test 5.497   best step 200
  (model.nade_count_input, the lm default since 2026-12-03 evening), so this config reads it from the state
At 1e-2 the model overfits this 218-piece set after about 400 steps (train NLL 2.0 at step 1500 with dropout
0.3), so the best-valid checkpoint is the early-stopping point; the 6000 steps are kept for the larger sets.
These defaults on BL2012's JSB Chorales (the quarter-note JSON of czhuang/JSB-Chorales-dataset, 229 / 76 / 77
pieces; `python experiments/polyphonic.py --data jsb-chorales-quarter.json --seed S`, 2026-12-06), untuned on it:
  seed 0   valid 5.236   test 5.252   best step 400 of 6000   314 s of training
  seed 1   valid 5.279   test 5.292   best step 400           304 s
  seed 2   valid 5.249   test 5.249   best step 400           301 s
  seed 0, NADE key order high-low       valid 5.332   test 5.328   best step 400   (so low-high stays)
  seed 0, Bernoulli output (:bernoulli)  valid 8.589   test 8.688   best step 5000   207 s
"""

from __future__ import annotations

import ml_collections

from musejax.configs import lm

OUTPUTS = ("nade", "bernoulli")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: "nade" (default) | "bernoulli" | "tiny" (a NADE of a few units and steps, for tests)."""
    variant = arg or "nade"
    if variant not in (*OUTPUTS, "tiny"):
        raise ValueError(f"musejax/configs/polyphonic.py: unknown variant {variant!r}; use nade, bernoulli or tiny")
    config = lm.get_config()
    data, model, optim, train = config.data, config.model, config.optim, config.train
    data.corpus = "bach-chorales"  # the benchmark passes a BL2012 file (.pickle/.pkl/.json/.mat) here
    data.steps_per_quarter = 1  # corpora by name only: quarter notes, as BL2012's JSB; a BL2012 file keeps its grid
    data.window_steps = 128  # whole JSB pieces; longer pieces in overlapping windows
    data.hop_steps = 64
    data.eval_window_steps = 0  # whole pieces: the literature's NLL per time step
    data.transpose_semitones = 0  # BL2012 results are without augmentation
    data.texture_shift_rate = 0.0  # (of either kind)

    model.cell = "gru"
    model.hidden = 200
    model.layers = 1
    model.dropout = 0.5  # before the readout and the NADE's biases (valid 5.638 at 0.3, 5.569 at 0.5: above)
    model.input_flips = 0.0  # likelihood benchmark: no input corruption
    # BL2012 files have no bar lines: a piece need not start on a downbeat. A 4/4 bar of quarters (4) on the bundled
    # chorales, 800 steps, one seed: valid 5.160 against 5.186; kept off for files of unknown grid (2026-12-03)
    model.position_period = 0
    model.output = "bernoulli" if variant == "bernoulli" else "nade"
    model.nade_hidden = 150
    model.nade_order = "low-high"
    model.nade_count_input = "state"  # valid 5.186 against 5.399 from the NADE's hidden biases (above)

    optim.optimizer = "adam"
    optim.learning_rate = 1e-2  # valid 6.584 at 1e-3, 5.638 at 1e-2 (dropout 0.3, 1500 steps: above)
    optim.warmup_steps = 100
    optim.schedule = "cosine"
    optim.end_learning_rate_factor = 0.05
    optim.grad_clip_norm = 1.0

    train.steps = 6000
    train.batch_size = 16
    train.log_every_steps = 100
    train.eval_every_steps = 200  # valid NLL + checkpoint; the best valid step is the early-stopping point
    train.eval_batch_size = 16  # whole pieces; Piano-midi.de and MuseData pieces are far longer than JSB's

    config.sample.steps = 64  # 16 bars of 4/4 at JSB's quarter notes
    config.sample.board_n = 0  # a likelihood benchmark: no TensorBoard samples, the time goes to training

    if variant == "tiny":
        data.window_steps = 16
        data.hop_steps = 8
        model.hidden = 16
        model.nade_hidden = 8
        optim.warmup_steps = 2
        optim.learning_rate = 1e-2
        train.steps = 6
        train.batch_size = 4
        train.log_every_steps = 2
        train.eval_every_steps = 2
        train.eval_batch_size = 4
        config.sample.n = 1
        config.sample.steps = 8
    return config
