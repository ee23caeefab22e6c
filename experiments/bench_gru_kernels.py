"""GPU benchmark of the GRU recurrence: musejax XLA path vs the Triton kernels vs torch.nn.GRU (cuDNN).

Per size (B, H, T, dtype) it times
  train     forward + backward of the recurrence (d gx, d h0, d W_h, d b_h from a fixed cotangent)
  sample    one step (gru_cell) at batch B, what step-wise sampling runs per token
for impl = xla (lax.scan with a custom VJP, musejax/ops/gru.py), triton (kernels/gru via jax_triton) and
torch (torch.nn.GRU on cuDNN; its input projection x W_ih is included, one large GEMM, since cuDNN fuses it).
Times are medians over repetitions: torch with CUDA events; JAX (no event API) as the wall time of a window of
back-to-back asynchronous calls closed by one block_until_ready, divided by the calls, so host overhead hides
behind queued device work. Each row also gets a per-step floor: max(FLOPs / peak FLOP/s, bytes / peak B/s)
for the step's hidden product and its unavoidable memory traffic, the ceilings measured here (a large matmul
and a large copy in the same dtype); the floor ignores latency, the real limit at small B.

  python experiments/bench_gru_kernels.py [--quick] [--variant cudnn] [--out experiments/results/bench_gru_kernels]
  python experiments/bench_gru_kernels.py --dry-run     # smoke test anywhere: tiny sizes, no torch; off the GPU
                                                        # the Triton rows run in Triton's interpreter
Writes <out>.json, <out>.md (the table and the speed-ups against the issue's goals, also printed) and <out>.png.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from musejax.ops import gru as gru_ops

BATCHES, HIDDENS, STEPS, DTYPES = (1, 16, 64, 256), (128, 256, 512, 1024), (64, 512), ("bfloat16", "float32")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=gru_ops.GRU_VARIANTS, default="cudnn")
    parser.add_argument("--reps", type=int, default=7, help="timing windows; medians are reported")
    parser.add_argument("--calls", type=int, default=5, help="calls per timing window")
    parser.add_argument("--quick", action="store_true",
                        help="the goals' sizes only: B in {1, 16, 64}, H in {256, 512}, T = 512, bfloat16, 3 reps "
                             "(experiments/gpu_check.py runs this)")
    parser.add_argument("--dry-run", action="store_true",
                        help="runs anywhere: tiny sizes, XLA and Triton (interpreted off the GPU), no torch; "
                             "checks the script, not speed")
    parser.add_argument("--no-torch", action="store_true",
                        help="leave out the torch.nn.GRU (cuDNN) rows, for a machine without PyTorch")
    parser.add_argument("--out", type=Path, default=Path("experiments/results/bench_gru_kernels"))
    args = parser.parse_args(argv)
    args.batches, args.hiddens, args.steps, args.dtypes = BATCHES, HIDDENS, STEPS, DTYPES
    args.impls = ("xla", "triton") if args.no_torch else ("xla", "triton", "torch")
    if args.quick:
        args.batches, args.hiddens, args.steps, args.dtypes, args.reps = (1, 16, 64), (256, 512), (512,), ("bfloat16",), 3
    if args.dry_run:
        args.batches, args.hiddens, args.steps, args.dtypes = (1, 3), (16,), (8,), ("float32",)
        args.reps, args.calls, args.impls = 2, 2, ("xla", "triton")
    return args


# ------------------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------------------
def time_jax(fn: Callable, args: tuple, reps: int, calls: int) -> float:
    """Median seconds per call of a jitted fn (see the module docstring)."""
    jax.block_until_ready(fn(*args))  # compile + warm up
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        out = None
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def time_torch(fn: Callable, reps: int, calls: int) -> float:
    """Median seconds per call from CUDA events around `calls` back-to-back calls."""
    import torch

    fn()
    torch.cuda.synchronize()
    samples = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end) / 1e3 / calls)
    return statistics.median(samples)


def measure_ceilings(dtype: str, reps: int) -> dict[str, float]:
    """Peak matmul FLOP/s and copy bandwidth (bytes/s) measured on this device in `dtype`."""
    n = 8192 if jax.default_backend() == "gpu" else 256
    a = jnp.ones((n, n), dtype)
    matmul = jax.jit(lambda x: x @ x)
    flops = 2 * n ** 3 / time_jax(matmul, (a,), reps, 3)
    big = jnp.ones((256 * 1024 * 1024 if jax.default_backend() == "gpu" else 1 << 20,), dtype)
    copy = jax.jit(lambda x: x * 2)
    bandwidth = 2 * big.size * big.dtype.itemsize / time_jax(copy, (big,), reps, 3)
    return {"flops_per_s": flops, "bytes_per_s": bandwidth}


def step_floor_seconds(batch: int, hidden: int, itemsize: int, training: bool, ceilings: dict) -> float:
    """Per-step lower bound: the [B,H]x[H,3H] product (x2 with its backward) vs W_h, gx, h and gate traffic."""
    flops = 2 * batch * hidden * 3 * hidden * (3 if training else 1)  # fwd product; bwd: dh and dW_h products
    bytes_moved = 3 * hidden * hidden * itemsize  # W_h read once per step (no cache assumed across steps)
    bytes_moved += batch * (3 * hidden + hidden) * itemsize  # gx_t in, h_t out
    if training:
        bytes_moved += batch * 4 * hidden * 4 * 2 + batch * 4 * hidden * 4  # gates out + in, d_gates out (fp32)
    return max(flops / ceilings["flops_per_s"], bytes_moved / ceilings["bytes_per_s"])


# ------------------------------------------------------------------------------------------------------------
# Contenders
# ------------------------------------------------------------------------------------------------------------
def jax_contenders(impl: str, variant: str, batch: int, hidden: int, steps: int, dtype: str):
    key = jax.random.split(jax.random.PRNGKey(0), 5)
    gx = jax.random.normal(key[0], (steps, batch, 3 * hidden), dtype)
    h0 = jax.random.normal(key[1], (batch, hidden), dtype)
    w_h = (jax.random.normal(key[2], (hidden, 3 * hidden)) / np.sqrt(hidden)).astype(dtype)
    b_h = jnp.zeros((3 * hidden,), dtype)
    cotangent = jax.random.normal(key[3], (steps, batch, hidden), dtype)

    @jax.jit
    def train(gx, h0, w_h, b_h, ct):
        _, vjp = jax.vjp(lambda *a: gru_ops.gru_sequence(*a, variant=variant, impl=impl), gx, h0, w_h, b_h)
        return vjp(ct)

    @jax.jit
    def sample(gx_t, h, w_h, b_h):
        return gru_ops.gru_cell(gx_t, h, w_h, b_h, variant=variant, impl=impl)

    return (train, (gx, h0, w_h, b_h, cotangent)), (sample, (gx[0], h0, w_h, b_h))


def torch_contenders(batch: int, hidden: int, steps: int, dtype: str):
    import torch

    torch_dtype = getattr(torch, dtype)
    gru = torch.nn.GRU(hidden, hidden).cuda().to(torch_dtype)
    x = torch.randn(steps, batch, hidden, device="cuda", dtype=torch_dtype, requires_grad=True)
    h0 = torch.randn(1, batch, hidden, device="cuda", dtype=torch_dtype, requires_grad=True)
    cotangent = torch.randn(steps, batch, hidden, device="cuda", dtype=torch_dtype)
    x_step, h_step = x[:1].detach(), h0.detach()

    def train():
        out, _ = gru(x, h0)
        out.backward(cotangent)

    def sample():
        with torch.no_grad():
            gru(x_step, h_step)

    return train, sample


# ------------------------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------------------------
def table(rows: list[dict]) -> str:
    header = "| dtype | B | H | T | impl | train ms | train µs/step | floor µs/step | sample µs | sample floor µs |"
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['batch']} | {r['hidden']} | {r['steps']} | {r['impl']} | "
                     f"{r['train_s'] * 1e3:.3f} | {r['train_s'] / r['steps'] * 1e6:.1f} | "
                     f"{r['train_floor_step_s'] * 1e6:.2f} | {r['sample_s'] * 1e6:.1f} | "
                     f"{r['sample_floor_s'] * 1e6:.2f} |")
    return "\n".join(lines)


# The goals (on an H100) for Triton's speed-up: (label, "train" | "sample", peer, >= ratio, row filter)
GOALS = (
    ("train B=64, H=256..512, T=512: Triton vs XLA scan", "train", "xla", 3.0,
     lambda r: r["batch"] == 64 and r["hidden"] in (256, 512) and r["steps"] == 512),
    ("train B=64, H=256..512, T=512: Triton vs cuDNN", "train", "torch", 1.2,
     lambda r: r["batch"] == 64 and r["hidden"] in (256, 512) and r["steps"] == 512),
    ("sampling step B<=16: Triton cell vs XLA", "sample", "xla", 5.0, lambda r: r["batch"] <= 16),
)


def speedups(rows: list[dict]) -> list[dict]:
    """Per size: how many times faster `triton` is than each other impl, for training and for one sampling step."""
    by_size: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        by_size.setdefault((r["dtype"], r["batch"], r["hidden"], r["steps"]), {})[r["impl"]] = r
    out = []
    for (dtype, batch, hidden, steps), impls in by_size.items():
        if "triton" not in impls:
            continue
        for peer in sorted(set(impls) - {"triton"}):
            out.append(dict(dtype=dtype, batch=batch, hidden=hidden, steps=steps, peer=peer,
                            train=impls[peer]["train_s"] / impls["triton"]["train_s"],
                            sample=impls[peer]["sample_s"] / impls["triton"]["sample_s"]))
    return out


def goal_report(ratios: list[dict]) -> tuple[str, list[dict]]:
    """Markdown: speed-up table, then each goal with the worst ratio over the sizes it covers."""
    lines = ["| dtype | B | H | T | Triton vs | train x | sample x |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dtype']} | {r['batch']} | {r['hidden']} | {r['steps']} | {r['peer']} | {r['train']:.2f} | "
              f"{r['sample']:.2f} |" for r in ratios]
    lines.append("")
    goals = []
    for label, kind, peer, target, keep in GOALS:
        covered = [r[kind] for r in ratios if r["peer"] == peer and keep(r)]
        worst = min(covered) if covered else None
        verdict = "not measured" if worst is None else ("met" if worst >= target else "missed")
        shown = "-" if worst is None else f"{worst:.2f}x"
        lines.append(f"- {label} >= {target}x: worst {shown} over {len(covered)} sizes: {verdict}")
        goals.append(dict(goal=label, target=target, worst=worst, sizes=len(covered), verdict=verdict))
    return "\n".join(lines), goals


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = sorted({r["dtype"] for r in rows})
    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(2 * len(dtypes), len(batches), figsize=(3.2 * len(batches), 5.5 * len(dtypes)),
                             squeeze=False)
    for (di, dtype), (bi, batch) in itertools.product(enumerate(dtypes), enumerate(batches)):
        for what, row_offset in (("train", 0), ("sample", 1)):
            ax = axes[2 * di + row_offset][bi]
            sel = [r for r in rows if r["dtype"] == dtype and r["batch"] == batch and r["steps"] == max(
                q["steps"] for q in rows)]
            for impl in sorted({r["impl"] for r in sel}):
                pts = sorted((r["hidden"], r[f"{what}_s"] / (r["steps"] if what == "train" else 1) * 1e6)
                             for r in sel if r["impl"] == impl)
                ax.plot(*zip(*pts), marker="o", label=impl)
            floor_key = "train_floor_step_s" if what == "train" else "sample_floor_s"
            floor = sorted({(r["hidden"], r[floor_key] * 1e6) for r in sel})
            ax.plot(*zip(*floor), "k--", marker="x", label="floor")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{what} {dtype} B={batch}", fontsize=9)
            ax.set_xlabel("H")
            ax.set_ylabel("µs per step")
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if jax.default_backend() != "gpu":
        if not args.dry_run:
            print(f"experiments/bench_gru_kernels.py: needs an NVIDIA GPU (JAX backend is "
                  f"{jax.default_backend()!r}); use --dry-run for a smoke test of the script", file=sys.stderr)
            return 2
        os.environ[gru_ops.INTERPRET_ENV] = "1"  # impl="triton" in Triton's interpreter
    if "torch" in args.impls:
        import torch

        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    ceilings = {dtype: measure_ceilings(dtype, args.reps) for dtype in args.dtypes}
    rows = []
    for dtype, batch, hidden, steps in itertools.product(args.dtypes, args.batches, args.hiddens, args.steps):
        itemsize = jnp.dtype(dtype).itemsize
        floors = {"train_floor_step_s": step_floor_seconds(batch, hidden, itemsize, True, ceilings[dtype]),
                  "sample_floor_s": step_floor_seconds(batch, hidden, itemsize, False, ceilings[dtype])}
        for impl in args.impls:
            with jax.default_matmul_precision("highest" if dtype == "float32" else "default"):
                if impl == "torch":
                    train, sample = torch_contenders(batch, hidden, steps, dtype)
                    times = {"train_s": time_torch(train, args.reps, args.calls),
                             "sample_s": time_torch(sample, args.reps, args.calls)}
                else:
                    (train, train_args), (sample, sample_args) = jax_contenders(
                        impl, args.variant, batch, hidden, steps, dtype)
                    times = {"train_s": time_jax(train, train_args, args.reps, args.calls),
                             "sample_s": time_jax(sample, sample_args, args.reps, args.calls)}
            rows.append(dict(dtype=dtype, batch=batch, hidden=hidden, steps=steps, impl=impl, **times, **floors))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    ratios = speedups(rows)
    summary, goals = goal_report(ratios)
    if args.dry_run:
        summary = ("Dry run: tiny sizes; off the GPU the Triton rows time Triton's interpreter, so these ratios "
                   "say nothing about speed.\n\n" + summary)
    report = table(rows) + "\n\n" + summary
    print("\n" + report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": str(jax.devices()[0]), "backend": jax.default_backend(), "jax": jax.__version__,
            "python": platform.python_version(), "variant": args.variant, "reps": args.reps, "calls": args.calls,
            "ceilings": ceilings, "dry_run": args.dry_run}
    result = {"meta": meta, "rows": rows, "speedups": ratios, "goals": goals}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    args.out.with_suffix(".md").write_text(report + "\n")
    plot(rows, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')}, .md, .png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
