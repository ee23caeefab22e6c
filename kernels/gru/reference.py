"""Pure-JAX references of exactly the math the Triton GRU kernels do (readable; any float dtype, float64 for checks).

Layouts shared with the kernels: gx (T, B, 3H) and w_h (H, 3H) in gate order (r, z, n) as torch.nn.GRU;
`gates` (T, B, 4H) = [r | z | n | g4] saved by the forward for the backward, with g4 = h W_hn + b_hn ("cudnn")
or r ⊙ h_{t-1} ("cho"); `d_gates` (T, B, 4H) = [d_pre_r | d_pre_z | d_pre_n | d_hn] where the first three are
d gx and d_hn is the gradient of the hidden-side n pre-activation (d_pre_n ⊙ r for "cudnn", d_pre_n for "cho").
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array
VARIANTS = ("cudnn", "cho")


def gru_step_reference(gx_t: Array, h: Array, w_h: Array, b_h: Array, variant: str = "cudnn") -> tuple[Array, Array]:
    """One step: gx_t (B, 3H), h (B, H) -> (h_new (B, H), gates (B, 4H) = [r | z | n | g4])."""
    gx_r, gx_z, gx_n = jnp.split(gx_t, 3, axis=-1)
    w_r, w_z, w_n = jnp.split(w_h, 3, axis=-1)
    b_r, b_z, b_n = jnp.split(b_h, 3)
    hp = lax.Precision.HIGHEST
    r = jax.nn.sigmoid(gx_r + jnp.dot(h, w_r, precision=hp) + b_r)
    z = jax.nn.sigmoid(gx_z + jnp.dot(h, w_z, precision=hp) + b_z)
    if variant == "cudnn":
        g4 = jnp.dot(h, w_n, precision=hp) + b_n
        n = jnp.tanh(gx_n + r * g4)
    elif variant == "cho":
        g4 = r * h
        n = jnp.tanh(gx_n + jnp.dot(g4, w_n, precision=hp) + b_n)
    else:
        raise ValueError(f"kernels/gru/reference.py: unknown GRU variant {variant=}")
    return n + z * (h - n), jnp.concatenate([r, z, n, g4], axis=-1)


def gru_forward_reference(gx: Array, h0: Array, w_h: Array, b_h: Array,
                          variant: str = "cudnn") -> tuple[Array, Array]:
    """All steps: gx (T, B, 3H), h0 (B, H) -> (hs (T, B, H), gates (T, B, 4H))."""
    def body(h, gx_t):
        h_new, gates = gru_step_reference(gx_t, h, w_h, b_h, variant)
        return h_new, (h_new, gates)

    _, (hs, gates) = lax.scan(body, h0, gx)
    return hs, gates


def gru_sequence_reference(gx: Array, h0: Array, w_h: Array, b_h: Array, variant: str = "cudnn") -> Array:
    """hs (T, B, H); differentiated by plain JAX autodiff, the baseline the kernels' gradients are checked against."""
    return gru_forward_reference(gx, h0, w_h, b_h, variant)[0]


def gru_backward_reference(d_hs: Array, h0: Array, hs: Array, gates: Array, w_h: Array,
                           variant: str = "cudnn") -> tuple[Array, Array]:
    """Backward through time from saved gates, as the backward kernel does it: -> (d_gates (T, B, 4H), d_h0 (B, H))."""
    n_hidden = h0.shape[-1]
    hp = lax.Precision.HIGHEST
    w_r_t, w_z_t, w_n_t = (w.T for w in jnp.split(w_h, 3, axis=-1))
    h_prev = jnp.concatenate([h0[None].astype(hs.dtype), hs[:-1]], axis=0)

    def body(dh_next, xs):
        d_h_out, h, g = xs
        r, z, n, g4 = (g[..., i * n_hidden:(i + 1) * n_hidden] for i in range(4))
        dh = dh_next + d_h_out
        d_pre_n = dh * (1 - z) * (1 - n * n)
        d_pre_z = dh * (h - n) * z * (1 - z)
        if variant == "cudnn":
            d_pre_r = d_pre_n * g4 * r * (1 - r)
            d_hn = d_pre_n * r
            d_rh_r = 0.0
        else:
            d_rh = jnp.dot(d_pre_n, w_n_t, precision=hp)
            d_pre_r = d_rh * h * r * (1 - r)
            d_hn = d_pre_n
            d_rh_r = d_rh * r
        dh_prev = dh * z + d_rh_r + jnp.dot(d_pre_r, w_r_t, precision=hp) + jnp.dot(d_pre_z, w_z_t, precision=hp)
        if variant == "cudnn":
            dh_prev = dh_prev + jnp.dot(d_hn, w_n_t, precision=hp)
        return dh_prev, jnp.concatenate([d_pre_r, d_pre_z, d_pre_n, d_hn], axis=-1)

    xs = (d_hs.astype(gates.dtype), h_prev.astype(gates.dtype), gates)
    d_h0, d_gates = lax.scan(body, jnp.zeros(h0.shape, gates.dtype), xs, reverse=True)
    return d_gates, d_h0


def gru_weight_grads(h0: Array, hs: Array, gates: Array, d_gates: Array, variant: str = "cudnn",
                     precision: lax.Precision = lax.Precision.HIGHEST) -> tuple[Array, Array]:
    """d w_h (H, 3H) and d b_h (3H,) as large matmuls over all T*B rows, outside the recurrence.

    Plain XLA in both paths (ops.py calls it after the backward kernel): dW_h = Σ_t h_{t-1}^T [d_pre_r | d_pre_z |
    d_hn] for "cudnn"; for "cho" the n block is Σ_t (r ⊙ h_{t-1})^T d_pre_n.
    """
    n_hidden = h0.shape[-1]
    hp = precision
    rows_prev = jnp.concatenate([h0[None].astype(gates.dtype), hs[:-1].astype(gates.dtype)], axis=0)
    rows_prev = rows_prev.reshape(-1, n_hidden)
    d_rows = d_gates.reshape(-1, 4 * n_hidden)
    d_hidden = jnp.concatenate([d_rows[:, :2 * n_hidden], d_rows[:, 3 * n_hidden:]], axis=-1)  # (TB, 3H)
    if variant == "cudnn":
        d_w_h = jnp.dot(rows_prev.T, d_hidden, precision=hp)
    else:
        rh = gates.reshape(-1, 4 * n_hidden)[:, 3 * n_hidden:]
        d_w_h = jnp.concatenate([jnp.dot(rows_prev.T, d_hidden[:, :2 * n_hidden], precision=hp),
                                 jnp.dot(rh.T, d_hidden[:, 2 * n_hidden:], precision=hp)], axis=-1)
    return d_w_h, d_hidden.sum(axis=0)
