"""Data parallelism: a 1-D device mesh over ("data",), batches sharded along it, everything else replicated.

Works unchanged on several hosts after `jax.distributed.initialize()`: the mesh spans every process's
devices and each process feeds its own rows of the global batch (`shard_batch`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
def data_parallel_devices(batch_sizes: Sequence[int],
                          devices: Sequence[jax.Device] | None = None) -> list[jax.Device]:
    """The devices a data-parallel job uses: `devices` if given, else all of them, except in a one-process job
    on the CPU. There devices are slices of one machine (`musejax.host.use_every_cpu_core`), so a batch size
    they do not divide is no reason to fail: the job takes the most devices that divide every batch size."""
    if devices is not None:
        return list(devices)
    devices = jax.devices()
    if devices[0].platform != "cpu" or jax.process_count() > 1:
        return devices
    common = math.gcd(*batch_sizes)
    return devices[:max(d for d in range(1, len(devices) + 1) if common % d == 0)]


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A mesh over all (global) devices, or the given ones, with the single axis "data"."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over "data"."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Global numpy batch -> arrays sharded along "data".

    Every process builds the same global batch (same seed); each contributes the rows its local devices hold.
    """
    sharding = batch_sharding(mesh)
    n_processes, index = jax.process_count(), jax.process_index()

    def put(array: np.ndarray) -> jax.Array:
        if n_processes == 1:
            return jax.device_put(array, sharding)
        rows = array.shape[0] // n_processes
        local = array[index * rows : (index + 1) * rows]
        return jax.make_array_from_process_local_data(sharding, local, array.shape)

    return {key: put(value) for key, value in batch.items()}


def replicate_tree(tree: Any, mesh: Mesh) -> Any:
    return jax.device_put(tree, replicated(mesh))


def initialize_distributed(force: bool = False) -> bool:
    """Join a multi-host run before JAX starts: `jax.distributed.initialize()`.

    Runs when `force` (cluster auto-detection: SLURM, Open MPI, TPU pod slices) or when
    JAX_COORDINATOR_ADDRESS is set (with JAX_NUM_PROCESSES and JAX_PROCESS_ID). Returns whether it ran.
    """
    import os

    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not force and not address:
        return False
    kwargs = {}
    if address:
        missing = [name for name in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID") if name not in os.environ]
        if missing:
            raise ValueError(f"JAX_COORDINATOR_ADDRESS is set but {', '.join(missing)} not: set all three")
        kwargs = dict(coordinator_address=address, num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                      process_id=int(os.environ["JAX_PROCESS_ID"]))
    jax.distributed.initialize(**kwargs)
    return True


def describe_devices() -> str:
    """One line: how many processes and devices the run uses."""
    return (f"{jax.device_count()} {jax.devices()[0].platform} device(s), process {jax.process_index() + 1} "
            f"of {jax.process_count()}")
