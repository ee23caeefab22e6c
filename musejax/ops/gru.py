"""GRU recurrence over precomputed input projections, time-major, gate order (r, z, n) as torch.nn.GRU.

`gx = x @ w_x + b_x` for all steps is computed by the caller outside the recurrence: (T, B, 3H), or per gate as
three (T, B, H) arrays (`gru_sequence_gates`, what the models use). The recurrence does one fused
[B, H] x [H, 3H] product per step ("cudnn") and runs as a `lax.scan` ("xla") or as the Triton kernels in
`musejax_kernels.gru.ops` ("triton", NVIDIA GPUs; elsewhere only with MUSEJAX_TRITON_INTERPRET=1, which runs the
same kernels in Triton's interpreter: slow, for debugging the kernels inside a model and for CPU tests).

The XLA path has a hand-written VJP: its reverse scan does one [B, 3H] x [3H, H] product per step, and the weight
gradient is one [H, T*B] x [T*B, H] product per gate after the loop instead of an outer product per step inside
it (what autodiff of the scan does): 10-15% less CPU time per LM train step than autodiff of the same scan on a
2-core CPU (noisy measurements). Gates travel as separate (T, B, H) arrays: XLA:CPU vectorises the per-step
elementwise fusion 2-3x worse when it slices a dynamically indexed (B, 3H) row three ways. Unrolling the scan
(2, 4, 8) was slower in every measurement, so it is not unrolled.

Variants:
  "cudnn": r = σ(gx_r + h W_hr + b_hr); z = σ(gx_z + h W_hz + b_hz); n = tanh(gx_n + r ⊙ (h W_hn + b_hn))
  "cho" (Cho et al. 2014): n = tanh(gx_n + (r ⊙ h) W_hn + b_hn)   (two dependent products per step)
  both: h' = (1 − z) ⊙ n + z ⊙ h, computed as n + z ⊙ (h − n) like PyTorch.
"""
from __future__ import annotations

import functools
import logging
import os
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

GRU_VARIANTS = ("cudnn", "cho")
GRU_IMPLS = ("auto", "xla", "triton")
INTERPRET_ENV = "MUSEJAX_TRITON_INTERPRET"  # "1": impl="triton" off the GPU runs in Triton's interpreter

log = logging.getLogger(__name__)

Array = jax.Array
Gates = tuple[Array, Array, Array]  # per-gate input projections (r, z, n), each (..., B, H)


# ----------------------------------------------------------------------------------------------------------
# One step of each variant; `aux` is what the hand-written backward needs besides h_prev.
# ----------------------------------------------------------------------------------------------------------
def _step_cudnn(g: Gates, h: Array, w_h: Array, b_h: Array) -> tuple[Array, tuple[Array, ...]]:
    n_hidden = h.shape[-1]
    hh = jnp.dot(h, w_h) + b_h
    r = jax.nn.sigmoid(g[0] + hh[..., :n_hidden])
    z = jax.nn.sigmoid(g[1] + hh[..., n_hidden:2 * n_hidden])
    hn = hh[..., 2 * n_hidden:]
    n = jnp.tanh(g[2] + r * hn)
    return n + z * (h - n), (r, z, n, hn)


def _step_cho(g: Gates, h: Array, w_h: Array, b_h: Array) -> tuple[Array, tuple[Array, ...]]:
    n_hidden = h.shape[-1]
    a = jnp.dot(h, w_h[:, :2 * n_hidden]) + b_h[:2 * n_hidden]
    r = jax.nn.sigmoid(g[0] + a[..., :n_hidden])
    z = jax.nn.sigmoid(g[1] + a[..., n_hidden:])
    n = jnp.tanh(g[2] + jnp.dot(r * h, w_h[:, 2 * n_hidden:]) + b_h[2 * n_hidden:])
    return n + z * (h - n), (r, z, n)


_STEPS = {"cudnn": _step_cudnn, "cho": _step_cho}


def _split_gates(gx: Array) -> Gates:
    n_hidden = gx.shape[-1] // 3
    return gx[..., :n_hidden], gx[..., n_hidden:2 * n_hidden], gx[..., 2 * n_hidden:]


def _scan_hidden(variant: str, gates: Gates, h0: Array, w_h: Array, b_h: Array) -> Array:
    step = _STEPS[variant]

    def body(h, g):
        h_new, _ = step(g, h, w_h, b_h)
        return h_new, h_new

    return lax.scan(body, h0, gates)[1]


# ----------------------------------------------------------------------------------------------------------
# XLA path with a custom VJP. Gate cotangents come back as three (T, B, H) arrays.
# ----------------------------------------------------------------------------------------------------------
@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _gru_xla(variant: str, gates: Gates, h0: Array, w_h: Array, b_h: Array) -> Array:
    return _scan_hidden(variant, gates, h0, w_h, b_h)


def _gru_xla_fwd(variant, gates, h0, w_h, b_h):
    step = _STEPS[variant]

    def body(h, g):
        h_new, aux = step(g, h, w_h, b_h)
        return h_new, (h_new, *aux)

    _, (hs, *aux) = lax.scan(body, h0, gates)
    return hs, (h0, hs, w_h, tuple(aux))


def _outer_sum(a: Array, b: Array) -> Array:
    """sum over steps and rows of a_tb^T b_tb: (T, B, H) x (T, B, K) -> (H, K), one matmul contracting T and B.
    Not a reshape to (T*B, H) first: with the batch sharded over devices that reshape costs an all-gather."""
    return lax.dot_general(a, b, (((0, 1), (0, 1)), ((), ())))


def _gru_xla_bwd(variant, residuals, d_hs):
    h0, hs, w_h, aux = residuals
    n_hidden = h0.shape[-1]
    h_prev = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    if variant == "cudnn":
        w_h_t = w_h.T

        def body(dh_next, xs):
            d_h_out, h, r, z, n, hn = xs
            dh = dh_next + d_h_out
            d_pre_n = dh * (1 - z) * (1 - n * n)
            d_pre_r = d_pre_n * hn * r * (1 - r)
            d_pre_z = dh * (h - n) * z * (1 - z)
            d_hh = jnp.concatenate([d_pre_r, d_pre_z, d_pre_n * r], axis=-1)
            return dh * z + jnp.dot(d_hh, w_h_t), (d_pre_r, d_pre_z, d_pre_n)

        dh0, d_gates = lax.scan(body, jnp.zeros_like(h0), (d_hs, h_prev, *aux), reverse=True)
        d_r, d_z, d_n = d_gates
        d_hn, rows_n = d_n * aux[0], h_prev  # cotangent of h W_hn + b_hn; W_hn multiplies h_prev
    else:
        w_rz_t, w_n_t = w_h[:, :2 * n_hidden].T, w_h[:, 2 * n_hidden:].T

        def body(dh_next, xs):
            d_h_out, h, r, z, n = xs
            dh = dh_next + d_h_out
            d_pre_n = dh * (1 - z) * (1 - n * n)
            d_rh = jnp.dot(d_pre_n, w_n_t)
            d_pre_r = d_rh * h * r * (1 - r)
            d_pre_z = dh * (h - n) * z * (1 - z)
            dh_prev = dh * z + d_rh * r + jnp.dot(jnp.concatenate([d_pre_r, d_pre_z], axis=-1), w_rz_t)
            return dh_prev, (d_pre_r, d_pre_z, d_pre_n)

        dh0, d_gates = lax.scan(body, jnp.zeros_like(h0), (d_hs, h_prev, *aux), reverse=True)
        d_r, d_z, d_n = d_gates
        d_hn, rows_n = d_n, aux[0] * h_prev  # W_hn multiplies r ⊙ h_prev
    d_w_h = jnp.concatenate([_outer_sum(h_prev, d_r), _outer_sum(h_prev, d_z), _outer_sum(rows_n, d_hn)], axis=-1)
    d_b_h = jnp.concatenate([d_r.sum(axis=(0, 1)), d_z.sum(axis=(0, 1)), d_hn.sum(axis=(0, 1))])
    return tuple(d_gates), dh0, d_w_h, d_b_h


_gru_xla.defvjp(_gru_xla_fwd, _gru_xla_bwd)


# ----------------------------------------------------------------------------------------------------------
# Implementation choice.
# ----------------------------------------------------------------------------------------------------------
def _import_triton_ops() -> Any:
    from musejax_kernels.gru import ops  # lazy: jax_triton fails to import where JAX has no GPU

    return ops


def _interpret_requested() -> bool:
    return os.environ.get(INTERPRET_ENV, "0").strip() not in ("", "0")


@functools.lru_cache(maxsize=None)
def _resolve(impl: str, interpret: bool) -> str:
    if impl not in GRU_IMPLS:
        raise ValueError(f"musejax/ops/gru.py: impl must be one of {GRU_IMPLS}; got {impl=}")
    if impl == "xla":
        return "xla"
    on_gpu = jax.default_backend() == "gpu"
    if impl == "auto":
        if not on_gpu:
            return "xla"
        try:
            _import_triton_ops()
        except Exception:  # noqa: BLE001 - any import failure means "no usable kernels here"
            return "xla"
        return "triton"
    if not on_gpu and not interpret:
        raise RuntimeError(
            f"musejax/ops/gru.py: impl='triton' needs an NVIDIA GPU, but JAX's backend is "
            f"{jax.default_backend()!r}; use impl='xla' or 'auto' (or set {INTERPRET_ENV}=1 to run the kernels "
            "in Triton's interpreter, slowly)")
    try:
        _import_triton_ops()
        if not on_gpu:
            import torch  # noqa: F401 - Triton's interpreter takes torch CPU tensors
    except Exception as err:  # noqa: BLE001
        needs = "triton and jax-triton (pip install 'musejax[gpu]')" if on_gpu else \
            "triton and torch for Triton's interpreter (pip install 'musejax[test]')"
        raise RuntimeError(
            f"musejax/ops/gru.py: impl='triton' needs musejax_kernels.gru.ops with {needs}; "
            f"importing it failed: {type(err).__name__}: {err}") from err
    if not on_gpu:
        log.warning("musejax/ops/gru.py: impl='triton' on JAX backend %r: %s=1, so the GRU kernels run in "
                    "Triton's interpreter (orders of magnitude slower than XLA)", jax.default_backend(), INTERPRET_ENV)
    return "triton"


def resolved_impl(impl: str = "auto") -> str:
    """Which implementation ("xla" or "triton") `impl` selects on this machine (and environment)."""
    return _resolve(impl, _interpret_requested())


def _check(name: str, gx_shape: tuple[int, ...], h: Array, w_h: Array, b_h: Array, variant: str,
           gx_ndim: int) -> None:
    if variant not in GRU_VARIANTS:
        raise ValueError(f"musejax/ops/gru.py: {name}: variant must be one of {GRU_VARIANTS}; got {variant=}")
    if w_h.ndim != 2 or w_h.shape[1] != 3 * w_h.shape[0]:
        raise ValueError(f"musejax/ops/gru.py: {name}: w_h must be (H, 3H); got {w_h.shape=}")
    n_hidden = w_h.shape[0]
    if b_h.shape != (3 * n_hidden,):
        raise ValueError(f"musejax/ops/gru.py: {name}: b_h must be (3H,) = ({3 * n_hidden},); got {b_h.shape=}")
    if len(gx_shape) != gx_ndim or gx_shape[-1] != 3 * n_hidden:
        want = "(T, B, 3H)" if gx_ndim == 3 else "(B, 3H)"
        raise ValueError(f"musejax/ops/gru.py: {name}: gx must be {want} with 3H={3 * n_hidden}; got {gx_shape=}")
    if h.shape != (gx_shape[-2], n_hidden):
        raise ValueError(f"musejax/ops/gru.py: {name}: hidden state must be (B, H) = "
                         f"({gx_shape[-2]}, {n_hidden}); got {h.shape=}")


def gru_sequence(gx: Array, h0: Array, w_h: Array, b_h: Array, *, variant: str = "cudnn",
                 impl: str = "auto") -> Array:
    """Run the GRU over all steps: gx (T, B, 3H), h0 (B, H), w_h (H, 3H), b_h (3H,) -> hs (T, B, H)."""
    _check("gru_sequence", gx.shape, h0, w_h, b_h, variant, gx_ndim=3)
    if resolved_impl(impl) == "triton":
        return _import_triton_ops().gru_sequence(gx, h0, w_h, b_h, variant=variant)
    return _gru_xla(variant, _split_gates(gx), h0, w_h, b_h)


def gru_sequence_gates(gates: Gates, h0: Array, w_h: Array, b_h: Array, *, variant: str = "cudnn",
                       impl: str = "auto") -> Array:
    """`gru_sequence` with the input projection given per gate: (gx_r, gx_z, gx_n), each (T, B, H).

    What the models use: projecting per gate (three matmuls over all steps, same FLOPs as one) saves splitting a
    (T, B, 3H) array in the forward pass and concatenating its cotangent in the backward pass (~6% of a CPU train
    step at B=32, T=128, H=256).
    """
    if len(gates) != 3 or gates[0].ndim != 3 or any(g.shape != gates[0].shape for g in gates):
        raise ValueError(f"musejax/ops/gru.py: gru_sequence_gates: need 3 gate arrays of one shape (T, B, H); "
                         f"got {[g.shape for g in gates]}")
    _check("gru_sequence_gates", gates[0].shape[:-1] + (3 * gates[0].shape[-1],), h0, w_h, b_h, variant, 3)
    if resolved_impl(impl) == "triton":
        return _import_triton_ops().gru_sequence(jnp.concatenate(gates, axis=-1), h0, w_h, b_h, variant=variant)
    return _gru_xla(variant, tuple(gates), h0, w_h, b_h)


def gru_cell(gx_t: Array, h: Array, w_h: Array, b_h: Array, *, variant: str = "cudnn",
             impl: str = "auto") -> Array:
    """One GRU step: gx_t (B, 3H), h (B, H) -> h_new (B, H). Used by step-wise sampling."""
    _check("gru_cell", gx_t.shape, h, w_h, b_h, variant, gx_ndim=2)
    if resolved_impl(impl) == "triton":
        return _import_triton_ops().gru_cell(gx_t, h, w_h, b_h, variant=variant)
    return _STEPS[variant](_split_gates(gx_t), h, w_h, b_h)[0]


def gru_sequence_reference(gx: Array, h0: Array, w_h: Array, b_h: Array, *, variant: str = "cudnn") -> Array:
    """The same recurrence differentiated by JAX autodiff through `lax.scan` (no custom VJP): the baseline the
    fast path is tested and benchmarked against."""
    _check("gru_sequence_reference", gx.shape, h0, w_h, b_h, variant, gx_ndim=3)
    return _scan_hidden(variant, _split_gates(gx), h0, w_h, b_h)
