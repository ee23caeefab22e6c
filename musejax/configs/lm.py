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
Peak learning rate 1e-2 and 2000 steps (2026-12-03; it was 3e-3 and 1600 steps). The model was far from
converged: the same 3e-3 run stretched to 3200 steps was already at valid 2.213 at its step 1600 (where its
cosine decay was half done) and ended at 2.072 / test 2.102, with better samples (17 of 19 ratios on valid, seed
0). At 1600 steps, valid NLL by peak learning rate (grad-norm clipping 1.0, cosine to 5%):
  3e-3 2.436   6e-3 2.213   1e-2 2.143   2e-2 2.285
With the true history, the fraction of valid frames the NADE draws with 4 notes (the chorales: 91%) rose with
the fit: 67% (3e-3, 1600 steps), 74% (3e-3, step 1600 of 3200), 79% (3e-3, 3200 steps), 83% (1e-2, 1600 steps),
all at T=1. Sample ratios on valid (seeds 0 / 1, T=0.8): 6e-3 15 / 16, 1e-2 13 / 16 (T=0.75 / 0.85 / 0.9 on the
6e-3 run: 14 / 15, 14 / 15, 13 / 14, so 0.8 stays). 2000 steps fit the 10-minute budget (README).
The note count first (model.nade_count, 2026-12-03): the NADE alone drew 4-note frames too rarely (3.68 sounding
notes per step in samples against the chorales' 3.92), and lower temperatures dropped voices. Drawing the count
from its own softmax and letting the NADE place exactly that many notes (its hidden units told how many are
left) gave valid / test 1.964 / 2.032 against 2.041 / 2.077 (same data, seed and steps; telling the NADE only
the total count: valid 2.001). Sample ratios on valid (seeds 0 / 1, T=0.8): 15 / 16 against 16 / 16, polyphony
3.92 (ratio 1.00 against 0.12-0.20) and n_notes fixed, pitch range (39 against 35 semitones) and groove
consistency (0.46-0.55) missed instead. Temperature on valid, seed 0: 0.7 13, 0.8 15, 0.9 11; the count drawn
at the same temperature as the keys: 0.8 10, 0.7 10 (no silent beats or thin chords left), so it is drawn at 1.
The count head costs train time: 2.6x the Bernoulli step against 2.1x for the NADE alone (bench_nade.py, over
the 2x goal); the default run still takes 332 s cold.
Those samples drew the keys one by one, each key's on/off tempered; with the count fixed that pushed each note
later in the high-to-low order (mean pitch 56.2 against 59.4). Drawn a note at a time (nade.nade_place, the
temperature on the choice of each note's key), sample ratios on valid by temperature (seeds 0 / 1 / 2; mean
ratio over the three):
  0.65 14 / - / -      0.7 17 / 16 / 14 (0.884)      0.75 19 / 13 / 16 (0.911)      0.8 15 / 14 / - (0.903, two)
  0.9 11 / - / -
so 0.75.
The count read from the NADE's hidden biases (model.nade_count_input="nade-hidden", 2026-12-03), a 64 -> 89
readout in place of 256 -> 89: valid / test 1.941 / 2.002 against 1.964 / 2.032 (same data, seed and steps),
sample ratios on valid at T=0.75 (seeds 0 / 1 / 2) 18 / 14 / 13 against 19 / 13 / 16 (mean of the 19 ratios of
sample_quality.json over the seeds: 0.910 against 0.916),
and a train step of 1.85x the Bernoulli step against 2.0x (bench_nade.py, medians of three runs, after the NADE
stopped resharding the batch); 224 s cold for the default run. The polyphonic benchmark keeps the state
(configs/polyphonic.py).
4000 steps and temperature 0.775 (2026-12-03): the run took 224 s, so it had room. At 4000 steps (same peak 1e-2,
cosine over the 4000) valid / test 1.814 / 1.888 against 1.941 / 2.002, 416 s cold; sample ratios on valid
(seeds 0 / 1 / 2; mean of the 19 ratios over the seeds) and the longest span a sample shares with a training piece:
  T=0.75 17 / 16 / 17 (0.919), 1.5 bars      T=0.775 18 / 17 / 17 (0.924), 1.5 bars
  T=0.8 18 / 17 / 17 (0.940), but seed 1 drew a sample sharing 2.0 bars with bwv70.7 (the target: none >= 2)
  T=0.85 15 / 15 / 16 (0.895)
against 18 / 14 / 13 (0.910) at 2000 steps and T=0.75 (T=0.7 15 / 11 / 12, 0.866; T=0.8 18 / 15 / 14, 0.898).
The place in the bar as an input (model.position_period=16, 2026-12-03: a one-hot of the step mod 16 beside each
frame; training windows start every 128 steps, so on a bar line wherever the piece does): valid / test
1.776 / 1.850 against 1.814 / 1.888 (same data, seed and 4000 steps; 405 s cold). Sample ratios on valid, 96 samples
(seeds 0 / 1 / 2 / 3; mean of the 19 ratios; the ratios of groove consistency and inter-onset intervals):
  without, T=0.775      17 / 17 / 19 / 18 (0.929)     groove 0.797, intervals 0.796
  with, T=0.75          18 / 17 / 17 / 15 (0.920)     groove 0.824, intervals 0.676
  with, T=0.775         19 / 18 / 16 / 17 (0.930)     groove 0.863, intervals 0.767
  with, T=0.8           18 / 17 / 19 / 18 (0.929)     groove 0.854, intervals 0.832; but seed 3 drew a sample
                                                      sharing 2.0 bars with bwv190.7 (the target: none >= 2)
  with, T=0.825         16 / 16 / 18 / 18 (0.911)     groove 0.740, intervals 0.942
so 0.775 stays. Samples hold notes more than the chorales do (2.8 notes per quarter against 3.5 at T=0.775; 3.5
at T=0.95, where pitch range and groove fall apart). Drawing whether a note is held or struck anew at T=1 and
only which keys at 0.775 (the previous frame's keys given their T=1 share at each note) matched the density
(3.6) and the inter-onset intervals (0.95) but broke the groove (0.61; 0.73 with that share at T=0.85): not kept.
The transposition as an input (model.transpose_input, 2026-12-03: a one-hot of the -5..+5 semitones each training
window was moved by; sampling and scoring give 0). Trained on every key, the model had spread its samples over more
keys than the chorales use (tonics by Krumhansl-Schmuckler over 96 samples: entropy 3.45 bits, 23 keys; training
chorales 3.06 bits, 20 keys), so the Y&L pitch-class histograms missed on test (0.72-0.74). Told the key is as
written, 3.11 bits, 18 keys. Same data, seed and 4000 steps: valid / test 1.799 / 1.863 against 1.776 / 1.850
(0.02 nats given up), 408 s; sample ratios on valid, 96 samples, seeds 0-3 (mean of the 19 ratios; the Y&L
pitch-class histogram's and transitions' ratios; the longest span a sample shares with a training piece):
  with, T=0.75          18 / 15 / 18 / 17 (0.939)     0.98 / 0.98     1.75 bars
  with, T=0.775         18 / 18 / 17 / 16 (0.941)     0.98 / 0.97     2.25 bars (seed 1: one sample, bwv153.9)
  with, T=0.8           17 / 18 / 18 / 19 (0.932)     0.97 / 0.99     2.0 bars (seed 3)
  without, T=0.775      19 / 18 / 16 / 17 (0.930)     0.85 / 0.82     1.75 bars
so 0.775 stays; writing in the corpus's keys makes a sample more likely to meet a training passage note for note.
Texture shifts (data.texture_shift_rate 0.15, data.texture_shifts "melody,melody_chords", 2026-12-06). Given a folk
tune, alone or over chords, the chorale model carried it on in four chorale voices. Now a share of the training
windows is re-scored as its top line alone or as that line over diatonic chords (musejax/data/texture_shifts.py,
the chords' bars following the place in the bar), the model reads which (a one-hot: 0 as written, one label per
shift), samples are drawn "as written", and a primer is continued under the label most probable given it
(lm/sample.py primer_texture). Out-of-corpus primers (experiments/primer_sets.py: 16 per set, 4 continuations of
8 bars each, T=0.775, seed 0; absolute polyphony / density difference between continuation and primer, and the
share in the same or the relative key), against what the real pieces do in their next 8 bars:
                          folk-melody            folk-chords            openings
  without the shifts      2.75 / 1.27, 23%       0.88 / 1.24, 67%       0.70 / 1.14, 53%
  rate 0.3                0.00 / 0.21, 38%       0.15 / 0.63, 56%       0.60 / 1.12, 55%
  rate 0.15 (default)     0.00 / 0.20, 50%       0.16 / 0.67, 58%       0.62 / 1.13, 42%
  the real next 8 bars    0.00 / 0.09, 44%       0.10 / 0.24, 69%       0.58 / 0.57, 69%
One label for both shifts (tried first, rate 0.3) read 4 of the 16 openings as "shifted" and continued two of them
(a polonaise, an aria: polyphony 3.4 and 4.3) in a single line: so one label per shift. The rate was chosen on
the valid split (96 samples a seed, seeds 0-3; mean of the 19 ratios; the longest span a sample shares with a
training piece; valid NLL):
  without the shifts      18 / 18 / 17 / 16 (0.941)     2.25 bars (seed 1)     1.799
  rate 0.3                16 / 17 / 18 / 18 (0.930)     1.50 bars              1.855
  rate 0.15 (default)     18 / 17 / 19 / 19 (0.940)     1.50 bars              1.795
At 0.3 the samples rested less than the chorales (empty-beat ratios 0.70-0.77): the shifted windows' chords
sound through the tune's rests, and "as written" learnt some of that. The temperature again on this model (valid,
seeds 0-3): T=0.8 19 / 18 / 19 / 19 (0.958), but seed 0 drew a sample sharing 2.0 bars with a training chorale
(the target: none >= 2), so 0.775 stays.
"""

from __future__ import annotations

import ml_collections

from musejax.config import default_config
from musejax.lm.config import Config


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """arg: None (default) or "tiny". The default's values are the fields' defaults in musejax/lm/config.py (each
    declared and explained there once); this file keeps why they were chosen and the variants."""
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
