"""Texture shifts: pure transforms that change how a piece is scored (one line or several, the rhythmic grid, the
instruments, the tempo, the key) but not its style. Used twice: as training augmentation of piano-roll windows
(`shift_roll`, so the classifier learns style rather than texture) and by experiments/style_robustness.py on
whole NoteSequences (`shift_sequence`).

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

from musejax.data.piano import PIANO_KEYS, PIANO_LOW_PITCH
from musejax.edit import ops as edit_ops
from musejax.data.quantize import notes_to_roll, roll_to_notes, seconds_to_quarters
from musejax.style.harmony import PATTERNS, accompaniment_notes, skyline

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
# the shifts of training windows (config.data.texture_shifts)
ROLL_SHIFTS = ("melody", "accompaniment", "grid", "stretch")

_PROGRAMS = (0, 73, 40, 42, 71, 41, 70, 32, 56, 68)  # piano, flute, violin, cello, clarinet, viola, bassoon, ...


# ------------------------------------------------------------------------------------------- note level


def requantize(start: np.ndarray, end: np.ndarray, part: np.ndarray, grid: float,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Snap onsets and ends to multiples of `grid` quarters: (indices kept, new starts, new ends). Notes of one
    part that land on the same onset keep those that started with the longest of them (of equal ones, the nearest
    to the onset); a kept note that ended by
    the next onset of its part before still does."""
    snapped_start = np.floor(start / grid + 0.5) * grid
    snapped_end = np.maximum(np.floor(end / grid + 0.5) * grid, snapped_start + grid)
    keep = np.zeros(len(start), bool)
    for p in np.unique(part):
        members = np.flatnonzero(part == p)
        onsets = np.unique(snapped_start[members])
        for k, onset in enumerate(onsets):
            group = members[snapped_start[members] == onset]
            longest = group[np.argmax(end[group] - start[group] - 1e-3 * np.abs(start[group] - onset))]
            chosen = group[start[group] == start[longest]]
            keep[chosen] = True
            if k + 1 < len(onsets):
                following = members[snapped_start[members] == onsets[k + 1]]
                legato = end[chosen] <= start[following].min() + 1e-6
                snapped_end[chosen[legato]] = np.minimum(snapped_end[chosen[legato]], onsets[k + 1])
    index = np.flatnonzero(keep)
    return index, snapped_start[index], snapped_end[index]


# ------------------------------------------------------------------------------------------- piano-roll windows


def shift_roll(window: np.ndarray, shift: str, rng: np.random.Generator, steps_per_quarter: int,
               n_steps: int | None = None, stretch_factor: float = 2.0) -> np.ndarray:
    """A texture shift of a piano-roll window ((T, 88) or (T, 2, 88) with onsets; bool) -> a roll of `n_steps`
    (default T) steps. `shift` is one of ROLL_SHIFTS; "stretch" multiplies the note values by `stretch_factor`
    (the caller cuts the source window to fit). Random choices (accompaniment pattern and meter, grid) come
    from `rng`."""
    roll = np.asarray(window, bool)
    onsets_channel = roll.ndim == 3
    n_steps = len(roll) if n_steps is None else n_steps
    sounding, onsets = (roll[:, 0], roll[:, 1]) if onsets_channel else (roll, None)
    keys, start_step, end_step = roll_to_notes(sounding, onsets)
    if not len(keys):
        return np.zeros((n_steps, *roll.shape[1:]), bool)
    pitch = keys + PIANO_LOW_PITCH
    start, end = start_step / steps_per_quarter, end_step / steps_per_quarter
    if shift == "melody":
        index, new_end = skyline(pitch, start, end)
        pitch, start, end = pitch[index], start[index], new_end
    elif shift == "accompaniment":
        index, new_end = skyline(pitch, start, end)
        meter = rng.choice(3, p=[0.6, 0.25, 0.15])  # 4/4, 3/4, 6/8
        bar, beat = ((4.0, 1.0), (3.0, 1.0), (3.0, 1.5))[meter]
        extra = accompaniment_notes(pitch[index], start[index], new_end, bar_quarters=bar, beat_quarters=beat,
                                    first_bar=float(rng.integers(0, int(bar * steps_per_quarter))) / steps_per_quarter,
                                    pattern=PATTERNS[rng.integers(len(PATTERNS))])
        pitch, start, end = (np.concatenate([a, b]) for a, b in zip((pitch, start, end), extra))
    elif shift == "grid":
        grid = 1.0 if rng.random() < 0.6 else 0.5
        index, start, end = requantize(start, end, np.zeros(len(start), np.int64), grid)
        pitch = pitch[index]
    elif shift == "stretch":
        start, end = start * stretch_factor, end * stretch_factor
    else:
        raise ValueError(f"unknown texture shift {shift!r} (choose from {', '.join(ROLL_SHIFTS)})")
    return notes_to_window(pitch, start, end, steps_per_quarter, n_steps, onsets_channel)


def notes_to_window(pitch: np.ndarray, start: np.ndarray, end: np.ndarray, steps_per_quarter: int, n_steps: int,
                    onsets: bool) -> np.ndarray:
    """Notes (times in quarters) -> a (n_steps, [2,] 88) roll; notes outside the keys or the window left out."""
    start_step = np.floor(start * steps_per_quarter + 0.5).astype(np.int64)
    end_step = np.maximum(np.floor(end * steps_per_quarter + 0.5).astype(np.int64), start_step + 1)
    key = np.asarray(pitch) - PIANO_LOW_PITCH
    inside = (key >= 0) & (key < PIANO_KEYS) & (start_step < n_steps) & (start_step >= 0)
    sounding, onset = notes_to_roll(key[inside], start_step[inside], np.minimum(end_step[inside], n_steps), n_steps,
                                    PIANO_KEYS)
    return np.stack([sounding, onset], axis=1) if onsets else sounding


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
    """(bar, beat) in quarters of the sequence's first time signature (4/4 without one; compound meters such as
    6/8 beat in dotted quarters)."""
    if not ns.time_signatures:
        return 4.0, 1.0
    signature = min(ns.time_signatures, key=lambda s: s.time)
    bar = 4.0 * signature.numerator / max(signature.denominator, 1)
    compound = signature.denominator == 8 and signature.numerator % 3 == 0 and signature.numerator > 3
    return bar, 1.5 if compound else 4.0 / max(signature.denominator, 1)


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


def add_accompaniment(ns: NoteSequence, pattern: str = "oompah") -> NoteSequence:
    """The piece with chords added under its top line (on a new track): the source's chord symbols where it has
    them, else the melody's diatonic triads, per bar of its first time signature."""
    notes, pitch, start, end, _ = _notes(ns)
    index, new_end = skyline(pitch, start, end)
    bar, beat = meter(ns)
    chords = None
    if ns.text_annotations:
        chords = _chord_symbols(ns, np.arange(0.0, float(end.max(initial=0)), bar), bar)
    extra = accompaniment_notes(pitch[index], start[index], new_end, bar_quarters=bar, beat_quarters=beat,
                                pattern=pattern, chords=chords)
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
