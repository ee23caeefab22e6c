"""Windows and augmentation (transposition, texture shifts) of encoded pieces: plain numpy, deterministic in a
generator. Batches of them come from the Grain pipeline in musejax/train/input_pipeline.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from musejax.data.texture_shifts import shift_roll


def make_windows(arrays: Sequence[np.ndarray], length: int, hop: int | None = None,
                 pad_value: int | float = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut pieces into windows of `length` steps every `hop` steps (default: `length`, no overlap).

    Returns (windows (N, length, ...), mask (N, length) bool, piece_index (N,) int64). Windows start at
    0, hop, 2*hop, ... until one reaches the end of the piece; the last partial window and pieces shorter
    than `length` are padded with `pad_value` and masked False there. Empty pieces give no window.
    """
    hop = length if hop is None else hop
    if length < 1 or hop < 1:
        raise ValueError(f"window length and hop must be >= 1, got {length=}, {hop=}")
    if len(arrays) == 0:
        raise ValueError("make_windows needs at least one array")
    feature_shape, dtype = np.shape(arrays[0])[1:], np.asarray(arrays[0]).dtype
    spans: list[tuple[int, int, int]] = []  # (piece, start, stop)
    for index, array in enumerate(arrays):
        if np.shape(array)[1:] != feature_shape or np.asarray(array).dtype != dtype:
            raise ValueError(f"array {index} has shape {np.shape(array)} / {np.asarray(array).dtype}, "
                             f"expected (T, {', '.join(map(str, feature_shape))}) / {dtype}")
        steps = len(array)
        start = 0
        while start < steps:
            spans.append((index, start, min(start + length, steps)))
            if start + length >= steps:
                break
            start += hop
    windows = np.full((len(spans), length, *feature_shape), pad_value, dtype=dtype)
    mask = np.zeros((len(spans), length), dtype=bool)
    for row, (index, start, stop) in enumerate(spans):
        windows[row, : stop - start] = arrays[index][start:stop]
        mask[row, : stop - start] = True
    piece_index = np.array([span[0] for span in spans], dtype=np.int64)
    return windows, mask, piece_index


def random_transpose(array: np.ndarray, encoding: Any, rng: np.random.Generator, max_semitones: int) -> np.ndarray:
    """Transpose by a shift drawn uniformly from those in [-max_semitones, max_semitones] that keep every note
    in the encoding's range (`encoding.transpose` returns None for the others)."""
    return transposed(array, encoding, rng, max_semitones)[0]


def transposed(array: np.ndarray, encoding: Any, rng: np.random.Generator, max_semitones: int
               ) -> tuple[np.ndarray, int]:
    """`random_transpose` and the shift it drew (semitones)."""
    if max_semitones < 0:
        raise ValueError(f"max_semitones must be >= 0, got {max_semitones}")
    for shift in rng.permutation(np.arange(-max_semitones, max_semitones + 1)):
        if shift == 0:
            return array, 0
        shifted = encoding.transpose(array, int(shift))
        if shifted is not None:
            return shifted, int(shift)
    return array, 0  # unreachable: a shift of 0 is always among the candidates


# (window, mask, rng) -> the augmented window, or a dict of the window's fields to set ({"array": ..., and more})
Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], Any]


def transpose_augmentation(encoding: Any, max_semitones: int) -> Augment:
    """An `augment` for the input pipeline (musejax/train/input_pipeline.py): transposes the unpadded prefix of a
    window (see `random_transpose`) -> {"array": the window, "transpose": the shift drawn, int32}."""

    def augment(window: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        steps = int(mask.sum())
        out = np.array(window, copy=True)
        out[:steps], shift = transposed(window[:steps], encoding, rng, max_semitones)
        return {"array": out, "transpose": np.int32(shift)}

    return augment


TEXTURE_AS_WRITTEN = 0  # the texture label of a window left as the corpus wrote it (`texture_augmentation`)


def texture_augmentation(shifts: Sequence[str], rate: float, steps_per_quarter: int, bar_quarters: float,
                         labels: Sequence[int] | None = None) -> Augment:
    """An `augment` for piano-roll windows ((T, 88) bool): a `rate` share of them gets one texture shift drawn
    from `shifts` (musejax/data/texture_shifts.py: "melody", "melody_chords", ...; the accompaniment's bars
    `bar_quarters` long from the window's start) -> {"array": the window, "texture": int32 label}: the shift's
    label (`labels[i]` for shifts[i], default i + 1), or TEXTURE_AS_WRITTEN. A model given the label writes the
    corpus's texture when told "as written", and learns from the shifted windows to carry on a melody, or a
    melody over chords, that it is given."""
    shifts = tuple(shifts)
    labels = tuple(range(1, len(shifts) + 1)) if labels is None else tuple(int(label) for label in labels)
    if not shifts or not 0.0 <= rate <= 1.0 or len(labels) != len(shifts) or TEXTURE_AS_WRITTEN in labels:
        raise ValueError(f"texture_augmentation needs shifts, a label for each other than {TEXTURE_AS_WRITTEN} "
                         f"and a rate in [0, 1]; got {shifts}, {labels}, {rate}")

    def augment(window: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        if rng.random() >= rate:
            return {"array": window, "texture": np.int32(TEXTURE_AS_WRITTEN)}
        steps = int(mask.sum())
        out = np.zeros_like(window)
        drawn = int(rng.integers(len(shifts)))
        out[:steps] = shift_roll(window[:steps], shifts[drawn], rng, steps_per_quarter, bar_quarters=bar_quarters)
        return {"array": out, "texture": np.int32(labels[drawn])}

    return augment


def chained(*augments: Augment) -> Augment:
    """One `augment` applying each in turn to the window the one before returned; their fields merged."""

    def augment(window: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for step in augments:
            out = step(window, mask, rng)
            fields.update(out if isinstance(out, dict) else {"array": out})
            window = fields["array"]
        return fields

    return augment
