"""Small language-model fixtures shared by test folders: synthetic piano-roll data and the tiny config, metric
records without wall-clock fields, and tiny untrained sampling runs (tests/lm/, tests/kernels/, tests/train/)."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from musejax.data.encodings import MelodyEncoding, PianoRollEncoding
from musejax.lm.config import resolve_config
from musejax.lm.data import make_encoding, windows_from_arrays
from musejax.lm.model import EventLM, PianoRollLM
from musejax.lm.sample import Run
from musejax.train.metrics import read_metrics

MELODY = MelodyEncoding()


def synthetic_rolls(n_pieces: int, seed: int) -> list[np.ndarray]:
    """Repetitive two-voice piano-rolls of random lengths: easy to learn, so the loss must fall."""
    rng = np.random.default_rng(seed)
    rolls = []
    for _ in range(n_pieces):
        steps, offset = int(rng.integers(12, 40)), int(rng.integers(0, 12))
        roll = np.zeros((steps, 88), bool)
        t = np.arange(steps)
        roll[t, 39 + offset + t % 4] = True
        roll[t, 27 + offset + (t // 2) % 3] = True
        rolls.append(roll)
    return rolls


def tiny_data(config, n_train: int = 16):
    splits = {"train": (synthetic_rolls(n_train, 0), [0] * n_train),
              "valid": (synthetic_rolls(3, 1), [0] * 3), "test": (synthetic_rolls(3, 2), [0] * 3)}
    return windows_from_arrays(config.data, make_encoding(config.data), splits, ["bach"], "synthetic")


def tiny_config(*overrides: str):
    return resolve_config("lm:tiny", list(overrides))


def records(run_dir: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock field."""
    return [{k: v for k, v in r.items() if k != "steps_per_second"} for r in read_metrics(run_dir)]


def pianoroll_run(onsets: bool = False, hidden: int = 8, seed: int = 0) -> Run:
    encoding = PianoRollEncoding(onsets=onsets)
    frame = (2, 88) if onsets else (88,)
    model = PianoRollLM(features=math.prod(frame), hidden=hidden, cell="gru", impl="xla")
    params = model.init(jax.random.key(seed), jnp.zeros((1, 2, *frame)))["params"]
    # a random readout bias: with the zero initial state and zero start frame, zero bias would make the first
    # frame's logits exactly 0 (p = 0.5: a tie no temperature or threshold can break)
    params["readout"]["bias"] = jax.random.normal(jax.random.key(seed + 1), params["readout"]["bias"].shape)
    return Run(model=model, params=params, encoding=encoding, loss_kind="bernoulli")


def event_run(styles: tuple[str, ...] = (), hidden: int = 8, seed: int = 0) -> Run:
    model = EventLM(vocab_size=MELODY.vocab_size, hidden=hidden, embed_dim=8, n_styles=len(styles), style_dim=4)
    style = jnp.zeros((1,), jnp.int32) if styles else None
    params = model.init(jax.random.key(seed), jnp.zeros((1, 2), jnp.int32), style)["params"]
    return Run(model=model, params=params, encoding=MELODY, styles=list(styles), loss_kind="categorical")
