"""The edit spec: one command-line edit (`--transpose 2@violin`, `--trim "bars 1:8"`, ...) parsed into a function
of a NoteSequence, with the syntax help `musejax edit` prints."""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

import pretty_midi

from musejax.edit import ops as edit
from musejax.midi import gm
from musejax.midi.tracks import NoteSequence

SYNTAX = """\
Edits run in the order given on the command line and may repeat (--transpose 2 --tempo 0.5 --transpose -2).

TRACK (after @, or before = in --program): a 0-based track index as shown by --list-tracks, "drums", a track
name (case-insensitive, tried first), or a General MIDI program name (every pitched track using that program).
Without @TRACK an edit applies to every track. PROGRAM: 0-127 as stored in MIDI (the printed GM list is
1-based: violin is 40) or a GM name or part of one ("violin", "acoustic grand piano", "nylon", "piano").

  --transpose N[@TRACK]       N semitones up (2, +7) or down (-12). Drum notes are never transposed; notes
                              pushed outside MIDI 0-127 are dropped and reported. Key signatures follow when
                              all pitched tracks move. Negative with a track: --transpose=-2@1
  --tempo F | Nbpm            F > 0 plays F times as fast (1.25, 0.5); 90bpm sets the opening tempo to 90
                              quarter notes per minute. Every tempo change is scaled in proportion.
  --velocity V[@TRACK]        0.8 scales, +10 / -10 adds, 40-100 maps the softest..loudest note onto
                              40..100 (compress/expand). Results are rounded and kept in 1-127.
  --program [TRACK=]PROGRAM   piano=violin, 0=40, 2=flute, drums=25; without TRACK= every pitched track.
  --quantize GRID[+durations][@TRACK]
                              GRID: whole, half, quarter, 8th, 16th, 32nd, 64th or 1/N, optionally
                              -triplet (8th-triplet). Moves onsets (keeping lengths); +durations also snaps
                              note ends (at least one grid step long). The grid follows the tempo map.
  --trim START:END | "bars A:B" | barsA:B
                              seconds, either side may be empty (30: = from 30 s to the end); bars are
                              1-based and inclusive, counted from time 0 by the file's time signatures.
                              Notes across a boundary are cut; the tempo, signatures and controller
                              values in force at START are kept at the new time 0.
  --merge T1,T2[,...]         move the listed tracks into the first one.
  --split PITCH@TRACK         move the track's notes below PITCH (60 or C4) to a new track.

Input: MIDI, MusicXML, ABC (anything musejax can read); output: MIDI. OUT is written to a temporary file in
its directory and renamed over OUT only when complete.

Kept through every edit: other tracks, control changes, pitch bends, tempo changes, time and key signatures,
track names, and (for MIDI input) lyrics, markers, text, cue points, copyright and the song name, written
back into the first track. Not kept: MIDI channel numbers (reassigned), SysEx, aftertouch, tempo changes
placed outside the first track (MIDI readers ignore them), and anything the reader itself does not keep
(e.g. MusicXML lyrics and dynamics markings).
"""


class Operation(NamedTuple):
    option: str  # "transpose", "tempo", ...
    text: str  # the value as typed
    apply: Callable[[NoteSequence], edit.EditResult]


def _split_track(text: str) -> tuple[str, str | None]:
    """("2", "violin") for "2@violin"; (text, None) without @."""
    value, sep, track = text.rpartition("@")
    return (value.strip(), track.strip() or None) if sep else (text.strip(), None)


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {text!r}") from None


def _pitch(text: str) -> int:
    if re.fullmatch(r"\d+", text):
        return int(text)
    try:
        return int(pretty_midi.note_name_to_number(text))
    except (ValueError, KeyError, AttributeError):
        raise ValueError(f"pitch must be a MIDI number or a note name like C4 or F#3, got {text!r}") from None


def parse_operation(option: str, text: str) -> Operation:
    """Turn one command-line edit into a function of a NoteSequence; ValueError with the reason if malformed."""
    value, track = _split_track(text)
    if option == "transpose":
        if not re.fullmatch(r"[+-]?\d+", value):
            raise ValueError(f"expected whole semitones like 2, -12 or 7@violin, got {text!r}")
        semitones = int(value)
        return Operation(option, text, lambda ns: edit.transpose(ns, semitones, track))
    if option == "tempo":
        match = re.fullmatch(r"(.+?)\s*bpm", text.strip(), flags=re.IGNORECASE)
        amount = _number(match.group(1) if match else text, "tempo")
        if not amount > 0 or amount == float("inf"):
            raise ValueError(f"tempo {'bpm' if match else 'factor'} must be positive, got {text!r}")
        if match:
            return Operation(option, text, lambda ns: edit.change_tempo(ns, bpm=amount))
        return Operation(option, text, lambda ns: edit.change_tempo(ns, factor=amount))
    if option == "velocity":
        if re.fullmatch(r"[+-]\d+", value):
            offset = int(value)
            return Operation(option, text, lambda ns: edit.change_velocity(ns, offset=offset, tracks=track))
        if match := re.fullmatch(r"(\d+)\s*-\s*(\d+)", value):
            low, high = int(match.group(1)), int(match.group(2))
            if not 1 <= low <= high <= 127:
                raise ValueError(f"velocity range must be LOW-HIGH within 1-127, got {text!r}")
            return Operation(option, text,
                             lambda ns: edit.change_velocity(ns, velocity_range=(low, high), tracks=track))
        scale = _number(value, "velocity factor")
        if not 0 < scale < float("inf"):
            raise ValueError(f"velocity factor must be positive, got {text!r}")
        return Operation(option, text, lambda ns: edit.change_velocity(ns, scale=scale, tracks=track))
    if option == "program":
        target, sep, program_text = text.partition("=")
        selector = target.strip() if sep else None
        program_text = program_text if sep else text
        if sep and not selector:
            raise ValueError(f"expected TRACK=PROGRAM or PROGRAM, got {text!r}")
        program = gm.parse_program(program_text)
        return Operation(option, text, lambda ns: edit.set_program(ns, program, selector))
    if option == "quantize":
        grid, plus, extra = value.partition("+")
        if plus and extra.strip().lower() not in ("durations", "duration", "dur"):
            raise ValueError(f"expected GRID or GRID+durations, got {text!r}")
        edit.grid_quarters(grid)  # validates the name now, before the file is read
        return Operation(option, text, lambda ns: edit.quantize(ns, grid.strip(), durations=bool(plus), tracks=track))
    if option == "trim":
        if match := re.fullmatch(r"\s*bars?\s*:?\s*(\d*)\s*:\s*(\d*)\s*", text, flags=re.IGNORECASE):
            first = int(match.group(1) or 1)
            last = int(match.group(2)) if match.group(2) else None
            return Operation(option, text, lambda ns: edit.trim_bars(ns, first, last))
        start_text, colon, end_text = text.partition(":")
        if not colon:
            raise ValueError(f"expected START:END in seconds or 'bars A:B', got {text!r}")
        start = _number(start_text, "trim start") if start_text.strip() else 0.0
        end = _number(end_text, "trim end") if end_text.strip() else None
        if start < 0 or (end is not None and end <= start):
            raise ValueError(f"trim range must have 0 <= START < END, got {text!r}")
        return Operation(option, text, lambda ns: edit.trim(ns, start, end))
    if option == "merge":
        selectors = [part.strip() for part in text.split(",") if part.strip()]
        if len(selectors) < 2:
            raise ValueError(f"expected at least two tracks separated by commas, got {text!r}")
        return Operation(option, text, lambda ns: edit.merge_tracks(ns, selectors))
    if option == "split":
        if track is None:
            raise ValueError(f"expected PITCH@TRACK (e.g. C4@0), got {text!r}")
        pitch = _pitch(value)
        return Operation(option, text, lambda ns: edit.split_track(ns, pitch, track))
    raise ValueError(f"unknown edit --{option}")
