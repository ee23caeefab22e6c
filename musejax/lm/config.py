"""The language model's config: frozen dataclasses with their defaults (made once from musejax/configs/lm.py,
chung2014.py, polyphonic.py, or a run's config.json), with the optimizer and checkpoint groups every task shares
(musejax/config.py)."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, Iterable

from musejax.config import CkptConfig, ConfigError, OptimConfig, TaskConfig, apply_overrides, group, load_config
from musejax.config import to_dataclass

# Each field is declared here once, with its default (the default run, `musejax train`) and what it means;
# musejax/configs/lm.py (and chung2014.py, polyphonic.py) start from these defaults and change what differs.


@dataclasses.dataclass(frozen=True)
class DataConfig:
    # fields added after runs were saved without them, and the value those runs computed with (see ModelConfig)
    LEGACY_VALUES: typing.ClassVar[dict[str, Any]] = {"texture_shift_rate": 0.0, "texture_shifts": "",
                                                      "length_bucket_steps": 0}

    corpus: str = "bach-chorales"  # bundled corpus name(s) ("," separated) or a folder of MIDI/MusicXML/ABC/kern
    encoding: str = "pianoroll"  # pianoroll (polyphonic) | melody | performance (events)
    steps_per_quarter: int = 4  # time resolution of the piano-roll / melody encodings (4: a sixteenth grid)
    # training window length in time steps (256: 16 bars of 4/4, most chorales whole, so the model learns to run
    # a whole piece)
    window_steps: int = 256
    hop_steps: int = 128  # hop between training windows (0 = window_steps, no overlap)
    # >0: a training batch gathers windows of similar length and is cut after its longest one, rounded up to a
    # multiple of this many steps (each length is one more compilation of the train step): the default's batches
    # are 12% shorter on average (musejax/train/input_pipeline.py, docs/tuning/lm.md). 0 = full windows.
    length_bucket_steps: int = 64
    eval_window_steps: int = 0  # valid/test window length (0 = whole pieces: the literature's per-step NLL)
    transpose_semitones: int = 5  # random transposition of training windows, +-semitones (0 = off)
    # piano-roll: this share of training windows is re-scored in another texture (0 = off): one shift drawn from
    # `texture_shifts` (musejax/data/texture_shifts.py: "melody" = the top line alone, "melody_chords" = the top
    # line over chords, "accompaniment" = chords added, "grid" = a coarser grid). The model reads which ("as
    # written" or the shift's label): unprimed samples are drawn "as written" (the corpus's texture); a primer is
    # continued under the label most probable given it (musejax/lm/sample.py), so a melody or a tune over chords
    # is carried on as one. Why these values: docs/tuning/lm.md
    texture_shift_rate: float = 0.15
    texture_shifts: str = "melody,melody_chords"
    max_pieces: int = 0  # use at most the first N pieces of each split (0 = all; quick runs)
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    cache_dir: str = ""  # "" = $MUSEJAX_CACHE or ~/.cache/musejax


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    # Fields added after runs were saved without them, and the value that reproduces what those runs computed (not
    # today's default). Any other missing key is an error: a default must not silently change a saved run.
    LEGACY_VALUES: typing.ClassVar[dict[str, Any]] = {
        "weight_noise": 0.0, "output": "bernoulli", "nade_hidden": 150, "nade_order": "low-high", "input_flips": 0.0,
        "nade_count": False, "nade_count_input": "state", "position_period": 0, "transpose_input": False,
        "end_quarters": 0, "bar_lines": False}

    cell: str = "gru"  # gru (cuDNN/torch.nn.GRU formulation) | gru-cho (Cho et al. 2014) | lstm | rnn (tanh)
    hidden: int = 256  # recurrent units per layer
    layers: int = 1
    # dropout between layers, before the readout and before the NADE's biases (training only): the NADE overfits
    # without it
    dropout: float = 0.3
    impl: str = "auto"  # auto (Triton on NVIDIA GPUs, else XLA) | xla | triton: the GRU recurrence
    embed_dim: int = 64  # token embedding size for event encodings (unused by the piano-roll LM)
    style_dim: int = 0  # >0: condition on the piece's style label with an embedding of this size
    # std of Gaussian noise added to every parameter in each training step (Graves 2011's weight noise, the
    # regulariser of Chung et al. 2014); gradients are taken at the noisy weights. 0 = off.
    weight_noise: float = 0.0
    # piano-roll frame distribution: "nade" (RNN-NADE: keys depend on each other) | "bernoulli" (independent
    # keys); event encodings always predict a softmax over the next event
    output: str = "nade"
    nade_hidden: int = 64  # NADE hidden units (output="nade"; 150 fits better at 1.6x the step: docs/tuning/lm.md)
    nade_order: str = "high-low"  # the NADE's key order: "high-low" | "low-high"
    # output="nade": draw the frame's note count first (a softmax over 0..88 notes), then a NADE
    # that places exactly that many notes (exact likelihood; the sampling temperature leaves the count alone)
    nade_count: bool = True
    # what the note count's softmax reads: "nade-hidden" (the NADE's hidden biases: a quarter of the cost of
    # reading the state at the defaults, valid 1.941 against 1.964: docs/tuning/lm.md) | "state" (the recurrent state)
    nade_count_input: str = "nade-hidden"
    # grid encodings (pianoroll, melody): a one-hot of the input step's index mod this many steps joins every input,
    # the place in the bar when pieces start on a downbeat (16: a 4/4 bar of sixteenths; valid 1.776 against
    # 1.814 without: docs/tuning/lm.md); 0 = off. Training windows must start on it: data.hop_steps (or window_steps)
    # and eval_window_steps are multiples of it. Performance events have no grid and ignore it.
    position_period: int = 16
    # with position_period: the place in the bar counts from each piece's bar lines (its meter and pickup, read
    # from its time signatures: musejax/data/quantize.py piece_bar), not from its first step; samples take the
    # bars of the training piece their length is drawn from, a continuation its primer's. Pieces whose bars are not
    # known (no time signature, BL2012 files) count from their first step, as with False.
    bar_lines: bool = True
    # grid encodings: a one-hot of the quarters left to the piece's end, counted down over its last `end_quarters`
    # quarters (one more column: further), joins every input; training windows know their piece's length, samples
    # the length asked for, so a sample's last bars can be written as an ending. 0 = off (performance events: off).
    # The likelihood is then that of a piece given its length (musejax evaluate --lm gives each piece's own).
    # 32 (8 bars): the samples' last quarters came closer to the chorales' (docs/tuning/lm.md)
    end_quarters: int = 32
    # a one-hot of the semitones each training window was transposed by (data.transpose_semitones) joins every input,
    # and sampling and scoring give 0: the model learns from every transposition and still writes in the keys the
    # corpus uses (without it, samples spread over more keys than the corpus has: Y&L pitch-class histogram ratio
    # 0.85 -> 0.98 on valid, docs/tuning/lm.md). Nothing to read when nothing is transposed.
    transpose_input: bool = True
    # training only: each key of the piano-roll input frames is flipped with this probability (0 = off; events:
    # not used)
    input_flips: float = 0.01


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    steps: int = 3600  # total optimizer steps (the default run: 7-13 minutes cold, by machine: docs/tuning/lm.md)
    # global batch, divisible by the number of devices (GPUs/TPU cores; CPU: musejax/train/mesh.py)
    batch_size: int = 16
    seed: int = 0  # data order, augmentation, init and dropout all derive from it
    log_every_steps: int = 50
    eval_every_steps: int = 400  # valid NLL (and a checkpoint) every N steps and at the end
    eval_batch_size: int = 40  # valid/test have ~36-39 whole chorales: one batch each


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    n: int = 4  # samples written to <run>/samples at the end of training
    # length of each sample in time steps / events (0 = whole pieces: as long as a training piece drawn at random)
    steps: int = 0
    temperature: float = 1.0  # also `musejax sample`'s default, as are top_k, top_p and threshold
    top_k: int | None = None  # event LMs: keep the k most likely events
    # nucleus sampling: event LMs' next event, and the key of each note a counting NADE places (models without
    # such a choice leave it alone). 0.9 at temperature 1 was chosen on the valid split over temperatures alone
    # (docs/tuning/lm.md): a temperature below 1 favoured the key already sounding, so notes were held too long
    top_p: float | None = 0.9
    # a counting NADE draws how many keys sound in the next frame from its count softmax at this temperature (the
    # keys keep `temperature` and `top_p`). 1.15 on the valid split, the middle of 1.1-1.2 where every seed met the
    # sample target (docs/tuning/lm.md): at 1 the samples rested half as often as the chorales (empty beats 0.006
    # against 0.011) and missed the rest ratios for 2 of 8 seeds
    count_temperature: float = 1.15
    threshold: float | None = None  # piano-roll: a key sounds if p > threshold (None = Bernoulli sampling)
    # a free sample that copies this many bars of a training piece (one voice's notes, rhythm and intervals, as
    # `musejax evaluate` judges copying) is drawn again (musejax/lm/copy_check.py); 0 = no check
    max_copy_bars: float = 2.0
    seed: int = 0
    board_n: int = 2  # at each evaluation, pieces sampled into TensorBoard (piano-roll + audio); 0 = off
    board_steps: int = 64  # their length in time steps / events (64: 4 bars of sixteenths)
    # every N evaluations (1: each, a curve beside the loss) also their `musejax evaluate` metrics against the
    # valid pieces' openings of the same length (0 = never)
    board_metrics_every: int = 1
    # runs saved before the TensorBoard samples existed reload with them off; before the count temperature, at 1;
    # before the copy check, without it
    LEGACY_VALUES: typing.ClassVar[dict[str, Any]] = {"board_n": 0, "board_steps": 64, "board_metrics_every": 5,
                                                      "count_temperature": 1.0, "max_copy_bars": 0.0}


@dataclasses.dataclass(frozen=True)
class Config(TaskConfig):
    KIND = "lm"
    name: str = "lm"  # the config spec it came from, e.g. "lm:tiny"
    data: DataConfig = group(DataConfig)
    model: ModelConfig = group(ModelConfig)
    optim: OptimConfig = group(OptimConfig)
    train: TrainConfig = group(TrainConfig)
    sample: SampleConfig = group(SampleConfig)
    ckpt: CkptConfig = group(CkptConfig)


def resolve_config(spec: str, overrides: Iterable[str] = ()) -> Config:
    """`load_config(spec)` + `apply_overrides` + `to_dataclass` in one call."""
    return to_dataclass(apply_overrides(load_config(spec), overrides), Config)


def load_config_json(path: str | Path) -> Config:
    """Read a run's config.json back into a `Config`."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config: {err}") from None
    try:
        return to_dataclass(values, Config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
