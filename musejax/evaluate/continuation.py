"""Does a passage follow on from the one before it? A continuation against its primer, or the second half of a
real piece against its first half (the baseline), on four measures:

  pitch_class_distance  total variation distance (0..1) between the two passages' note-count pitch-class
                        histograms: 0 = the same pitch classes in the same shares;
  polyphony_difference  |polyphony(second) - polyphony(first)| (metrics.polyphony: pitches sounding per
                        sounding step);
  density_difference    |density(second) - density(first)|, density = notes per quarter note of the passage's
                        span (given, so a closing rest counts);
  key_agrees            the Krumhansl-Schmuckler key estimates (metrics.estimate_key) are equal; `scale_agrees`
                        also counts relative major/minor (the same key signature), which the estimate often
                        confuses.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from musejax.evaluate import metrics
from musejax.evaluate.pieces import GridPiece

PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def pitch_class_shares(piece: GridPiece) -> np.ndarray:
    """(12,) share of the piece's notes per pitch class (all zero without notes)."""
    counts = np.bincount(piece.pitch % 12, minlength=12).astype(float)
    return counts / counts.sum() if counts.sum() else counts


def note_density(piece: GridPiece, span_steps: int | None = None) -> float:
    """Notes per quarter note over `span_steps` (default: the piece's span to its last note end); NaN if empty."""
    steps = piece.n_steps if span_steps is None else span_steps
    return piece.n_notes * piece.steps_per_quarter / steps if steps > 0 else math.nan


def compare_passages(first: GridPiece, second: GridPiece, first_steps: int | None = None,
                     second_steps: int | None = None) -> dict[str, Any]:
    """The measures of the module docstring for `second` following `first` (spans in steps for the densities),
    with both passages' values; distances are NaN and keys disagree when a passage has no notes."""
    both = bool(first.n_notes and second.n_notes)
    keys = [metrics.estimate_key(p) for p in (first, second)]
    relative_major = [(root + 3) % 12 if mode == "minor" else root for root, mode in keys]
    values: dict[str, Any] = {
        "pitch_class_distance": 0.5 * float(np.abs(pitch_class_shares(first) - pitch_class_shares(second)).sum())
        if both else math.nan,
        "polyphony_first": metrics.polyphony(first), "polyphony_second": metrics.polyphony(second),
        "density_first": note_density(first, first_steps), "density_second": note_density(second, second_steps),
        "key_first": f"{PITCH_CLASS_NAMES[keys[0][0]]} {keys[0][1]}",
        "key_second": f"{PITCH_CLASS_NAMES[keys[1][0]]} {keys[1][1]}",
        "key_agrees": both and keys[0] == keys[1],
        "scale_agrees": both and relative_major[0] == relative_major[1],
    }
    values["polyphony_difference"] = abs(values["polyphony_second"] - values["polyphony_first"])
    values["density_difference"] = abs(values["density_second"] - values["density_first"])
    return values


def summarize_passages(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Means over `compare_passages` rows (NaN skipped; None when nothing is defined), agreement shares."""
    def mean(key: str) -> float | None:
        values = np.array([row[key] for row in rows], float)
        values = values[np.isfinite(values)]
        return float(values.mean()) if len(values) else None

    return {"n_pairs": len(rows),
            **{key: mean(key) for key in ("pitch_class_distance", "polyphony_difference", "density_difference",
                                          "polyphony_second", "density_second")},
            "key_agreement": float(np.mean([row["key_agrees"] for row in rows])) if rows else None,
            "scale_agreement": float(np.mean([row["scale_agrees"] for row in rows])) if rows else None}
