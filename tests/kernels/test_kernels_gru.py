"""The Triton GRU kernels against their pure-JAX reference, forward and backward.

CPU: every kernel runs in Triton's interpreter through the same jax binding as on a GPU (jax.pure_callback
instead of jax_triton.triton_call), under jax.jit and jax.vjp, outputs poisoned with NaN; references in float64.
GPU (-m gpu): the jax_triton path against musejax's XLA path, and a 50-step training loss curve.
"""
from __future__ import annotations

import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import triton  # noqa: F401 - the interpreter tests need Triton (and torch CPU tensors) installed
import torch  # noqa: F401

from musejax_kernels.gru import ops, reference
from musejax_kernels.gru.ops import GruKernelConfig

FP32_TOL = 1e-5
BF16_TOL = 2e-2
INTERPRETER = GruKernelConfig(backend="interpreter")
MODES = {
    # H small: one program per batch tile, W_h and h on chip, no barrier
    "resident": INTERPRETER,
    # the large-H kernel with one column slice: h_t exchanged through global memory and the grid barrier
    "exchange": GruKernelConfig(backend="interpreter", resident_max_w_bytes=0),
    # same, W_h streamed in K chunks (several chunks: H > block_k)
    "streamed": GruKernelConfig(backend="interpreter", resident_max_w_bytes=0, resident_slice_max_bytes=0,
                                block_k=16),
}
SHAPES = [(5, 3, 24), (3, 17, 40), (6, 1, 8)]  # (T, B, H): B and H not powers of two, B over one 16-row tile


def _inputs(steps: int, batch: int, hidden: int, seed: int = 0, gx_scale: float = 1.0):
    rng = np.random.default_rng(seed)
    gx = gx_scale * rng.normal(size=(steps, batch, 3 * hidden))
    h0 = 0.5 * rng.normal(size=(batch, hidden))
    w_h = rng.normal(size=(hidden, 3 * hidden)) / np.sqrt(hidden)
    b_h = 0.5 * rng.normal(size=(3 * hidden,))
    cotangent = rng.normal(size=(steps, batch, hidden))
    return [a.astype(np.float32) for a in (gx, h0, w_h, b_h)], cotangent.astype(np.float32)


def _rel_err(actual, expected) -> float:
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected)) / max(np.max(np.abs(expected)), 1e-30))


def _reference(args, cotangent, variant: str):
    """hs and d(gx, h0, w_h, b_h) of sum(hs * cotangent) by autodiff of the float64 reference scan.

    Op by op (no XLA compile of the scan: T is tiny, compiling would dominate the test time).
    """
    with jax.enable_x64(True), jax.disable_jit():
        args64 = [jnp.asarray(np.asarray(a, np.float64)) for a in args]
        hs, vjp = jax.vjp(lambda *a: reference.gru_sequence_reference(*a, variant=variant), *args64)
        grads = vjp(jnp.asarray(np.asarray(cotangent, np.float64)))
        return np.asarray(hs), [np.asarray(g) for g in grads]


def _kernel(args, cotangent, variant: str, config: GruKernelConfig):
    @jax.jit
    def run(gx, h0, w_h, b_h, ct):
        hs, vjp = jax.vjp(lambda *a: ops.gru_sequence(*a, variant=variant, config=config), gx, h0, w_h, b_h)
        return hs, vjp(ct)

    return run(*args, cotangent)


def _assert_close(name: str, actual, expected, tol: float) -> None:
    err = _rel_err(actual, expected)
    assert err <= tol, f"{name}: relative error {err:.3g} > {tol:g}"  # NaN (an unwritten element) fails too


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}-B{}-H{}".format(*s))
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_sequence_forward_and_backward_match_reference(variant, mode, shape):
    args, cotangent = _inputs(*shape, seed=sum(shape))
    hs, grads = _kernel(args, cotangent, variant, MODES[mode])
    hs_ref, grads_ref = _reference(args, cotangent, variant)
    _assert_close("hs", hs, hs_ref, FP32_TOL)
    for name, g, g_ref in zip(("d_gx", "d_h0", "d_w_h", "d_b_h"), grads, grads_ref):
        _assert_close(name, g, g_ref, FP32_TOL)


@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_bf16_inputs_use_fp32_state_and_return_input_dtypes(variant):
    args, cotangent = _inputs(4, 3, 24, seed=7)
    args16 = [jnp.asarray(a, jnp.bfloat16) for a in args]
    hs, grads = _kernel(args16, jnp.asarray(cotangent, jnp.bfloat16), variant, INTERPRETER)
    assert hs.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in grads)
    rounded = [np.asarray(a.astype(jnp.float32)) for a in args16]
    hs_ref, grads_ref = _reference(rounded, np.asarray(jnp.asarray(cotangent, jnp.bfloat16), np.float32), variant)
    _assert_close("hs", hs, hs_ref, BF16_TOL)
    for name, g, g_ref in zip(("d_gx", "d_h0", "d_w_h", "d_b_h"), grads, grads_ref):
        _assert_close(name, g, g_ref, BF16_TOL)


def test_activations_do_not_overflow_for_large_preactivations():
    args, _ = _inputs(3, 2, 16, seed=3, gx_scale=60.0)
    hs = jax.jit(lambda *a: ops.gru_sequence(*a, config=INTERPRETER))(*args)
    hs_ref, _ = _reference(args, np.zeros((3, 2, 16), np.float32), "cudnn")
    assert np.isfinite(np.asarray(hs)).all()
    _assert_close("hs", hs, hs_ref, FP32_TOL)


@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_cell_matches_one_reference_step_over_several_column_slices(variant):
    # slice_width 16 over H = 40: three programs, the last one partial. "cudnn" needs no barrier for one step;
    # "cho" does, and in the (sequential) interpreter it times out and falls back to XLA.
    config = GruKernelConfig(backend="interpreter", slice_width=16, barrier_max_spins=2)
    (gx, h0, w_h, b_h), _ = _inputs(1, 5, 40, seed=11)
    h_new, grads = jax.jit(lambda *a: jax.value_and_grad(
        lambda *b: jnp.sum(jnp.sin(ops.gru_cell(*b, variant=variant, config=config))), argnums=(0, 1, 2, 3))(*a))(
        gx[0], h0, w_h, b_h)
    with jax.enable_x64(True):
        args64 = [jnp.asarray(np.asarray(a, np.float64)) for a in (gx[0], h0, w_h, b_h)]
        loss = lambda *b: jnp.sum(jnp.sin(reference.gru_step_reference(*b, variant=variant)[0]))  # noqa: E731
        ref_value, ref_grads = jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(*args64)
        step_ref = reference.gru_step_reference(*args64, variant=variant)[0]
    direct = jax.jit(lambda *a: ops.gru_cell(*a, variant=variant, config=config))(gx[0], h0, w_h, b_h)
    _assert_close("h_new", direct, step_ref, FP32_TOL)
    assert abs(float(h_new) - float(ref_value)) <= FP32_TOL * max(1.0, abs(float(ref_value)))
    for g, g_ref in zip(grads, ref_grads):
        _assert_close("cell grad", g, g_ref, FP32_TOL)


@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_barrier_timeout_sets_error_flag_and_falls_back(variant, caplog):
    # Three column slices cannot meet at a barrier when programs run one after another: every barrier times
    # out, the error flag is set and both directions recompute step by step (or in XLA); results stay exact.
    config = GruKernelConfig(backend="interpreter", slice_width=16, barrier_max_spins=3)
    args, cotangent = _inputs(3, 2, 40, seed=5)
    with caplog.at_level(logging.WARNING, logger="musejax_kernels.gru"):
        hs, grads = _kernel(args, cotangent, variant, config)
        jax.block_until_ready(grads)
    hs_ref, grads_ref = _reference(args, cotangent, variant)
    _assert_close("hs", hs, hs_ref, FP32_TOL)
    for name, g, g_ref in zip(("d_gx", "d_h0", "d_w_h", "d_b_h"), grads, grads_ref):
        _assert_close(name, g, g_ref, FP32_TOL)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "timed out in the GRU forward" in messages and "timed out in the GRU backward" in messages


def _multi_slice_plan(batch: int, hidden: int) -> ops.KernelPlan:
    config = GruKernelConfig(backend="interpreter", slice_width=16)
    plan = ops.plan_kernel(batch, hidden, 4, config, needs_barrier=True, max_programs=None)
    assert plan.exchange and plan.grid == (3, 1)
    return plan


@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_forward_kernel_exchanges_h_between_column_slices(variant):
    # Run sequentially, the last of three slice programs passes the step-0 barrier after the others wrote
    # h_0, so its step-1 columns prove the read-back of all slices; everything in step 0 must be exact.
    (gx, h0, w_h, b_h), _ = _inputs(2, 3, 40, seed=13)
    config = GruKernelConfig(backend="interpreter", slice_width=16, barrier_max_spins=2)
    hs, gates, error = ops._launch_forward(jnp.asarray(gx), jnp.asarray(h0), jnp.asarray(w_h), jnp.asarray(b_h),
                                           variant, config, "interpreter", _multi_slice_plan(3, 40), True)
    hs_ref, gates_ref = reference.gru_forward_reference(gx, h0, w_h, b_h, variant)
    assert int(error[0]) == 1
    if variant == "cudnn":
        _assert_close("hs[0]", hs[0], hs_ref[0], FP32_TOL)
        _assert_close("gates[0]", gates[0], gates_ref[0], FP32_TOL)
    else:  # r, z and r ⊙ h of every slice come before the step's first barrier
        _assert_close("gates[0] r,z", gates[0][:, :80], gates_ref[0][:, :80], FP32_TOL)
        _assert_close("gates[0] rh", gates[0][:, 120:], gates_ref[0][:, 120:], FP32_TOL)
        _assert_close("hs[0] last slice", hs[0][:, 32:], hs_ref[0][:, 32:], FP32_TOL)
    if variant == "cudnn":
        _assert_close("hs[1] last slice", hs[1][:, 32:], hs_ref[1][:, 32:], FP32_TOL)


@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_backward_kernel_exchanges_gate_grads_between_column_slices(variant):
    (gx, h0, w_h, b_h), cotangent = _inputs(1, 3, 40, seed=17)
    hs, gates = reference.gru_forward_reference(gx, h0, w_h, b_h, variant)
    d_gates_ref, d_h0_ref = reference.gru_backward_reference(cotangent, h0, hs, gates, w_h, variant)
    config = GruKernelConfig(backend="interpreter", slice_width=16, barrier_max_spins=2)
    plan = _multi_slice_plan(3, 40)
    d_gates, d_h0, error = ops._launch_backward(jnp.asarray(cotangent), jnp.asarray(h0), hs, gates,
                                                jnp.asarray(w_h), variant, config, "interpreter", plan)
    assert int(error[0]) == 1
    if variant == "cudnn":  # all of d_gates precedes the only barrier; the last program passes it
        _assert_close("d_gates", d_gates, d_gates_ref, FP32_TOL)
        _assert_close("d_h0 last slice", d_h0[:, 32:], d_h0_ref[:, 32:], FP32_TOL)
    else:  # d_pre_r needs d_pre_n of all slices (first barrier): exact in the last program's columns
        _assert_close("d_gates z,n,hn", d_gates[..., 40:], d_gates_ref[..., 40:], FP32_TOL)
        _assert_close("d_gates r last slice", d_gates[..., 32:40], d_gates_ref[..., 32:40], FP32_TOL)


@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_reference_backward_matches_autodiff(variant):
    args, cotangent = _inputs(4, 3, 5, seed=19)
    with jax.enable_x64(True), jax.disable_jit():
        gx, h0, w_h, b_h = [jnp.asarray(np.asarray(a, np.float64)) for a in args]
        hs, gates = reference.gru_forward_reference(gx, h0, w_h, b_h, variant)
        d_gates, d_h0 = reference.gru_backward_reference(jnp.asarray(cotangent, jnp.float64), h0, hs, gates, w_h,
                                                         variant)
        d_w_h, d_b_h = reference.gru_weight_grads(h0, hs, gates, d_gates, variant)
        ours = [d_gates[..., :15], d_h0, d_w_h, d_b_h]
    _, autodiff = _reference(args, cotangent, variant)
    for g, g_ref in zip(ours, autodiff):
        _assert_close("reference backward", g, g_ref, 1e-12)


def test_empty_sequence_and_input_validation():
    (gx, h0, w_h, b_h), _ = _inputs(2, 3, 8)
    assert ops.gru_sequence(gx[:0], h0, w_h, b_h, config=INTERPRETER).shape == (0, 3, 8)
    with pytest.raises(ValueError, match=r"w_h\.shape=\(8, 20\)"):
        ops.gru_sequence(gx, h0, w_h[:, :20], b_h)
    with pytest.raises(ValueError, match=r"gx\.shape=\(3, 24\)"):
        ops.gru_sequence(gx[0], h0, w_h, b_h)
    with pytest.raises(ValueError, match=r"h\.shape=\(2, 8\)"):
        ops.gru_cell(gx[0], h0[:2], w_h, b_h)
    with pytest.raises(ValueError, match=r"variant='lstm'"):
        ops.gru_sequence(gx, h0, w_h, b_h, variant="lstm")
    with pytest.raises(TypeError, match="float32 or bfloat16"):
        ops.gru_sequence(gx.astype(np.float16), h0, w_h, b_h)
    with pytest.raises(ValueError, match="block_batch"):
        GruKernelConfig(block_batch=24)


@pytest.mark.parametrize("batch", [1, 16, 64, 256])
@pytest.mark.parametrize("hidden", [128, 256, 512, 1024])
def test_plans_fit_an_h200_grid(batch, hidden):
    for itemsize in (2, 4):
        plan = ops.plan_kernel(batch, hidden, itemsize, GruKernelConfig(), needs_barrier=True, max_programs=132)
        assert plan is not None
        assert plan.grid[0] * plan.grid[1] <= 132 or not plan.exchange
        assert plan.grid[0] * plan.block_n >= hidden and plan.grid[1] * plan.block_b >= batch
        assert min(plan.block_b, plan.block_n, plan.block_k) >= 16
    assert ops.plan_kernel(100_000, hidden, 4, GruKernelConfig(), needs_barrier=True, max_programs=132) is None


# ----------------------------------------------------------------------------------------------------------
# Compiling for the GPU works on the CPU (Triton ships ptxas): catches what the interpreter cannot see.
# ----------------------------------------------------------------------------------------------------------
H200_SHARED_BYTES = 232448


def _compile_for_sm90(kind: str, dtype: str, variant: str, plan: ops.KernelPlan, config: GruKernelConfig):
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from musejax_kernels.gru import triton_launch

    name = {"forward": "gru_forward_kernel", "backward": "gru_backward_kernel"}[kind]
    kernel = triton_launch.compiled_kernel(f"triton_{kind}", name)
    meta = ops._meta(config, "jax_triton", variant, plan)
    pointer_types = {
        "forward": dict(gx_ptr=dtype, h0_ptr=dtype, w_ptr=dtype, b_ptr=dtype, hs_ptr=dtype, gates_ptr="fp32"),
        "backward": dict(d_hs_ptr=dtype, h0_ptr=dtype, hs_ptr=dtype, gates_ptr="fp32", w_ptr=dtype,
                         d_gates_ptr="fp32", d_h0_ptr="fp32"),
    }[kind] | dict(counter_ptr="i32", error_ptr="i32")
    signature = {arg: "constexpr" if arg in meta else f"*{pointer_types[arg]}" if arg in pointer_types else "i32"
                 for arg in kernel.arg_names}
    source = ASTSource(fn=kernel, signature=signature, constexprs=meta)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32),
                          options=dict(num_warps=config.num_warps, num_stages=config.num_stages))


def _check_compiles(batch: int, hidden: int, dtype: str, variant: str) -> None:
    config = GruKernelConfig()
    plan = ops.plan_kernel(batch, hidden, 2 if dtype == "bf16" else 4, config, needs_barrier=True,
                           max_programs=132)
    for kind in ("forward", "backward"):
        compiled = _compile_for_sm90(kind, dtype, variant, plan, config)
        assert compiled.asm.get("cubin"), f"{kind} {plan}: no cubin"
        assert compiled.metadata.shared <= H200_SHARED_BYTES, (
            f"{kind} {dtype} {variant} {plan}: {compiled.metadata.shared} bytes of shared memory")


def test_kernels_compile_for_sm90():
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    _check_compiles(16, 512, "fp32", "cudnn")  # exchange + streamed W: the barrier and the K loop


@pytest.mark.slow
@pytest.mark.parametrize("variant", reference.VARIANTS)
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
@pytest.mark.parametrize("hidden", [32, 64, 128, 256, 512, 1024])
@pytest.mark.parametrize("batch", [1, 64, 256])
def test_every_benchmark_plan_compiles_for_sm90_within_shared_memory(batch, hidden, dtype, variant):
    os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    _check_compiles(batch, hidden, dtype, variant)


# ----------------------------------------------------------------------------------------------------------
# GPU: jax_triton against the XLA path (skipped without an NVIDIA GPU and jax_triton)
# ----------------------------------------------------------------------------------------------------------
def _gpu_available() -> bool:
    if jax.default_backend() != "gpu":
        return False
    try:
        import jax_triton  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


gpu = pytest.mark.skipif(not _gpu_available(), reason="needs an NVIDIA GPU with jax-triton")


def _xla_path(args, cotangent, variant):
    from musejax.ops import gru as gru_ops

    @jax.jit
    def run(gx, h0, w_h, b_h, ct):
        with jax.default_matmul_precision("highest"):
            hs, vjp = jax.vjp(lambda *a: gru_ops.gru_sequence(*a, variant=variant, impl="xla"), gx, h0, w_h, b_h)
            return hs, vjp(ct)

    return run(*args, cotangent)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("variant", reference.VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(64, 1, 128), (64, 16, 256), (33, 64, 64), (16, 20, 1024), (8, 256, 512)])
def test_gpu_triton_matches_xla(shape, dtype, variant):
    args, cotangent = _inputs(*shape, seed=23)
    args = [jnp.asarray(a, dtype) for a in args]
    cotangent = jnp.asarray(cotangent, dtype)
    config = GruKernelConfig(fp32_dot_precision="ieee")
    hs, grads = _kernel(args, cotangent, variant, config)
    hs_xla, grads_xla = _xla_path([a.astype(jnp.float32) for a in args], cotangent.astype(jnp.float32), variant)
    tol = 1e-4 if dtype == "float32" else BF16_TOL
    _assert_close("hs", hs, hs_xla, tol)
    for name, g, g_ref in zip(("d_gx", "d_h0", "d_w_h", "d_b_h"), grads, grads_xla):
        _assert_close(name, g, g_ref, tol)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_gpu_grid_barrier_holds_across_many_slices(variant):
    (gx, h0, w_h, b_h), _ = _inputs(48, 20, 512, seed=29)
    config = GruKernelConfig(slice_width=16, fp32_dot_precision="ieee")  # 32 slices x 2 batch tiles
    plan = ops.plan_kernel(20, 512, 4, config, needs_barrier=True, max_programs=132)
    hs, _, error = jax.jit(lambda *a: ops._launch_forward(*a, variant, config, "jax_triton", plan, True))(
        gx, h0, w_h, b_h)
    assert int(error[0]) == 0, "grid barrier timed out on a grid that fits the GPU"
    hs_ref, _ = reference.gru_forward_reference(gx, h0, w_h, b_h, variant)
    _assert_close("hs", hs, hs_ref, 1e-4)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("variant", reference.VARIANTS)
def test_gpu_training_loss_curve_matches_xla(variant):
    import optax

    from musejax.ops import gru as gru_ops

    vocab, hidden, steps, batch = 40, 256, 64, 16
    rng = np.random.default_rng(31)
    tokens = jnp.asarray(rng.integers(0, vocab, size=(steps + 1, batch)), jnp.int32)
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    params = {"w_x": jax.random.normal(keys[0], (vocab, 3 * hidden)) * 0.1, "b_x": jnp.zeros(3 * hidden),
              "w_h": jax.random.normal(keys[1], (hidden, 3 * hidden)) / np.sqrt(hidden),
              "b_h": jnp.zeros(3 * hidden), "w_o": jax.random.normal(keys[2], (hidden, vocab)) * 0.1}
    optimizer = optax.adam(3e-3)

    def curve(impl):
        def loss_fn(p):
            gx = p["w_x"][tokens[:-1]] + p["b_x"]
            hs = gru_ops.gru_sequence(gx, jnp.zeros((batch, hidden)), p["w_h"], p["b_h"], variant=variant, impl=impl)
            logits = hs @ p["w_o"]
            return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[1:]).mean()

        @jax.jit
        def train_step(p, opt_state):
            with jax.default_matmul_precision("highest"):
                loss, grads = jax.value_and_grad(loss_fn)(p)
                updates, opt_state = optimizer.update(grads, opt_state, p)
                return optax.apply_updates(p, updates), opt_state, loss

        p, opt_state, losses = params, optimizer.init(params), []
        for _ in range(50):
            p, opt_state, loss = train_step(p, opt_state)
            losses.append(float(loss))
        return np.array(losses)

    xla, triton_curve = curve("xla"), curve("triton")
    assert triton_curve[-1] < triton_curve[0]
    np.testing.assert_allclose(triton_curve, xla, rtol=2e-3)
