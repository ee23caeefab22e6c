"""Pieces as notes on a step grid: what every per-piece metric, feature and the originality index read.

A `GridPiece` holds a piece's non-drum notes quantised exactly as the encodings do (tempo map, round half up,
`steps_per_quarter` steps per quarter note; see musejax/data/quantize.py), each note's voice (track rank as in
the multitrack encoding: score parts in order, else MIDI instruments ascending) and its bar lines (from the
time signatures, pickups kept as short bars). The piece spans steps [0, last note end).

Note lines (for melodic features and originality) are extracted per voice: the *top line* takes, at every
distinct onset of the voice, its highest starting note (the skyline); a voice that ever starts two notes at
once (a piano part, or a one-track generated piano-roll) also gives a *bottom line* (lowest starting note per
onset). Lines of fewer than two notes are dropped. Monophonic voices (chorale S/A/T/B) give one line each.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.multitrack import track_of_notes
from musejax.data.quantize import bar_grid, note_arrays, notes_to_roll, piece_name, quantize_to_steps

DEFAULT_STEPS_PER_QUARTER = 4
N_MIDI_PITCHES = 128


@dataclasses.dataclass(frozen=True)
class NoteLines:
    """Monophonic note lines of a piece, concatenated: `line[i]` is the line of note i (ascending, onsets
    ascending within a line)."""

    onset: np.ndarray  # (M,) steps
    pitch: np.ndarray  # (M,) MIDI pitch
    line: np.ndarray  # (M,) line index 0..n_lines-1

    @property
    def n_lines(self) -> int:
        return int(self.line.max()) + 1 if len(self.line) else 0

    def transitions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(first_note_index, ioi_steps, interval_semitones) of every pair of consecutive notes in a line."""
        same_line = self.line[1:] == self.line[:-1]
        first = np.flatnonzero(same_line)
        return first, self.onset[first + 1] - self.onset[first], self.pitch[first + 1] - self.pitch[first]


@dataclasses.dataclass(frozen=True)
class GridPiece:
    """A piece's notes on the step grid, sorted by (start, pitch); see the module docstring."""

    id: str
    pitch: np.ndarray  # (N,) MIDI pitch
    start: np.ndarray  # (N,) steps
    end: np.ndarray  # (N,) steps, end > start
    voice: np.ndarray  # (N,) voice rank
    steps_per_quarter: int
    bar_start: np.ndarray  # (B,) steps, ascending, covering [0, n_steps)
    bar_length: np.ndarray  # (B,) steps

    @property
    def n_notes(self) -> int:
        return len(self.pitch)

    @property
    def n_steps(self) -> int:
        """Length of the piece in steps: the last note end."""
        return int(self.end.max()) if len(self.end) else 0

    @property
    def typical_bar_steps(self) -> int:
        """The most common bar length in steps (the meter's bar, ignoring pickups)."""
        values, counts = np.unique(self.bar_length, return_counts=True)
        return int(values[np.argmax(counts)]) if len(values) else 4 * self.steps_per_quarter

    @functools.cached_property
    def roll(self) -> np.ndarray:
        """(n_steps, 128) bool: which MIDI pitches sound at each step (unisons of several voices merge)."""
        sounding, _ = notes_to_roll(self.pitch, self.start, self.end, self.n_steps, N_MIDI_PITCHES)
        return sounding

    @functools.cached_property
    def lines(self) -> NoteLines:
        """The piece's note lines (top line per voice, plus a bottom line for chordal voices)."""
        return extract_note_lines(self.pitch, self.start, self.voice)


def extract_note_lines(pitch: np.ndarray, start: np.ndarray, voice: np.ndarray) -> NoteLines:
    """Top line of every voice and bottom line of every chordal voice (see the module docstring)."""
    if not len(pitch):
        empty = np.zeros(0, np.int64)
        return NoteLines(empty, empty, empty)
    order = np.lexsort((-pitch, start, voice))
    p, s, v = pitch[order], start[order], voice[order]
    new_group = np.ones(len(p), bool)
    new_group[1:] = (s[1:] != s[:-1]) | (v[1:] != v[:-1])
    last_of_group = np.append(new_group[1:], True)
    group_size = np.diff(np.append(np.flatnonzero(new_group), len(p)))
    chordal_voices = np.unique(v[new_group][group_size > 1])
    top = new_group
    bottom = last_of_group & np.isin(v, chordal_voices)
    # line key: 2 * voice for top lines, 2 * voice + 1 for bottom lines; dense-ranked afterwards
    keys = np.concatenate([2 * v[top], 2 * v[bottom] + 1])
    onsets = np.concatenate([s[top], s[bottom]])
    pitches = np.concatenate([p[top], p[bottom]])
    line_order = np.lexsort((onsets, keys))
    keys, onsets, pitches = keys[line_order], onsets[line_order], pitches[line_order]
    _, line, counts = np.unique(keys, return_inverse=True, return_counts=True)
    keep = counts[line] >= 2
    _, line = np.unique(line[keep], return_inverse=True)
    return NoteLines(onsets[keep], pitches[keep], line.astype(np.int64))


def grid_piece(ns: NoteSequence, steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER) -> GridPiece:
    """Quantise a NoteSequence's non-drum notes (EncodingError naming the piece if it has none)."""
    notes = note_arrays(ns, "evaluate")
    grid = quantize_to_steps(ns, notes, steps_per_quarter, "evaluate")
    voice = track_of_notes(ns, notes)
    n_steps = int(grid.end_step.max())
    bar_start, bar_length, _ = bar_grid(ns, steps_per_quarter, n_steps, "evaluate")
    return make_grid_piece(notes.pitch, grid.start_step, grid.end_step, voice, steps_per_quarter=steps_per_quarter,
                           bar_start=bar_start, bar_length=bar_length, id=piece_name(ns))


def make_grid_piece(pitch, start, end, voice=None, *, steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER,
                    steps_per_bar: int | None = None, bar_start: np.ndarray | None = None,
                    bar_length: np.ndarray | None = None, id: str = "") -> GridPiece:
    """A GridPiece from note arrays in steps; bars every `steps_per_bar` (default 4/4) unless given."""
    pitch, start, end = (np.asarray(x, np.int64).reshape(-1) for x in (pitch, start, end))
    voice = np.zeros(len(pitch), np.int64) if voice is None else np.asarray(voice, np.int64).reshape(-1)
    if not (len(pitch) == len(start) == len(end) == len(voice)):
        raise ValueError(f"{id or 'piece'}: pitch, start, end and voice must have equal lengths")
    if len(pitch) and (start.min() < 0 or np.any(end <= start) or pitch.min() < 0 or pitch.max() > 127):
        raise ValueError(f"{id or 'piece'}: notes need 0 <= start < end and pitches in 0..127")
    order = np.lexsort((pitch, start))
    n_steps = int(end.max()) if len(end) else 0
    if bar_start is None:
        bar_steps = steps_per_bar or 4 * steps_per_quarter
        bar_start = np.arange(0, max(n_steps, 1), bar_steps, dtype=np.int64)
        bar_length = np.full(len(bar_start), bar_steps, np.int64)
    return GridPiece(id=id, pitch=pitch[order], start=start[order], end=end[order], voice=voice[order],
                     steps_per_quarter=int(steps_per_quarter), bar_start=np.asarray(bar_start, np.int64),
                     bar_length=np.asarray(bar_length, np.int64))


def slice_piece(piece: GridPiece, start: int, end: int) -> GridPiece:
    """The part of `piece` sounding in steps [start, end), moved to begin at step 0 (metrics of a passage).

    Notes are clipped to the span (a note held across `start` starts again at 0 there); a bar cut at `start`
    becomes a short first bar, as a pickup is; bars run while they start before the slice's last note end.
    """
    if not 0 <= start <= end:
        raise ValueError(f"{piece.id}: slice needs 0 <= start <= end, got [{start}, {end})")
    keep = (piece.start < end) & (piece.end > start)
    note_start = np.maximum(piece.start[keep], start) - start
    note_end = np.minimum(piece.end[keep], end) - start
    n_steps = int(note_end.max()) if len(note_end) else 0
    bar_end = piece.bar_start + piece.bar_length
    bars = (bar_end > start) & (piece.bar_start < start + max(n_steps, 1))
    bar_start = np.maximum(piece.bar_start[bars], start) - start
    bar_length = bar_end[bars] - start - bar_start
    return make_grid_piece(piece.pitch[keep], note_start, note_end, piece.voice[keep],
                           steps_per_quarter=piece.steps_per_quarter, bar_start=bar_start, bar_length=bar_length,
                           id=f"{piece.id}@{start}-{end}")


def split_points(piece: GridPiece, parts: int) -> np.ndarray:
    """parts + 1 ascending steps 0 = b_0 <= ... <= b_parts = n_steps cutting `piece` into `parts` spans of about
    equal time: each inner cut at the bar line nearest to k / parts of the piece, or at that exact step when
    the piece has too few bars to give every part one."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    n_steps = piece.n_steps
    targets = np.arange(1, parts) * n_steps / parts
    lines = piece.bar_start[(piece.bar_start > 0) & (piece.bar_start < n_steps)]
    if len(lines):
        nearest = lines[np.argmin(np.abs(lines[None, :] - targets[:, None]), axis=1)]
        if np.all(np.diff(nearest) > 0):
            return np.concatenate([[0], nearest, [n_steps]]).astype(np.int64)
    return np.concatenate([[0], np.round(targets), [n_steps]]).astype(np.int64)


def split_piece(piece: GridPiece, parts: int) -> list[GridPiece]:
    """`piece` cut at `split_points` into `parts` consecutive passages (see `slice_piece`)."""
    cuts = split_points(piece, parts)
    return [slice_piece(piece, int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]
