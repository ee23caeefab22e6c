"""Encodings between NoteSequences and numpy arrays: piano-roll, melody events, performance events, multitrack bars.

Every encoding is a frozen dataclass with `encode(ns)`, `decode(array, qpm)`, `transpose(array, semitones)`,
`options()` and `name`; `get_encoding(name, **options)` builds one. Grid encodings quantise through the tempo
map (see quantize.py); time step 0 is time 0 of the sequence, so a pickup (anacrusis) stays where it is and
is never padded out to a full bar (only the multitrack encoding aligns to bars; see multitrack.py). Drums
are left out everywhere. Round trips are exact on the grid: array -> sequence -> array is the identity for
valid arrays, and a sequence already on the grid comes back with the same notes. Trailing silence survives
through `ns.total_time`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Protocol

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.multitrack import MultitrackEncoding
from musejax.data.performance import PerformanceEncoding
from musejax.data.piano import PIANO_KEYS, PIANO_LOW_PITCH
from musejax.data.quantize import (
    DEFAULT_QPM, EncodingError, check_event_array, check_int_options, encoding_error, encoding_options, grid_sequence,
    note_arrays, grid_step_seconds, notes_to_roll, quantize_to_steps, roll_to_notes, shift_pitch_axis)

__all__ = ["Encoding", "EncodingError", "PianoRollEncoding", "MelodyEncoding", "PerformanceEncoding",
           "MultitrackEncoding", "ENCODINGS", "get_encoding"]



class Encoding(Protocol):
    """What every encoding offers (datasets, models and the CLI use only this)."""
    name: ClassVar[str]

    def encode(self, ns: NoteSequence) -> np.ndarray: ...

    def decode(self, array: np.ndarray, qpm: float = DEFAULT_QPM) -> NoteSequence: ...

    def transpose(self, array: np.ndarray, semitones: int) -> np.ndarray | None: ...

    def options(self) -> dict[str, Any]: ...


@dataclasses.dataclass(frozen=True)
class PianoRollEncoding:
    """Polyphonic piano-roll over the 88 piano keys: (T, 88) bool, or (T, 2, 88) with an onset channel.

    `[:, 0]` = sounding, `[:, 1]` = onset (first frame of a note). A pitch sounds while any note of it does,
    so unisons merge. Notes outside MIDI 21..108 are dropped. Without onsets a run of active frames decodes
    to one note; with onsets an onset frame starts a new note (repeated vs held notes differ).
    """
    steps_per_quarter: int = 4
    onsets: bool = False
    name: ClassVar[str] = "pianoroll"

    def __post_init__(self) -> None:
        check_int_options(self, "steps_per_quarter", minimum=1)

    def options(self) -> dict[str, Any]:
        """The options as a JSON-able dict."""
        return encoding_options(self)

    def encode(self, ns: NoteSequence) -> np.ndarray:
        """NoteSequence -> (T, 88) or (T, 2, 88) bool, T covering the last note end and `ns.total_time`."""
        notes = note_arrays(ns, self.name)
        key = notes.pitch - PIANO_LOW_PITCH
        in_range = (key >= 0) & (key < PIANO_KEYS)
        if not in_range.any():
            raise encoding_error(ns, self.name, "no notes in the piano range MIDI 21..108")
        grid = quantize_to_steps(ns, notes.select(in_range), self.steps_per_quarter, self.name)
        sounding, onsets = notes_to_roll(key[in_range], grid.start_step, grid.end_step, grid.n_steps,
                                         PIANO_KEYS)
        return np.stack([sounding, onsets], axis=1) if self.onsets else sounding

    def decode(self, array: np.ndarray, qpm: float = DEFAULT_QPM) -> NoteSequence:
        """Piano-roll -> NoteSequence (velocity 100, one instrument) at `qpm` quarter notes per minute."""
        roll = np.asarray(array)
        expected = (2, PIANO_KEYS) if self.onsets else (PIANO_KEYS,)
        if roll.ndim != 1 + len(expected) or roll.shape[1:] != expected:
            raise EncodingError(f"{self.name} decode: expected shape (T, {', '.join(map(str, expected))}),"
                                f" got {roll.shape}")
        roll = roll.astype(bool)
        sounding, onsets = (roll[:, 0], roll[:, 1]) if self.onsets else (roll, None)
        keys, start, end = roll_to_notes(sounding, onsets)
        return grid_sequence(keys + PIANO_LOW_PITCH, start, end, seconds_per_step=grid_step_seconds(
            qpm, self.steps_per_quarter), qpm=qpm, n_steps=len(roll))

    def transpose(self, array: np.ndarray, semitones: int) -> np.ndarray | None:
        """Shift along the pitch axis; None if a sounding key would leave the 88 keys."""
        return shift_pitch_axis(array, semitones)


@dataclasses.dataclass(frozen=True)
class MelodyEncoding:
    """Monophonic melody events (MelodyRNN style), one per step: 0 no event, 1 note-off, 2 + pitch - min_pitch.

    Polyphony is reduced by the skyline rule: at each step the melody is the highest sounding pitch (of the
    original pitches, all parts); a new note starts where that top pitch changes or is re-attacked, and a
    note-off is written where nothing sounds after a note. The chosen pitch is then folded by octaves into
    [min_pitch, max_pitch] (the range must span at least an octave), so every note is kept.
    """
    steps_per_quarter: int = 4
    min_pitch: int = 48
    max_pitch: int = 83
    name: ClassVar[str] = "melody"

    NO_EVENT: ClassVar[int] = 0
    NOTE_OFF: ClassVar[int] = 1
    FIRST_NOTE_ON: ClassVar[int] = 2

    def __post_init__(self) -> None:
        check_int_options(self, "steps_per_quarter", minimum=1)
        check_int_options(self, "min_pitch", "max_pitch")
        if not (0 <= self.min_pitch and self.max_pitch <= 127 and self.max_pitch - self.min_pitch >= 11):
            raise ValueError(f"MelodyEncoding: pitch range {self.min_pitch}..{self.max_pitch} must lie in 0..127"
                             f" and span at least an octave (12 pitches)")

    @property
    def vocab_size(self) -> int:
        """Number of event tokens: no-event, note-off and one note-on per pitch of the range."""
        return self.FIRST_NOTE_ON + self.max_pitch - self.min_pitch + 1

    def options(self) -> dict[str, Any]:
        """The options as a JSON-able dict."""
        return encoding_options(self)

    def fold_into_range(self, pitch: np.ndarray) -> np.ndarray:
        """Move pitches by whole octaves into [min_pitch, max_pitch] (nearest octave that fits)."""
        pitch = np.asarray(pitch, np.int64)
        up = -((pitch - self.min_pitch) // 12)  # octaves up for pitches below the range
        down = -((self.max_pitch - pitch) // 12)  # octaves down for pitches above it
        return pitch + 12 * np.maximum(up, 0) - 12 * np.maximum(down, 0)

    def encode(self, ns: NoteSequence) -> np.ndarray:
        """NoteSequence -> (T,) int32 events via the skyline rule (see the class docstring)."""
        notes = note_arrays(ns, self.name)
        grid = quantize_to_steps(ns, notes, self.steps_per_quarter, self.name)
        sounding, onsets = notes_to_roll(notes.pitch, grid.start_step, grid.end_step, grid.n_steps, 128)
        any_sounding = sounding.any(axis=1)
        top = np.where(any_sounding, 127 - np.argmax(sounding[:, ::-1], axis=1), -1)
        previous_top = np.concatenate([[-1], top[:-1]])
        attacked = onsets[np.arange(grid.n_steps), np.maximum(top, 0)]
        note_on = any_sounding & ((top != previous_top) | attacked)
        note_off = ~any_sounding & (previous_top >= 0)
        events = np.zeros(grid.n_steps, np.int32)
        events[note_off] = self.NOTE_OFF
        events[note_on] = self.FIRST_NOTE_ON + self.fold_into_range(top[note_on]) - self.min_pitch
        return events

    def decode(self, array: np.ndarray, qpm: float = DEFAULT_QPM) -> NoteSequence:
        """Events -> NoteSequence: a note-on lasts until the next note-on or note-off (or the end)."""
        events = check_event_array(array, self.name, self.vocab_size)
        changes = np.flatnonzero(events != self.NO_EVENT)
        ends = np.append(changes[1:], len(events))
        is_on = events[changes] >= self.FIRST_NOTE_ON
        pitch = events[changes][is_on] - self.FIRST_NOTE_ON + self.min_pitch
        return grid_sequence(pitch, changes[is_on], ends[is_on], seconds_per_step=grid_step_seconds(
            qpm, self.steps_per_quarter), qpm=qpm, n_steps=len(events))

    def transpose(self, array: np.ndarray, semitones: int) -> np.ndarray | None:
        """Shift the note-on tokens; None if a note would leave [min_pitch, max_pitch]."""
        events = check_event_array(array, self.name, self.vocab_size)
        is_on = events >= self.FIRST_NOTE_ON
        shifted = events[is_on].astype(np.int64) + semitones
        if shifted.size and (shifted.min() < self.FIRST_NOTE_ON or shifted.max() >= self.vocab_size):
            return None
        out = events.copy()
        out[is_on] = shifted
        return out


ENCODINGS: dict[str, type] = {
    PianoRollEncoding.name: PianoRollEncoding,
    MelodyEncoding.name: MelodyEncoding,
    PerformanceEncoding.name: PerformanceEncoding,
    MultitrackEncoding.name: MultitrackEncoding,
}


def get_encoding(name: str, **options: Any) -> Encoding:
    """Build the encoding called `name` ("pianoroll", "melody", "performance", "multitrack") with `options`."""
    if name not in ENCODINGS:
        raise ValueError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}")
    cls = ENCODINGS[name]
    known = {field.name for field in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"encoding {name!r} has no option(s) {', '.join(unknown)};"
                         f" its options: {', '.join(sorted(known))}")
    return cls(**options)
