"""Multitrack bars for the GAN: segments of n_bars bars, one piano-roll per track (MuseGAN style).

Voice -> track: when the sequence has `part_infos` or its notes use several `part`s (MusicXML scores),
each part is a voice, in score order (the order of `part_infos`, then any other parts ascending), so the
chorales give S, A, T, B -> tracks 0, 1, 2, 3. Otherwise (MIDI) each `instrument` is a voice, ascending,
which is the file's track/channel order. The k-th voice goes to track k; voices beyond n_tracks are
dropped and a piece with fewer voices leaves the last tracks silent. Voices within one part share its
track; drums and pitches outside [min_pitch, min_pitch + n_pitches) are dropped.

Bars: the grid has steps_per_quarter steps per quarter note and a bar fits when it is exactly steps_per_bar
steps long (4/4 or 2/2 with the defaults; steps_per_bar=12 takes 3/4). Bar lines come from the time
signatures (see quantize.bar_grid). Pickups and other partial bars are skipped, except that consecutive
partial bars adding up to exactly one bar count as one (note_seq reports a 4/4 chorale measure split at a
fermata or repeat as 3/4 + 1/4). A segment is n_bars consecutive fitting bars; segments do not overlap and
are laid from the start of each run of fitting bars; silent segments are left out.
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.quantize import (
    DEFAULT_QPM, EncodingError, NoteArrays, bar_grid, check_int_options, encoding_error, encoding_options,
    grid_sequence, grid_step_seconds, note_arrays, notes_to_roll, quantize_to_steps, roll_to_notes,
    shift_pitch_axis)


def track_of_notes(ns: NoteSequence, notes: NoteArrays) -> np.ndarray:
    """Voice rank of every note: parts in score order for scores, instruments ascending otherwise."""
    listed = [info.part for info in ns.part_infos]
    if listed or len(np.unique(notes.part)) > 1:
        key = notes.part
    else:
        key, listed = notes.instrument, []
    present = np.unique(key)
    order = list(dict.fromkeys(listed)) + sorted(set(present.tolist()) - set(listed))
    rank = {voice: index for index, voice in enumerate(order)}
    unique, inverse = np.unique(key, return_inverse=True)
    return np.array([rank[v] for v in unique.tolist()], np.int64)[inverse]


def bar_time_signature(steps_per_bar: int, steps_per_quarter: int) -> tuple[int, int] | None:
    """The time signature of a bar of steps_per_bar steps (4/4 for 16 at 4 per quarter); None if none fits."""
    whole_notes = Fraction(steps_per_bar, 4 * steps_per_quarter)
    if whole_notes.denominator & (whole_notes.denominator - 1):
        return None
    scale = max(1, 4 // whole_notes.denominator)
    return whole_notes.numerator * scale, whole_notes.denominator * scale


@dataclasses.dataclass(frozen=True)
class MultitrackEncoding:
    """(N, n_tracks, n_bars, steps_per_bar, n_pitches) bool segments; see the module docstring for the rules.

    `steps_per_quarter` (an addition to the original contract, default 4) fixes the grid, so that
    steps_per_bar says which meter fits.
    """
    n_tracks: int = 4
    n_bars: int = 4
    steps_per_bar: int = 16
    min_pitch: int = 24
    n_pitches: int = 84
    steps_per_quarter: int = 4
    name: ClassVar[str] = "multitrack"

    def __post_init__(self) -> None:
        check_int_options(self, "n_tracks", "n_bars", "steps_per_bar", "n_pitches", "steps_per_quarter",
                          minimum=1)
        check_int_options(self, "min_pitch", minimum=0)
        if self.min_pitch + self.n_pitches > 128:
            raise ValueError(f"MultitrackEncoding: pitches {self.min_pitch}..{self.min_pitch + self.n_pitches - 1}"
                             f" go past MIDI 127")

    @property
    def segment_shape(self) -> tuple[int, int, int, int]:
        """Shape of one segment: (n_tracks, n_bars, steps_per_bar, n_pitches)."""
        return self.n_tracks, self.n_bars, self.steps_per_bar, self.n_pitches

    def options(self) -> dict[str, Any]:
        """The options as a JSON-able dict."""
        return encoding_options(self)

    def fitting_bar_starts(self, bar_start: np.ndarray, bar_length: np.ndarray, partial: np.ndarray,
                           ) -> np.ndarray:
        """Start steps of the bars exactly steps_per_bar long, joining consecutive partial bars that fit."""
        starts: list[int] = []
        pending_start, pending_length = -1, 0
        for start, length, is_partial in zip(bar_start.tolist(), bar_length.tolist(), partial.tolist()):
            if length == self.steps_per_bar:
                starts.append(start)
                pending_start, pending_length = -1, 0
            elif is_partial and length < self.steps_per_bar:
                if pending_start >= 0 and pending_start + pending_length == start \
                        and pending_length + length <= self.steps_per_bar:
                    pending_length += length
                else:
                    pending_start, pending_length = start, length
                if pending_length == self.steps_per_bar:
                    starts.append(pending_start)
                    pending_start, pending_length = -1, 0
            else:
                pending_start, pending_length = -1, 0
        return np.array(starts, np.int64)

    def segment_starts(self, bar_starts: np.ndarray) -> np.ndarray:
        """First steps of non-overlapping runs of n_bars consecutive fitting bars."""
        if not len(bar_starts):
            return bar_starts
        new_run = np.ones(len(bar_starts), bool)
        new_run[1:] = bar_starts[1:] != bar_starts[:-1] + self.steps_per_bar
        run_first = np.flatnonzero(new_run)
        run_id = np.cumsum(new_run) - 1
        run_length = np.diff(np.append(run_first, len(bar_starts)))
        position = np.arange(len(bar_starts)) - run_first[run_id]
        first = (position % self.n_bars == 0) & (run_length[run_id] - position >= self.n_bars)
        return bar_starts[first]

    def encode(self, ns: NoteSequence) -> np.ndarray:
        """NoteSequence -> (N, n_tracks, n_bars, steps_per_bar, n_pitches) bool, every bar-aligned segment."""
        notes = note_arrays(ns, self.name)
        track = track_of_notes(ns, notes)
        pitch_index = notes.pitch - self.min_pitch
        keep = (track < self.n_tracks) & (pitch_index >= 0) & (pitch_index < self.n_pitches)
        if not keep.any():
            raise encoding_error(ns, self.name, f"no notes in the first {self.n_tracks} voices within MIDI"
                                 f" {self.min_pitch}..{self.min_pitch + self.n_pitches - 1}")
        grid = quantize_to_steps(ns, notes.select(keep), self.steps_per_quarter, self.name)
        bar_start, bar_length, partial = bar_grid(ns, self.steps_per_quarter, grid.n_steps, self.name)
        starts = self.segment_starts(self.fitting_bar_starts(bar_start, bar_length, partial))
        if not len(starts):
            raise encoding_error(ns, self.name, f"no {self.n_bars} consecutive bars of {self.steps_per_bar}"
                                 f" steps at {self.steps_per_quarter} steps per quarter (time signatures "
                                 f"{[(t.numerator, t.denominator) for t in ns.time_signatures]})")
        segment_steps = self.n_bars * self.steps_per_bar
        n_steps = max(grid.n_steps, int(starts.max()) + segment_steps)
        columns = track[keep] * self.n_pitches + pitch_index[keep]
        sounding, _ = notes_to_roll(columns, grid.start_step, grid.end_step, n_steps,
                                    self.n_tracks * self.n_pitches)
        frames = sounding[starts[:, None] + np.arange(segment_steps)]
        segments = frames.reshape(len(starts), self.n_bars, self.steps_per_bar, self.n_tracks, self.n_pitches)
        segments = segments.transpose(0, 3, 1, 2, 4)
        audible = segments.any(axis=(1, 2, 3, 4))
        if not audible.any():
            raise encoding_error(ns, self.name, "every bar-aligned segment is silent")
        return np.ascontiguousarray(segments[audible])

    def decode(self, array: np.ndarray, qpm: float = DEFAULT_QPM) -> NoteSequence:
        """One segment (n_tracks, n_bars, steps_per_bar, n_pitches) -> NoteSequence, one instrument per track.

        A run of active steps in a track is one note (runs continue across bar lines); track t becomes
        instrument and part t, and `part_infos` lists every track so encoding it again restores the order.
        """
        segment = np.asarray(array)
        if segment.shape != self.segment_shape:
            raise EncodingError(f"{self.name} decode: expected one segment of shape {self.segment_shape},"
                                f" got {segment.shape}")
        n_steps = self.n_bars * self.steps_per_bar
        roll = segment.astype(bool).transpose(1, 2, 0, 3).reshape(n_steps, self.n_tracks * self.n_pitches)
        columns, start, end = roll_to_notes(roll)
        ns = grid_sequence(columns % self.n_pitches + self.min_pitch, start, end,
                           seconds_per_step=grid_step_seconds(qpm, self.steps_per_quarter), qpm=qpm,
                           n_steps=n_steps, instrument=columns // self.n_pitches,
                           time_signature=bar_time_signature(self.steps_per_bar, self.steps_per_quarter))
        for track in range(self.n_tracks):
            ns.part_infos.add(part=track, name=f"track {track}")
        return ns

    def transpose(self, array: np.ndarray, semitones: int) -> np.ndarray | None:
        """Shift along the pitch axis (segments or batches of them); None if a note would leave the range."""
        return shift_pitch_axis(array, semitones)
