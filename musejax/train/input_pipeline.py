"""Training batches on Grain: epochs of shuffled windows, augmented, batched, by random access.

`window_batches(...)` is a `grain.MapDataset` whose item s is training batch s: the windows of every epoch in
a fresh order seeded by (seed, epoch) (Grain reshuffles each repetition), each window augmented with a
generator Grain seeds from (seed, its position in the stream), then `batch_size` consecutive windows stacked.
Batch s depends only on (data, seed, s), so a run resumed at step s reads exactly what an uninterrupted run
would: the step number is the whole iterator state, saved in every checkpoint already. `iterate(dataset,
start)` reads from batch `start` on, with Grain's prefetch threads (no worker processes: the windows are
numpy arrays already in memory, and threads are safe beside JAX where forked workers are not).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grain
import numpy as np

from musejax.data.windows import Augment
PREFETCH_THREADS = 2
PREFETCH_BATCHES = 8


class _Windows:
    """Random access to window i as {"array", "mask", **extras} (Grain's data source protocol)."""

    def __init__(self, arrays: np.ndarray, masks: np.ndarray, extras: dict[str, np.ndarray]) -> None:
        self.arrays, self.masks, self.extras = arrays, masks, extras

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"array": self.arrays[index], "mask": self.masks[index],
                **{key: value[index] for key, value in self.extras.items()}}


def window_batches(arrays: np.ndarray, masks: np.ndarray, extras: dict[str, np.ndarray] | None = None, *,
                   batch_size: int, seed: int, augment: Augment | None = None) -> grain.MapDataset:
    """The endless stream of training batches {"array", "mask", **extras} as a Grain MapDataset (item s =
    batch s). ValueError on mismatched shapes or fewer windows than one batch."""
    arrays, masks = np.asarray(arrays), np.asarray(masks, dtype=bool)
    extras = {key: np.asarray(value) for key, value in (extras or {}).items()}
    n = len(arrays)
    if masks.shape[:2] != arrays.shape[:2]:
        raise ValueError(f"masks shape {masks.shape} does not match arrays shape {arrays.shape}")
    for key, value in extras.items():
        if key in ("array", "mask") or len(value) != n:
            raise ValueError(f"extra {key!r}: reserved name or length {len(value)} != {n} windows")
    if batch_size < 1 or seed < 0:
        raise ValueError(f"need batch_size >= 1 and seed >= 0, got {batch_size=}, {seed=}")
    if n < batch_size:
        raise ValueError(f"{n} windows are fewer than one batch of {batch_size}")
    dataset = grain.MapDataset.source(_Windows(arrays, masks, extras)).shuffle(seed=seed).repeat(None)
    if augment is not None:
        def augmented(window: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
            return {**window, **_fields(augment(window["array"], window["mask"], rng))}

        dataset = dataset.random_map(augmented, seed=seed)
    return dataset.batch(batch_size, drop_remainder=True)


def _fields(augmented: Any) -> dict[str, Any]:
    """An `Augment`'s result as the window fields it sets: a bare array is the window itself."""
    return augmented if isinstance(augmented, dict) else {"array": augmented}


def iterate(dataset: grain.MapDataset, start: int = 0, transform: Callable[[Any], Any] | None = None) -> Iterator[Any]:
    """Items start, start+1, ... of an endless MapDataset (optionally transformed), read ahead by threads."""
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    dataset = dataset[start:]
    if transform is not None:
        dataset = dataset.map(transform)
    options = grain.ReadOptions(num_threads=PREFETCH_THREADS, prefetch_buffer_size=PREFETCH_BATCHES)
    return iter(dataset.to_iter_dataset(options))
