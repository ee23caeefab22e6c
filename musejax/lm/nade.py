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
- `nade_sample`: draws a frame key by key (`lax.scan` over the keys), for the jit-compiled sampler;
  `nade_place`: a frame of a known note count, a note at a time (`lax.while_loop` over its notes).

A NADE that knows its frame's note count n (`force_count`; the model draws n first from a softmax over
0..K notes): key i is forced off once the n notes are placed and forced on when the keys left are exactly the
notes left, so the conditionals put all their mass on frames of n notes and p(v) = p(n) p(v | n) stays exact.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def _left_rows(left_embed: Array, left: Array) -> Array:
    """Rows of a counting NADE's notes-left embedding (C, H) for counts `left` (clipped to 0..C-1)."""
    return left_embed[jnp.clip(left, 0, left_embed.shape[0] - 1)]


def _before_each_key(x: Array) -> Array:
    """Sums over the keys before each key, x (..., K) -> (..., K): an exclusive cumulative sum, as a matmul
    (XLA's CPU cumsum is a reduce-window, slower on the training path and in the sampler's loop)."""
    n_keys = x.shape[-1]
    return jnp.dot(x, jnp.triu(jnp.ones((n_keys, n_keys), x.dtype), 1))


def nade_logits(frames: Array, visible_bias: Array, hidden_bias: Array, w: Array, v: Array,
                max_notes: int, left_embed: Array | None = None) -> Array:
    """Conditional logits (..., K) of frames (..., K) in {0, 1}, given biases c (..., K), b (..., H), weights
    W, V (K, H); any leading axes (the model keeps (T, B), so a mesh that splits B never reshards).

    Exact for frames with at most `max_notes` sounding keys; the segment form described in the module doc.
    `left_embed` (C, H): a counting NADE's hidden units also see how many of the frame's notes are still to be
    placed (row r added while r notes are left).
    """
    frames = frames.astype(w.dtype)
    n_keys, n_hidden = w.shape
    below = _before_each_key(frames)  # (..., K): sounding keys below i
    segments = jnp.arange(max_notes + 1, dtype=w.dtype)[:, None]  # (S, 1), S = max_notes + 1
    in_segment = (below[..., None, :] == segments).astype(w.dtype)  # (..., S, K): key i lies in segment s
    # segment s's pre-activation adds the W rows of the first s sounding keys: gather them (key K = no note,
    # a zero row) and sum cumulatively over at most max_notes rows
    sounding = jnp.sort(jnp.where(frames > 0, jnp.arange(n_keys), n_keys), axis=-1)[..., :max_notes]  # (..., M)
    rows = jnp.concatenate([w, jnp.zeros((1, n_hidden), w.dtype)])[sounding]  # (..., M, H)
    sums = [jnp.zeros_like(rows[..., 0, :])]
    for m in range(rows.shape[-2]):  # a running sum of a few rows: XLA's CPU cumsum (a reduce-window) is slower
        sums.append(sums[-1] + rows[..., m, :])
    before = jnp.stack(sums, axis=-2)  # (..., S, H)
    if left_embed is not None:  # segment s: the frame's notes minus the s placed (at most max_notes)
        n_rows = min(left_embed.shape[0], max_notes + 1)
        left = frames.sum(axis=-1).astype(jnp.int32)[..., None] - jnp.arange(max_notes + 1)
        # a one-hot matmul, not a gather: its gradient is a matmul too, where a gather's is a slow scatter-add
        one_hot = jax.nn.one_hot(jnp.clip(left, 0, n_rows - 1), n_rows, dtype=w.dtype)  # (..., S, n_rows)
        before = before + jnp.dot(one_hot, left_embed[:n_rows])
    hidden = jax.nn.sigmoid(hidden_bias[..., None, :] + before)  # (..., S, H)
    segment_logits = jnp.dot(hidden, v.T)  # (..., S, K)
    return visible_bias + jnp.sum(in_segment * segment_logits, axis=-2)


def nade_logits_dense(frames: Array, visible_bias: Array, hidden_bias: Array, w: Array, v: Array,
                      left_embed: Array | None = None) -> Array:
    """The same conditional logits through an exclusive cumulative sum over the keys: (N, K, H) memory."""
    contributions = frames.astype(w.dtype)[..., None] * w  # (N, K, H)
    pre = hidden_bias[:, None, :] + jnp.cumsum(contributions, axis=1) - contributions
    if left_embed is not None:
        placed = jnp.cumsum(frames, axis=-1) - frames
        left = frames.sum(axis=-1, keepdims=True).astype(jnp.int32) - placed.astype(jnp.int32)
        pre = pre + _left_rows(left_embed, left)
    return visible_bias + jnp.einsum("nkh,kh->nk", jax.nn.sigmoid(pre), v)


FORCED = 1e4  # the logit of a key whose value the note count decides (its log-probability is 0 to float precision)


def force_count(logits: Array, frames: Array) -> Array:
    """Conditional logits (..., K) of frames (..., K) under a NADE told each frame's note count (frames.sum(-1)):
    key i is forced off when no note is left to place, on when every key left must sound."""
    frames = frames.astype(logits.dtype)
    n_keys = frames.shape[-1]
    left = frames.sum(axis=-1, keepdims=True) - _before_each_key(frames)  # notes at keys >= i
    keys_left = n_keys - jnp.arange(n_keys, dtype=logits.dtype)
    return jnp.where(left <= 0, -FORCED, jnp.where(left >= keys_left, FORCED, logits))


def nade_sample(visible_bias: Array, hidden_bias: Array, w: Array, v: Array, noise: Array | None, *,
                temperature: Array | float = 1.0, threshold: Array | float = 0.5, mode: str = "bernoulli",
                count: Array | None = None, left_embed: Array | None = None) -> Array:
    """Draw frames (N, K) bool key by key. mode: "bernoulli" (v_i = noise_i < sigmoid(logit_i / temperature),
    noise uniform (N, K)), "threshold" (sigmoid(logit_i / temperature) > threshold) or "greedy" (logit_i > 0).
    Each key's choice feeds the next keys' conditionals, as in the model. With `count` (N,) int, each frame
    gets exactly that many notes (`force_count`'s rule), and `left_embed` is `nade_logits`'."""
    if mode not in ("bernoulli", "threshold", "greedy"):
        raise ValueError(f"musejax/lm/nade.py: unknown NADE sampling mode {mode!r}")
    n_frames = visible_bias.shape[0]
    if noise is None:
        noise = jnp.zeros_like(visible_bias)

    n_keys = visible_bias.shape[1]
    left = jnp.zeros((n_frames,), jnp.int32) if count is None else count.astype(jnp.int32)  # notes to place

    def key_step(state, key_inputs):
        pre, left = state
        c_i, w_i, v_i, u_i, keys_left = key_inputs
        shifted = pre if left_embed is None else pre + _left_rows(left_embed, left)
        logit = c_i + jnp.dot(jax.nn.sigmoid(shifted), v_i)
        if mode == "greedy":
            on = logit > 0
        elif mode == "threshold":
            on = jax.nn.sigmoid(logit / temperature) > threshold
        else:
            on = u_i < jax.nn.sigmoid(logit / temperature)
        if count is not None:
            on = (on & (left > 0)) | (left >= keys_left)
        return (pre + on[:, None].astype(pre.dtype) * w_i, left - on), on

    inputs = (jnp.swapaxes(visible_bias, 0, 1), w, v, jnp.swapaxes(noise, 0, 1), n_keys - jnp.arange(n_keys))
    _, keys_on = jax.lax.scan(key_step, (hidden_bias.reshape(n_frames, -1), left), inputs, unroll=8)
    return jnp.swapaxes(keys_on, 0, 1)


def nade_place(visible_bias: Array, hidden_bias: Array, w: Array, v: Array, noise: Array | None, count: Array,
               left_embed: Array | None = None, *, temperature: Array | float = 1.0, top_p: Array | float | None = None,
               greedy: bool = False) -> Array:
    """Draw frames (N, K) bool with exactly `count` (N,) notes, a note at a time: the same distribution as
    `nade_sample(..., count=count, left_embed=left_embed)` at temperature 1, drawn by placement.

    Between two notes the NADE's hidden units do not change, so the next note's key j (from the key after the
    last note, cur, to the lowest key that leaves room for the notes still to come, last) has the probability
    p_j prod_{cur <= i < j} (1 - p_i), and `last` takes the rest. The temperature sharpens this choice of key
    (uniform noise (N, K): column k for note k; greedy: the likeliest key), where `nade_sample`'s sharpens each
    key's on/off choice: with the count fixed, that pushed every note later in the key order (in high-low
    order, about 2 semitones lower in the default run's samples). `top_p` keeps only the likeliest keys whose
    probabilities (after the temperature) reach top_p, the nucleus, and draws among them: it cuts the unlikely
    keys without sharpening the choice among the likely ones, as a temperature below 1 does (that favoured the key
    already sounding: notes held on, too few struck)."""
    n_frames, n_keys = visible_bias.shape
    keys = jnp.arange(n_keys)

    def place(state):
        pre, left, cur, frames, k = state
        shifted = pre if left_embed is None else pre + _left_rows(left_embed, left)
        logits = visible_bias + jnp.dot(jax.nn.sigmoid(shifted), v.T)  # (N, K)
        log_off = jnp.where(keys >= cur[:, None], jax.nn.log_sigmoid(-logits), 0.0)
        skipped = _before_each_key(log_off)  # log P(keys cur..j-1 all off)
        last = (n_keys - left)[:, None]  # the lowest key the next note can take and leave room for the rest
        log_p = jnp.where(keys == last, skipped, jax.nn.log_sigmoid(logits) + skipped)
        log_p = jnp.where((keys >= cur[:, None]) & (keys <= last), log_p, -jnp.inf)
        if greedy or noise is None:
            key = jnp.argmax(log_p, axis=-1)
        else:
            probs = jax.nn.softmax(log_p / temperature, axis=-1)
            if top_p is not None:
                probs = _nucleus(probs, top_p)
            cdf = _before_each_key(probs) + probs
            u = jax.lax.dynamic_index_in_dim(noise, k, axis=1, keepdims=False)
            key = jnp.clip(jnp.sum(cdf < u[:, None], axis=-1), cur, last[:, 0])  # u = 0 or rounding: stay in range
            if top_p is not None:  # rounding can leave u above the last kept key's cdf: never draw a cut key
                kept = jnp.take_along_axis(probs, key[:, None], axis=-1)[:, 0] > 0
                key = jnp.where(kept, key, jnp.argmax(probs, axis=-1))
        placing = left > 0
        chosen = (keys == key[:, None]) & placing[:, None]
        return (pre + jnp.dot(chosen.astype(pre.dtype), w), left - placing, jnp.where(placing, key + 1, cur),
                frames | chosen, k + 1)

    state = (hidden_bias, count.astype(jnp.int32), jnp.zeros((n_frames,), jnp.int32),
             jnp.zeros((n_frames, n_keys), bool), jnp.int32(0))
    # as many rounds as the fullest frame has notes, decided once: a condition that looked at every frame's
    # notes left (jnp.any) is a collective per round when the mesh splits the frames over devices
    rounds = jnp.minimum(jnp.max(count), n_keys)
    return jax.lax.while_loop(lambda s: s[4] < rounds, place, state)[3]


def _nucleus(probs: Array, top_p: Array | float) -> Array:
    """probs (N, K) -> the same renormalised over each row's nucleus: the keys whose more probable keys hold less
    than top_p of the mass (the likeliest always kept; ties at the cut-off kept). A comparison of every pair of
    keys, (N, K, K), in place of a sort: sorting 88 keys at every note made the sampler 3.9x slower on a CPU."""
    above = (probs[:, :, None] > probs[:, None, :]).astype(probs.dtype)  # [n, i, j]: key i is likelier than key j
    kept = jnp.where(jnp.einsum("nij,ni->nj", above, probs) < top_p, probs, 0.0)
    return kept / jnp.sum(kept, axis=-1, keepdims=True)


def check_max_notes(frames: np.ndarray, max_notes: int, where: str) -> None:
    """Raise a ValueError if a frame of `frames` (..., K) has more sounding keys than the NADE form handles."""
    most = int(np.asarray(frames).sum(axis=-1).max(initial=0))
    if most > max_notes:
        raise ValueError(f"{where}: a frame has {most} sounding keys; this NADE model was built for at most "
                         f"{max_notes} (model.nade_max_notes)")
