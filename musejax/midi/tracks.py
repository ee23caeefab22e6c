"""Tracks of a NoteSequence, the time grid (tempo map, bars) and shared helpers for `musejax.edit.ops`.

A track is what note-seq's MIDI writer turns into one MIDI track: the events (notes, control changes, pitch
bends) sharing `(instrument, program, is_drum)`. Tracks are indexed 0.. in that sorted order, which for a MIDI
file read by note-seq is the file's instrument order.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from typing import NamedTuple

from note_seq.protobuf import music_pb2

from musejax.midi import gm

NoteSequence = music_pb2.NoteSequence
DEFAULT_QPM = 120.0  # what note-seq's MIDI writer assumes when no tempo is set at time 0


class EditError(ValueError):
    """An edit that cannot be applied to this piece (unknown track, impossible value, range outside the piece)."""


class TrackKey(NamedTuple):
    instrument: int
    program: int
    is_drum: bool


@dataclass(frozen=True)
class Track:
    index: int
    key: TrackKey
    name: str  # track name from the file ("" if none)
    n_notes: int

    def label(self) -> str:
        sound = "drums" if self.key.is_drum else gm.program_name(self.key.program)
        name = f"{self.name!r} " if self.name else ""
        return f"{self.index} {name}({sound}, {self.n_notes} notes)"


def track_key(event) -> TrackKey:
    return TrackKey(event.instrument, event.program, event.is_drum)


def copy_sequence(ns: NoteSequence) -> NoteSequence:
    out = NoteSequence()
    out.CopyFrom(ns)
    return out


def list_tracks(ns: NoteSequence) -> list[Track]:
    """The tracks of `ns` in MIDI-writer order, with names (instrument or part names) and note counts."""
    counts: dict[TrackKey, int] = {}
    parts: dict[TrackKey, set[int]] = {}
    for note in ns.notes:
        key = track_key(note)
        counts[key] = counts.get(key, 0) + 1
        parts.setdefault(key, set()).add(note.part)
    for event in list(ns.control_changes) + list(ns.pitch_bends):
        counts.setdefault(track_key(event), 0)
    names = {info.instrument: info.name for info in ns.instrument_infos if info.name}
    part_names = {info.part: info.name for info in ns.part_infos if info.name}
    tracks = []
    for index, key in enumerate(sorted(counts)):
        name = names.get(key.instrument, "")
        if not name and len(parts.get(key, ())) == 1:
            name = part_names.get(next(iter(parts[key])), "")
        tracks.append(Track(index, key, name, counts[key]))
    return tracks


def describe_tracks(ns: NoteSequence) -> str:
    return "; ".join(track.label() for track in list_tracks(ns)) or "no tracks"


def select_tracks(ns: NoteSequence, selector: str | int | None) -> list[TrackKey]:
    """Tracks named by `selector`: None = all; an index; "drums"; a track name; or a GM program name/number.

    A name may select several tracks (every piano track); EditError if none matches.
    """
    tracks = list_tracks(ns)
    if selector is None:
        return [track.key for track in tracks]
    text = str(selector).strip()
    if re.fullmatch(r"\d+", text):
        index = int(text)
        if index >= len(tracks):
            raise EditError(f"no track {index}: the piece has {len(tracks)} tracks: {describe_tracks(ns)}")
        return [tracks[index].key]
    lowered = text.lower()
    if lowered in ("drum", "drums"):
        chosen = [track.key for track in tracks if track.key.is_drum]
    else:
        chosen = [track.key for track in tracks if track.name and track.name.lower() == lowered]
        if not chosen:
            program = gm.find_program(text)
            chosen = [t.key for t in tracks if program is not None and not t.key.is_drum and t.key.program == program]
    if not chosen:
        raise EditError(f"no track matches {text!r}; tracks: {describe_tracks(ns)}")
    return chosen


def piece_end_seconds(ns: NoteSequence) -> float:
    return max([ns.total_time] + [note.end_time for note in ns.notes])


class TempoMap:
    """Seconds <-> quarter notes under the sequence's tempo changes (120 qpm before a first tempo, as written)."""

    def __init__(self, ns: NoteSequence):
        self.times, self.quarters, self.qpms = [0.0], [0.0], [DEFAULT_QPM]
        for tempo in sorted(ns.tempos, key=lambda t: t.time):
            if tempo.time <= self.times[-1]:
                self.qpms[-1] = tempo.qpm
                continue
            quarters = self.quarters[-1] + (tempo.time - self.times[-1]) * self.qpms[-1] / 60.0
            self.times.append(tempo.time)
            self.quarters.append(quarters)
            self.qpms.append(tempo.qpm)

    def to_quarters(self, seconds: float) -> float:
        i = max(bisect.bisect_right(self.times, seconds) - 1, 0)
        return self.quarters[i] + (seconds - self.times[i]) * self.qpms[i] / 60.0

    def to_seconds(self, quarters: float) -> float:
        i = max(bisect.bisect_right(self.quarters, quarters) - 1, 0)
        return self.times[i] + (quarters - self.quarters[i]) * 60.0 / self.qpms[i]


def bar_start_seconds(ns: NoteSequence) -> list[float]:
    """Start time of every bar up to the end of the piece, counting from time 0 with the file's time signatures.

    A time signature change always starts a new bar; no time signature means 4/4.
    """
    tempo_map = TempoMap(ns)
    end_quarters = tempo_map.to_quarters(piece_end_seconds(ns))
    signatures = {0.0: (4, 4)}
    for signature in sorted(ns.time_signatures, key=lambda s: s.time):
        if signature.numerator > 0 and signature.denominator > 0:
            signatures[round(tempo_map.to_quarters(signature.time), 9)] = (signature.numerator, signature.denominator)
    changes = sorted(signatures.items())
    starts: list[float] = []
    for i, (begin, (numerator, denominator)) in enumerate(changes):
        stop = changes[i + 1][0] if i + 1 < len(changes) else end_quarters
        bar_quarters = numerator * 4.0 / denominator
        position = begin
        while position < stop - 1e-9:
            starts.append(tempo_map.to_seconds(position))
            position += bar_quarters
    return starts or [0.0]


def round_half_up(value: float) -> int:
    """Nearest integer, halves rounded up (so hand-computed expectations are unambiguous)."""
    return math.floor(value + 0.5)
