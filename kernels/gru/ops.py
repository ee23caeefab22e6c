"""JAX entry points of the Triton GRU kernels: gru_sequence (persistent forward + backward via custom_vjp) and
gru_cell (one fused step, for sampling). Same math, shapes and gate order as musejax/ops/gru.py.

Inputs may be float32 or bfloat16; state, gates and accumulation are fp32, hs has the promoted input dtype.
On NVIDIA GPUs the kernels run through jax_triton; elsewhere through Triton's interpreter (slow; for tests).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import math

import jax
import jax.numpy as jnp
import triton  # noqa: F401 - required: importing ops fails cleanly where Triton is missing
from jax import lax

from . import reference
from .triton_launch import launch

log = logging.getLogger("musejax_kernels.gru")
Array = jax.Array
VARIANTS = ("cudnn", "cho")
BACKENDS = ("auto", "jax_triton", "interpreter")
_DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class GruKernelConfig:
    """Tile sizes and launch choices; defaults sized for one H100/H200 (227 KB shared memory per program)."""
    block_batch: int = 16  # batch rows per program (power of two >= 16: tl.dot's minimum)
    max_block_batch: int = 128  # grown up to this so a barrier grid fits the SMs
    resident_max_w_bytes: int = 96 * 1024  # all of W_h up to this: one program per batch tile, no barrier
    slice_width: int | None = None  # columns per program with EXCHANGE; None: spread H over the SMs
    resident_slice_max_bytes: int = 32 * 1024  # W_h columns kept on chip up to this (bigger spill in fp32)
    block_k: int = 64  # K chunk when W_h is streamed from L2
    max_programs: int | None = None  # co-resident programs for the barrier grid; None: the GPU's SM count
    num_warps: int = 4
    num_stages: int = 2  # software-pipelining depth of the streamed K loop
    fp32_dot_precision: str = "tf32x3"  # fp32 products: "tf32x3" (~fp32 accuracy, tensor cores), "ieee", "tf32"
    barrier_max_spins: int = 1 << 20  # polls before a barrier gives up (then the per-step fallback runs)
    backend: str = "auto"  # "jax_triton" on a GPU, "interpreter" elsewhere
    dot_in_fp32: bool | None = None  # None: bf16 operands on tensor cores on GPU; fp32 in the interpreter

    def __post_init__(self) -> None:
        for name in ("block_batch", "max_block_batch", "block_k"):
            value = getattr(self, name)
            if value < 16 or value & (value - 1):
                raise ValueError(f"kernels/gru/ops.py: GruKernelConfig.{name} must be a power of two >= 16; "
                                 f"got {value=}")
        if self.slice_width is not None and (self.slice_width < 16 or self.slice_width & (self.slice_width - 1)):
            raise ValueError(f"kernels/gru/ops.py: GruKernelConfig.slice_width must be None or a power of two "
                             f">= 16; got {self.slice_width=}")
        if self.fp32_dot_precision not in ("tf32x3", "ieee", "tf32"):
            raise ValueError(f"kernels/gru/ops.py: GruKernelConfig.fp32_dot_precision must be tf32x3, ieee or "
                             f"tf32; got {self.fp32_dot_precision=}")
        if self.backend not in BACKENDS:
            raise ValueError(f"kernels/gru/ops.py: GruKernelConfig.backend must be one of {BACKENDS}; "
                             f"got {self.backend=}")


@dataclasses.dataclass(frozen=True)
class KernelPlan:
    """How one (B, H) problem is laid out on the grid (see triton_forward.py)."""
    exchange: bool
    w_resident: bool
    block_b: int
    block_n: int
    block_k: int
    grid: tuple[int, int]  # (column slices, batch tiles)


def _next_pow2(x: int) -> int:
    return 1 << max(0, (int(x) - 1).bit_length())


def plan_kernel(batch: int, hidden: int, w_itemsize: int, config: GruKernelConfig, *, needs_barrier: bool,
                max_programs: int | None) -> KernelPlan | None:
    """Tiles for one launch; None when a barrier is needed but no grid fits `max_programs` co-resident programs.

    max_programs None means programs run one at a time (the interpreter): one column slice per batch tile.
    """
    block_h = max(16, _next_pow2(hidden))
    if config.slice_width is None and 3 * block_h * block_h * w_itemsize <= config.resident_max_w_bytes:
        bb = config.block_batch
        return KernelPlan(False, True, bb, block_h, block_h, (1, math.ceil(batch / bb)))
    bb, block_n = config.block_batch, config.slice_width
    if block_n is None and max_programs is None:
        block_n = block_h
    elif block_n is None:
        while True:
            tiles = math.ceil(batch / bb)
            per_tile = max(1, max_programs // tiles)
            block_n = min(block_h, max(16, _next_pow2(math.ceil(hidden / per_tile))))
            if not needs_barrier or tiles * math.ceil(hidden / block_n) <= max_programs:
                break
            if bb >= config.max_block_batch:
                return None
            bb *= 2
    w_resident = block_h * 3 * block_n * w_itemsize <= config.resident_slice_max_bytes
    block_k = block_h if w_resident else min(max(16, _next_pow2(config.block_k)), block_h)
    return KernelPlan(True, w_resident, bb, block_n, block_k, (math.ceil(hidden / block_n), math.ceil(batch / bb)))


def _backend(config: GruKernelConfig) -> str:
    if config.backend != "auto":
        return config.backend
    if jax.default_backend() == "gpu":
        return "jax_triton"
    _warn_once("no GPU (JAX backend %r): running the Triton kernels in Triton's interpreter (slow; for tests)"
               % jax.default_backend())
    return "interpreter"


@functools.lru_cache(maxsize=None)
def _warn_once(message: str) -> None:
    log.warning("musejax_kernels.gru: %s", message)


def _max_programs(config: GruKernelConfig, backend: str) -> int | None:
    if config.max_programs is not None:
        return config.max_programs
    if backend == "interpreter":
        return None
    device = jax.devices()[0]
    count = getattr(device, "core_count", None)
    if not count:
        count = triton.runtime.driver.active.utils.get_device_properties(0)["multiprocessor_count"]
    return int(count)


def _meta(config: GruKernelConfig, backend: str, variant: str, plan: KernelPlan) -> dict:
    dot_fp32 = config.dot_in_fp32 if config.dot_in_fp32 is not None else backend == "interpreter"
    return dict(CHO=int(variant == "cho"), EXCHANGE=int(plan.exchange), W_RESIDENT=int(plan.w_resident),
                BLOCK_B=plan.block_b, BLOCK_N=plan.block_n, BLOCK_K=plan.block_k, DOT_FP32=int(dot_fp32),
                PRECISION=config.fp32_dot_precision, MAX_SPINS=int(config.barrier_max_spins))


def _log_fallback(what: str) -> None:
    log.warning("musejax_kernels.gru: %s", what)


# ----------------------------------------------------------------------------------------------------------
# Launches
# ----------------------------------------------------------------------------------------------------------
def _launch_forward(gx, h0, w_h, b_h, variant, config, backend, plan, store_gates):
    steps, batch, hidden = gx.shape[0], gx.shape[1], w_h.shape[0]
    out_dtype = h0.dtype
    gate_steps = steps if store_gates else 1
    out_shape = [jax.ShapeDtypeStruct((steps, batch, hidden), out_dtype),
                 jax.ShapeDtypeStruct((gate_steps, batch, 4 * hidden), jnp.float32),
                 jax.ShapeDtypeStruct((plan.grid[1],), jnp.int32), jax.ShapeDtypeStruct((1,), jnp.int32)]
    args = [gx, h0, w_h, b_h, steps, batch, hidden,
            batch * 3 * hidden, 3 * hidden, hidden, batch * hidden,
            batch * 4 * hidden if store_gates else 0, 4 * hidden, 3 * hidden]
    hs, gates, _, error = launch("triton_forward", "gru_forward_kernel", args, out_shape=out_shape, grid=plan.grid,
                                 backend=backend, num_warps=config.num_warps, num_stages=config.num_stages,
                                 zeroed_outputs=(2, 3),
                                 **_meta(config, backend, variant, plan))
    return hs, gates, error


def _stepwise_forward(gx, h0, w_h, b_h, variant, config, backend, max_programs):
    """Fallback: one launch per step ("cudnn": a T=1 launch needs no barrier) or XLA ("cho")."""
    if variant == "cho":
        hs, gates = reference.gru_forward_reference(gx.astype(jnp.float32), h0.astype(jnp.float32),
                                                    w_h.astype(jnp.float32), b_h.astype(jnp.float32), variant)
        return hs.astype(h0.dtype), gates
    plan = plan_kernel(gx.shape[1], w_h.shape[0], w_h.dtype.itemsize, config, needs_barrier=False,
                       max_programs=max_programs)

    def step(h, gx_t):
        hs, gates, _ = _launch_forward(gx_t[None], h, w_h, b_h, variant, config, backend, plan, True)
        return hs[0], (hs[0], gates[0])

    _, (hs, gates) = lax.scan(step, h0, gx)
    return hs, gates


def _forward(gx, h0, w_h, b_h, variant, config, store_gates):
    backend = _backend(config)
    max_programs = _max_programs(config, backend)
    needs_barrier = gx.shape[0] > 1 or variant == "cho"
    plan = plan_kernel(gx.shape[1], w_h.shape[0], w_h.dtype.itemsize, config, needs_barrier=needs_barrier,
                       max_programs=max_programs)
    if plan is None:
        log.warning("musejax_kernels.gru: batch %d, hidden %d does not fit one co-resident grid; running step by "
                    "step (%s)", gx.shape[1], w_h.shape[0], "XLA" if variant == "cho" else "one launch per step")
        return _stepwise_forward(gx, h0, w_h, b_h, variant, config, backend, max_programs)
    hs, gates, error = _launch_forward(gx, h0, w_h, b_h, variant, config, backend, plan, store_gates)
    if not (plan.exchange and needs_barrier):
        return hs, gates

    def fallback():
        jax.debug.callback(functools.partial(_log_fallback, "grid barrier timed out in the GRU forward; "
                                             "recomputing step by step"))
        hs_f, gates_f = _stepwise_forward(gx, h0, w_h, b_h, variant, config, backend, max_programs)
        return hs_f, gates_f if store_gates else gates_f[-1:]

    return lax.cond(error[0] != 0, fallback, lambda: (hs, gates))


def _launch_backward(d_hs, h0, hs, gates, w_h, variant, config, backend, plan):
    steps, batch, hidden = hs.shape
    out_shape = [jax.ShapeDtypeStruct((steps, batch, 4 * hidden), jnp.float32),
                 jax.ShapeDtypeStruct((batch, hidden), jnp.float32),
                 jax.ShapeDtypeStruct((plan.grid[1],), jnp.int32), jax.ShapeDtypeStruct((1,), jnp.int32)]
    args = [d_hs, h0, hs, gates, w_h, steps, batch, hidden,
            batch * hidden, hidden, batch * 4 * hidden, 4 * hidden, 3 * hidden]
    d_gates, d_h0, _, error = launch("triton_backward", "gru_backward_kernel", args, out_shape=out_shape,
                                     grid=plan.grid, backend=backend, num_warps=config.num_warps,
                                     num_stages=config.num_stages, zeroed_outputs=(2, 3),
                                     **_meta(config, backend, variant, plan))
    return d_gates, d_h0, error


def _backward(d_hs, h0, hs, gates, w_h, variant, config):
    backend = _backend(config)
    batch, hidden = h0.shape
    plan = plan_kernel(batch, hidden, w_h.dtype.itemsize, config, needs_barrier=True,
                       max_programs=_max_programs(config, backend))

    def xla_backward():
        return reference.gru_backward_reference(d_hs, h0, hs, gates, w_h.astype(jnp.float32), variant)

    if plan is None:
        log.warning("musejax_kernels.gru: batch %d, hidden %d does not fit one co-resident grid; GRU backward "
                    "runs in XLA", batch, hidden)
        return xla_backward()
    d_gates, d_h0, error = _launch_backward(d_hs, h0, hs, gates, w_h, variant, config, backend, plan)
    if not plan.exchange:
        return d_gates, d_h0

    def fallback():
        jax.debug.callback(functools.partial(_log_fallback, "grid barrier timed out in the GRU backward; "
                                             "recomputing it in XLA"))
        return xla_backward()

    return lax.cond(error[0] != 0, fallback, lambda: (d_gates, d_h0))


# ----------------------------------------------------------------------------------------------------------
# custom_vjp: forward kernel saves gates, backward kernel consumes them, weight gradients are XLA matmuls.
# ----------------------------------------------------------------------------------------------------------
@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _gru_sequence(gx, h0, w_h, b_h, variant, config, dtypes):
    return _forward(gx, h0.astype(dtypes[0]), w_h, b_h, variant, config, store_gates=False)[0]


def _gru_sequence_fwd(gx, h0, w_h, b_h, variant, config, dtypes):
    h0_out = h0.astype(dtypes[0])
    hs, gates = _forward(gx, h0_out, w_h, b_h, variant, config, store_gates=True)
    return hs, (h0_out, hs, gates, w_h)


def _gru_sequence_bwd(variant, config, dtypes, residuals, d_hs):
    h0, hs, gates, w_h = residuals
    _, gx_dtype, h0_dtype, w_dtype, b_dtype = dtypes
    hidden = h0.shape[-1]
    d_gates, d_h0 = _backward(d_hs, h0, hs, gates, w_h, variant, config)
    precision = lax.Precision.DEFAULT if config.fp32_dot_precision == "tf32" else lax.Precision.HIGHEST
    d_w_h, d_b_h = reference.gru_weight_grads(h0, hs, gates, d_gates, variant, precision)
    return (d_gates[..., :3 * hidden].astype(gx_dtype), d_h0.astype(h0_dtype), d_w_h.astype(w_dtype),
            d_b_h.astype(b_dtype))


_gru_sequence.defvjp(_gru_sequence_fwd, _gru_sequence_bwd)


def _validate(name: str, gx: Array, h: Array, w_h: Array, b_h: Array, variant: str, gx_ndim: int) -> None:
    where = f"kernels/gru/ops.py: {name}"
    if variant not in VARIANTS:
        raise ValueError(f"{where}: variant must be one of {VARIANTS}; got {variant=}")
    for array, label in ((gx, "gx"), (h, "h"), (w_h, "w_h"), (b_h, "b_h")):
        if jnp.dtype(array.dtype).name not in _DTYPES:
            raise TypeError(f"{where}: {label} must be float32 or bfloat16; got {label}.dtype={array.dtype}")
    if w_h.ndim != 2 or w_h.shape[0] < 1 or w_h.shape[1] != 3 * w_h.shape[0]:
        raise ValueError(f"{where}: w_h must be (H, 3H) with H >= 1; got {w_h.shape=}")
    hidden = w_h.shape[0]
    if b_h.shape != (3 * hidden,):
        raise ValueError(f"{where}: b_h must be (3H,) = ({3 * hidden},); got {b_h.shape=}")
    if gx.ndim != gx_ndim or gx.shape[-1] != 3 * hidden:
        want = "(T, B, 3H)" if gx_ndim == 3 else "(B, 3H)"
        raise ValueError(f"{where}: gx must be {want} with 3H = {3 * hidden}; got {gx.shape=}")
    if h.shape != (gx.shape[-2], hidden) or h.shape[0] < 1:
        raise ValueError(f"{where}: hidden state must be (B, H) = ({gx.shape[-2]}, {hidden}) with B >= 1; "
                         f"got {h.shape=}")


def _dtypes(gx: Array, h: Array, w_h: Array, b_h: Array) -> tuple[str, ...]:
    out = jnp.result_type(gx, h, w_h, b_h)
    return tuple(jnp.dtype(d).name for d in (out, gx.dtype, h.dtype, w_h.dtype, b_h.dtype))


def gru_sequence(gx: Array, h0: Array, w_h: Array, b_h: Array, *, variant: str = "cudnn",
                 config: GruKernelConfig | None = None) -> Array:
    """All steps in one persistent launch: gx (T, B, 3H), h0 (B, H), w_h (H, 3H), b_h (3H,) -> hs (T, B, H).

    Differentiable (custom_vjp: one reverse-time launch plus XLA matmuls for dW_h, db_h); works under jax.jit.
    """
    _validate("gru_sequence", gx, h0, w_h, b_h, variant, gx_ndim=3)
    dtypes = _dtypes(gx, h0, w_h, b_h)
    if gx.shape[0] == 0:
        return jnp.zeros((0, *h0.shape), dtypes[0])
    return _gru_sequence(gx, h0, w_h, b_h, variant, config or GruKernelConfig(), dtypes)


def gru_cell(gx_t: Array, h: Array, w_h: Array, b_h: Array, *, variant: str = "cudnn",
             config: GruKernelConfig | None = None) -> Array:
    """One fused step (hidden product, gates and update in one launch): gx_t (B, 3H), h (B, H) -> h_new (B, H)."""
    _validate("gru_cell", gx_t, h, w_h, b_h, variant, gx_ndim=2)
    return _gru_sequence(gx_t[None], h, w_h, b_h, variant, config or GruKernelConfig(), _dtypes(gx_t, h, w_h, b_h))[0]
