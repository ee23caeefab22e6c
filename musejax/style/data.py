"""Style-classifier data (numpy only): labelled piano-rolls per split, bit-packed, class-balanced window batches.

Pieces are split by piece id (`musejax.data.splits.split_of`), so every window of a piece is in one split.
Rolls are kept bit-packed along the keys ((T, 11) uint8 instead of (T, 88) bool): the eight bundled corpora
fit in ~60 MB. Training batches are drawn statelessly from (seed, step) -- a resumed run sees the same data:
  balance "sampling": a style uniformly, then one of its pieces uniformly, then a window offset uniformly;
  balance "loss":     a piece uniformly, loss weight = n_pieces / (n_styles * pieces of its style);
  balance "none":     a piece uniformly, weight 1.
Evaluation cuts each piece into non-overlapping windows (the last one padded and masked).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from musejax.data.piano import PIANO_KEYS
from musejax.data.quantize import shift_pitch_axis
from musejax.data.datasets import build_dataset
from musejax.data.encodings import PianoRollEncoding
from musejax.data.windows import make_windows
from musejax.data.texture_shifts import ROLL_SHIFTS, shift_roll

BALANCE_MODES = ("sampling", "loss", "none")
ACCOMPANIMENTS = ("varied", "plain")  # config.data.accompaniments: see texture_shifts.shift_roll


def frame_shape(onsets: bool) -> tuple[int, ...]:
    """(2, 88) for a roll with an onset channel ([0] sounding, [1] onsets), else (88,)."""
    return (2, PIANO_KEYS) if onsets else (PIANO_KEYS,)


def pack_roll(roll: np.ndarray) -> np.ndarray:
    """(T, ..., 88) bool -> (T, ..., 11) uint8."""
    return np.packbits(np.asarray(roll, bool), axis=-1)


def unpack_roll(packed: np.ndarray) -> np.ndarray:
    """(..., 11) uint8 -> (..., 88) bool."""
    return np.unpackbits(packed, axis=-1, count=PIANO_KEYS).astype(bool)


def with_onsets(roll: np.ndarray) -> np.ndarray:
    """(T, 88) sounding roll -> (T, 2, 88): a note starts where a key begins to sound (as the encoding would
    read a decoded roll back; used for LM samples, whose rolls have no onset channel)."""
    roll = np.asarray(roll, bool)
    onsets = roll & ~np.concatenate([np.zeros_like(roll[:1]), roll[:-1]])
    return np.stack([roll, onsets], axis=1)


@dataclasses.dataclass
class StyleSplit:
    """Pieces of one split: ids, style index per piece, bit-packed rolls (T, 11)."""

    ids: list[str]
    labels: np.ndarray
    rolls: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)

    def counts(self, n_styles: int) -> np.ndarray:
        return np.bincount(self.labels, minlength=n_styles)


@dataclasses.dataclass
class StyleData:
    encoding: Any
    styles: list[str]
    train: StyleSplit
    valid: StyleSplit
    test: StyleSplit
    description: str = ""
    n_unlabelled: int = 0


def parse_merge(text: str) -> dict[str, str]:
    """"fiddle=irish,a=b" -> {"fiddle": "irish", "a": "b"} (relabelling before training)."""
    mapping = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        source, sep, target = part.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"config.data.merge_styles: expected OLD=NEW[,OLD=NEW...], got {part!r}")
        mapping[source.strip()] = target.strip()
    return mapping


def split_from_pieces(pieces: list[Any], styles: list[str], merge: dict[str, str], max_per_style: int = 0,
                      ) -> tuple[StyleSplit, int]:
    """EncodedPieces -> a StyleSplit of the labelled ones (relabelled by `merge`); also the unlabelled count."""
    ids, labels, rolls, seen = [], [], [], np.zeros(len(styles), np.int64)
    unlabelled = 0
    for piece in pieces:
        if piece.style is None:
            unlabelled += 1
            continue
        index = styles.index(merge.get(piece.style, piece.style))
        if max_per_style and seen[index] >= max_per_style:
            continue
        seen[index] += 1
        ids.append(piece.id)
        labels.append(index)
        rolls.append(pack_roll(piece.array))
    return StyleSplit(ids, np.asarray(labels, np.int32), rolls), unlabelled


def load_style_data(data: Any, *, progress: bool = True) -> StyleData:
    """Build (or load from the cache) the labelled piano-roll dataset named by a StyleDataConfig."""

    encoding = PianoRollEncoding(steps_per_quarter=data.steps_per_quarter, onsets=data.onsets)
    corpora = [name.strip() for name in data.corpus.split(",") if name.strip()]
    dataset = build_dataset(corpora, encoding, cache_dir=data.cache_dir or None, workers=data.workers or None,
                            progress=progress,
                            labels=data.labels or None, valid_fraction=data.valid_fraction,
                            test_fraction=data.test_fraction)
    merge = parse_merge(data.merge_styles)
    styles = sorted({merge.get(s, s) for s in dataset.styles})
    if len(styles) < 2:
        raise ValueError(f"corpus {dataset.name!r} has {len(styles)} style label(s) {styles}; a classifier needs at "
                         f"least 2 (bundled corpora carry labels; a folder needs config.data.labels)")
    splits, unlabelled = {}, 0
    for name, pieces in dataset.splits.items():
        splits[name], n = split_from_pieces(pieces, styles, merge, data.max_pieces_per_style if name == "train" else 0)
        unlabelled += n
        if not len(splits[name]):
            raise ValueError(f"corpus {dataset.name!r} has no labelled {name} pieces; use a larger corpus or other "
                             f"config.data.valid_fraction/test_fraction")
    missing = [styles[i] for i, n in enumerate(splits["train"].counts(len(styles))) if n == 0]
    if missing:
        raise ValueError(f"corpus {dataset.name!r}: no training pieces of style(s) {', '.join(missing)}")
    description = f"{dataset.name}: " + ", ".join(f"{k} {len(v)} pieces" for k, v in splits.items())
    return StyleData(encoding, styles, splits["train"], splits["valid"], splits["test"], description, unlabelled)


class BalancedWindows:
    """Training batches {"x" (B, W, *frame) bool, "mask" (B, W) bool, "label" (B,) int32, "weight" (B,) float32},
    a pure function of (seed, step); random transposition within +-`transpose_semitones` keeps notes on the keys.
    A `shift_rate` share of the windows gets one texture shift of `shifts` (musejax/data/texture_shifts.py: melody only,
    accompaniment added (`varied`: of any pattern and voicing), coarser grid, note values x2 / x0.5), drawn
    uniformly, before the transposition."""

    def __init__(self, split: StyleSplit, n_styles: int, window_steps: int, batch_size: int, seed: int,
                 balance: str = "sampling", transpose_semitones: int = 0, shift_rate: float = 0.0,
                 shifts: tuple[str, ...] = (), steps_per_quarter: int = 4, varied: bool = False) -> None:
        if balance not in BALANCE_MODES:
            raise ValueError(f"config.train.balance must be one of {', '.join(BALANCE_MODES)}, got {balance!r}")
        unknown = [s for s in shifts if s not in ROLL_SHIFTS]
        if unknown:
            raise ValueError(f"config.data.texture_shifts: unknown shift {unknown[0]!r} (known: {', '.join(ROLL_SHIFTS)})")
        self.split, self.window_steps, self.batch_size = split, window_steps, batch_size
        self.seed, self.balance, self.transpose_semitones = seed, balance, transpose_semitones
        self.shift_rate, self.shifts, self.steps_per_quarter = shift_rate if shifts else 0.0, tuple(shifts), steps_per_quarter
        self.varied = varied
        counts = split.counts(n_styles)
        self.by_style = [np.flatnonzero(split.labels == s) for s in range(n_styles)]
        self.present = np.flatnonzero(counts > 0)
        self.class_weight = np.where(counts > 0, len(split) / (len(self.present) * np.maximum(counts, 1)), 0.0)

    def batch(self, step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        b, w = self.batch_size, self.window_steps
        if self.balance == "sampling":
            styles = rng.choice(self.present, size=b)
            pieces = np.array([rng.choice(self.by_style[s]) for s in styles])
        else:
            pieces = rng.integers(0, len(self.split), size=b)
        x = np.zeros((b, w, *self.split.rolls[0].shape[1:-1], PIANO_KEYS), bool)
        mask = np.zeros((b, w), bool)
        for row, piece in enumerate(pieces):
            roll = self.split.rolls[piece]
            shift = self.shifts[rng.integers(len(self.shifts))] if self.shift_rate and rng.random() < self.shift_rate \
                else None
            factor = (0.5 if rng.random() < 0.5 else 2.0) if shift == "stretch" else 1.0
            source = int(w / factor)  # note values x2 from half a window, x0.5 from two
            start = int(rng.integers(0, max(len(roll) - source, 0) + 1))
            window = unpack_roll(roll[start:start + source])
            if shift is not None:
                window = shift_roll(window, shift, rng, self.steps_per_quarter,
                                    min(w, int(np.ceil(len(window) * factor))), stretch_factor=factor,
                                    varied=self.varied)
            x[row, :len(window)] = _transpose(window, rng, self.transpose_semitones)
            mask[row, :len(window)] = True
        labels = self.split.labels[pieces].astype(np.int32)
        weight = (self.class_weight[labels] if self.balance == "loss" else np.ones(b)).astype(np.float32)
        return {"x": x, "mask": mask, "label": labels, "weight": weight}


def shifted_split(split: StyleSplit, shifts: tuple[str, ...], steps_per_quarter: int, seed: int = 0,
                  per_style: int = 0) -> StyleSplit:
    """Copies of the pieces under every texture shift of `shifts` (note values x2 or x0.5, drawn per piece, for
    "stretch"), of at most `per_style` pieces per style (drawn; 0 = all); copies the shift empties are left out.
    The out-of-style rule fits its Gaussians to these too, so a melody heard with chords is not "unknown" for its
    texture alone."""
    rng = np.random.default_rng([seed, 18])
    chosen = np.arange(len(split))
    if per_style:
        chosen = np.concatenate([rng.permutation(np.flatnonzero(split.labels == s))[:per_style]
                                 for s in np.unique(split.labels)])
    ids, labels, rolls = [], [], []
    for index in np.sort(chosen):
        roll = unpack_roll(split.rolls[index])
        for shift in shifts:
            factor = (0.5 if rng.random() < 0.5 else 2.0) if shift == "stretch" else 1.0
            out = shift_roll(roll, shift, rng, steps_per_quarter, max(1, int(np.ceil(len(roll) * factor))), factor)
            if out.any():
                ids.append(f"{split.ids[index]}#{shift}")
                labels.append(split.labels[index])
                rolls.append(pack_roll(out))
    return StyleSplit(ids, np.asarray(labels, np.int32), rolls)


def _transpose(window: np.ndarray, rng: np.random.Generator, max_semitones: int) -> np.ndarray:
    """Shift by a uniform draw among the shifts in [-max, max] that keep every sounding key on the keyboard (the
    draw sees the keys in use, so it takes one random number; `data.windows.random_transpose` is the
    encoding-generic version, with another random stream)."""
    if max_semitones <= 0:
        return window
    keys = np.flatnonzero(window.reshape(-1, PIANO_KEYS).any(axis=0))
    if not len(keys):
        return window
    low, high = max(-max_semitones, -int(keys[0])), min(max_semitones, PIANO_KEYS - 1 - int(keys[-1]))
    shift = int(rng.integers(low, high + 1))
    return shift_pitch_axis(window, shift) if shift else window


def piece_windows(rolls: list[np.ndarray], window_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-overlapping windows of bit-packed rolls: (windows (N, W, 11) uint8, mask (N, W), piece_index (N,))."""

    return make_windows(rolls, window_steps, window_steps)
