"""Performance events (PerformanceRNN style) for expressive MIDI: absolute time, velocities, no grid of beats."""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.quantize import (
    DEFAULT_QPM, check_event_array, check_int_options, encoding_error, encoding_options, grid_sequence, note_arrays,
    resolve_overlaps, round_to_steps)

MIDI_PITCHES = 128
DEFAULT_DECODE_VELOCITY = 64  # for note-ons before any velocity event (only in generated streams)


@dataclasses.dataclass(frozen=True)
class PerformanceEncoding:
    """(N,) int32 events: [0,128) note-on, [128,256) note-off, then time-shifts of 1..max_shift_steps steps,
    then velocity bins (vocab 388 with the defaults).

    Times are rounded to 1/steps_per_second s (10 ms) in absolute seconds (the tempo map plays no part);
    a gap longer than max_shift_steps becomes several shifts (full ones, then the rest). Velocity 1..127 goes
    to bin (v - 1) // ceil(127 / velocity_bins); a bin decodes to its lowest velocity. Canonical order within a
    time step: note-offs, then note-ons, each by ascending pitch; a velocity event precedes a note-on whose
    bin differs from the last one written. Same-pitch notes are made disjoint first (their union, split at
    each onset). Sustain pedal is not applied: call note_seq.apply_sustain_control_changes first if wanted.
    """
    velocity_bins: int = 32
    steps_per_second: int = 100
    max_shift_steps: int = 100
    name: ClassVar[str] = "performance"

    NOTE_ON: ClassVar[int] = 0
    NOTE_OFF: ClassVar[int] = MIDI_PITCHES
    TIME_SHIFT: ClassVar[int] = 2 * MIDI_PITCHES

    def __post_init__(self) -> None:
        check_int_options(self, "velocity_bins", "steps_per_second", "max_shift_steps", minimum=1)
        if self.velocity_bins > 127:
            raise ValueError(f"PerformanceEncoding: velocity_bins must be <= 127, got {self.velocity_bins}")

    @property
    def velocity_offset(self) -> int:
        """Token of velocity bin 0."""
        return self.TIME_SHIFT + self.max_shift_steps

    @property
    def vocab_size(self) -> int:
        """Number of event tokens (388 with the defaults)."""
        return self.velocity_offset + self.velocity_bins

    @property
    def velocity_bin_size(self) -> int:
        """Velocities per bin: ceil(127 / velocity_bins)."""
        return -(-127 // self.velocity_bins)

    def options(self) -> dict[str, Any]:
        """The options as a JSON-able dict."""
        return encoding_options(self)

    def encode(self, ns: NoteSequence) -> np.ndarray:
        """NoteSequence -> (N,) int32 canonical event stream (see the class docstring)."""
        notes = note_arrays(ns, self.name)
        start = round_to_steps(notes.start_seconds * self.steps_per_second)
        end = np.maximum(round_to_steps(notes.end_seconds * self.steps_per_second), start + 1)
        order, pitch, start, end = resolve_overlaps(notes.pitch, start, end)
        velocity_bin = (np.clip(notes.velocity[order], 1, 127) - 1) // self.velocity_bin_size
        if not len(pitch):
            raise encoding_error(ns, self.name, "no notes")
        return self._events(pitch, start, end, velocity_bin)

    def _events(self, pitch: np.ndarray, start: np.ndarray, end: np.ndarray, velocity_bin: np.ndarray,
                ) -> np.ndarray:
        """Lay out the tokens of disjoint-per-pitch notes (vectorised: shifts, velocity, event per change)."""
        time = np.concatenate([end, start])
        is_on = np.concatenate([np.zeros(len(pitch), bool), np.ones(len(pitch), bool)])
        pitches = np.concatenate([pitch, pitch])
        bins = np.concatenate([np.full(len(pitch), -1), velocity_bin])
        order = np.lexsort((pitches, is_on, time))
        time, is_on, pitches, bins = time[order], is_on[order], pitches[order], bins[order]
        event_token = np.where(is_on, self.NOTE_ON + pitches, self.NOTE_OFF + pitches)

        on_index = np.flatnonzero(is_on)
        bin_changed = np.ones(len(on_index), bool)
        bin_changed[1:] = bins[on_index][1:] != bins[on_index][:-1]
        needs_velocity = np.zeros(len(time), bool)
        needs_velocity[on_index[bin_changed]] = True

        gap = np.diff(time, prepend=0)
        n_shifts = -(-gap // self.max_shift_steps)
        counts = n_shifts + needs_velocity + 1
        offsets = np.cumsum(counts) - counts
        events = np.empty(int(counts.sum()), np.int32)
        events[offsets + counts - 1] = event_token
        events[(offsets + n_shifts)[needs_velocity]] = self.velocity_offset + bins[needs_velocity]
        owner = np.repeat(np.arange(len(time)), n_shifts)
        within = np.arange(len(owner)) - np.repeat(np.cumsum(n_shifts) - n_shifts, n_shifts)
        last = within == n_shifts[owner] - 1
        shift = np.where(last, gap[owner] - self.max_shift_steps * (n_shifts[owner] - 1), self.max_shift_steps)
        events[offsets[owner] + within] = self.TIME_SHIFT + shift - 1
        return events

    def decode(self, array: np.ndarray, qpm: float = DEFAULT_QPM) -> NoteSequence:
        """Events -> NoteSequence (times in seconds; `qpm` only sets the tempo written to MIDI).

        Lenient for generated streams: a note-on of a sounding pitch ends it first, a note-off of a silent
        pitch is ignored, zero-length notes are dropped and notes still open at the end close there.
        """
        events = check_event_array(array, self.name, self.vocab_size, "N")
        step, velocity = 0, DEFAULT_DECODE_VELOCITY
        sounding: dict[int, tuple[int, int]] = {}
        notes: list[tuple[int, int, int, int]] = []

        def close(pitch: int, end_step: int) -> None:
            start_step, note_velocity = sounding.pop(pitch)
            if end_step > start_step:
                notes.append((pitch, start_step, end_step, note_velocity))

        for token in events.tolist():
            if token < self.NOTE_OFF:
                if token in sounding:
                    close(token, step)
                sounding[token] = (step, velocity)
            elif token < self.TIME_SHIFT:
                if token - self.NOTE_OFF in sounding:
                    close(token - self.NOTE_OFF, step)
            elif token < self.velocity_offset:
                step += token - self.TIME_SHIFT + 1
            else:
                velocity = (token - self.velocity_offset) * self.velocity_bin_size + 1
        for pitch in list(sounding):
            close(pitch, step)
        pitch, start, end, velocity_array = (np.array(column, np.int64).reshape(-1) for column in zip(*notes)) \
            if notes else (np.zeros(0, np.int64),) * 4
        return grid_sequence(pitch, start, end, seconds_per_step=1.0 / self.steps_per_second, qpm=qpm,
                             n_steps=step, velocity=velocity_array)

    def transpose(self, array: np.ndarray, semitones: int) -> np.ndarray | None:
        """Shift note-on and note-off pitches; None if one would leave MIDI 0..127."""
        events = check_event_array(array, self.name, self.vocab_size, "N")
        out = events.astype(np.int32, copy=True)
        for first in (self.NOTE_ON, self.NOTE_OFF):
            mask = (events >= first) & (events < first + MIDI_PITCHES)
            shifted = events[mask].astype(np.int64) + semitones
            if shifted.size and (shifted.min() < first or shifted.max() >= first + MIDI_PITCHES):
                return None
            out[mask] = shifted
        return out
