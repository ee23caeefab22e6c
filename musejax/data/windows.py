"""Windows, augmentation (transposition) and batches of encoded pieces: plain numpy, deterministic in a seed."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np


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
    if max_semitones < 0:
        raise ValueError(f"max_semitones must be >= 0, got {max_semitones}")
    for shift in rng.permutation(np.arange(-max_semitones, max_semitones + 1)):
        if shift == 0:
            return array
        shifted = encoding.transpose(array, int(shift))
        if shifted is not None:
            return shifted
    return array  # unreachable: a shift of 0 is always among the candidates


Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]  # (window, mask, rng) -> window


def transpose_augmentation(encoding: Any, max_semitones: int) -> Augment:
    """An `augment` for BatchIterator: transposes the unpadded prefix of a window (see `random_transpose`)."""

    def augment(window: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        steps = int(mask.sum())
        out = np.array(window, copy=True)
        out[:steps] = random_transpose(window[:steps], encoding, rng, max_semitones)
        return out

    return augment


class BatchIterator:
    """Batches of windows as dicts of numpy arrays: {"array", "mask", **extras}, deterministic in (seed, epoch).

    `extras` are per-window arrays (e.g. "style", "piece_index") batched alongside. `augment(window, mask, rng)`
    (e.g. `transpose_augmentation`) is applied per window with a generator seeded by (seed, epoch, batch), so
    resuming a run at batch k of an epoch (`epoch(e, start_batch=k)`) sees exactly the same data.
    """

    def __init__(self, arrays: np.ndarray, masks: np.ndarray, extras: dict[str, np.ndarray] | None = None,
                 batch_size: int = 32, seed: int = 0, shuffle: bool = True, drop_remainder: bool = True,
                 augment: Augment | None = None) -> None:
        arrays = np.asarray(arrays)
        extras = {key: np.asarray(value) for key, value in (extras or {}).items()}
        n = len(arrays)
        if np.shape(masks)[:2] != np.shape(arrays)[:2]:
            raise ValueError(f"masks shape {np.shape(masks)} does not match arrays shape {np.shape(arrays)}")
        for key, value in extras.items():
            if key in ("array", "mask") or len(value) != n:
                raise ValueError(f"extra {key!r}: reserved name or length {len(value)} != {n} windows")
        if batch_size < 1 or seed < 0:
            raise ValueError(f"need batch_size >= 1 and seed >= 0, got {batch_size=}, {seed=}")
        if drop_remainder and n < batch_size:
            raise ValueError(f"{n} windows are fewer than one batch of {batch_size} (drop_remainder=True)")
        self.arrays, self.masks, self.extras = arrays, np.asarray(masks, dtype=bool), extras
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.drop_remainder, self.augment = drop_remainder, augment

    @property
    def steps_per_epoch(self) -> int:
        """Number of batches in one epoch."""
        n = len(self.arrays)
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The window order of an epoch (a permutation seeded by (seed, epoch) when shuffling)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        n = len(self.arrays)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Yield the batches of `epoch`, beginning at batch `start_batch` (for an exact resume)."""
        order = self.order(epoch)
        for batch in range(start_batch, self.steps_per_epoch):
            index = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            arrays, masks = self.arrays[index], self.masks[index]
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, epoch, batch])
                arrays = np.stack([self.augment(a, m, rng) for a, m in zip(arrays, masks)])
            yield {"array": arrays, "mask": masks, **{key: value[index] for key, value in self.extras.items()}}
