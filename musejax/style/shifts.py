"""Texture shifts of whole NoteSequences (`shift_sequence`, for experiments/style_robustness.py): pure transforms
that change how a piece is scored (one line or several, the rhythmic grid, the instruments, the tempo, the key) but
not its style. The same rules on piano-roll windows (training augmentation) are musejax/data/texture_shifts.py.

The note-level rules work on (pitch, start, end, part) arrays with times in quarter notes:
  melody only     the skyline: at each onset the highest starting note, unless a higher note still sounds.
  accompaniment   a block chord, a chord per beat or bass-and-chord ("oom-pah") under the melody: per bar the
                  diatonic triad (of the key that best fits the whole melody, Krumhansl-Kessler profiles) that
                  covers most of the bar's melody (by duration), the tonic, subdominant and dominant preferred;
                  a source's chord symbols are used where it has them.
  grid            onsets and ends snapped to a coarser grid (a quarter note: 1.0); notes of one part that land on
                  the same onset keep the longest one (a run of eighths becomes quarters, not chords).
  time stretch    note values multiplied (as a tempo change reads from a file without a tempo map).
NoteSequence-only shifts: tempo x0.5 / x2 with the tempo map following (the grid the classifier sees does not
change), one instrument (every part merged into one program) and many (each part, or each skyline layer of a
one-part piece, its own program), transposition. Nothing here imports jax.
"""

from __future__ import annotations

import copy
from typing import Sequence

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.edit import ops as edit_ops
from musejax.data.quantize import downbeat_quarters, main_meter, seconds_to_quarters
from musejax.data.harmony import accompaniment_notes, skyline
from musejax.data.texture_shifts import requantize

# the shifts the benchmark applies to whole pieces (name -> what it does), in report order
SEQUENCE_SHIFTS = {
    "melody_only": "the top line (skyline) alone",
    "accompaniment": "the melody's diatonic triads added below (bass + chord per beat)",
    "quarter_grid": "onsets and ends re-quantised to quarter notes",
    "one_instrument": "every part merged into one track, one program",
    "many_instruments": "each part (or skyline layer) its own track and program",
    "tempo_x0.5": "half the tempo, tempo map following",
    "tempo_x2": "twice the tempo, tempo map following",
    "stretch_x2": "note values doubled (a slower file without a tempo map)",
    "stretch_x0.5": "note values halved (a faster file without a tempo map)",
    "transposed": "transposed by a random -5..+6 semitones (not 0)",
}
_PROGRAMS = (0, 73, 40, 42, 71, 41, 70, 32, 56, 68)  # piano, flute, violin, cello, clarinet, viola, bassoon, ...


# ------------------------------------------------------------------------------------------- NoteSequences


def _quarters_to_seconds(ns: NoteSequence, quarters: np.ndarray) -> np.ndarray:
    """Inverse of the tempo map of `seconds_to_quarters` (120 qpm before the first tempo)."""
    changes: dict[float, float] = {0.0: 120.0}
    for tempo in sorted(ns.tempos, key=lambda t: t.time):
        changes[max(float(tempo.time), 0.0)] = float(tempo.qpm)
    times = np.fromiter(sorted(changes), np.float64)
    qpm = np.array([changes[t] for t in times])
    at_change = np.concatenate([[0.0], np.cumsum(np.diff(times) * qpm[:-1] / 60.0)])
    index = np.maximum(np.searchsorted(at_change, quarters, side="right") - 1, 0)
    return times[index] + (np.asarray(quarters) - at_change[index]) * 60.0 / qpm[index]


def _notes(ns: NoteSequence) -> tuple[list, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pitched notes, pitch, start, end in quarters, part) of a sequence (drums left out)."""
    notes = [n for n in ns.notes if not n.is_drum]
    pitch = np.array([n.pitch for n in notes], np.int64)
    seconds = np.array([[n.start_time, n.end_time] for n in notes], np.float64).reshape(-1, 2)
    quarters = seconds_to_quarters(ns, seconds.reshape(-1), "texture shift").reshape(-1, 2)
    part = np.array([n.instrument * 1000 + n.part for n in notes], np.int64)
    return notes, pitch, quarters[:, 0], quarters[:, 1], part


def _with_notes(ns: NoteSequence, notes: Sequence, start: np.ndarray, end: np.ndarray,
                extra: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> NoteSequence:
    """A copy of `ns` whose pitched notes are `notes` at `start`..`end` quarters (+ `extra` chord notes on a new
    instrument, program 0); drums kept."""
    out = copy.deepcopy(ns)
    drums = [copy.deepcopy(n) for n in ns.notes if n.is_drum]
    del out.notes[:]
    out.notes.extend(drums)
    seconds_start, seconds_end = _quarters_to_seconds(ns, start), _quarters_to_seconds(ns, end)
    for note, lo, hi in zip(notes, seconds_start, seconds_end):
        new = out.notes.add()
        new.CopyFrom(note)
        new.start_time, new.end_time = float(lo), float(hi)
    if extra is not None and len(extra[0]):
        instrument = max([n.instrument for n in ns.notes], default=-1) + 1
        for p, lo, hi in zip(extra[0], _quarters_to_seconds(ns, extra[1]), _quarters_to_seconds(ns, extra[2])):
            out.notes.add(pitch=int(p), velocity=70, start_time=float(lo), end_time=float(hi), instrument=instrument,
                          part=instrument, program=0)
    out.total_time = max([out.total_time] + [n.end_time for n in out.notes])
    return out


def meter(ns: NoteSequence) -> tuple[float, float]:
    """(bar, beat) in quarters of the sequence's meter (`main_meter`: not a pickup's; 4/4 without one; compound
    meters such as 6/8 beat in dotted quarters)."""
    numerator, denominator = main_meter(ns)
    bar = 4.0 * numerator / denominator
    compound = denominator == 8 and numerator % 3 == 0 and numerator > 3
    return bar, 1.5 if compound else 4.0 / denominator


def _chord_symbols(ns: NoteSequence, bar_starts: np.ndarray, bar: float) -> list | None:
    """Per-bar chords from the sequence's chord-symbol annotations (None when it has none)."""
    from note_seq import chord_symbols_lib

    symbols = [a for a in ns.text_annotations if a.annotation_type == a.CHORD_SYMBOL]
    if not symbols:
        return None
    times = seconds_to_quarters(ns, np.array([a.time for a in symbols]), "texture shift")
    chords, current = [], None
    for lo in bar_starts:
        for t, a in zip(times, symbols):
            if t < lo + bar - 1e-6:
                try:
                    pitches = chord_symbols_lib.chord_symbol_pitches(a.text)
                    current = (chord_symbols_lib.chord_symbol_root(a.text), tuple(sorted({p % 12 for p in pitches})))
                except chord_symbols_lib.ChordSymbolError:
                    pass
        chords.append(current)
    return chords


def melody_only(ns: NoteSequence) -> NoteSequence:
    """The top line of the piece (skyline over all its parts), as one part: that of most of its notes."""
    notes, pitch, start, end, _ = _notes(ns)
    index, new_end = skyline(pitch, start, end)
    out = _with_notes(ns, [notes[i] for i in index], start[index], new_end)
    pitched = [n for n in out.notes if not n.is_drum]
    if pitched:
        owners = [(n.instrument, n.part, n.program) for n in pitched]
        instrument, part, program = max(set(owners), key=owners.count)
        for note in pitched:
            note.instrument, note.part, note.program = instrument, part, program
    return out


def add_accompaniment(ns: NoteSequence, pattern: str = "oompah", **options) -> NoteSequence:
    """The piece with chords added under its top line (on a new track): the source's chord symbols where it has
    them (with a chord per bar), else the melody's diatonic triads, per bar of its meter (bars after a pickup
    start at its end).
    `options`: keywords of `harmony.accompaniment_notes` (bass, octave, doubled_root, changes_per_bar,
    skip_doubled_bass), e.g. a `harmony.random_accompaniment` draw without its pattern."""
    pitch, start, end = melody_notes(ns)
    bar, beat = meter(ns)
    first_bar = downbeat_quarters(ns) % bar
    chords = None
    if ns.text_annotations and options.get("changes_per_bar", 1) == 1:
        bar_starts = np.arange(first_bar, float(end.max(initial=0)), bar)
        if first_bar > 0:
            bar_starts = np.concatenate([[first_bar - bar], bar_starts])
        chords = _chord_symbols(ns, bar_starts, bar)
    return with_added_notes(ns, accompaniment_notes(pitch, start, end, bar_quarters=bar, beat_quarters=beat,
                                                    first_bar=first_bar, pattern=pattern, chords=chords, **options))


def melody_notes(ns: NoteSequence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitch, start, end in quarters) of the piece's top line (skyline over all its parts)."""
    _, pitch, start, end, _ = _notes(ns)
    index, new_end = skyline(pitch, start, end)
    return pitch[index], start[index], new_end


def with_added_notes(ns: NoteSequence, extra: tuple[np.ndarray, np.ndarray, np.ndarray]) -> NoteSequence:
    """The piece with notes (pitch, start, end in quarters) added on a new track (program 0)."""
    notes, _, start, end, _ = _notes(ns)
    return _with_notes(ns, notes, start, end, extra)


def requantize_sequence(ns: NoteSequence, grid_quarters: float = 1.0) -> NoteSequence:
    """Onsets and ends snapped to a grid of `grid_quarters` (1.0: quarter notes), per part (see `requantize`)."""
    notes, _, start, end, part = _notes(ns)
    index, new_start, new_end = requantize(start, end, part, grid_quarters)
    return _with_notes(ns, [notes[i] for i in index], new_start, new_end)


def stretch(ns: NoteSequence, factor: float) -> NoteSequence:
    """Note values multiplied by `factor` in quarter notes, the tempo map unchanged (what a slower or faster
    performance gives when the file's tempo does not follow it)."""
    notes, _, start, end, _ = _notes(ns)
    out = _with_notes(ns, notes, start * factor, end * factor)
    out.total_time = max([n.end_time for n in out.notes], default=0.0)
    return out


def one_instrument(ns: NoteSequence, program: int = 0) -> NoteSequence:
    """Every pitched part merged into one track with one program."""
    out = copy.deepcopy(ns)
    for note in out.notes:
        if not note.is_drum:
            note.instrument, note.part, note.program = 0, 0, program
    return out


def many_instruments(ns: NoteSequence) -> NoteSequence:
    """Each part its own track and program; a one-part piece is split into its skyline layers (top line, the
    next line under it, ...), each a track."""
    out = copy.deepcopy(ns)
    pitched = [n for n in out.notes if not n.is_drum]
    parts = sorted({(n.instrument, n.part) for n in pitched})
    if len(parts) > 1:
        layer = {key: k for k, key in enumerate(parts)}
        assignment = [layer[(n.instrument, n.part)] for n in pitched]
    else:
        _, pitch, start, end, _ = _notes(ns)
        assignment, left, level = [0] * len(pitched), np.arange(len(pitched)), 0
        while len(left):
            index, _ = skyline(pitch[left], start[left], end[left])
            for i in left[index]:
                assignment[i] = level
            left = np.setdiff1d(left, left[index])
            level += 1
    for note, layer_index in zip(pitched, assignment):
        note.instrument = note.part = layer_index
        note.program = _PROGRAMS[layer_index % len(_PROGRAMS)]
    return out


def shift_sequence(ns: NoteSequence, shift: str, rng: np.random.Generator | None = None) -> NoteSequence:
    """Apply one of SEQUENCE_SHIFTS (by name) to a piece; `rng` draws the transposition."""
    if shift == "melody_only":
        return melody_only(ns)
    if shift == "accompaniment":
        return add_accompaniment(ns)
    if shift == "quarter_grid":
        return requantize_sequence(ns, 1.0)
    if shift == "one_instrument":
        return one_instrument(ns)
    if shift == "many_instruments":
        return many_instruments(ns)
    if shift.startswith("tempo_x"):
        return edit_ops.change_tempo(ns, factor=float(shift[len("tempo_x"):])).sequence
    if shift.startswith("stretch_x"):
        return stretch(ns, float(shift[len("stretch_x"):]))
    if shift == "transposed":
        rng = rng if rng is not None else np.random.default_rng(0)
        return edit_ops.transpose(ns, int(rng.choice([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6]))).sequence
    raise ValueError(f"unknown texture shift {shift!r} (choose from {', '.join(SEQUENCE_SHIFTS)})")
