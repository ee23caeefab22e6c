"""Fused Triton GRU kernels (sequence forward, backward through time, sampling cell) with pure-JAX references.

Public API (lazy, so `reference` imports without Triton): gru_sequence, gru_cell, GruKernelConfig from `ops`.
"""
from __future__ import annotations

from typing import Any

__all__ = ["GruKernelConfig", "gru_cell", "gru_sequence"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import ops

        return getattr(ops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
