"""Recurrent language models over music: polyphonic piano-rolls and event tokens, optionally style-conditioned.

`PianoRollLM`: frames x (B, T, *frame) with prod(frame) = `features` (88, or 176 for a (2, 88) onset roll),
predicts the next frame either as independent Bernoulli logits of the same shape (output="bernoulli"; Chung et
al. 2014) or with a NADE whose biases are functions of the recurrent state (output="nade"; RNN-NADE,
Boulanger-Lewandowski et al. 2012), which models how the keys of a frame depend on each other. A NADE's logits
are the K conditionals p(v_i | v_<i, h_t) of the target frame, so they need the targets (teacher forcing) and
the Bernoulli loss of the targets under them is the frame's exact NLL; sampling draws key by key (`draw_frame`).
`EventLM`: tokens (B, T) int -> softmax logits (B, T, vocab_size) (melody/performance events).

Shared fields: cell ("gru" | "gru-cho" | "lstm" | "rnn"), hidden, layers, dropout (between layers and before the
readout), impl ("auto" | "xla" | "triton", GRU cells only), n_styles (0 = unconditioned), style_dim,
position_period (0 = off: else a one-hot of the input's index t mod position_period joins every input step, the
place in the bar on a grid encoding; input t of a sequence starting at `position_offset` has index offset + t),
bar_lines (the place in the bar from bar lines: `bar` (B, 2) int = (place of index 0, steps per bar) gives
(index + place) mod steps, mod position_period again; a row (0, 0) or None: not known, index mod position_period),
transpositions (0 = off: else a one-hot of the semitones -transpositions..transpositions a sequence was
transposed by in augmentation joins every input step; `transpose` (B,) int, None = 0: the keys as written),
textures (0 = off: else a one-hot of a sequence's texture label, 0..textures-1, joins every input step; `texture`
(B,) int, None = 0: the corpus's texture as written, k > 0: re-scored by a texture shift, lm/data.py texture_label),
end_buckets (0 = off: else a one-hot of the steps left to the sequence's end, `end` (B,) - the input's index, in
buckets of end_bucket_steps, joins every input step, so a piece can close on a cadence; the last column means
further, or `end` None: unknown).
Style, when n_styles > 0, is either int ids (B,) or mixture weights (B, n_styles) (rows summing to 1, not checked);
its embedding `weights @ style_table` is concatenated to every input step. Ids and one-hot weights are identical.

Methods (all usable as `model.apply(variables, ..., method=...)`; params passed explicitly, nothing hidden):
  __call__(x, style=None, **options) -> logits (B, T, ...): encode's, without the carry
  encode(x, style=None, *, targets=None, deterministic=True, initial_carry=None, position_offset=0,
         transpose=None, texture=None, end=None, bar=None) -> (carry, logits)   carry after the last step; a
      NADE model needs `targets` (B, T, *frame) for logits and gives None without them
  initial_carry(batch_size) -> carry   (tuple over layers of h (B, H), or (h, c) for LSTM)
  step(carry, x_t, style=None, position=None, transpose=None, texture=None, end=None, bar=None) -> (carry, out_t)
      one step, no dropout; x_t (B, *frame) or tokens (B,), `position` its index in the sequence; out_t is the
      logits, or for a NADE model the per-frame NADE biases that `draw_frame(out_t, noise, ...)` samples
Dropout needs `rngs={"dropout": key}` when deterministic=False.
"""
from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from musejax.data.piano import PIANO_KEYS
from musejax.lm import nade
from musejax.nn.cells import Carry, RecurrentStack, check_cell

Array = jax.Array


class _RecurrentLM(nn.Module):
    """Style embedding + recurrent stack + dense readout; subclasses define the inputs and the output size."""
    cell: str = "gru"
    hidden: int = 256
    layers: int = 1
    dropout: float = 0.0
    impl: str = "auto"
    n_styles: int = 0
    style_dim: int = 16
    position_period: int = 0
    bar_lines: bool = False
    transpositions: int = 0
    textures: int = 0
    end_buckets: int = 0
    end_bucket_steps: int = 1

    # -- hooks for subclasses ------------------------------------------------------------------------
    def _input_size(self) -> int:
        raise NotImplementedError

    def _output_size(self) -> int:
        raise NotImplementedError

    def _embed_sequence(self, x: Array) -> Array:
        """(B, T, ...) model input -> time-major features (T, B, I)."""
        raise NotImplementedError

    def _embed_step(self, x_t: Array) -> Array:
        """(B, ...) one step of input -> features (B, I)."""
        raise NotImplementedError

    def _shape_logits(self, logits: Array, x: Array) -> Array:
        return logits

    def _sequence_outputs(self, hs: Array, x: Array, targets: Array | None) -> Array | None:
        """Top-layer states hs (T, B, H) -> logits (B, T, ...)."""
        return self._shape_logits(jnp.swapaxes(self.readout(hs), 0, 1), x)  # (T, B, O) -> (B, T, O)

    def _step_outputs(self, h: Array, x_t: Array) -> Any:
        return self._shape_logits(self.readout(h), x_t)

    # -- shared ----------------------------------------------------------------------------------------
    def setup(self) -> None:
        check_cell(self.cell)
        if self.position_period < 0 or self.transpositions < 0 or self.end_buckets < 0 or self.end_bucket_steps < 1:
            raise ValueError(f"musejax/lm/model.py: position_period, transpositions and end_buckets must be >= 0 "
                             f"and end_bucket_steps >= 1; got {self.position_period}, {self.transpositions}, "
                             f"{self.end_buckets}, {self.end_bucket_steps}")
        if self.n_styles < 0 or (self.n_styles > 0 and self.style_dim < 1):
            raise ValueError(f"musejax/lm/model.py: need n_styles >= 0 and style_dim >= 1 when styled; got "
                             f"n_styles={self.n_styles}, style_dim={self.style_dim}")
        if self.n_styles:
            self.style_table = self.param("style_table", nn.initializers.normal(1.0),
                                          (self.n_styles, self.style_dim))
        cond_size = (self.style_dim if self.n_styles else 0) + self._transpose_width + self.textures
        end_width = self.end_buckets + 1 if self.end_buckets else 0  # buckets 1..end_buckets, and further
        input_size = self._input_size() + self.position_period + end_width + cond_size
        self.rnn = RecurrentStack(cell=self.cell, hidden=self.hidden, layers=self.layers, input_size=input_size,
                                  dropout=self.dropout, impl=self.impl)
        self.out_drop = nn.Dropout(rate=self.dropout)
        self.readout = nn.Dense(self._output_size())

    def style_embedding(self, style: Array | None, batch_size: int) -> Array | None:
        """Ids (B,) or mixture weights (B, n_styles) -> (B, style_dim); None for an unconditioned model."""
        if self.n_styles == 0:
            if style is not None:
                raise ValueError("musejax/lm/model.py: style given to a model with n_styles=0")
            return None
        if style is None:
            raise ValueError(f"musejax/lm/model.py: this model has n_styles={self.n_styles}: pass style ids (B,) "
                             "or mixture weights (B, n_styles)")
        style = jnp.asarray(style)
        if jnp.issubdtype(style.dtype, jnp.integer):
            if style.shape != (batch_size,):
                raise ValueError(f"musejax/lm/model.py: style ids must be ({batch_size},); got {style.shape}")
            return jnp.take(self.style_table, style, axis=0)
        if style.shape != (batch_size, self.n_styles):
            raise ValueError(f"musejax/lm/model.py: style weights must be ({batch_size}, {self.n_styles}); "
                             f"got {style.shape}")
        return jnp.dot(style.astype(self.style_table.dtype), self.style_table)

    def _with_position(self, features: Array, index: Array, bar: Array | None = None) -> Array:
        """features (..., B, I), indices (..., B), `bar` (B, 2) -> (..., B, I + position_period): + bar place."""
        if not (period := self.position_period):
            return features
        place = jnp.asarray(index)
        if self.bar_lines and bar is not None:  # (index + phase) mod steps per bar; rows (0, 0): not known
            place = (place + bar[:, 0]) % jnp.where(bar[:, 1] > 0, bar[:, 1], period)
        place = jax.nn.one_hot(place % period, period, dtype=features.dtype)
        return jnp.concatenate([features, jnp.broadcast_to(place, (*features.shape[:-1], period))], -1)

    def _with_end(self, features: Array, index: Array, end: Array | None) -> Array:
        """features (..., B, I), input indices broadcastable to (..., B) and `end` (B,) -> features with the one-hot
        (..., B, end_buckets + 1) joined: the steps left from each input to its sequence's end (end - index), in
        buckets of end_bucket_steps; the last column stands for more than end_buckets buckets, or for no `end`."""
        if not self.end_buckets:
            return features
        far = self.end_buckets
        if end is None:
            bucket = jnp.full(features.shape[:-1], far, jnp.int32)
        else:
            left = jnp.asarray(end, jnp.int32) - jnp.asarray(index, jnp.int32)
            bucket = jnp.clip(-(-left // self.end_bucket_steps), 1, far + 1) - 1
        ends = jax.nn.one_hot(bucket, far + 1, dtype=features.dtype)
        return jnp.concatenate([features, jnp.broadcast_to(ends, (*features.shape[:-1], far + 1))], -1)

    @property
    def _transpose_width(self) -> int:
        """Columns of the transposition's one-hot: -transpositions..transpositions, or none."""
        return 2 * self.transpositions + 1 if self.transpositions else 0

    def _condition(self, style: Array | None, transpose: Array | None, texture: Array | None,
                   batch_size: int) -> Array | None:
        """What joins every input step of a sequence: the style embedding, the transposition's and the texture
        label's one-hots."""
        parts = [self.style_embedding(style, batch_size)]

        def labels(values: Array | None) -> Array:
            return jnp.zeros((batch_size,), jnp.int32) if values is None else jnp.asarray(values, jnp.int32)

        if self.transpositions:
            most = self.transpositions
            parts.append(jax.nn.one_hot(jnp.clip(labels(transpose), -most, most) + most, self._transpose_width))
        if self.textures:
            parts.append(jax.nn.one_hot(jnp.clip(labels(texture), 0, self.textures - 1), self.textures))
        parts = [part for part in parts if part is not None]
        return jnp.concatenate(parts, axis=-1) if parts else None

    def initial_carry(self, batch_size: int) -> Carry:
        """Zero recurrent state for `batch_size` sequences."""
        return self.rnn.initial_carry(batch_size)

    def encode(self, x: Array, style: Array | None = None, *, targets: Array | None = None,
               deterministic: bool = True, initial_carry: Carry | None = None, position_offset: Array | int = 0,
               transpose: Array | None = None, texture: Array | None = None, end: Array | None = None,
               bar: Array | None = None) -> tuple[Carry, Array | None]:
        """Run over a whole sequence: -> (carry after the last step, logits (B, T, ...)); `targets` (the next
        frames) only matter to a NADE output."""
        xs = self._embed_sequence(x)
        index = position_offset + jnp.arange(xs.shape[0])[:, None]
        xs = self._with_end(self._with_position(xs, index, bar), index, end)
        cond = self._condition(style, transpose, texture, xs.shape[1])
        carry, hs = self.rnn(xs, cond, initial_carry, deterministic=deterministic)
        hs = self.out_drop(hs, deterministic=deterministic or self.dropout == 0.0)
        return carry, self._sequence_outputs(hs, x, targets)

    def __call__(self, x: Array, style: Array | None = None, **options: Any) -> Array:
        """Logits of the next step at every position: (B, T, ...); `options` as `encode`'s."""
        return self.encode(x, style, **options)[1]

    def step(self, carry: Carry, x_t: Array, style: Array | None = None, position: Array | int | None = None,
             transpose: Array | None = None, texture: Array | None = None, end: Array | None = None,
             bar: Array | None = None) -> tuple[Carry, Any]:
        """One step for sampling (no dropout): -> (new carry, logits of the next step, or a NADE's biases);
        `position`: the index of x_t in its sequence (needed with position_period > 0, or with an `end`)."""
        if position is None and (self.position_period or (self.end_buckets and end is not None)):
            raise ValueError("musejax/lm/model.py: this model reads its place in the bar or the steps left to the "
                             "end: pass step(..., position=index of x_t)")
        features = self._with_end(self._with_position(self._embed_step(x_t), position, bar), position, end)
        cond = self._condition(style, transpose, texture, features.shape[0])
        carry, h = self.rnn.step(carry, features, cond)
        return carry, self._step_outputs(h, x_t)


OUTPUTS = ("bernoulli", "nade")
NADE_ORDERS = ("low-high", "high-low")
NADE_COUNT_INPUTS = ("nade-hidden", "state")


class PianoRollLM(_RecurrentLM):
    """Polyphonic piano-roll LM: frames (B, T, *frame) -> next-frame logits (B, T, *frame).

    output="bernoulli": independent logits per key. output="nade": a NADE of `nade_hidden` units over the
    frame's keys in `nade_order` (low to high or high to low); the readout gives its visible biases, a second
    dense layer its hidden biases, from h_t; its weights W, V (features, nade_hidden) are shared over time.
    Training and evaluation use the segment form (`musejax.lm.nade`), exact for frames of at most
    `nade_max_notes` sounding keys (set from the data).

    nade_count=True: the frame's note count n is drawn first, from a softmax over 0..features, and the NADE places
    exactly n notes (`nade.force_count`), its hidden units told how many are left to place. The softmax is read
    out of the NADE's hidden biases (nade_count_input="nade-hidden": nade_hidden inputs, a quarter of the cost
    of reading h_t at the defaults) or of h_t itself ("state"; runs saved before the field existed reload with it).
    With targets, the model then returns {"logits": the keys' conditional logits, "step_nll": -log p(n) (B, T)}.
    """
    features: int = PIANO_KEYS
    output: str = "bernoulli"
    nade_hidden: int = 150
    nade_max_notes: int = 16
    nade_order: str = "low-high"
    nade_count: bool = False
    nade_count_input: str = "nade-hidden"

    def setup(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"musejax/lm/model.py: output must be one of {OUTPUTS}; got {self.output!r}")
        super().setup()
        if self.output == "nade":
            if (self.nade_hidden < 1 or self.nade_max_notes < 1 or self.nade_order not in NADE_ORDERS
                    or self.nade_count_input not in NADE_COUNT_INPUTS):
                raise ValueError(f"musejax/lm/model.py: a NADE output needs nade_hidden >= 1, nade_max_notes >= 1, "
                                 f"nade_order in {NADE_ORDERS} and nade_count_input in {NADE_COUNT_INPUTS}; got "
                                 f"{self.nade_hidden}, {self.nade_max_notes}, {self.nade_order!r}, "
                                 f"{self.nade_count_input!r}")
            self.nade_hidden_bias = nn.Dense(self.nade_hidden)
            shape = (self.features, self.nade_hidden)
            self.nade_w = self.param("nade_w", nn.initializers.lecun_normal(), shape)
            self.nade_v = self.param("nade_v", nn.initializers.lecun_normal(), shape)
            if self.nade_count:
                self.count_readout = nn.Dense(self.features + 1)
                self.count_embed = nn.Embed(self.features + 1, self.nade_hidden)

    def _input_size(self) -> int:
        return self.features

    def _output_size(self) -> int:
        return self.features

    def _frame_check(self, x: Array, leading: int) -> None:
        frame = x.shape[leading:]
        if x.ndim <= leading or math.prod(frame) != self.features:
            want = "(B, T, *frame)" if leading == 2 else "(B, *frame)"
            raise ValueError(f"musejax/lm/model.py: PianoRollLM expects {want} with prod(frame) = "
                             f"features = {self.features}; got shape {x.shape}")

    def _embed_sequence(self, x: Array) -> Array:
        self._frame_check(x, 2)
        flat = x.reshape(x.shape[0], x.shape[1], self.features)
        return jnp.swapaxes(flat, 0, 1).astype(jnp.float32)

    def _embed_step(self, x_t: Array) -> Array:
        self._frame_check(x_t, 1)
        return x_t.reshape(x_t.shape[0], self.features).astype(jnp.float32)

    def _shape_logits(self, logits: Array, x: Array) -> Array:
        return logits.reshape(logits.shape[:-1] + x.shape[logits.ndim - 1:])

    # -- NADE output ----------------------------------------------------------------------------------
    def _in_nade_order(self, keys_last: Array) -> Array:
        """(..., features) in key order <-> NADE order (its own inverse)."""
        return keys_last[..., ::-1] if self.nade_order == "high-low" else keys_last

    def _sequence_outputs(self, hs: Array, x: Array, targets: Array | None) -> Array | None:
        if self.output != "nade":
            return super()._sequence_outputs(hs, x, targets)
        if targets is None:
            return None
        self._frame_check(targets, 2)
        if targets.shape[:2] != x.shape[:2]:
            raise ValueError(f"musejax/lm/model.py: targets {targets.shape} do not match inputs {x.shape}")
        # everything stays (T, B, ...) like hs: a reshape across the batch axis the mesh splits would reshard
        n_steps, batch = hs.shape[:2]
        frames = jnp.swapaxes(targets.reshape(batch, n_steps, self.features), 0, 1)  # (T, B, K)
        ordered = self._in_nade_order(frames)
        hidden_bias = self.nade_hidden_bias(hs)
        left_embed = self.count_embed.embedding if self.nade_count else None
        logits = nade.nade_logits(ordered, self._in_nade_order(self.readout(hs)), hidden_bias, self.nade_w,
                                  self.nade_v, self.nade_max_notes, left_embed)
        if self.nade_count:
            logits = nade.force_count(logits, ordered)
        logits = jnp.swapaxes(self._in_nade_order(logits), 0, 1)
        if not self.nade_count:
            return self._shape_logits(logits, x)
        count = frames.sum(axis=-1).astype(jnp.int32)  # -log p(note count)
        count_nll = -jnp.sum(jax.nn.log_softmax(self._count_logits(hs, hidden_bias))
                             * jax.nn.one_hot(count, self.features + 1, dtype=hs.dtype), axis=-1)
        return {"logits": self._shape_logits(logits, x), "step_nll": jnp.swapaxes(count_nll, 0, 1)}

    def _step_outputs(self, h: Array, x_t: Array) -> Any:
        if self.output != "nade":
            return super()._step_outputs(h, x_t)
        outputs = {"visible_bias": self.readout(h), "hidden_bias": self.nade_hidden_bias(h)}
        if self.nade_count:
            outputs["count_logits"] = self._count_logits(h, outputs["hidden_bias"])
        return outputs

    def _count_logits(self, h: Array, hidden_bias: Array) -> Array:
        """The note count's logits over 0..features, from the NADE's hidden biases or from the state h."""
        return self.count_readout(hidden_bias if self.nade_count_input == "nade-hidden" else h)

    @property
    def noise_width(self) -> int:
        """Uniform numbers `draw_frame` takes per frame: one per key, and one for a drawn note count."""
        return self.features + int(self.output == "nade" and self.nade_count)

    def draw_frame(self, outputs: Any, noise: Array | None, *, temperature: Array | float = 1.0,
                   top_p: Array | float | None = None, threshold: Array | float = 0.5,
                   mode: str = "bernoulli", count_temperature: Array | float = 1.0) -> Array:
        """A NADE step's outputs (see `step`) -> sampled frames (B, features) bool, key by key in nade_order;
        noise uniform (B, noise_width) for mode "bernoulli" (see `musejax.lm.nade.nade_sample`). A counting
        NADE draws the note count first from its softmax at `count_temperature` (the last noise column; its mode
        for "threshold" and "greedy"): `temperature` sharpens which keys sound, not how many (a sharper count left
        no silent beats or thinner chords at all: docs/tuning/lm.md); then its notes a note at a time
        (`nade.nade_place`, each note's key from the `top_p` nucleus; key by key for "threshold")."""
        if self.output != "nade":
            raise ValueError("musejax/lm/model.py: draw_frame is for output='nade'")
        if top_p is not None and not self.nade_count:
            raise ValueError("musejax/lm/model.py: top_p needs nade_count (a NADE without it draws no key choice)")
        hidden, count = outputs["hidden_bias"], None
        if self.nade_count:
            count_logits = outputs["count_logits"]
            if mode == "bernoulli" and noise is not None:
                cdf = jnp.cumsum(jax.nn.softmax(count_logits / count_temperature), axis=-1)
                count = jnp.minimum(jnp.sum(cdf < noise[:, -1:], axis=-1), self.features)
            else:
                count = jnp.argmax(count_logits, axis=-1)
            noise = None if noise is None else noise[:, :self.features]
        visible = self._in_nade_order(outputs["visible_bias"])
        if self.nade_count and mode != "threshold":  # a note at a time (noise: one column per note)
            frames = nade.nade_place(visible, hidden, self.nade_w, self.nade_v, noise, count,
                                     self.count_embed.embedding, temperature=temperature, top_p=top_p,
                                     greedy=mode == "greedy")
            return self._in_nade_order(frames)
        frames = nade.nade_sample(visible, hidden, self.nade_w, self.nade_v,
                                  None if noise is None else self._in_nade_order(noise),
                                  temperature=temperature, threshold=threshold, mode=mode, count=count,
                                  left_embed=self.count_embed.embedding if self.nade_count else None)
        return self._in_nade_order(frames)


class EventLM(_RecurrentLM):
    """Event-token LM: tokens (B, T) int -> logits (B, T, vocab_size) over the next token."""
    vocab_size: int = 0
    embed_dim: int = 64

    def setup(self) -> None:
        if self.vocab_size < 1 or self.embed_dim < 1:
            raise ValueError(f"musejax/lm/model.py: EventLM needs vocab_size >= 1 and embed_dim >= 1; got "
                             f"vocab_size={self.vocab_size}, embed_dim={self.embed_dim}")
        super().setup()
        self.embed = nn.Embed(self.vocab_size, self.embed_dim)

    def _input_size(self) -> int:
        return self.embed_dim

    def _output_size(self) -> int:
        return self.vocab_size

    def _embed_sequence(self, x: Array) -> Array:
        if x.ndim != 2 or not jnp.issubdtype(x.dtype, jnp.integer):
            raise ValueError(f"musejax/lm/model.py: EventLM expects int tokens (B, T); got {x.dtype} {x.shape}")
        return self.embed(jnp.swapaxes(x, 0, 1))

    def _embed_step(self, x_t: Array) -> Array:
        if x_t.ndim != 1 or not jnp.issubdtype(x_t.dtype, jnp.integer):
            raise ValueError(f"musejax/lm/model.py: EventLM.step expects int tokens (B,); got "
                             f"{x_t.dtype} {x_t.shape}")
        return self.embed(x_t)
