"""LSTM and tanh-RNN recurrences over precomputed input projections, time-major, torch.nn.LSTM / nn.RNN math.

Same layout as `musejax.ops.gru`: `gx = x @ w_x + b_x` for all steps is one matmul done by the caller; the
recurrence does one fused [B, H] x [H, G*H] product per step inside `lax.scan` (autodiff through the scan).
LSTM gate order (i, f, g, o) as torch: c' = f ⊙ c + i ⊙ g; h' = o ⊙ tanh(c').  RNN: h' = tanh(gx + h W_h + b_h).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array


def _check(name: str, gx: Array, h: Array, w_h: Array, b_h: Array, n_gates: int, gx_ndim: int) -> None:
    if w_h.ndim != 2 or w_h.shape[1] != n_gates * w_h.shape[0]:
        raise ValueError(f"musejax/ops/rnn.py: {name}: w_h must be (H, {n_gates}H); got {w_h.shape=}")
    n_hidden = w_h.shape[0]
    if b_h.shape != (n_gates * n_hidden,):
        raise ValueError(f"musejax/ops/rnn.py: {name}: b_h must be ({n_gates * n_hidden},); got {b_h.shape=}")
    if gx.ndim != gx_ndim or gx.shape[-1] != n_gates * n_hidden:
        raise ValueError(f"musejax/ops/rnn.py: {name}: gx must end in {n_gates}H={n_gates * n_hidden} and have "
                         f"{gx_ndim} dims; got {gx.shape=}")
    if h.shape != (gx.shape[-2], n_hidden):
        raise ValueError(f"musejax/ops/rnn.py: {name}: state must be (B, H) = ({gx.shape[-2]}, {n_hidden}); "
                         f"got {h.shape=}")


def _split(gx: Array, n_gates: int) -> tuple[Array, ...]:
    # One array per gate: XLA:CPU vectorises the per-step fusion better than slicing inside the loop.
    n_hidden = gx.shape[-1] // n_gates
    return tuple(gx[..., k * n_hidden:(k + 1) * n_hidden] for k in range(n_gates))


def _lstm_step(g: tuple[Array, ...], h: Array, c: Array, w_h: Array, b_h: Array) -> tuple[Array, Array]:
    n_hidden = h.shape[-1]
    hh = jnp.dot(h, w_h) + b_h
    i = jax.nn.sigmoid(g[0] + hh[..., :n_hidden])
    f = jax.nn.sigmoid(g[1] + hh[..., n_hidden:2 * n_hidden])
    cand = jnp.tanh(g[2] + hh[..., 2 * n_hidden:3 * n_hidden])
    o = jax.nn.sigmoid(g[3] + hh[..., 3 * n_hidden:])
    c_new = f * c + i * cand
    return o * jnp.tanh(c_new), c_new


def lstm_sequence(gx: Array, h0: Array, c0: Array, w_h: Array, b_h: Array) -> tuple[Array, Array]:
    """gx (T, B, 4H), h0/c0 (B, H), w_h (H, 4H), b_h (4H,) -> (hs (T, B, H), final cell state (B, H))."""
    _check("lstm_sequence", gx, h0, w_h, b_h, 4, gx_ndim=3)
    if c0.shape != h0.shape:
        raise ValueError(f"musejax/ops/rnn.py: lstm_sequence: c0 must match h0 {h0.shape}; got {c0.shape=}")

    def body(carry, g):
        h, c = _lstm_step(g, *carry, w_h, b_h)
        return (h, c), h

    (_, c_last), hs = lax.scan(body, (h0, c0), _split(gx, 4))
    return hs, c_last


def lstm_cell(gx_t: Array, h: Array, c: Array, w_h: Array, b_h: Array) -> tuple[Array, Array]:
    """One LSTM step: gx_t (B, 4H), h/c (B, H) -> (h_new, c_new)."""
    _check("lstm_cell", gx_t, h, w_h, b_h, 4, gx_ndim=2)
    return _lstm_step(_split(gx_t, 4), h, c, w_h, b_h)


def rnn_sequence(gx: Array, h0: Array, w_h: Array, b_h: Array) -> Array:
    """Elman tanh RNN: gx (T, B, H), h0 (B, H), w_h (H, H), b_h (H,) -> hs (T, B, H)."""
    _check("rnn_sequence", gx, h0, w_h, b_h, 1, gx_ndim=3)

    def body(h, gx_t):
        h_new = jnp.tanh(gx_t + jnp.dot(h, w_h) + b_h)
        return h_new, h_new

    return lax.scan(body, h0, gx)[1]


def rnn_cell(gx_t: Array, h: Array, w_h: Array, b_h: Array) -> Array:
    """One tanh-RNN step: gx_t (B, H), h (B, H) -> h_new (B, H)."""
    _check("rnn_cell", gx_t, h, w_h, b_h, 1, gx_ndim=2)
    return jnp.tanh(gx_t + jnp.dot(h, w_h) + b_h)
