"""Training batches on Grain: epochs of shuffled windows, augmented, batched, by random access.

`window_batches(...)` is a `grain.MapDataset` whose item s is training batch s: the windows of every epoch in
a fresh order seeded by (seed, epoch) (Grain reshuffles each repetition), each window augmented with a
generator Grain seeds from (seed, its position in the stream), then `batch_size` consecutive windows stacked.
Batch s depends only on (data, seed, s), so a run resumed at step s reads exactly what an uninterrupted run
would: the step number is the whole iterator state, saved in every checkpoint already. `iterate(dataset,
start)` reads from batch `start` on, with Grain's prefetch threads (no worker processes: the windows are
numpy arrays already in memory, and threads are safe beside JAX where forked workers are not).

With `length_bucket > 0` a batch gathers windows of similar length and is cut to its longest window (rounded up
to a multiple of `length_bucket` steps), so a model steps through less padding: each epoch's shuffled windows are
sorted by length within runs of SORT_CHUNK_BATCHES batches, and the batches are then shuffled. Batch s still
depends only on (data, seed, s).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import grain
import numpy as np

from musejax.data.windows import Augment
PREFETCH_THREADS = 2
PREFETCH_BATCHES = 8
# length grouping sorts windows within runs of this many batches: enough to bring similar lengths together,
# few enough that a batch's windows still come from all over the corpus
SORT_CHUNK_BATCHES = 8


class _Windows:
    """Random access to window i as {"array", "mask", **extras} (Grain's data source protocol)."""

    def __init__(self, arrays: np.ndarray, masks: np.ndarray, extras: dict[str, np.ndarray]) -> None:
        self.arrays, self.masks, self.extras = arrays, masks, extras

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {"array": self.arrays[index], "mask": self.masks[index],
                **{key: value[index] for key, value in self.extras.items()}}


class _LengthGroupedStream:
    """Random access to position i of the endless window stream, epochs in `length_grouped_order`."""

    def __init__(self, windows: _Windows, batch_size: int, seed: int) -> None:
        self.windows, self.batch_size, self.seed = windows, batch_size, seed
        self.lengths = windows.masks.sum(axis=1)
        self.per_epoch = len(windows) // batch_size * batch_size
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return sys.maxsize

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        epoch, position = divmod(index, self.per_epoch)
        order = self._orders.get(epoch)
        if order is None:  # prefetch threads may both compute it: the same array either way
            order = length_grouped_order(self.lengths, self.batch_size, self.seed, epoch)
            self._orders = {epoch: order, **{e: o for e, o in self._orders.items() if e == epoch - 1}}
        return self.windows[int(order[position])]


def length_grouped_order(lengths: np.ndarray, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """One epoch's window order for length-grouped batches: a shuffle seeded by (seed, epoch), the windows past
    the last whole batch dropped, each run of SORT_CHUNK_BATCHES batches sorted by length, the batches shuffled."""
    rng = np.random.default_rng((seed, epoch))
    n_batches = len(lengths) // batch_size
    order = rng.permutation(len(lengths))[: n_batches * batch_size]
    chunk = SORT_CHUNK_BATCHES * batch_size
    for start in range(0, len(order), chunk):
        run = order[start:start + chunk]
        order[start:start + chunk] = run[np.argsort(lengths[run], kind="stable")]
    batches = order.reshape(n_batches, batch_size)
    return batches[rng.permutation(n_batches)].reshape(-1)


def trim_batch(batch: dict[str, Any], multiple: int) -> dict[str, Any]:
    """A batch's "array" and "mask" cut after its longest window (its last True mask step), rounded up to a
    multiple of `multiple` steps and at most the window length."""
    steps = batch["mask"].shape[1]
    longest = int(np.flatnonzero(batch["mask"].any(axis=0)).max(initial=0)) + 1
    keep = min(steps, -(-longest // multiple) * multiple)
    return batch if keep == steps else {**batch, "array": batch["array"][:, :keep], "mask": batch["mask"][:, :keep]}


def window_batches(arrays: np.ndarray, masks: np.ndarray, extras: dict[str, np.ndarray] | None = None, *,
                   batch_size: int, seed: int, augment: Augment | None = None, length_bucket: int = 0
                   ) -> grain.MapDataset:
    """The endless stream of training batches {"array", "mask", **extras} as a Grain MapDataset (item s =
    batch s); `length_bucket > 0` groups windows by length and cuts each batch's padding (module docstring).
    ValueError on mismatched shapes, fewer windows than one batch or a negative `length_bucket`."""
    arrays, masks = np.asarray(arrays), np.asarray(masks, dtype=bool)
    extras = {key: np.asarray(value) for key, value in (extras or {}).items()}
    n = len(arrays)
    if masks.shape[:2] != arrays.shape[:2]:
        raise ValueError(f"masks shape {masks.shape} does not match arrays shape {arrays.shape}")
    for key, value in extras.items():
        if key in ("array", "mask") or len(value) != n:
            raise ValueError(f"extra {key!r}: reserved name or length {len(value)} != {n} windows")
    if batch_size < 1 or seed < 0 or length_bucket < 0:
        raise ValueError(f"need batch_size >= 1, seed >= 0 and length_bucket >= 0, got {batch_size=}, {seed=}, "
                         f"{length_bucket=}")
    if n < batch_size:
        raise ValueError(f"{n} windows are fewer than one batch of {batch_size}")
    windows = _Windows(arrays, masks, extras)
    if length_bucket:
        dataset = grain.MapDataset.source(_LengthGroupedStream(windows, batch_size, seed))
    else:
        dataset = grain.MapDataset.source(windows).shuffle(seed=seed).repeat(None)
    if augment is not None:
        def augmented(window: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
            return {**window, **augment_fields(augment(window["array"], window["mask"], rng))}

        dataset = dataset.random_map(augmented, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    return dataset.map(lambda batch: trim_batch(batch, length_bucket)) if length_bucket else dataset


def augment_fields(augmented: Any) -> dict[str, Any]:
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
