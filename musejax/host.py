"""Host set-up that must happen before JAX starts: one XLA CPU device per core.

XLA:CPU runs a recurrent model's step loop (small [B, H] x [H, 3H] products) on about one core. With one CPU
device per core, data parallelism (`musejax.train.mesh`) gives each core its own rows of the batch and its own
copy of the loop. On 2 cores the LM train step of experiments/bench_cpu.py becomes 1.56x as fast and sampling
1.59x (medians of 3 runs), and the default `musejax train` takes 63 s instead of 85 s. Other backends are
unaffected: only the CPU client is split.

This module does not import JAX, so the `musejax` command can call it for every sub-command at no cost.
"""

from __future__ import annotations

import os
import sys

CPU_DEVICES_ENV = "MUSEJAX_CPU_DEVICES"


def cpu_core_count() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use_every_cpu_core() -> int | None:
    """Give JAX one CPU device per core (MUSEJAX_CPU_DEVICES=N: N devices; 1 turns the split off).

    Call it before JAX starts; the `musejax` command does. Does nothing when the CPU device count is chosen
    already (XLA_FLAGS=--xla_force_host_platform_device_count=N, JAX_NUM_CPU_DEVICES, jax_num_cpu_devices) or
    when JAX has started. Returns the count set, or None.
    """
    if ("xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", "")
            or os.environ.get("JAX_NUM_CPU_DEVICES")):
        return None
    text = os.environ.get(CPU_DEVICES_ENV, "").strip()
    if text and (not text.isdigit() or int(text) < 1):
        raise ValueError(f"{CPU_DEVICES_ENV}={text!r}: expected a whole number >= 1")
    count = int(text) if text else cpu_core_count()
    if "jax" not in sys.modules:  # JAX reads its configuration from the environment when it is imported
        os.environ["JAX_NUM_CPU_DEVICES"] = str(count)
        return count
    import jax

    if jax.config.jax_num_cpu_devices > 0:
        return None
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:  # JAX has started: its devices stay as they are
        return None
    return count
