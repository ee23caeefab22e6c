"""Run a Triton kernel from JAX: jax_triton.triton_call on NVIDIA GPUs, or Triton's interpreter on the CPU.

Both take the same arguments (arrays and Python ints positionally, constexprs as keywords, outputs appended),
so ops.py binds the kernels one way. The interpreter path wraps the launch in jax.pure_callback, which makes the
real kernel code run under jax.jit / jax.grad / lax.cond on a machine without a GPU (tests, CI); outputs start
as NaN so an element the kernel forgets to write fails the comparison. jax_triton is imported lazily: it raises
on import where JAX has no GPU.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
import threading
import types
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

log = logging.getLogger(__name__)

KERNEL_MODULES = ("triton_forward", "triton_backward")
_INTERPRETED_PACKAGE = f"{__package__}._interpreted"
_interpreter_lock = threading.Lock()


@contextlib.contextmanager
def _interpret_env():
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TRITON_INTERPRET", None)
        else:
            os.environ["TRITON_INTERPRET"] = old


def interpreted_kernel(module: str, name: str) -> Any:
    """The kernel `name` of kernels/gru/<module>.py decorated under TRITON_INTERPRET=1.

    The modules are imported a second time as `musejax_kernels.gru._interpreted.*` with the variable set only
    while they are decorated, so the compiled kernels (and everything else in the process) are unaffected.
    """
    with _interpreter_lock:
        if _INTERPRETED_PACKAGE not in sys.modules:
            package = types.ModuleType(_INTERPRETED_PACKAGE)
            package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
            package.__package__ = _INTERPRETED_PACKAGE
            sys.modules[_INTERPRETED_PACKAGE] = package
        full_name = f"{_INTERPRETED_PACKAGE}.{module}"
        if full_name not in sys.modules:
            with _interpret_env():
                importlib.import_module(full_name)
        return getattr(sys.modules[full_name], name)


def compiled_kernel(module: str, name: str) -> Any:
    """The @triton.jit kernel `name` of kernels/gru/<module>.py (for jax_triton)."""
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


# ----------------------------------------------------------------------------------------------------------
# numpy <-> torch CPU tensors (the tensor type Triton's interpreter understands)
# ----------------------------------------------------------------------------------------------------------
def _to_torch(array: np.ndarray) -> Any:
    import torch

    array = np.ascontiguousarray(array).copy()
    if array.dtype.name == "bfloat16":
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def _empty_torch(shape: tuple[int, ...], dtype: np.dtype, zeroed: bool) -> Any:
    import torch

    torch_dtype = torch.bfloat16 if dtype.name == "bfloat16" else getattr(torch, dtype.name)
    if zeroed or not torch_dtype.is_floating_point:
        return torch.zeros(shape, dtype=torch_dtype)
    return torch.full(shape, float("nan"), dtype=torch_dtype)  # poison: unwritten elements stay NaN


def _to_numpy(tensor: Any, dtype: np.dtype) -> np.ndarray:
    import torch

    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(dtype)
    return tensor.numpy()


def launch(module: str, name: str, args: Sequence[Any], *, out_shape: Sequence[jax.ShapeDtypeStruct],
           grid: tuple[int, ...], backend: str, num_warps: int, num_stages: int,
           zeroed_outputs: Sequence[int] = (), **meta: Any) -> list[jax.Array]:
    """kernel[grid](*args, *outputs, **meta) on `backend` ("jax_triton" or "interpreter"); returns the outputs."""
    out_shape = list(out_shape)
    if backend == "jax_triton":
        import jax_triton as jt  # lazy: raises where JAX has no GPU

        return list(jt.triton_call(*args, kernel=compiled_kernel(module, name), out_shape=out_shape, grid=grid,
                                   num_warps=num_warps, num_stages=num_stages,
                                   zeroed_outputs=tuple(zeroed_outputs), **meta))
    if backend != "interpreter":
        raise ValueError(f"kernels/gru/triton_launch.py: {name}: unknown backend {backend=}")

    kernel = interpreted_kernel(module, name)
    is_array = [isinstance(a, (jax.Array, np.ndarray)) or hasattr(a, "aval") for a in args]
    arrays = [a for a, flag in zip(args, is_array) if flag]
    scalars = [a for a, flag in zip(args, is_array) if not flag]
    for value in scalars:
        if not isinstance(value, int):
            raise TypeError(f"kernels/gru/triton_launch.py: {name}: scalar arguments must be Python ints; "
                            f"got {value=} ({type(value).__name__})")

    def host(*host_arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        array_iter, scalar_iter = iter(host_arrays), iter(scalars)
        call_args = [_to_torch(np.asarray(next(array_iter))) if flag else next(scalar_iter) for flag in is_array]
        outputs = [_empty_torch(s.shape, np.dtype(s.dtype), i in zeroed_outputs) for i, s in enumerate(out_shape)]
        with _interpreter_lock:
            kernel[grid](*call_args, *outputs, **meta)
        return tuple(_to_numpy(o, np.dtype(s.dtype)) for o, s in zip(outputs, out_shape))

    return list(jax.pure_callback(host, tuple(out_shape), *arrays))
