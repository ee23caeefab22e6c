"""The XLA flag every test process compiles with, and the environment of the processes tests start.

The suite compiles hundreds of small programs and runs each for a few steps, so LLVM's optimisation of the compiled
code costs more than it saves: at -O0 the suite took 505-640 s against 758 s on a 2-core machine (the GAN tests half
the time). Tests compare results with each other and with float64 references, never with timings. -O0 code can
differ from -O2 code in the last bit, so a process a test starts compiles the same way as the test process it is
compared with. A user's run keeps XLA's default, and so does a machine with JAX's CUDA plugin (the flag would reach
XLA's GPU compiler too, which the `gpu` tests compare the Triton kernels with).
"""

from __future__ import annotations

import importlib.util
import os

FAST_COMPILE = "--xla_backend_optimization_level=0"
DEVICE_SETTINGS = ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES", "MUSEJAX_CPU_DEVICES")  # this process's device count
CPU_ONLY = not any(importlib.util.find_spec(name) for name in ("jax_cuda12_plugin", "jax_cuda13_plugin"))


def with_fast_compile(flags: str) -> str:
    if not CPU_ONLY or "xla_backend_optimization_level" in flags:
        return flags
    return f"{flags} {FAST_COMPILE}".strip()


def child_env(drop: tuple[str, ...] = (), **extra: str) -> dict[str, str]:
    """os.environ without this process's device-count settings (and `drop`), plus `extra`; XLA_FLAGS (from
    `extra` or empty) gets the suite's compile flag."""
    env = {k: v for k, v in os.environ.items() if k not in (*DEVICE_SETTINGS, *drop)}
    env.update(extra)
    env["XLA_FLAGS"] = with_fast_compile(env.get("XLA_FLAGS", ""))
    return env
