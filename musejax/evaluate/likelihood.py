"""Likelihood of pieces under a trained language-model run: NLL in nats per predicted time step.

The pieces are encoded with the run's own encoding and scored whole (no windows), exactly as training
scores validation pieces with `data.eval_window_steps = 0`: piano-roll LMs predict every frame from a zero
start frame (Bernoulli NLL summed over the keys of a step), event LMs every event after the first (softmax
NLL). The set's value is the step-weighted mean, sum(NLL) / sum(steps), the number the literature reports.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.quantize import EncodingError, piece_bar, piece_name
from musejax.lm.steps import row_nll_sums
from musejax.lm.data import lm_batch
from musejax.lm.build import covering
from musejax.lm.restore import restore_run

BUCKET_STEPS = 64  # pad batch lengths to a multiple of this, so few shapes are compiled


@dataclasses.dataclass
class LikelihoodResult:
    """Per-piece NLL per step of the pieces that could be encoded; `failures` lists (piece id, reason)."""

    run_dir: str
    checkpoint_step: int | None
    ids: list[str]
    nll_per_step: np.ndarray
    steps: np.ndarray
    failures: list[tuple[str, str]]

    @property
    def mean_nll_per_step(self) -> float:
        total = float(self.steps.sum())
        return float((self.nll_per_step * self.steps).sum() / total) if total else math.nan

    def to_dict(self) -> dict[str, Any]:
        scored = self.steps > 0
        return {"run": self.run_dir, "checkpoint_step": self.checkpoint_step,
                "nll_per_step": self.mean_nll_per_step, "n_pieces": int(scored.sum()),
                "n_steps": int(self.steps.sum()),
                "piece_nll_per_step": {"mean": float(self.nll_per_step[scored].mean()) if scored.any() else None,
                                       "std": float(self.nll_per_step[scored].std()) if scored.any() else None},
                "failures": [{"id": i, "reason": r} for i, r in self.failures]}


@functools.lru_cache(maxsize=None)
def _row_nll_fn(apply_fn: Any, loss_kind: str):
    import jax

    def row_nll(params, batch):
        logits = apply_fn(params, batch, train=False, rng=None)
        return row_nll_sums(logits, batch["targets"], batch["mask"], loss_kind)

    return jax.jit(row_nll)


def is_conditioned(run: Any) -> bool:
    """Whether the run's model takes a style id."""
    return int(getattr(run.config.model, "style_dim", 0) or 0) > 0


def arrays_nll(run: Any, arrays: Sequence[np.ndarray], style_index: Sequence[int] | None = None,
               batch_size: int = 16, bars: Sequence[tuple[int, int]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(NLL sum, predicted steps) per encoded piece under `run` (a RestoredRun); whole pieces, length-bucketed;
    `bars`: each piece's (phase, steps per bar) for a model that reads bar lines (None: not known)."""

    if is_conditioned(run) and style_index is None:
        raise ValueError(f"{run.run_dir}: the model is style-conditioned on {run.styles}; give a style per piece")
    styles = np.zeros(len(arrays), np.int32) if style_index is None else np.asarray(style_index, np.int32)
    apply_fn = covering(run.apply_fn, np.concatenate([np.asarray(a) for a in arrays])) if len(arrays) else run.apply_fn
    row_nll = _row_nll_fn(apply_fn, run.loss_kind)
    nll, steps = np.zeros(len(arrays)), np.zeros(len(arrays))
    order = np.argsort([len(a) for a in arrays], kind="stable")
    for first in range(0, len(order), batch_size):
        rows = order[first:first + batch_size]
        length = max(BUCKET_STEPS, -(-max(len(arrays[i]) for i in rows) // BUCKET_STEPS) * BUCKET_STEPS)
        sample = np.asarray(arrays[rows[0]])
        windows = np.zeros((batch_size, length, *sample.shape[1:]), sample.dtype)
        mask = np.zeros((batch_size, length), bool)
        for slot, i in enumerate(rows):
            windows[slot, :len(arrays[i])] = arrays[i]
            mask[slot, :len(arrays[i])] = True
        style, bar = np.zeros(batch_size, np.int32), np.zeros((batch_size, 2), np.int32)
        style[:len(rows)] = styles[rows]
        if bars is not None:
            bar[:len(rows)] = np.asarray(bars, np.int32).reshape(-1, 2)[rows]
        batch = lm_batch(windows, mask, style, run.loss_kind, end=mask.sum(axis=1), bar=bar)  # whole pieces
        sums, counts = row_nll(run.params, batch)
        nll[rows] = np.asarray(sums)[:len(rows)]
        steps[rows] = np.asarray(counts)[:len(rows)]
    return nll, steps


def _style_of(ns: NoteSequence, run: Any, style: str | None) -> int:
    if style is not None:
        if style not in run.styles:
            raise ValueError(f"{run.run_dir}: unknown style {style!r}; the run knows {run.styles}")
        return run.styles.index(style)
    labels = [g for g in ns.sequence_metadata.genre if g in run.styles]
    if not labels:
        raise ValueError(f"{piece_name(ns)}: the run {run.run_dir} is style-conditioned on {run.styles} and the "
                         f"piece has no such label; choose one with --lm-style")
    return run.styles.index(labels[0])


def sequences_nll(run: Any, sequences: Sequence[NoteSequence], *, style: str | None = None,
                  batch_size: int = 16) -> LikelihoodResult:
    """NLL per step of each sequence under `run` (a RestoredRun). Pieces the run's encoding cannot encode are
    listed in `failures`; a style-conditioned run scores each piece with `style` or else its own label."""
    arrays, ids, styles, bars, failures = [], [], [], [], []
    for ns in sequences:
        try:
            array = run.encoding.encode(ns)
        except EncodingError as err:
            failures.append((piece_name(ns), str(err)))
            continue
        arrays.append(array)
        ids.append(piece_name(ns))
        styles.append(_style_of(ns, run, style) if is_conditioned(run) else 0)
        bars.append(piece_bar(ns, getattr(run.encoding, "steps_per_quarter", None)))
    nll, steps = arrays_nll(run, arrays, styles, batch_size, bars) if arrays else (np.zeros(0), np.zeros(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        per_step = np.where(steps > 0, nll / np.maximum(steps, 1), np.nan)
    return LikelihoodResult(str(run.run_dir), getattr(run, "step", None), ids, per_step, steps, failures)


def run_nll(run_dir: str | Path, sequences: Sequence[NoteSequence], *, checkpoint: str | int = "best",
            style: str | None = None, batch_size: int = 16) -> LikelihoodResult:
    """Restore `run_dir` (musejax.lm.restore.restore_run) and score `sequences` with it."""

    return sequences_nll(restore_run(run_dir, checkpoint), sequences, style=style, batch_size=batch_size)
