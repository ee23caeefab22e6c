"""Device helpers shared by the GRU kernels: stable activations, the matmul step, weight tiles, a grid barrier.

The kernels use only Triton builtins (tl.full, not the @jit-defined tl.zeros / tl.sigmoid of triton.language's
standard library): triton_launch.py re-decorates these modules for the interpreter without setting
TRITON_INTERPRET process-wide, and a @jit library function would then be called as compiled code.
"""
import triton
import triton.language as tl


@triton.jit
def sigmoid(x):
    """σ(x) without overflow: exp only ever sees -|x|."""
    e = tl.exp(-tl.abs(x))
    s = 1.0 / (1.0 + e)
    return tl.where(x >= 0, s, e * s)


@triton.jit
def tanh(x):
    """tanh(x) that never overflows (exp(-2|x|) <= 1) and keeps full relative accuracy near 0 (odd series)."""
    a = tl.abs(x)
    e = tl.exp(-2.0 * a)
    far = (1.0 - e) / (1.0 + e)
    a2 = a * a
    near = a * (1.0 + a2 * (-0.3333333333333333 + a2 * (0.13333333333333333 + a2 * (
        -0.05396825396825397 + a2 * 0.021869488536155203))))
    t = tl.where(a < 0.25, near, far)
    return tl.where(x < 0, -t, t)


@triton.jit
def mma(a, b, acc, DOT_FP32: tl.constexpr, PRECISION: tl.constexpr):
    """acc + a @ b with fp32 accumulation; operands in b's dtype (bf16 tensor cores), or fp32 if DOT_FP32."""
    if DOT_FP32:
        out = tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision=PRECISION)
    else:
        out = tl.dot(a.to(b.dtype), b, acc, input_precision=PRECISION)
    return out


@triton.jit
def load_w_tile(w_ptr, stride_k, stride_n, offset, K, cols, col_ok, BLOCK_K: tl.constexpr):
    """[BLOCK_K, BLOCK_N] tile w[offset + k*stride_k + col*stride_n], zero outside k < K and col_ok."""
    ks = tl.arange(0, BLOCK_K)
    ptrs = w_ptr + offset + ks[:, None] * stride_k + cols[None, :] * stride_n
    return tl.load(ptrs, mask=(ks < K)[:, None] & col_ok[None, :], other=0.0)


@triton.jit
def streamed_products(src_ptr, stride_src_b, src_off0, src_off1, src_off2, rows, row_ok,
                      w_ptr, stride_w_k, stride_w_n, w_off0, w_off1, w_off2, cols, col_ok, K,
                      N_TERMS: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                      DOT_FP32: tl.constexpr, PRECISION: tl.constexpr):
    """Up to three products src[rows, off_i : off_i + K] @ w_i[:K, cols], streaming K in BLOCK_K chunks.

    `src` was written by other programs (exchange buffer), so it is read through L2 (.cg), never a stale L1.
    """
    acc0 = tl.full((BLOCK_B, BLOCK_N), 0.0, tl.float32)
    acc1 = tl.full((BLOCK_B, BLOCK_N), 0.0, tl.float32)
    acc2 = tl.full((BLOCK_B, BLOCK_N), 0.0, tl.float32)
    for k0 in range(0, K, BLOCK_K):
        ks = k0 + tl.arange(0, BLOCK_K)
        k_ok = ks < K
        a_ptrs = src_ptr + rows[:, None] * stride_src_b + ks[None, :]
        a_ok = row_ok[:, None] & k_ok[None, :]
        b_ptrs = w_ptr + ks[:, None] * stride_w_k + cols[None, :] * stride_w_n
        b_ok = k_ok[:, None] & col_ok[None, :]
        a = tl.load(a_ptrs + src_off0, mask=a_ok, other=0.0, cache_modifier=".cg")
        acc0 = mma(a, tl.load(b_ptrs + w_off0, mask=b_ok, other=0.0), acc0, DOT_FP32, PRECISION)
        if N_TERMS >= 2:
            a = tl.load(a_ptrs + src_off1, mask=a_ok, other=0.0, cache_modifier=".cg")
            acc1 = mma(a, tl.load(b_ptrs + w_off1, mask=b_ok, other=0.0), acc1, DOT_FP32, PRECISION)
        if N_TERMS >= 3:
            a = tl.load(a_ptrs + src_off2, mask=a_ok, other=0.0, cache_modifier=".cg")
            acc2 = mma(a, tl.load(b_ptrs + w_off2, mask=b_ok, other=0.0), acc2, DOT_FP32, PRECISION)
    return acc0, acc1, acc2


@triton.jit
def load_exchanged(src_ptr, stride_src_b, rows, row_ok, K, BLOCK_K: tl.constexpr):
    """[BLOCK_B, BLOCK_K] rows of an exchange buffer written by other programs (read through L2)."""
    ks = tl.arange(0, BLOCK_K)
    ptrs = src_ptr + rows[:, None] * stride_src_b + ks[None, :]
    return tl.load(ptrs, mask=row_ok[:, None] & (ks < K)[None, :], other=0.0, cache_modifier=".cg")


@triton.jit
def grid_barrier(counter_ptr, error_ptr, target, MAX_SPINS: tl.constexpr):
    """Wait until `target` arrivals on a monotonic counter (all co-resident programs of one batch tile).

    Stores before the barrier are visible to loads after it (bar.sync + acq_rel atomic, as cooperative groups
    do). After MAX_SPINS polls, or once another program has flagged an error, the program gives up and sets
    error_ptr: the launcher then discards the result and falls back to the per-step path.
    """
    tl.debug_barrier()
    tl.atomic_add(counter_ptr, 1, sem="acq_rel", scope="gpu")
    seen = tl.atomic_add(counter_ptr, 0, sem="acquire", scope="gpu")
    failed = tl.atomic_add(error_ptr, 0, sem="relaxed", scope="gpu")
    spins = 0
    while (seen < target) & (failed == 0) & (spins < MAX_SPINS):
        seen = tl.atomic_add(counter_ptr, 0, sem="acquire", scope="gpu")
        failed = tl.atomic_add(error_ptr, 0, sem="relaxed", scope="gpu")
        spins += 1
    if seen < target:
        tl.atomic_xchg(error_ptr, 1, sem="relaxed", scope="gpu")
    tl.debug_barrier()
