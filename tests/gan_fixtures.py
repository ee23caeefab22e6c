"""Small GAN fixtures shared by test folders: random sparse multitrack segments and a GanData of them
(tests/gan/, tests/train/)."""

from __future__ import annotations

import numpy as np

from musejax.gan.data import GanData, make_encoding

SHAPE = (4, 4, 16, 48)  # tracks, bars, steps, pitches of the configs


def real_batch(n: int, seed: int = 0) -> np.ndarray:
    """Random sparse segments: one note per track per beat."""
    rng = np.random.default_rng(seed)
    segments = np.zeros((n, *SHAPE), bool)
    for i in range(n):
        for track in range(SHAPE[0]):
            pitches = 12 * (3 - track) + rng.integers(0, 12, size=SHAPE[1] * 4)
            for beat, pitch in enumerate(pitches):
                segments[i, track, beat // 4, (beat % 4) * 4:(beat % 4) * 4 + 4, pitch] = True
    return segments


def synthetic_data(config) -> GanData:
    train = real_batch(24, seed=1)
    return GanData(make_encoding(config.data), train, np.zeros(len(train), np.int32), real_batch(4, seed=2),
                   ["bach"], "synthetic")
