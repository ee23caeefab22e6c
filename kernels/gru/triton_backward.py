"""Persistent GRU backward through time: one launch runs all T steps in reverse from the saved gates.

Same grid and modes as the forward (see triton_forward.py). Per step t each program turns dh_t of its columns
into d_gates[t] = [d_pre_r | d_pre_z | d_pre_n | d_hn] (d gx and the hidden-side n gradient, fp32) and then
dh_{t-1} = dh_t ⊙ z (+ d(r⊙h) ⊙ r for "cho") + Σ_g d_g @ W_hg^T, whose product needs all of d_gates[t]: with
EXCHANGE it is read back after a grid barrier, W_h rows of the program's columns resident or streamed.
dW_h and db_h are large matmuls over all T*B rows outside the kernel (ops.py); d_h0 is written at the end.
"""
import triton
import triton.language as tl

from .triton_common import grid_barrier, load_exchanged, load_w_tile, mma, streamed_products


@triton.jit
def gru_backward_kernel(
    # input pointers: d hs (T,B,H), h0 (B,H) and hs (T,B,H) in hs' dtype, gates (T,B,4H) fp32, w_h (H,3H)
    d_hs_ptr, h0_ptr, hs_ptr, gates_ptr, w_ptr,
    # sizes
    T, B, H,
    # strides, in elements: hs and d_hs (T,B,H); h0/hs/d_hs rows; gates and d_gates (T,B,4H); w_h rows
    stride_hs_t, stride_h_b, stride_g_t, stride_g_b, stride_w_k,
    # output pointers: d_gates (T,B,4H) fp32, d_h0 (B,H) fp32, barrier counters, error flag
    d_gates_ptr, d_h0_ptr, counter_ptr, error_ptr,
    # meta
    CHO: tl.constexpr, EXCHANGE: tl.constexpr, W_RESIDENT: tl.constexpr,
    BLOCK_B: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
    DOT_FP32: tl.constexpr, PRECISION: tl.constexpr, MAX_SPINS: tl.constexpr,
):
    pid_n = tl.program_id(0)
    pid_b = tl.program_id(1)
    n_slices = tl.num_programs(0)
    counter_ptr += pid_b
    rows = pid_b * BLOCK_B + tl.arange(0, BLOCK_B)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < B
    col_ok = cols < H
    tile_ok = row_ok[:, None] & col_ok[None, :]
    h_tile = rows[:, None] * stride_h_b + cols[None, :]
    g_tile = rows[:, None] * stride_g_b + cols[None, :]

    if W_RESIDENT:  # W_hg^T restricted to this program's output columns: tile [j, c] = W_h[c, g*H + j]
        wt_r = load_w_tile(w_ptr, 1, stride_w_k, 0, H, cols, col_ok, BLOCK_K)
        wt_z = load_w_tile(w_ptr, 1, stride_w_k, H, H, cols, col_ok, BLOCK_K)
        wt_n = load_w_tile(w_ptr, 1, stride_w_k, 2 * H, H, cols, col_ok, BLOCK_K)
    zero = tl.full((BLOCK_B, BLOCK_N), 0.0, tl.float32)
    dh_next = zero
    n_barriers = 0

    for i in range(T):
        t = T - 1 - i
        t64 = tl.cast(t, tl.int64)
        dh = dh_next + tl.load(d_hs_ptr + t64 * stride_hs_t + h_tile, mask=tile_ok, other=0.0).to(tl.float32)
        g_t = gates_ptr + t64 * stride_g_t
        r = tl.load(g_t + g_tile, mask=tile_ok, other=0.0)
        z = tl.load(g_t + H + g_tile, mask=tile_ok, other=0.0)
        n = tl.load(g_t + 2 * H + g_tile, mask=tile_ok, other=0.0)
        prev = hs_ptr + (t64 - 1) * stride_hs_t
        if t == 0:
            prev = h0_ptr
        h_prev = tl.load(prev + h_tile, mask=tile_ok, other=0.0).to(tl.float32)
        dg_t = d_gates_ptr + t64 * stride_g_t

        d_pre_n = dh * (1.0 - z) * (1.0 - n * n)
        d_pre_z = dh * (h_prev - n) * z * (1.0 - z)
        tl.store(dg_t + H + g_tile, d_pre_z, mask=tile_ok)
        tl.store(dg_t + 2 * H + g_tile, d_pre_n, mask=tile_ok)
        if CHO:
            # d(r ⊙ h) = d_pre_n @ W_hn^T needs d_pre_n of all columns
            tl.store(dg_t + 3 * H + g_tile, d_pre_n, mask=tile_ok)
            if EXCHANGE:
                n_barriers += 1
                grid_barrier(counter_ptr, error_ptr, n_barriers * n_slices, MAX_SPINS)
                if W_RESIDENT:
                    d_rh = mma(load_exchanged(dg_t + 3 * H, stride_g_b, rows, row_ok, H, BLOCK_K), wt_n, zero,
                               DOT_FP32, PRECISION)
                else:
                    d_rh, _unused1, _unused2 = streamed_products(
                        dg_t, stride_g_b, 3 * H, 0, 0, rows, row_ok, w_ptr, 1, stride_w_k, 2 * H, 0, 0,
                        cols, col_ok, H, 1, BLOCK_B, BLOCK_N, BLOCK_K, DOT_FP32, PRECISION)
            else:
                d_rh = mma(d_pre_n, wt_n, zero, DOT_FP32, PRECISION)
            d_pre_r = d_rh * h_prev * r * (1.0 - r)
            tl.store(dg_t + g_tile, d_pre_r, mask=tile_ok)
            dh_next = dh * z + d_rh * r
            if EXCHANGE:
                n_barriers += 1
                grid_barrier(counter_ptr, error_ptr, n_barriers * n_slices, MAX_SPINS)
                if W_RESIDENT:
                    acc = mma(load_exchanged(dg_t, stride_g_b, rows, row_ok, H, BLOCK_K), wt_r, zero,
                              DOT_FP32, PRECISION)
                    acc = mma(load_exchanged(dg_t + H, stride_g_b, rows, row_ok, H, BLOCK_K), wt_z, acc,
                              DOT_FP32, PRECISION)
                else:
                    acc_r, acc_z, _unused3 = streamed_products(
                        dg_t, stride_g_b, 0, H, 0, rows, row_ok, w_ptr, 1, stride_w_k, 0, H, 0,
                        cols, col_ok, H, 2, BLOCK_B, BLOCK_N, BLOCK_K, DOT_FP32, PRECISION)
                    acc = acc_r + acc_z
            else:
                acc = mma(d_pre_r, wt_r, zero, DOT_FP32, PRECISION)
                acc = mma(d_pre_z, wt_z, acc, DOT_FP32, PRECISION)
        else:
            hn = tl.load(g_t + 3 * H + g_tile, mask=tile_ok, other=0.0)
            d_pre_r = d_pre_n * hn * r * (1.0 - r)
            d_hn = d_pre_n * r
            tl.store(dg_t + g_tile, d_pre_r, mask=tile_ok)
            tl.store(dg_t + 3 * H + g_tile, d_hn, mask=tile_ok)
            dh_next = dh * z
            if EXCHANGE:
                n_barriers += 1
                grid_barrier(counter_ptr, error_ptr, n_barriers * n_slices, MAX_SPINS)
                if W_RESIDENT:
                    acc = mma(load_exchanged(dg_t, stride_g_b, rows, row_ok, H, BLOCK_K), wt_r, zero,
                              DOT_FP32, PRECISION)
                    acc = mma(load_exchanged(dg_t + H, stride_g_b, rows, row_ok, H, BLOCK_K), wt_z, acc,
                              DOT_FP32, PRECISION)
                    acc = mma(load_exchanged(dg_t + 3 * H, stride_g_b, rows, row_ok, H, BLOCK_K), wt_n, acc,
                              DOT_FP32, PRECISION)
                else:
                    acc_r, acc_z, acc_n = streamed_products(
                        dg_t, stride_g_b, 0, H, 3 * H, rows, row_ok, w_ptr, 1, stride_w_k, 0, H, 2 * H,
                        cols, col_ok, H, 3, BLOCK_B, BLOCK_N, BLOCK_K, DOT_FP32, PRECISION)
                    acc = acc_r + acc_z + acc_n
            else:
                acc = mma(d_pre_r, wt_r, zero, DOT_FP32, PRECISION)
                acc = mma(d_pre_z, wt_z, acc, DOT_FP32, PRECISION)
                acc = mma(d_hn, wt_n, acc, DOT_FP32, PRECISION)
        dh_next = dh_next + acc

    tl.store(d_h0_ptr + h_tile, dh_next, mask=tile_ok)
