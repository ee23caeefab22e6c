"""Stacked recurrent layers (GRU, Cho-GRU, LSTM, tanh RNN) as Flax modules over `musejax.ops` recurrences.

Everything is time-major: inputs (T, B, I), states (B, H). Per layer the parameters are
`w_x (I, G*H), b_x (G*H,), w_h (H, G*H), b_h (G*H,)` with G = 3 (GRU, gates r, z, n), 4 (LSTM, gates i, f, g, o)
or 1 (tanh RNN) -- torch's layout transposed, with `b_ih` and `b_hh` kept apart (see `torch_interop`).
The input projection of all steps is done before the recurrence (for GRU cells one matmul per gate block, which
the recurrence consumes separately; see `musejax.ops.gru.gru_sequence_gates`). A per-sequence conditioning vector
`cond` (B, C) -- a style embedding -- acts as if concatenated to every input step of the first layer: its
share of the projection is computed once per sequence.

Carry pytree: a tuple with one entry per layer, `h` (B, H) for GRU/RNN and `(h, c)` for LSTM.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from musejax.data.piano import PIANO_KEYS
from musejax.ops import gru, rnn

Array = jax.Array
Carry = tuple[Any, ...]

# cell name -> (gates per unit, GRU variant or None)
CELLS: dict[str, tuple[int, str | None]] = {"gru": (3, "cudnn"), "gru-cho": (3, "cho"), "lstm": (4, None),
                                            "rnn": (1, None)}


def check_cell(cell: str) -> None:
    """Raise a ValueError naming the known cells if `cell` is not one of them."""
    if cell not in CELLS:
        raise ValueError(f"musejax/nn/cells.py: unknown cell {cell!r}; choose one of {sorted(CELLS)}")


def _blockwise_orthogonal(n_gates: int) -> nn.initializers.Initializer:
    """Orthogonal (H, H) block per gate, so every gate starts norm-preserving."""
    def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        n_hidden = shape[0]
        keys = jax.random.split(key, n_gates)
        blocks = [nn.initializers.orthogonal()(k, (n_hidden, n_hidden), dtype) for k in keys]
        return jnp.concatenate(blocks, axis=1)
    return init


def _recurrent_bias(cell: str) -> nn.initializers.Initializer:
    """Zeros, except the LSTM forget gate (1.0) so early training keeps memory."""
    def init(key: Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> Array:
        bias = jnp.zeros(shape, dtype)
        if cell == "lstm":
            n_hidden = shape[0] // 4
            bias = bias.at[n_hidden:2 * n_hidden].set(1.0)
        return bias
    return init


class RecurrentLayer(nn.Module):
    """One recurrent layer: projection of all steps, then the recurrence (`impl` applies to GRU cells)."""
    cell: str
    hidden: int
    input_size: int
    impl: str = "auto"

    def setup(self) -> None:
        check_cell(self.cell)
        width = CELLS[self.cell][0] * self.hidden
        self.w_x = self.param("w_x", nn.initializers.lecun_normal(), (self.input_size, width))
        self.b_x = self.param("b_x", nn.initializers.zeros_init(), (width,))
        self.w_h = self.param("w_h", _blockwise_orthogonal(CELLS[self.cell][0]), (self.hidden, width))
        self.b_h = self.param("b_h", _recurrent_bias(self.cell), (width,))

    def project(self, xs: Array, cond: Array | None = None, *, per_gate: bool = False) -> Array | tuple[Array, ...]:
        """xs (..., B, I_x), cond (B, C) with I_x + C = input_size -> gx (..., B, G*H) for all steps at once, or
        with `per_gate` a tuple of G (..., B, H) column blocks (one matmul each; what the GRU recurrence eats)."""
        n_x = xs.shape[-1]
        n_cond = 0 if cond is None else cond.shape[-1]
        if n_x + n_cond != self.input_size:
            raise ValueError(f"musejax/nn/cells.py: layer expects {self.input_size} input features; got "
                             f"{n_x} from the inputs + {n_cond} from the conditioning")
        xs = xs.astype(self.w_x.dtype)
        n_parts = CELLS[self.cell][0] if per_gate else 1
        width = self.w_x.shape[1] // n_parts
        parts = []
        for k in range(n_parts):
            cols = slice(k * width, (k + 1) * width)
            bias = self.b_x[cols]
            if cond is not None:  # the conditioning's share: once per sequence, broadcast over the steps
                bias = jnp.dot(cond.astype(self.w_x.dtype), self.w_x[n_x:, cols]) + bias
            parts.append(jnp.dot(xs, self.w_x[:n_x, cols]) + bias)
        return tuple(parts) if per_gate else parts[0]

    def initial_carry(self, batch_size: int) -> Any:
        h = jnp.zeros((batch_size, self.hidden), jnp.float32)
        return (h, h) if self.cell == "lstm" else h

    def run(self, xs: Array, carry: Any, cond: Array | None = None) -> tuple[Any, Array]:
        """Project xs (T, B, I_x) (+ cond) and run the recurrence -> (final carry, hs (T, B, H))."""
        variant = CELLS[self.cell][1]
        if variant is not None:
            gates = self.project(xs, cond, per_gate=True)
            hs = gru.gru_sequence_gates(gates, carry, self.w_h, self.b_h, variant=variant, impl=self.impl)
            return (hs[-1] if hs.shape[0] else carry), hs
        gx = self.project(xs, cond)
        if self.cell == "lstm":
            hs, c_last = rnn.lstm_sequence(gx, carry[0], carry[1], self.w_h, self.b_h)
            return ((hs[-1], c_last) if hs.shape[0] else carry), hs
        hs = rnn.rnn_sequence(gx, carry, self.w_h, self.b_h)
        return (hs[-1] if hs.shape[0] else carry), hs

    def step(self, gx_t: Array, carry: Any) -> tuple[Any, Array]:
        """gx_t (B, G*H), carry -> (new carry, h (B, H))."""
        variant = CELLS[self.cell][1]
        if variant is not None:
            h = gru.gru_cell(gx_t, carry, self.w_h, self.b_h, variant=variant, impl=self.impl)
            return h, h
        if self.cell == "lstm":
            h, c = rnn.lstm_cell(gx_t, carry[0], carry[1], self.w_h, self.b_h)
            return (h, c), h
        h = rnn.rnn_cell(gx_t, carry, self.w_h, self.b_h)
        return h, h


class RecurrentStack(nn.Module):
    """`layers` recurrent layers named layer_0.., dropout on the inputs of layers 1.. (torch.nn.GRU semantics)."""
    cell: str = "gru"
    hidden: int = 256
    layers: int = 1
    input_size: int = PIANO_KEYS
    dropout: float = 0.0
    impl: str = "auto"

    def setup(self) -> None:
        check_cell(self.cell)
        if self.layers < 1 or self.hidden < 1:
            raise ValueError(f"musejax/nn/cells.py: need layers >= 1 and hidden >= 1; got "
                             f"layers={self.layers}, hidden={self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"musejax/nn/cells.py: dropout must be in [0, 1); got {self.dropout}")
        self.layer = [RecurrentLayer(self.cell, self.hidden, self.input_size if k == 0 else self.hidden, self.impl)
                      for k in range(self.layers)]
        self.drop = nn.Dropout(rate=self.dropout)

    def initial_carry(self, batch_size: int) -> Carry:
        """Zero state for every layer."""
        return tuple(layer.initial_carry(batch_size) for layer in self.layer)

    def __call__(self, xs: Array, cond: Array | None = None, carry: Carry | None = None, *,
                 deterministic: bool = True) -> tuple[Carry, Array]:
        """xs (T, B, I) time-major, cond (B, C) or None -> (final carry, hs (T, B, H) of the top layer)."""
        if carry is None:
            carry = self.initial_carry(xs.shape[1])
        new_carry = []
        for k, layer in enumerate(self.layer):
            if k > 0:
                xs = self.drop(xs, deterministic=deterministic or self.dropout == 0.0)
            layer_carry, xs = layer.run(xs, carry[k], cond if k == 0 else None)
            new_carry.append(layer_carry)
        return tuple(new_carry), xs

    def step(self, carry: Carry, x_t: Array, cond: Array | None = None) -> tuple[Carry, Array]:
        """One step without dropout: x_t (B, I) -> (new carry, h_t (B, H) of the top layer)."""
        new_carry = []
        for k, layer in enumerate(self.layer):
            layer_carry, x_t = layer.step(layer.project(x_t, cond if k == 0 else None), carry[k])
            new_carry.append(layer_carry)
        return tuple(new_carry), x_t
