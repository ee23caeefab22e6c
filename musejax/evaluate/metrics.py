"""Per-piece objective metrics on a `GridPiece` (notes on the step grid; drums are never included).

Definitions follow muspy 0.5 (Dong et al., "MusPy: a toolkit for symbolic music generation", ISMIR 2020)
where muspy has the metric, with the grid's `steps_per_quarter` as muspy's `resolution` (a beat is a quarter
note). Two deliberate differences at boundaries, both documented on the functions: a note occupies the
half-open span [start, end) (muspy also counts the beat/bar that begins exactly at a note's end), and the
piece spans [0, last note end) in whole beats/bars (muspy adds one more beat/bar when the piece ends exactly
on a boundary). On pieces whose note ends do not fall on beat/bar lines the values are identical.
Bars come from the time signatures (pickups are short bars), not from a fixed measure length.
All rates are NaN where undefined (no notes, no time steps, fewer than two bars).
"""

from __future__ import annotations

import math

import numpy as np

from musejax.data.harmony import krumhansl_key
from musejax.evaluate.pieces import GridPiece

MAJOR_SCALE = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
MINOR_SCALE = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)  # natural minor, as muspy
SCALES = {"major": MAJOR_SCALE, "minor": MINOR_SCALE}

METRICS: dict[str, str] = {
    "n_notes": "number of notes",
    "length_quarters": "length in quarter notes (to the last note end)",
    "pitch_range": "highest minus lowest MIDI pitch (semitones)",
    "pitches_used": "number of distinct MIDI pitches",
    "pitch_classes_used": "number of distinct pitch classes (0-12)",
    "polyphony": "mean number of distinct pitches sounding, over steps where any sounds",
    "polyphony_rate": "share of steps with more than 2 distinct pitches sounding",
    "pitch_in_scale_rate": "share of notes in the scale of the estimated key (Krumhansl-Schmuckler)",
    "scale_consistency": "largest share of notes in any one major or natural-minor scale",
    "pitch_entropy": "Shannon entropy (bits) of the note-count pitch histogram",
    "pitch_class_entropy": "Shannon entropy (bits) of the note-count pitch-class histogram",
    "empty_beat_rate": "share of beats (quarter notes) in which no note sounds",
    "empty_measure_rate": "share of bars in which no note sounds",
    "groove_consistency": "1 - mean Hamming distance of onset patterns of neighbouring bars / bar length",
}


def pitch_range(piece: GridPiece) -> int:
    """Highest minus lowest MIDI pitch over all notes, in semitones (0 for no notes, as muspy)."""
    return int(piece.pitch.max() - piece.pitch.min()) if piece.n_notes else 0


def pitches_used(piece: GridPiece) -> int:
    """Number of distinct MIDI pitches among the notes (muspy `n_pitches_used`)."""
    return int(len(np.unique(piece.pitch)))


def pitch_classes_used(piece: GridPiece) -> int:
    """Number of distinct pitch classes (pitch mod 12) among the notes, 0..12 (muspy `n_pitch_classes_used`)."""
    return int(len(np.unique(piece.pitch % 12)))


def polyphony(piece: GridPiece) -> float:
    """sum_t |P_t| / #{t : |P_t| >= 1}, P_t the distinct pitches sounding at step t (muspy `polyphony`).

    A note sounds on steps [start, end); unisons of two voices count once. NaN without notes.
    """
    counts = piece.roll.sum(axis=1)
    sounding = np.count_nonzero(counts)
    return float(counts.sum() / sounding) if sounding else math.nan


def polyphony_rate(piece: GridPiece, threshold: int = 2) -> float:
    """#{t : |P_t| > threshold} / n_steps over the steps [0, last note end) (muspy `polyphony_rate`).

    The default threshold 2 counts steps with three or more pitches: MuseGAN's "polyphonicity" as muspy and
    pypianoroll implement it. NaN without notes.
    """
    if not piece.n_steps:
        return math.nan
    return float(np.count_nonzero(piece.roll.sum(axis=1) > threshold) / piece.n_steps)


def pitch_in_scale_rate(piece: GridPiece, root: int, mode: str) -> float:
    """Share of notes whose pitch class lies in the `mode` ("major"/"minor" = natural minor) scale on `root`
    (pitch class 0 = C), as muspy `pitch_in_scale_rate`. NaN without notes."""
    if mode not in SCALES:
        raise ValueError(f"mode must be 'major' or 'minor', got {mode!r}")
    if not piece.n_notes:
        return math.nan
    scale = np.roll(SCALES[mode], int(root) % 12)
    return float(np.mean(scale[piece.pitch % 12]))


def _rotations(pattern: np.ndarray) -> np.ndarray:
    """(12, 12): row r is `pattern` rotated to start on pitch class r."""
    return np.stack([np.roll(pattern, root) for root in range(12)])


SCALE_MASKS = np.concatenate([_rotations(MAJOR_SCALE), _rotations(MINOR_SCALE)]).astype(float)  # (24, 12)


def scale_consistency(piece: GridPiece) -> float:
    """Largest `pitch_in_scale_rate` over the 12 roots x {major, natural minor} (muspy `scale_consistency`)."""
    if not piece.n_notes:
        return math.nan
    histogram = np.bincount(piece.pitch % 12, minlength=12)
    return float((SCALE_MASKS @ histogram).max() / piece.n_notes)


def estimate_key(piece: GridPiece) -> tuple[int, str]:
    """(root pitch class, "major"|"minor") of a piece: `krumhansl_key` of its notes."""
    root, minor = krumhansl_key(piece.pitch, piece.end - piece.start)
    return root, ("minor" if minor else "major")


def _entropy_bits(counts: np.ndarray) -> float:
    total = counts.sum()
    if total < 1:
        return math.nan
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def pitch_entropy(piece: GridPiece) -> float:
    """-sum_i p_i log2 p_i over the 128 MIDI pitches, p_i = share of notes with pitch i (muspy)."""
    return _entropy_bits(np.bincount(piece.pitch, minlength=128))


def pitch_class_entropy(piece: GridPiece) -> float:
    """-sum_c p_c log2 p_c over the 12 pitch classes, p_c = share of notes of class c (muspy)."""
    return _entropy_bits(np.bincount(piece.pitch % 12, minlength=12))


def _occupied(first: np.ndarray, last: np.ndarray, n: int) -> np.ndarray:
    """(n,) bool: which of n units are covered by some closed interval [first_i, last_i]."""
    delta = np.bincount(first, minlength=n + 1) - np.bincount(last + 1, minlength=n + 1)
    return np.cumsum(delta[:n]) > 0


def empty_beat_rate(piece: GridPiece) -> float:
    """Share of beats with no sounding note. Beat k covers steps [k*spq, (k+1)*spq) (spq = steps per quarter)
    for k < ceil(n_steps / spq); a note sounds in every beat its [start, end) overlaps. NaN without notes."""
    spq = piece.steps_per_quarter
    n_beats = -(-piece.n_steps // spq)
    if not n_beats:
        return math.nan
    return float(1.0 - _occupied(piece.start // spq, (piece.end - 1) // spq, n_beats).mean())


def bar_index(piece: GridPiece, steps: np.ndarray) -> np.ndarray:
    """Index of the bar (from the time signatures) containing each step."""
    return np.searchsorted(piece.bar_start, steps, side="right") - 1


def empty_measure_rate(piece: GridPiece) -> float:
    """Share of bars (the piece's bar lines over [0, n_steps), pickups included) with no sounding note;
    a note sounds in every bar its [start, end) overlaps. NaN without notes."""
    n_bars = len(piece.bar_start)
    if not n_bars or not piece.n_notes:
        return math.nan
    occupied = _occupied(bar_index(piece, piece.start), bar_index(piece, piece.end - 1), n_bars)
    return float(1.0 - occupied.mean())


def groove_consistency(piece: GridPiece) -> float:
    """1 - mean over neighbouring bars (b, b+1) of equal length L of Hamming(G_b, G_b+1) / L, where G_b marks
    the steps of bar b on which some note starts (Wu & Yang 2020; muspy `groove_consistency`). Pairs of
    bars of different lengths (a pickup and a full bar) are skipped; NaN if no pair remains."""
    n_bars, lengths = len(piece.bar_start), piece.bar_length
    if n_bars < 2 or not piece.n_notes:
        return math.nan
    pairs = np.flatnonzero(lengths[1:] == lengths[:-1])
    if not len(pairs):
        return math.nan
    onsets = np.unique(piece.start)
    bars = bar_index(piece, onsets)
    patterns = np.zeros((n_bars, int(lengths.max())), bool)
    patterns[bars, onsets - piece.bar_start[bars]] = True
    hamming = np.count_nonzero(patterns[pairs] != patterns[pairs + 1], axis=1)
    return float(1.0 - np.mean(hamming / lengths[pairs]))


def piece_metrics(piece: GridPiece) -> dict[str, float]:
    """Every metric of `METRICS` for one piece (floats; NaN where undefined)."""
    root, mode = estimate_key(piece)
    values = {
        "n_notes": piece.n_notes,
        "length_quarters": piece.n_steps / piece.steps_per_quarter,
        "pitch_range": pitch_range(piece),
        "pitches_used": pitches_used(piece),
        "pitch_classes_used": pitch_classes_used(piece),
        "polyphony": polyphony(piece),
        "polyphony_rate": polyphony_rate(piece),
        "pitch_in_scale_rate": pitch_in_scale_rate(piece, root, mode),
        "scale_consistency": scale_consistency(piece),
        "pitch_entropy": pitch_entropy(piece),
        "pitch_class_entropy": pitch_class_entropy(piece),
        "empty_beat_rate": empty_beat_rate(piece),
        "empty_measure_rate": empty_measure_rate(piece),
        "groove_consistency": groove_consistency(piece),
    }
    return {name: float(values[name]) for name in METRICS}


def metrics_table(pieces: list[GridPiece]) -> dict[str, np.ndarray]:
    """metric name -> (n_pieces,) float array of that metric for every piece."""
    rows = [piece_metrics(piece) for piece in pieces]
    return {name: np.array([row[name] for row in rows], float) for name in METRICS}
