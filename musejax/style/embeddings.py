"""The style classifier's array-level maths: window and piece embeddings, the head's style probabilities, and
the out-of-style rule (per-style Gaussians, distances, calibrated threshold). See musejax/style/classify.py for how a
trained run uses them; training (musejax/style/task.py) and its report use them too.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from musejax.style.data import StyleSplit, piece_windows

CALIBRATION_FILE = "calibration.json"
GAUSSIANS_FILE = "calibration.npz"


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


def split_outputs(model: Any, params: Any, split: StyleSplit, window_steps: int, batch_size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Piece embeddings (P, E) and style probabilities (P, C) of a split."""
    embeddings = piece_embeddings(model, params, split.rolls, window_steps, batch_size)
    return embeddings, softmax(head_logits(model, params, embeddings))
