"""GAN data: a corpus -> multitrack segments (N, tracks, bars, steps, pitches) -> seeded, transposed batches.

The chorales give S, A, T, B as tracks 0..3 (see musejax/data/multitrack.py). Every bar-aligned segment of a
training piece is one example; valid + test segments are kept as a held-out reference for evaluation.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np

from musejax.data.windows import random_transpose
from musejax.gan.config import GanDataConfig
from musejax.train.input_pipeline import iterate, window_batches
from musejax.data.multitrack import MultitrackEncoding
from musejax.data.datasets import build_dataset


@dataclasses.dataclass
class GanData:
    """Training segments (bool) with their style ids (-1 unlabelled), held-out segments, the encoding."""

    encoding: Any
    train: np.ndarray
    train_style: np.ndarray
    heldout: np.ndarray
    styles: list[str]
    description: str = ""


def make_encoding(data: GanDataConfig) -> Any:

    return MultitrackEncoding(n_tracks=data.n_tracks, n_bars=data.n_bars, steps_per_bar=data.steps_per_bar,
                              min_pitch=data.min_pitch, n_pitches=data.n_pitches,
                              steps_per_quarter=data.steps_per_quarter)


def _stack(arrays: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    return np.concatenate(arrays).astype(bool) if arrays else np.zeros((0, *shape), bool)


def load_gan_data(data: GanDataConfig, *, progress: bool = True) -> GanData:
    """Build (or load from the cache) the multitrack dataset of `data.corpus`; ValueError if no training segment."""

    encoding = make_encoding(data)
    corpora = [name.strip() for name in data.corpus.split(",") if name.strip()]
    dataset = build_dataset(corpora, encoding, cache_dir=data.cache_dir or None, progress=progress,
                            valid_fraction=data.valid_fraction, test_fraction=data.test_fraction)
    pieces = dataset.splits["train"][: data.max_pieces or None]
    if not pieces:
        raise ValueError(f"corpus {dataset.name!r} has no training piece with {data.n_bars} whole bars of "
                         f"{data.steps_per_bar} steps ({dataset.report.n_loaded} pieces encoded)")
    shape = encoding.segment_shape
    train = _stack([p.array for p in pieces], shape)
    style = np.concatenate([np.full(len(p.array), dataset.style_index(p.style), np.int32) for p in pieces])
    heldout = _stack([p.array for split in ("valid", "test") for p in dataset.splits[split]], shape)
    description = (f"{dataset.name}: {len(pieces)} training pieces -> {len(train)} segments of "
                   f"{data.n_bars} bars; {len(heldout)} held-out segments")
    return GanData(encoding, train, style, heldout, list(dataset.styles), description)


class GanBatches:
    """Real batches for generator steps start, start+1, ...: step s takes the n_critic batches
    s * n_critic .. (s + 1) * n_critic - 1 of the Grain pipeline of musejax/train/input_pipeline.py (epochs of
    shuffled segments, each randomly transposed), stacked as {"real": (n_critic, B, ...) bool,
    "style": (n_critic, B) int32}. Deterministic in (seed, step), so a resumed run sees exactly the batches an
    uninterrupted one does.
    """

    def __init__(self, data: GanData, batch_size: int, seed: int, transpose_semitones: int, n_critic: int,
                 with_style: bool) -> None:
        def augment(segment: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            return random_transpose(segment, data.encoding, rng, transpose_semitones)

        every_track = np.ones(data.train.shape[:2], bool)  # the pipeline wants a mask; nothing is padding
        batches = window_batches(data.train, every_track, {"style": data.train_style}, batch_size=batch_size,
                                 seed=seed, augment=augment if transpose_semitones else None)
        self.steps = batches.batch(n_critic)  # item s: the n_critic batches of generator step s, stacked
        self.with_style = with_style

    def from_step(self, start_step: int) -> Iterator[dict[str, np.ndarray]]:
        with_style = self.with_style

        def to_step(group: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            out = {"real": group["array"]}
            if with_style:
                out["style"] = group["style"].astype(np.int32)
            return out

        return iterate(self.steps, start_step, to_step)
