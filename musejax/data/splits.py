"""Train / valid / test membership of a piece, from its id alone (stable across runs, machines and order)."""

from __future__ import annotations

import hashlib

SPLITS = ("train", "valid", "test")


def split_of(piece_id: str, valid_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """"train", "valid" or "test" from a SHA-1 of the piece id: stable across runs, machines and corpus order."""
    if not (0.0 <= valid_fraction and 0.0 <= test_fraction and valid_fraction + test_fraction <= 1.0):
        raise ValueError(f"split fractions must be >= 0 and sum to <= 1, got {valid_fraction=}, {test_fraction=}")
    digest = hashlib.sha1(piece_id.encode("utf-8")).digest()
    position = (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53  # uniform in [0, 1), exact in a float
    if position < test_fraction:
        return "test"
    if position < test_fraction + valid_fraction:
        return "valid"
    return "train"
