"""Persistent GRU forward: one launch runs all T steps (and, with T = 1, is the fused sampling cell).

Grid (n_slices, n_batch_tiles). Each program owns BLOCK_B batch rows and BLOCK_N hidden columns of all three
gates and carries its slice of h in fp32 registers across steps.
  EXCHANGE = False (small H): one slice covers all of H (BLOCK_N = BLOCK_K >= H); W_h and h stay on chip and
      programs never talk to each other.
  EXCHANGE = True (large H): h_t goes to hs in global memory and the column programs of a batch tile meet at a
      grid barrier before reading the full h_t back (all programs must be co-resident: grid <= SM count). W_h
      columns stay on chip if W_RESIDENT, else they are streamed from L2 in BLOCK_K chunks each step.
Per step it writes hs[t] and gates[t] = [r | z | n | g4] (fp32; g4 = hW_hn + b_hn for "cudnn", r ⊙ h for "cho",
where it is also the exchange buffer); stride_g_t = 0 keeps one step's worth when no backward is needed.
"""
import triton
import triton.language as tl

from .triton_common import grid_barrier, load_exchanged, load_w_tile, mma, sigmoid, streamed_products, tanh


@triton.jit
def gru_forward_kernel(
    # input pointers
    gx_ptr, h0_ptr, w_ptr, b_ptr,
    # sizes
    T, B, H,
    # strides, in elements (last dims are contiguous): gx (T,B,3H); h0/hs rows; hs (T,B,H); gates (T,B,4H); w_h (H,3H)
    stride_gx_t, stride_gx_b, stride_h_b, stride_hs_t, stride_g_t, stride_g_b, stride_w_k,
    # output pointers (jax-triton passes outputs after all inputs): hs, gates, barrier counters, error flag
    hs_ptr, gates_ptr, counter_ptr, error_ptr,
    # meta
    CHO: tl.constexpr, EXCHANGE: tl.constexpr, W_RESIDENT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_FP32: tl.constexpr, PRECISION: tl.constexpr, MAX_SPINS: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_b = tl.program_id(1)
    n_slices = tl.num_programs(0)
    counter_ptr += pid_b  # one barrier per batch tile
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < B
    col_ok = cols < H
    tile_ok = row_ok[:, None] & col_ok[None, :]
    gx_tile = rows[:, None] * stride_gx_b + cols[None, :]
    h_tile = rows[:, None] * stride_h_b + cols[None, :]
    g_tile = rows[:, None] * stride_g_b + cols[None, :]

    b_r = tl.load(b_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    b_z = tl.load(b_ptr + H + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    b_n = tl.load(b_ptr + 2 * H + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
    if W_RESIDENT:  # this program's columns of W_h, loaded once for all steps
        w_r = load_w_tile(w_ptr, stride_w_k, 1, 0, H, cols, col_ok, BLOCK_K)
        w_z = load_w_tile(w_ptr, stride_w_k, 1, H, H, cols, col_ok, BLOCK_K)
        w_n = load_w_tile(w_ptr, stride_w_k, 1, 2 * H, H, cols, col_ok, BLOCK_K)
    zero = tl.full((BLOCK_B, BLOCK_N), 0.0, tl.float32)
    h = tl.load(h0_ptr + h_tile, mask=tile_ok, other=0.0).to(tl.float32)
    n_barriers = 0

    for t in range(T):
        t64 = tl.cast(t, tl.int64)
        gx_t = gx_ptr + t64 * stride_gx_t
        g_t = gates_ptr + t64 * stride_g_t
        hs_t = hs_ptr + t64 * stride_hs_t
        gx_r = tl.load(gx_t + gx_tile, mask=tile_ok, other=0.0).to(tl.float32)
        gx_z = tl.load(gx_t + H + gx_tile, mask=tile_ok, other=0.0).to(tl.float32)
        gx_n = tl.load(gx_t + 2 * H + gx_tile, mask=tile_ok, other=0.0).to(tl.float32)

        # hidden products h_{t-1} @ W_h[:, gate cols] (r, z; and n for cudnn)
        if EXCHANGE:
            prev = hs_t - stride_hs_t
            if t == 0:
                prev = h0_ptr
            if W_RESIDENT:
                h_all = load_exchanged(prev, stride_h_b, rows, row_ok, H, BLOCK_K)
                acc_r = mma(h_all, w_r, zero, DOT_FP32, PRECISION)
                acc_z = mma(h_all, w_z, zero, DOT_FP32, PRECISION)
                if not CHO:
                    acc_n = mma(h_all, w_n, zero, DOT_FP32, PRECISION)
            else:
                acc_r, acc_z, acc_n = streamed_products(
                    prev, stride_h_b, 0, 0, 0, rows, row_ok, w_ptr, stride_w_k, 1, 0, H, 2 * H, cols, col_ok, H,
                    3 - CHO, BLOCK_B, BLOCK_N, BLOCK_K, DOT_FP32, PRECISION)
        else:
            acc_r = mma(h, w_r, zero, DOT_FP32, PRECISION)
            acc_z = mma(h, w_z, zero, DOT_FP32, PRECISION)
            if not CHO:
                acc_n = mma(h, w_n, zero, DOT_FP32, PRECISION)

        r = sigmoid(gx_r + acc_r + b_r)
        z = sigmoid(gx_z + acc_z + b_z)
        if CHO:  # n needs (r ⊙ h) over all of H: a second product after r is known everywhere
            g4 = r * h
            tl.store(g_t + 3 * H + g_tile, g4, mask=tile_ok)
            if EXCHANGE:
                n_barriers += 1
                grid_barrier(counter_ptr, error_ptr, n_barriers * n_slices, MAX_SPINS)
                if W_RESIDENT:
                    rh_all = load_exchanged(g_t + 3 * H, stride_g_b, rows, row_ok, H, BLOCK_K)
                    acc_n = mma(rh_all, w_n, zero, DOT_FP32, PRECISION)
                else:
                    acc_n, _unused1, _unused2 = streamed_products(
                        g_t, stride_g_b, 3 * H, 0, 0, rows, row_ok, w_ptr, stride_w_k, 1, 2 * H, 0, 0,
                        cols, col_ok, H, 1, BLOCK_B, BLOCK_N, BLOCK_K, DOT_FP32, PRECISION)
            else:
                acc_n = mma(g4, w_n, zero, DOT_FP32, PRECISION)
            n = tanh(gx_n + acc_n + b_n)
        else:
            g4 = acc_n + b_n
            n = tanh(gx_n + r * g4)
            tl.store(g_t + 3 * H + g_tile, g4, mask=tile_ok)
        h = n + z * (h - n)
        tl.store(g_t + g_tile, r, mask=tile_ok)
        tl.store(g_t + H + g_tile, z, mask=tile_ok)
        tl.store(g_t + 2 * H + g_tile, n, mask=tile_ok)
        tl.store(hs_t + h_tile, h.to(hs_ptr.dtype.element_ty), mask=tile_ok)
        if EXCHANGE:
            if t < T - 1:  # the next step reads all of h_t
                n_barriers += 1
                grid_barrier(counter_ptr, error_ptr, n_barriers * n_slices, MAX_SPINS)
