"""A Boulanger-Lewandowski (2012) style file built from a corpus: quarter-note frames, split by piece.

BL2012's JSB Chorales are the pitches sounding on each beat, every piece transposed to C major / C minor,
split 229 / 76 / 77 pieces. `build_bl2012_from_corpus` makes the same kind of file from music21's bundled
chorales (or any corpus), so the polyphonic experiments (experiments/chung2014.py, experiments/polyphonic.py)
run without a download: encode on a sixteenth-note grid, keep each beat's frame (so passing notes do not
smear), transpose each piece to end on C, split with `split_of(piece id)`, write with `save_bl2012`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

from musejax.data.bl2012 import save_bl2012
from musejax.data.piano import PIANO_LOW_PITCH
from musejax.data.quantize import shift_pitch_axis
from musejax.data.datasets import build_dataset
from musejax.data.encodings import PianoRollEncoding

ENCODE_STEPS_PER_QUARTER = 4  # encode finely, then sample each beat, so passing notes do not smear
# BL2012's JSB Chorales split: 229 / 76 / 77 of 382 pieces, i.e. 20% valid and 20% test
BL2012_HELDOUT_FRACTION = 0.2


def beat_frames(roll: np.ndarray, steps_per_quarter: int) -> np.ndarray:
    """(T, 88) piano-roll on a grid of `steps_per_quarter` -> the frames on each quarter-note onset."""
    return np.ascontiguousarray(np.asarray(roll, bool)[::steps_per_quarter])


def transpose_final_bass_to_c(roll: np.ndarray, piece_id: str) -> np.ndarray:
    """Shift a (T, 88) roll by -6..+5 semitones so the lowest note of its last sounding step is a C: the
    common tonality (C major / C minor) of BL2012's JSB Chorales, whose pieces all end on a C chord."""

    sounding = np.flatnonzero(np.asarray(roll).any(axis=1))
    if not len(sounding):
        raise ValueError(f"{piece_id}: no notes to transpose")
    pitch_class = (int(np.flatnonzero(roll[sounding[-1]])[0]) + PIANO_LOW_PITCH) % 12
    shift = (6 - pitch_class) % 12 - 6
    for semitones in (shift, shift + 12 if shift < 0 else shift - 12):
        shifted = shift_pitch_axis(roll, semitones)
        if shifted is not None:
            return shifted
    raise ValueError(f"{piece_id}: cannot transpose to C within MIDI 21..108")


def build_bl2012_from_corpus(path: str | os.PathLike, corpus: str = "bach-chorales", *, to_c: bool = True,
                             heldout_fraction: float = BL2012_HELDOUT_FRACTION, cache_dir: str | None = None,
                             progress: bool = True) -> dict[str, list[np.ndarray]]:
    """Encode `corpus` (bundled name or folder) at quarter-note resolution into a BL2012 file at `path`
    (.pickle/.pkl/.json), each piece transposed to end on C if `to_c`; pieces are split by `split_of(piece id)`
    with BL2012's JSB proportions (`heldout_fraction` valid and as much test). Returns the (T, 88) rolls per split."""

    dataset = build_dataset(corpus, PianoRollEncoding(steps_per_quarter=ENCODE_STEPS_PER_QUARTER),
                            cache_dir=cache_dir, progress=progress, valid_fraction=heldout_fraction,
                            test_fraction=heldout_fraction)

    def frames(piece: Any) -> np.ndarray:
        roll = beat_frames(piece.array, ENCODE_STEPS_PER_QUARTER)
        return transpose_final_bass_to_c(roll, piece.id) if to_c else roll

    splits = {split: [frames(p) for p in sorted(pieces, key=lambda p: p.id)] for split, pieces in dataset.splits.items()}
    empty = [split for split, rolls in splits.items() if not rolls]
    if empty:
        raise ValueError(f"corpus {corpus!r}: no {' / '.join(empty)} pieces among {dataset.report.n_loaded} "
                         "loaded; use a larger corpus")
    save_bl2012(path, splits)
    return splits


def data_stats(splits: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Pieces, time steps, mean sounding keys per step and longest piece of each split."""
    stats = {}
    for split, rolls in splits.items():
        frames = sum(len(r) for r in rolls)
        notes = sum(int(np.asarray(r).sum()) for r in rolls)
        stats[split] = {"pieces": len(rolls), "steps": frames, "mean_keys_per_step": round(notes / max(frames, 1), 3),
                        "max_piece_steps": max((len(r) for r in rolls), default=0)}
    return stats


def add_bl2012_source_arguments(parser: argparse.ArgumentParser) -> None:
    """--data / --corpus / --cache-dir / --no-progress: where a BL2012 benchmark script gets its file."""
    parser.add_argument("--data", type=Path, default=None,
                        help="a BL2012 .pickle/.pkl/.json/.mat file (default: build one from --corpus into --out)")
    parser.add_argument("--corpus", default="bach-chorales",
                        help="bundled corpus or folder to build the BL2012 file from when --data is not given")
    parser.add_argument("--cache-dir", default=None, help="dataset cache (default $MUSEJAX_CACHE or ~/.cache/musejax)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
