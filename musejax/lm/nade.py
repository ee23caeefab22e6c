"""NADE frame distributions (Larochelle & Murray 2011) as used by RNN-NADE (Boulanger-Lewandowski et al. 2012).

A frame v in {0, 1}^K (K keys, in the NADE's key order) has

    p(v) = prod_i p(v_i | v_<i),   p(v_i = 1 | v_<i) = sigmoid(c_i + V_i . sigmoid(b + sum_{j<i} v_j W_j))

with per-frame biases c (K,) and b (H,) -- in RNN-NADE, functions of the recurrent state -- and shared weights
W, V (K, H). Everything here returns the K conditional logits `c_i + V_i . h_i`, so the frame's exact
log-likelihood is the Bernoulli log-likelihood of v under them (the loss code is the Bernoulli one).

Three forms of the same function:
- `nade_logits`: the training form. The hidden pre-activation `b + sum_{j<i} v_j W_j` only changes at the
  sounding keys, so a frame with m notes has m + 1 distinct hidden vectors ("segments"): cumulative sums of
  the W rows of its sounding keys, then one matmul against V for all frames at once -- no loop over keys, and
  no (frames, K, H) tensor. Exact when no frame has more than `max_notes` notes (checked by callers that
  see the data: `check_max_notes`).
- `nade_logits_dense`: the cumulative-sum form over all K keys; the readable reference, any polyphony.
- `nade_sample`: draws a frame key by key (`lax.scan` over the keys), for the jit-compiled sampler.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def nade_logits(frames: Array, visible_bias: Array, hidden_bias: Array, w: Array, v: Array,
                max_notes: int) -> Array:
    """Conditional logits (N, K) of frames (N, K) in {0, 1}, given biases c (N, K), b (N, H), weights W, V (K, H).

    Exact for frames with at most `max_notes` sounding keys; the segment form described in the module doc.
    """
    frames = frames.astype(w.dtype)
    n_frames, n_keys = frames.shape
    below = jnp.dot(frames, jnp.triu(jnp.ones((n_keys, n_keys), w.dtype), 1))  # (N, K): sounding keys below i
    segments = jnp.arange(max_notes + 1, dtype=w.dtype)[None, :, None]  # (1, S, 1), S = max_notes + 1
    in_segment = (below[:, None, :] == segments).astype(w.dtype)  # (N, S, K): key i lies in segment s
    # segment s's pre-activation adds the W rows of the first s sounding keys: gather them (key K = no note,
    # a zero row) and sum cumulatively over at most max_notes rows
    sounding = jnp.sort(jnp.where(frames > 0, jnp.arange(n_keys), n_keys), axis=-1)[:, :max_notes]  # (N, M)
    rows = jnp.concatenate([w, jnp.zeros((1, w.shape[1]), w.dtype)])[sounding]  # (N, M, H)
    before = jnp.concatenate([jnp.zeros((n_frames, 1, w.shape[1]), w.dtype), jnp.cumsum(rows, axis=1)], axis=1)
    hidden = jax.nn.sigmoid(hidden_bias[:, None, :] + before)  # (N, S, H)
    segment_logits = jnp.dot(hidden, v.T)  # (N, S, K)
    return visible_bias + jnp.sum(in_segment * segment_logits, axis=1)


def nade_logits_dense(frames: Array, visible_bias: Array, hidden_bias: Array, w: Array, v: Array) -> Array:
    """The same conditional logits through an exclusive cumulative sum over the keys: (N, K, H) memory."""
    contributions = frames.astype(w.dtype)[..., None] * w  # (N, K, H)
    pre = hidden_bias[:, None, :] + jnp.cumsum(contributions, axis=1) - contributions
    return visible_bias + jnp.einsum("nkh,kh->nk", jax.nn.sigmoid(pre), v)


def nade_sample(visible_bias: Array, hidden_bias: Array, w: Array, v: Array, noise: Array | None, *,
                temperature: Array | float = 1.0, threshold: Array | float = 0.5, mode: str = "bernoulli") -> Array:
    """Draw frames (N, K) bool key by key. mode: "bernoulli" (v_i = noise_i < sigmoid(logit_i / temperature),
    noise uniform (N, K)), "threshold" (sigmoid(logit_i / temperature) > threshold) or "greedy" (logit_i > 0).
    Each key's choice feeds the next keys' conditionals, as in the model."""
    if mode not in ("bernoulli", "threshold", "greedy"):
        raise ValueError(f"musejax/lm/nade.py: unknown NADE sampling mode {mode!r}")
    n_frames = visible_bias.shape[0]
    if noise is None:
        noise = jnp.zeros_like(visible_bias)

    def key_step(pre, key_inputs):
        c_i, w_i, v_i, u_i = key_inputs
        logit = c_i + jnp.dot(jax.nn.sigmoid(pre), v_i)
        if mode == "greedy":
            on = logit > 0
        elif mode == "threshold":
            on = jax.nn.sigmoid(logit / temperature) > threshold
        else:
            on = u_i < jax.nn.sigmoid(logit / temperature)
        return pre + on[:, None].astype(pre.dtype) * w_i, on

    inputs = (jnp.swapaxes(visible_bias, 0, 1), w, v, jnp.swapaxes(noise, 0, 1))
    _, keys_on = jax.lax.scan(key_step, hidden_bias.reshape(n_frames, -1), inputs, unroll=8)
    return jnp.swapaxes(keys_on, 0, 1)


def check_max_notes(frames: np.ndarray, max_notes: int, where: str) -> None:
    """Raise a ValueError if a frame of `frames` (..., K) has more sounding keys than the NADE form handles."""
    most = int(np.asarray(frames).sum(axis=-1).max(initial=0))
    if most > max_notes:
        raise ValueError(f"{where}: a frame has {most} sounding keys; this NADE model was built for at most "
                         f"{max_notes} (model.nade_max_notes)")
