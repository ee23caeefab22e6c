"""Language-model data: encoded pieces -> windows -> batches {"inputs", "targets", "mask", "style", "transpose",
"texture", "end"} (numpy).

Piano-roll (loss "bernoulli"): inputs are the frames shifted right by one behind an all-zero start frame,
targets the frames themselves, so every frame of a window is predicted and sampling starts from a zero frame.
Events (loss "categorical"): inputs are events 0..T-2, targets events 1..T-1 (the first event is given).
Validation and test use whole pieces by default (`data.eval_window_steps = 0`): the per-step NLL of the
literature, over every unpadded step of every piece.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from musejax.config import ConfigError
from musejax.data.windows import chained, make_windows, texture_augmentation, transpose_augmentation
from musejax.lm.config import DataConfig
from musejax.train.input_pipeline import iterate, window_batches
from musejax.data.encodings import get_encoding
from musejax.data.datasets import build_dataset
from musejax.data.bl2012 import load_bl2012

# Encodings an LM trains on and their loss.
LOSS_KIND = {"pianoroll": "bernoulli", "melody": "categorical", "performance": "categorical"}
UNKNOWN_END = 2**30  # a batch's "end" where a window's piece length is not known: always far from the end


@dataclasses.dataclass
class WindowSplit:
    """Windows of one split: (N, T, ...) arrays, (N, T) bool mask, (N,) int32 style index (-1 unlabelled),
    (N,) int32 steps from each window's start to its piece's end (None: not known) and (N, 2) int32 bars: the place
    in the bar of each window's first step and the steps per bar (0, 0: not known; None: none known)."""

    windows: np.ndarray
    mask: np.ndarray
    style: np.ndarray
    left: np.ndarray | None = None
    bar: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.windows)


@dataclasses.dataclass
class LMData:
    """Everything the trainer needs from the data side."""

    encoding: Any
    loss_kind: str
    styles: list[str]
    train: WindowSplit
    valid: WindowSplit
    test: WindowSplit
    description: str = ""
    piece_lengths: list[int] = dataclasses.field(default_factory=list)  # training pieces, in time steps / events
    piece_bars: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # theirs, as WindowSplit.bar
    train_pieces: list[np.ndarray] = dataclasses.field(default_factory=list)  # the training pieces themselves
    train_ids: list[str] = dataclasses.field(default_factory=list)  # and their names

    @property
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self.train.windows.shape[2:])

    @property
    def max_notes(self) -> int:
        """Piano-roll: the most sounding keys in one frame of any split (sizes a NADE); events: 0."""
        if self.loss_kind != "bernoulli":
            return 0
        most = 0
        for split in (self.train, self.valid, self.test):
            frames = split.windows.reshape(*split.windows.shape[:2], -1)
            most = max(most, int(np.count_nonzero(frames > 0, axis=-1).max(initial=0)))
        return most


def make_encoding(data: DataConfig) -> Any:
    """The encoding named by `data.encoding` with the config's options."""

    if data.encoding not in LOSS_KIND:
        raise ValueError(f"config.data.encoding must be one of {', '.join(LOSS_KIND)} for a language model, "
                         f"got {data.encoding!r}")
    options = {"steps_per_quarter": data.steps_per_quarter} if data.encoding in ("pianoroll", "melody") else {}
    return get_encoding(data.encoding, **options)


def load_lm_data(data: DataConfig, *, progress: bool = True) -> LMData:
    """Build (or load from the cache) the dataset and cut it into training and evaluation windows.

    `data.corpus` names bundled corpora / folders, or a Boulanger-Lewandowski 2012 piano-roll file
    (.pickle / .json, its own train/valid/test split; piano-roll encoding only).
    """

    encoding = make_encoding(data)
    if data.corpus.endswith((".pickle", ".pkl", ".json", ".mat")):
        return _load_bl2012(data, encoding)
    corpora = [name.strip() for name in data.corpus.split(",") if name.strip()]
    dataset = build_dataset(corpora, encoding, cache_dir=data.cache_dir or None, progress=progress,
                            valid_fraction=data.valid_fraction, test_fraction=data.test_fraction)
    splits, bars, names = {}, {}, {}
    for split, pieces in dataset.splits.items():
        if data.max_pieces:
            pieces = pieces[: data.max_pieces]
        if not pieces:
            raise ValueError(f"corpus {dataset.name!r} has no {split} pieces (of {dataset.report.n_loaded} loaded); "
                             f"use a larger corpus or other config.data.valid_fraction/test_fraction")
        splits[split] = ([p.array for p in pieces], [dataset.style_index(p.style) for p in pieces])
        bars[split] = [p.bar for p in pieces]
        names[split] = [p.id for p in pieces]
    description = (f"{dataset.name}: " + ", ".join(f"{k} {len(v[0])} pieces" for k, v in splits.items())
                   + f" ({encoding.name})")
    return windows_from_arrays(data, encoding, splits, dataset.styles, description, bars, names["train"])


def _load_bl2012(data: DataConfig, encoding: Any) -> LMData:

    if encoding.name != "pianoroll" or getattr(encoding, "onsets", False):
        raise ValueError(f"{data.corpus}: a BL2012 piano-roll file needs config.data.encoding=pianoroll (no onsets)")
    splits, names, name = {}, {}, Path(data.corpus).name
    for split, rolls in load_bl2012(data.corpus).items():
        named = [(f"{name}/{split}/{i}", np.asarray(r, bool)) for i, r in enumerate(rolls) if len(r)]
        if data.max_pieces:
            named = named[: data.max_pieces]
        if not named:
            raise ValueError(f"{data.corpus}: no {split} pieces")
        splits[split] = ([roll for _, roll in named], [-1] * len(named))
        names[split] = [piece_id for piece_id, _ in named]
    description = f"{data.corpus}: " + ", ".join(f"{k} {len(v[0])} pieces" for k, v in splits.items())
    return windows_from_arrays(data, encoding, splits, [], description, train_ids=names["train"])


def windows_from_arrays(data: DataConfig, encoding: Any, splits: dict[str, tuple[list[np.ndarray], list[int]]],
                        styles: list[str], description: str = "",
                        bars: dict[str, list[tuple[int, int]]] | None = None,
                        train_ids: Sequence[str] | None = None) -> LMData:
    """Cut per-split (arrays, style indices) into windows: training windows of `data.window_steps` every
    `data.hop_steps`, evaluation windows of `data.eval_window_steps` (0 = the longest valid/test piece).
    `bars`: per split, each piece's (phase, steps per bar) (`quantize.piece_bar`; None: not known); `train_ids`:
    the training pieces' names (None: train/0, train/1, ...)."""

    eval_length = data.eval_window_steps or max(len(a) for s in ("valid", "test") for a in splits[s][0])
    lengths = {"train": (data.window_steps, data.hop_steps or data.window_steps),
               "valid": (eval_length, eval_length), "test": (eval_length, eval_length)}
    out = {}
    for split, (arrays, style_index) in splits.items():
        length, hop = lengths[split]
        windows, mask, piece = make_windows(arrays, length, hop)
        first = np.searchsorted(piece, piece)  # a piece's windows are consecutive and start at 0, hop, 2 hop, ...
        start = (np.arange(len(piece)) - first) * hop
        left = np.asarray([len(a) for a in arrays], np.int64)[piece] - start
        bar = None
        if bars is not None:  # each window's phase: its piece's, moved on by the window's start
            phase, per_bar = np.asarray(bars[split], np.int64).reshape(-1, 2)[piece].T
            bar = np.stack([np.where(per_bar > 0, (phase + start) % np.maximum(per_bar, 1), 0), per_bar], 1)
            bar = bar.astype(np.int32)
        out[split] = WindowSplit(windows, mask, np.asarray(style_index, np.int32)[piece], left.astype(np.int32), bar)
    return LMData(encoding=encoding, loss_kind=LOSS_KIND[encoding.name], styles=list(styles),
                  train=out["train"], valid=out["valid"], test=out["test"], description=description,
                  piece_lengths=[len(a) for a in splits["train"][0]],
                  piece_bars=[tuple(map(int, b)) for b in bars["train"]] if bars is not None else [],
                  train_pieces=list(splits["train"][0]),
                  train_ids=list(train_ids) if train_ids is not None else [f"train/{i}" for i in
                                                                           range(len(splits["train"][0]))])


# the shifts a language model's training windows may get (a stretch would change the window's length)
LM_TEXTURE_SHIFTS = ("melody", "melody_chords", "accompaniment", "grid")  # shift i has texture label i + 1
TEXTURE_LABELS = 1 + len(LM_TEXTURE_SHIFTS)  # with 0: as written (musejax/data/windows.py)


def texture_label(shift: str) -> int:
    """The texture label a language model reads for windows re-scored by `shift` (one of LM_TEXTURE_SHIFTS)."""
    return 1 + LM_TEXTURE_SHIFTS.index(shift)


def texture_shift_names(data: DataConfig, loss_kind: str) -> tuple[str, ...]:
    """The texture shifts training windows get: config.data.texture_shifts for a piano-roll model with
    texture_shift_rate > 0, else () (event encodings have no texture to shift)."""
    names = tuple(name.strip() for name in data.texture_shifts.split(",") if name.strip())
    if not 0.0 <= data.texture_shift_rate <= 1.0:
        raise ConfigError(f"config.data.texture_shift_rate must be in [0, 1], got {data.texture_shift_rate}")
    unknown = [name for name in names if name not in LM_TEXTURE_SHIFTS]
    if unknown:
        raise ConfigError(f"config.data.texture_shifts: unknown shift {unknown[0]!r} for a language model "
                          f"(choose from {', '.join(LM_TEXTURE_SHIFTS)})")
    if loss_kind != "bernoulli" or data.texture_shift_rate == 0.0:
        return ()
    if not names:
        raise ConfigError(f"config.data.texture_shift_rate={data.texture_shift_rate} needs config.data.texture_shifts")
    return names


def lm_batch(windows: np.ndarray, mask: np.ndarray, style: np.ndarray, loss_kind: str,
             transpose: np.ndarray | None = None, texture: np.ndarray | None = None,
             end: np.ndarray | None = None, bar: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Windows -> {"inputs", "targets", "mask" float32, "style" int32, "transpose" int32: the semitones each
    window was transposed by in augmentation (0: as written), "texture" int32: its texture label (0: as written,
    musejax/data/windows.py `texture_augmentation`), "end" int32: the steps from the window's start to its piece's
    end (None: UNKNOWN_END), "bar" (B, 2) int32: the place in the bar of its first step and the steps per bar
    (None: (0, 0), not known)} for next-step prediction."""
    def labels(values: np.ndarray | None, default: int = 0) -> np.ndarray:
        return np.full(len(windows), default, np.int32) if values is None else np.asarray(values, np.int32)

    extras = {"style": np.asarray(style, np.int32), "transpose": labels(transpose), "texture": labels(texture),
              "end": labels(end, UNKNOWN_END),
              "bar": np.zeros((len(windows), 2), np.int32) if bar is None else np.asarray(bar, np.int32)}
    if loss_kind == "bernoulli":
        frames = np.asarray(windows, np.float32)
        inputs = np.concatenate([np.zeros_like(frames[:, :1]), frames[:, :-1]], axis=1)
        return {"inputs": inputs, "targets": frames, "mask": np.asarray(mask, np.float32), **extras}
    events = np.asarray(windows, np.int32)
    return {"inputs": events[:, :-1], "targets": events[:, 1:], "mask": np.asarray(mask[:, 1:] & mask[:, :-1], np.float32),
            **extras}


def eval_batches(split: WindowSplit, batch_size: int, loss_kind: str) -> list[dict[str, np.ndarray]]:
    """All windows of a split in batches of `batch_size`; the last batch is filled with fully masked rows."""
    n = len(split)
    n_padded = -(-n // batch_size) * batch_size
    pad = n_padded - n
    windows = np.concatenate([split.windows, np.zeros_like(split.windows[:1]).repeat(pad, 0)])
    mask = np.concatenate([split.mask, np.zeros((pad, split.mask.shape[1]), bool)])
    style = np.concatenate([split.style, np.zeros(pad, np.int32)])
    left = None if split.left is None else np.concatenate([split.left, np.full(pad, UNKNOWN_END, np.int32)])
    bar = None if split.bar is None else np.concatenate([split.bar, np.zeros((pad, 2), np.int32)])
    return [lm_batch(windows[i : i + batch_size], mask[i : i + batch_size], style[i : i + batch_size], loss_kind,
                     end=None if left is None else left[i : i + batch_size],
                     bar=None if bar is None else bar[i : i + batch_size])
            for i in range(0, n_padded, batch_size)]


class TrainBatches:
    """Training batches for steps start, start+1, ...: the Grain pipeline of musejax/train/input_pipeline.py
    (epochs of shuffled windows, each randomly transposed; with `length_bucket > 0`, batched by length and cut
    after the longest window) as LM batches. Batch s depends only on (data, seed, s), so a resumed run sees
    exactly the batches (and augmentations) an uninterrupted one would.
    """

    def __init__(self, data: LMData, batch_size: int, seed: int, transpose_semitones: int,
                 texture_shifts: tuple[str, ...] = (), texture_shift_rate: float = 0.0,
                 bar_quarters: float = 4.0, length_bucket: int = 0) -> None:
        augments = []
        if texture_shifts:  # first: the shifts find chords in the key as written
            augments.append(texture_augmentation(texture_shifts, texture_shift_rate, data.encoding.steps_per_quarter,
                                                 bar_quarters, [texture_label(name) for name in texture_shifts]))
        if transpose_semitones:
            augments.append(transpose_augmentation(data.encoding, transpose_semitones))
        augment = chained(*augments) if augments else None
        self.loss_kind = data.loss_kind
        extras = {"style": data.train.style}
        if data.train.left is not None:
            extras["left"] = data.train.left
        if data.train.bar is not None:
            extras["bar"] = data.train.bar
        self.dataset = window_batches(data.train.windows, data.train.mask, extras,
                                      batch_size=batch_size, seed=seed, augment=augment, length_bucket=length_bucket)

    def from_step(self, start_step: int) -> Iterator[dict[str, np.ndarray]]:
        loss_kind = self.loss_kind
        return iterate(self.dataset, start_step,
                       lambda batch: lm_batch(batch["array"], batch["mask"], batch["style"], loss_kind,
                                              batch.get("transpose"), batch.get("texture"), batch.get("left"),
                                              batch.get("bar")))
