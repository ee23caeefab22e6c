"""Timing for the benchmark scripts (experiments/bench_*.py): peers timed side by side, rows interleaved."""
from __future__ import annotations

import time
from typing import Any, Callable

import jax


def block(value: Any) -> None:
    """Wait for every JAX array in `value` (a pytree) to be computed; other values pass through."""
    for leaf in jax.tree.leaves(value):
        if isinstance(leaf, jax.Array):
            leaf.block_until_ready()


def time_interleaved(rows: dict[str, Callable[[], Any]], reps: int, iters: int, warmup: int = 2
                     ) -> dict[str, list[float]]:
    """Seconds per call for each row and repetition; the rows take turns within a repetition, so a noisy
    machine slows them alike. Each row is called `warmup` times first (compilation, caches)."""
    for run in rows.values():
        for _ in range(warmup):
            block(run())
    seconds: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(reps):
        for name, run in rows.items():
            time.sleep(0.05)  # let the other framework's worker threads go idle
            start = time.perf_counter()
            for _ in range(iters):
                value = run()
            block(value)
            seconds[name].append((time.perf_counter() - start) / iters)
    return seconds
