"""Style encoder and classifier over piano-roll windows (pure Flax; nothing here touches files).

`StyleClassifier`: frames x (B, T, *frame) with prod(frame) = `features` (88 keys) and a mask (B, T) of real
(unpadded) steps -> a window embedding (B, embed_dim) -> style logits (B, n_styles) by one linear head.
Because the head is linear, the logits of a piece's averaged window embedding equal the average of its window
logits: a piece is classified (and embedded for recommendation) by averaging its windows' embeddings.

Encoders (`kind`):
  "conv": per block a 1-D convolution over time with the keys as input channels, LayerNorm, GELU and a
          masked max-pool halving the time axis; then masked mean+max pooling over time and a dense layer.
  "gru":  a dense input projection, a `RecurrentStack` GRU (musejax.ops.gru), masked mean+max pooling, dense.
Padding never reaches the pooled statistics: padded steps are zeroed before every convolution and excluded
from every pooling, so how much of a window is padding (the piece's length) is not an input.

Methods (use with `model.apply(variables, ..., method=...)`):
  __call__(x, mask, *, deterministic=True) -> logits (B, n_styles)
  embed(x, mask, *, deterministic=True) -> embedding (B, embed_dim)   (before the head; not normalised)
  logits_from_embedding(embedding) -> logits (..., n_styles)
Dropout (before the head) needs `rngs={"dropout": key}` when deterministic=False.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from musejax.data.piano import PIANO_KEYS
from musejax.nn.cells import RecurrentStack

Array = jax.Array
ENCODER_KINDS = ("conv", "gru")
_NEG = -1e9  # masked-out value for max pooling (finite: a gradient through -inf would be NaN)


def l2_normalize(x: Array, axis: int = -1, eps: float = 1e-8) -> Array:
    """x / ||x|| along `axis` (zero vectors stay zero)."""
    return x / jnp.maximum(jnp.linalg.norm(x, axis=axis, keepdims=True), eps)


def masked_mean_max(h: Array, mask: Array) -> Array:
    """h (B, T, C), mask (B, T) -> concat(mean over real steps, max over real steps) (B, 2C)."""
    m = mask[..., None].astype(h.dtype)
    real = m.sum(axis=1)  # (B, 1) real steps per row
    mean = (h * m).sum(axis=1) / jnp.maximum(real, 1.0)
    peak = jnp.where(real > 0, jnp.where(m > 0, h, _NEG).max(axis=1), 0.0)  # an all-padding row pools to 0
    return jnp.concatenate([mean, peak], axis=-1)


def _pool_time(h: Array, mask: Array) -> tuple[Array, Array]:
    """Masked max-pool by 2 over time: (B, T, C), (B, T) -> (B, ceil(T/2), C), (B, ceil(T/2))."""
    if h.shape[1] % 2:
        h = jnp.pad(h, ((0, 0), (0, 1), (0, 0)))
        mask = jnp.pad(mask, ((0, 0), (0, 1)))
    b, t, c = h.shape
    pairs = jnp.where(mask[..., None], h, _NEG).reshape(b, t // 2, 2, c).max(axis=2)
    pooled_mask = mask.reshape(b, t // 2, 2).any(axis=2)
    return jnp.where(pooled_mask[..., None], pairs, 0.0), pooled_mask


class StyleEncoder(nn.Module):
    """Window (B, T, *frame) + mask (B, T) -> embedding (B, embed_dim)."""
    features: int = PIANO_KEYS
    kind: str = "conv"
    channels: tuple[int, ...] = (64, 96, 128)  # conv: one block per entry
    kernel_size: int = 5
    hidden: int = 128  # gru: recurrent units
    embed_dim: int = 128

    @nn.compact
    def __call__(self, x: Array, mask: Array) -> Array:
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"musejax/style/model.py: unknown encoder kind {self.kind!r}; "
                             f"choose one of {ENCODER_KINDS}")
        if x.ndim < 3 or math.prod(x.shape[2:]) != self.features or mask.shape != x.shape[:2]:
            raise ValueError(f"musejax/style/model.py: expected x (B, T, *frame) with prod(frame) = "
                             f"{self.features} and mask (B, T); got x {x.shape}, mask {mask.shape}")
        mask = mask.astype(bool)
        h = x.reshape(x.shape[0], x.shape[1], self.features).astype(jnp.float32)
        if self.kind == "conv":
            for width in self.channels:
                h = jnp.where(mask[..., None], h, 0.0)
                h = nn.Conv(width, (self.kernel_size,), padding="SAME")(h)
                h = nn.gelu(nn.LayerNorm()(h))
                h, mask = _pool_time(h, mask)
        else:
            h = nn.gelu(nn.Dense(self.hidden)(h))
            h = jnp.swapaxes(jnp.where(mask[..., None], h, 0.0), 0, 1)  # time-major
            _, hs = RecurrentStack(cell="gru", hidden=self.hidden, layers=1, input_size=self.hidden, impl="xla")(h)
            h = jnp.swapaxes(hs, 0, 1)
        pooled = masked_mean_max(h, mask)
        return nn.gelu(nn.Dense(self.embed_dim)(nn.LayerNorm()(pooled)))


class StyleClassifier(nn.Module):
    """StyleEncoder + dropout + linear head over `n_styles` classes."""
    n_styles: int
    features: int = PIANO_KEYS
    kind: str = "conv"
    channels: tuple[int, ...] = (64, 96, 128)
    kernel_size: int = 5
    hidden: int = 128
    embed_dim: int = 128
    dropout: float = 0.1

    def setup(self) -> None:
        if self.n_styles < 2:
            raise ValueError(f"musejax/style/model.py: a style classifier needs n_styles >= 2, got {self.n_styles}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"musejax/style/model.py: dropout must be in [0, 1), got {self.dropout}")
        self.encoder = StyleEncoder(features=self.features, kind=self.kind, channels=tuple(self.channels),
                                    kernel_size=self.kernel_size, hidden=self.hidden, embed_dim=self.embed_dim)
        self.drop = nn.Dropout(rate=self.dropout)
        self.head = nn.Dense(self.n_styles)

    def embed(self, x: Array, mask: Array, *, deterministic: bool = True) -> Array:
        """Window embedding (B, embed_dim) before the head (average these over a piece's windows)."""
        return self.encoder(x, mask)

    def logits_from_embedding(self, embedding: Array) -> Array:
        """The linear head: (..., embed_dim) -> (..., n_styles)."""
        return self.head(embedding)

    def __call__(self, x: Array, mask: Array, *, deterministic: bool = True) -> Array:
        """Style logits of each window (B, n_styles)."""
        embedding = self.encoder(x, mask)
        return self.head(self.drop(embedding, deterministic=deterministic or self.dropout == 0.0))
