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
weighted equally (coverage 0.95 = 95% of in-style valid pieces accepted). Means, precision matrix and
per-style scales are in `<run>/calibration.npz`, the threshold in `<run>/calibration.json`. (The top softmax probability was the
first candidate; it keeps polyphonic classical pieces as confidently "bach"/"monteverdi" -- see
experiments/style_classifier.py for both rules measured on out-of-style pieces.)
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

DEFAULT_STYLE_RUN = "runs/style"
CALIBRATION_FILE = "calibration.json"
GAUSSIANS_FILE = "calibration.npz"


def default_style_run() -> Path:
    """$MUSEJAX_STYLE_RUN or runs/style (where `musejax classify --train` writes by default)."""
    return Path(os.environ.get("MUSEJAX_STYLE_RUN", DEFAULT_STYLE_RUN))


# ------------------------------------------------------------------------------------------ array level


@functools.partial(jax.jit, static_argnames=("model",))
def _embed_batch(model: Any, params: Any, packed: jax.Array, mask: jax.Array) -> jax.Array:
    x = jnp.unpackbits(packed, axis=-1, count=88).astype(jnp.float32)
    return model.apply({"params": params}, x, mask, method="embed")


def window_embeddings(model: Any, params: Any, packed: np.ndarray, mask: np.ndarray, batch_size: int = 256,
                      ) -> np.ndarray:
    """Bit-packed windows (N, W, 11) + mask (N, W) -> embeddings (N, E), in fixed-size batches (one compile)."""
    n = len(packed)
    out = []
    size = min(batch_size, 1 << max(n - 1, 0).bit_length())  # small inputs: a power of two (few compiled shapes)
    for start in range(0, n, size):
        chunk, chunk_mask = packed[start:start + size], mask[start:start + size]
        pad = size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
            chunk_mask = np.concatenate([chunk_mask, np.zeros((pad, chunk_mask.shape[1]), bool)])
        out.append(np.asarray(_embed_batch(model, params, chunk, chunk_mask))[:size - pad])
    return np.concatenate(out) if out else np.zeros((0, model.embed_dim), np.float32)


def pool_pieces(window_embedding: np.ndarray, mask: np.ndarray, piece_index: np.ndarray, n_pieces: int) -> np.ndarray:
    """Mean of each piece's window embeddings weighted by their real steps -> (n_pieces, E)."""
    weight = mask.sum(axis=1).astype(np.float64)
    sums = np.zeros((n_pieces, window_embedding.shape[1]))
    np.add.at(sums, piece_index, window_embedding * weight[:, None])
    totals = np.bincount(piece_index, weights=weight, minlength=n_pieces)
    return (sums / np.maximum(totals, 1e-9)[:, None]).astype(np.float32)


def head_logits(model: Any, params: Any, embedding: np.ndarray) -> np.ndarray:
    """The classifier head on embeddings (N, E) -> logits (N, C)."""
    return np.asarray(model.apply({"params": params}, jnp.asarray(embedding), method="logits_from_embedding"))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def piece_embeddings(model: Any, params: Any, packed_rolls: Sequence[np.ndarray], window_steps: int,
                     batch_size: int = 256) -> np.ndarray:
    """Bit-packed rolls (T, 11) of pieces -> piece embeddings (P, E) (not normalised)."""
    from musejax.train.style_data import piece_windows

    if not len(packed_rolls):
        return np.zeros((0, model.embed_dim), np.float32)
    windows, mask, index = piece_windows(list(packed_rolls), window_steps)
    return pool_pieces(window_embeddings(model, params, windows, mask, batch_size), mask, index, len(packed_rolls))


def fit_style_gaussians(embeddings: np.ndarray, labels: np.ndarray, n_styles: int, min_shrinkage: float = 1e-3,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-style means (C, E), the precision matrix (E, E) of the shared within-style covariance, shrunk towards
    its mean variance times I by alpha = max(min_shrinkage, E / N) (few pieces per dimension: more shrinkage;
    it always inverts), and per-style scales (C,): the median squared Mahalanobis distance of the style's
    pieces to its mean. A style without pieces gets mean inf (never the nearest)."""
    x, labels = np.asarray(embeddings, np.float64), np.asarray(labels)
    means = np.full((n_styles, x.shape[1]), np.inf)
    for style in np.unique(labels):
        means[style] = x[labels == style].mean(axis=0)
    centered = x - means[labels]
    covariance = centered.T @ centered / max(len(x) - 1, 1)
    alpha = min(1.0, max(min_shrinkage, x.shape[1] / max(len(x), 1)))
    scale = max(float(np.trace(covariance)) / x.shape[1], 1e-12)
    covariance = (1 - alpha) * covariance + alpha * scale * np.eye(x.shape[1])
    precision = np.linalg.inv(covariance)
    to_own = _squared_mahalanobis(x, np.where(np.isfinite(means), means, 0.0), precision)[np.arange(len(x)), labels]
    scales = np.ones(n_styles)
    for style in np.unique(labels):
        scales[style] = max(float(np.median(to_own[labels == style])), 1e-12)
    return means.astype(np.float32), precision.astype(np.float32), scales.astype(np.float32)


def _squared_mahalanobis(x: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    diff = np.asarray(x, np.float64)[:, None, :] - np.asarray(means, np.float64)[None]
    return np.einsum("ncd,de,nce->nc", diff, np.asarray(precision, np.float64), diff)


def style_distance(embeddings: np.ndarray, means: np.ndarray, precision: np.ndarray, scales: np.ndarray,
                   ) -> np.ndarray:
    """Distance of each embedding (N, E) to the nearest style: min over styles of squared Mahalanobis distance
    / the style's scale -> (N,)."""
    finite = np.isfinite(means).all(axis=1)
    return (_squared_mahalanobis(embeddings, means[finite], precision) / np.asarray(scales)[finite]).min(axis=1)


def calibrate_threshold(valid_distances: np.ndarray, coverage: float, labels: np.ndarray | None = None) -> float:
    """Distance threshold accepting `coverage` of in-style (valid) pieces: their `coverage` quantile, with every
    style weighted equally when `labels` are given (a large style does not set the threshold alone)."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    distances = np.asarray(valid_distances, np.float64)
    if not len(distances):
        return float("inf")
    weights = np.ones(len(distances)) if labels is None else 1.0 / np.bincount(labels)[labels]
    order = np.argsort(distances)
    cumulative = np.cumsum(weights[order]) / weights.sum()
    return float(distances[order][min(np.searchsorted(cumulative, coverage - 1e-12), len(order) - 1)])


def is_confident(distances: np.ndarray, threshold: float) -> np.ndarray:
    """Low-confidence rule: True where the distance to the nearest style is within the threshold."""
    return np.asarray(distances) <= threshold


# ------------------------------------------------------------------------------------------- run level


class StyleRunError(ValueError):
    """No usable classifier run at the given path (message names it and what to do)."""


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
    from musejax.train.style import restore_style_run

    run_dir = Path(run_dir) if run_dir is not None else default_style_run()
    if not (run_dir / "config.json").is_file():
        raise StyleRunError(f"{run_dir}: no style classifier run (no config.json); train one with "
                            f"`musejax classify --train --workdir {run_dir}` or pass --model RUN")
    model, params, meta, step = restore_style_run(run_dir, which)
    from musejax.data.encodings import PianoRollEncoding

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
    from musejax.data.encodings import EncodingError
    from musejax.train.style_data import pack_roll

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
