"""A Boulanger-Lewandowski (2012) style file built from a corpus: quarter- or eighth-note frames, split by piece.

BL2012's JSB Chorales are the pitches sounding on each beat, every piece transposed to C major / C minor,
split 229 / 76 / 77 pieces; its Nottingham, MuseData and Piano-midi.de files sample every eighth note instead.
`build_bl2012_from_corpus` makes the same kind of file from music21's bundled chorales (or any corpus, a folder
of the user's files included), so the polyphonic experiments (experiments/chung2014.py, experiments/polyphonic.py)
run without a download: encode on a sixteenth-note grid, keep the frame on each quarter (or eighth) note's onset,
so passing notes do not smear, transpose each piece to end on C, split with `split_of(piece id)`, write with
`save_bl2012`.
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
# Frames per quarter note -> the grid's name (in built files' names): BL2012's JSB is sampled on quarter notes,
# its Nottingham, MuseData and Piano-midi.de on eighth notes
FRAME_GRIDS = {1: "quarter", 2: "eighth", 4: "sixteenth"}
# BL2012's JSB Chorales split: 229 / 76 / 77 of 382 pieces, i.e. 20% valid and 20% test
BL2012_HELDOUT_FRACTION = 0.2


def beat_frames(roll: np.ndarray, steps_per_quarter: int, frames_per_quarter: int = 1) -> np.ndarray:
    """(T, 88) piano-roll on a grid of `steps_per_quarter` -> the frames on each quarter-note onset (or on each
    of `frames_per_quarter` equal parts of a quarter note: 2 for eighth notes)."""
    if frames_per_quarter < 1 or steps_per_quarter % frames_per_quarter:
        raise ValueError(f"frames_per_quarter must divide the encoding's {steps_per_quarter} steps per quarter; "
                         f"got {frames_per_quarter}")
    return np.ascontiguousarray(np.asarray(roll, bool)[::steps_per_quarter // frames_per_quarter])


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
                             progress: bool = True, frames_per_quarter: int = 1) -> dict[str, list[np.ndarray]]:
    """Encode `corpus` (bundled name or folder) at quarter-note resolution (`frames_per_quarter` 2: eighth notes,
    as BL2012's sets other than JSB) into a BL2012 file at `path` (.pickle/.pkl/.json), each piece transposed to
    end on C if `to_c`; pieces are split by `split_of(piece id)` with BL2012's JSB proportions (`heldout_fraction`
    valid and as much test). Returns the (T, 88) rolls per split."""
    if frames_per_quarter not in FRAME_GRIDS:
        raise ValueError(f"frames per quarter note must be one of {', '.join(map(str, FRAME_GRIDS))} "
                         f"({', '.join(FRAME_GRIDS.values())} notes); got {frames_per_quarter}")

    dataset = build_dataset(corpus, PianoRollEncoding(steps_per_quarter=ENCODE_STEPS_PER_QUARTER),
                            cache_dir=cache_dir, progress=progress, valid_fraction=heldout_fraction,
                            test_fraction=heldout_fraction)

    def frames(piece: Any) -> np.ndarray:
        roll = beat_frames(piece.array, ENCODE_STEPS_PER_QUARTER, frames_per_quarter)
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
    parser.add_argument("--frames-per-quarter", type=int, choices=sorted(FRAME_GRIDS), default=1,
                        help="when building from --corpus: frames per quarter note (1: quarter notes, as BL2012's "
                             "JSB Chorales; 2: eighth notes, as its Nottingham, MuseData and Piano-midi.de)")
    parser.add_argument("--cache-dir", default=None, help="dataset cache (default $MUSEJAX_CACHE or ~/.cache/musejax)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def bl2012_source(args: argparse.Namespace, out: Path, *, to_c: bool = True,
                  progress: bool = True) -> tuple[Path, str]:
    """The BL2012 file a benchmark script reads and a line saying where it came from: --data as given, or the
    file built from --corpus at --frames-per-quarter into `out` (reused when it exists). ValueError (one line)
    for an unknown corpus or one too small to split."""
    if args.data is not None:
        return Path(args.data), "BL2012 file given with --data"
    grid = FRAME_GRIDS[args.frames_per_quarter]
    path = out / f"{Path(args.corpus).name}-{grid}-{'in-c' if to_c else 'keys'}.pickle"
    if not path.exists():
        print(f"building {path} from {args.corpus} ({grid}-note frames, split by piece) ...", flush=True)
        build_bl2012_from_corpus(path, args.corpus, to_c=to_c, cache_dir=args.cache_dir, progress=progress,
                                 frames_per_quarter=args.frames_per_quarter)
    source = (f"built from {args.corpus}: sixteenth-note piano-roll sampled on each {grid} note, "
              + ("transposed to end on C" if to_c else "original keys")
              + f", split_of(piece id), {BL2012_HELDOUT_FRACTION:.0%} valid / test as BL2012's JSB")
    return path, source
