"""Style recognition with a trained classifier run: piece embeddings, style probabilities, low-confidence rule.

A piece is encoded as a piano-roll on the run's grid, cut into non-overlapping windows (the last one padded
and masked), each window embedded; the piece embedding is the mean of its window embeddings weighted by their
real steps, and its logits are the linear head applied to it (= the weighted mean of the window logits).

Low-confidence (out-of-style) rule, after Lee et al. 2018: one Gaussian per style over the training pieces'
embeddings with a shared covariance. A piece's distance to a style is its squared Mahalanobis distance to the
style mean divided by the median of that style's training pieces (1 = a typical piece of the style: styles
with a wide spread, e.g. Bach, are not penalised); a piece whose distance to the nearest style exceeds the
run's `threshold` is reported as "unknown style" rather than forced into a class. The threshold is calibrated
on the valid split after training: the `coverage` quantile of the valid pieces' distances, each style
weighted equally (coverage 0.95 = 95% of in-style valid pieces accepted). With `classify.shifted_copies` each
style also has one Gaussian per texture shift (musejax/data/texture_shifts.py), fitted to shifted copies of its
training pieces, the nearest Gaussian setting the distance, and the threshold is calibrated on the valid pieces and shifted
copies of them, so a style in another texture is not "unknown" for that alone. Means, precision matrix and
per-style scales are in `<run>/calibration.npz`, the threshold in `<run>/calibration.json`. (The top softmax probability was the
first candidate; it keeps polyphonic classical pieces as confidently "bach"/"monteverdi" -- see
experiments/style_classifier.py for both rules measured on out-of-style pieces.)
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from musejax.data.encodings import EncodingError, PianoRollEncoding
from musejax.style.embeddings import (CALIBRATION_FILE, GAUSSIANS_FILE, head_logits, is_confident, piece_embeddings,
                                      softmax, style_distance)
from musejax.style.task import StyleRunError, restore_style_run
from musejax.style.data import pack_roll

DEFAULT_STYLE_RUN = "runs/style"


def default_style_run() -> Path:
    """$MUSEJAX_STYLE_RUN or runs/style (where `musejax classify --train` writes by default)."""
    return Path(os.environ.get("MUSEJAX_STYLE_RUN", DEFAULT_STYLE_RUN))


# ------------------------------------------------------------------------------------------- run level


@dataclasses.dataclass
class StyleRun:
    """A trained style classifier: Flax module + params, style names, its encoding and window, and the
    out-of-style rule (style means, shared precision matrix, distance threshold)."""

    model: Any
    params: Any
    styles: list[str]
    encoding: Any
    window_steps: int
    threshold: float
    means: np.ndarray
    precision: np.ndarray
    scales: np.ndarray
    run_dir: Path | None = None
    step: int | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def embed_dim(self) -> int:
        return int(self.model.embed_dim)


def load_style_run(run_dir: str | Path | None = None, which: str = "best") -> StyleRun:
    """Restore a classifier run (default `default_style_run()`): best (valid macro-F1) or latest checkpoint."""
    run_dir = Path(run_dir) if run_dir is not None else default_style_run()
    if not (run_dir / "config.json").is_file():
        raise StyleRunError(f"{run_dir}: no style classifier run (no config.json); train one with "
                            f"`musejax classify --train --workdir {run_dir}` or pass --model RUN")
    model, params, meta, step = restore_style_run(run_dir, which)
    try:
        threshold = float(json.loads((run_dir / CALIBRATION_FILE).read_text())["threshold"])
        with np.load(run_dir / GAUSSIANS_FILE) as gaussians:
            means, precision, scales = gaussians["means"], gaussians["precision"], gaussians["scales"]
    except (OSError, KeyError, ValueError) as err:
        raise StyleRunError(f"{run_dir}: classifier run is not calibrated ({err}); finish its training with "
                            f"`musejax classify --train --workdir {run_dir}`") from None

    encoding = PianoRollEncoding(steps_per_quarter=int(meta["steps_per_quarter"]), onsets=bool(meta.get("onsets")))
    return StyleRun(model=model, params=params, styles=list(meta["styles"]), encoding=encoding,
                    window_steps=int(meta["window_steps"]), threshold=threshold, means=means, precision=precision,
                    scales=scales,
                    run_dir=run_dir, step=step,
                    meta=meta)


@dataclasses.dataclass
class EmbeddedPieces:
    """Embeddings (N, E, not normalised), style probabilities (N, C) and distances to the nearest style (N,) of
    the pieces that could be encoded; `kept[i]` is the input position of row i; `failures` holds
    (position, piece name, reason)."""

    embeddings: np.ndarray
    probs: np.ndarray
    distances: np.ndarray
    kept: list[int]
    failures: list[tuple[int, str, str]]


def embed_sequences(run: StyleRun, sequences: Sequence[Any], batch_size: int = 256) -> EmbeddedPieces:
    """NoteSequences -> piece embeddings and style probabilities; pieces without notes on the keys are failures."""
    rolls, kept, failures = [], [], []
    for position, ns in enumerate(sequences):
        try:
            roll = run.encoding.encode(ns)
        except EncodingError as err:
            failures.append((position, ns.filename or ns.id, str(err)))
            continue
        if not len(roll):
            failures.append((position, ns.filename or ns.id, "encodes to no time steps"))
            continue
        rolls.append(pack_roll(roll))
        kept.append(position)
    embeddings = piece_embeddings(run.model, run.params, rolls, run.window_steps, batch_size)
    probs = softmax(head_logits(run.model, run.params, embeddings)) if len(kept) else np.zeros((0, len(run.styles)))
    return EmbeddedPieces(embeddings, probs, style_distance(embeddings, run.means, run.precision, run.scales), kept,
                          failures)


@dataclasses.dataclass
class StylePrediction:
    """One piece's ranked styles with probabilities; `confident` False = farther from every training style than
    the calibrated threshold (`distance`: squared Mahalanobis distance to the nearest style)."""

    name: str
    ranked: list[tuple[str, float]]
    confident: bool
    distance: float

    @property
    def style(self) -> str | None:
        """The top style, or None when the low-confidence rule rejects the piece."""
        return self.ranked[0][0] if self.confident else None


def predictions(run: StyleRun, names: Sequence[str], embedded: EmbeddedPieces) -> list[StylePrediction]:
    """Ranked predictions of embedded pieces (names: one per kept piece) with the low-confidence rule applied."""
    confident = is_confident(embedded.distances, run.threshold)
    out = []
    for name, row, ok, distance in zip(names, embedded.probs, confident, embedded.distances):
        order = np.argsort(-row)
        out.append(StylePrediction(name, [(run.styles[i], float(row[i])) for i in order], bool(ok), float(distance)))
    return out
