"""Music editing operations on NoteSequence: transpose, tempo, velocity, program, quantize, trim, merge, split.

Each operation is a pure function: it returns `EditResult(sequence, summary)` with a new NoteSequence and a
one-line account of what changed, and leaves its input untouched. Everything an operation was not asked to
change (other tracks, control changes, pitch bends, tempos, signatures, text annotations) is carried over.
Tracks are chosen with `musejax.midi.tracks.select_tracks` selectors (index, "drums", track name or GM program).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

from note_seq.protobuf import music_pb2

from musejax.midi import gm
from musejax.midi.meta import HEADER_TEXT_KINDS
from musejax.midi.tracks import (
    EditError,
    NoteSequence,
    TempoMap,
    TrackKey,
    bar_start_seconds,
    copy_sequence,
    list_tracks,
    piece_end_seconds,
    round_half_up,
    select_tracks,
    track_key,
)

__all__ = [
    "EditError", "EditResult", "transpose", "change_tempo", "change_velocity", "set_program", "quantize",
    "grid_quarters", "trim", "trim_bars", "merge_tracks", "split_track",
]

MIN_QPM = 60e6 / 0xFFFFFF  # a MIDI set_tempo holds 1..16777215 microseconds per quarter note
MAX_QPM = 60e6
_KEY_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
_GRIDS = {"whole": 4.0, "half": 2.0, "quarter": 1.0, "4th": 1.0, "8th": 0.5, "16th": 0.25, "32nd": 0.125,
          "64th": 0.0625}


class EditResult(NamedTuple):
    sequence: NoteSequence
    summary: str


def _replace(container, kept) -> None:
    kept = list(kept)
    del container[:]
    container.extend(kept)


def _tracks_text(keys: Sequence[TrackKey], ns: NoteSequence) -> str:
    all_tracks = list_tracks(ns)
    if len(keys) == len(all_tracks):
        return "all tracks"
    return "track " + ", ".join(str(t.index) + (f" {t.name}" if t.name else "") for t in all_tracks if t.key in keys)


def _timed_containers(ns: NoteSequence):
    return [ns.control_changes, ns.pitch_bends, ns.tempos, ns.time_signatures, ns.key_signatures,
            ns.text_annotations, ns.section_annotations]


def transpose(ns: NoteSequence, semitones: int, tracks: str | int | None = None) -> EditResult:
    """Shift pitches by `semitones` on the selected tracks (default all); drum notes are never transposed.

    Notes pushed outside MIDI 0-127 are dropped and counted. Key signatures follow when every pitched track moves.
    """
    if isinstance(semitones, bool) or not isinstance(semitones, int) or abs(semitones) > 127:
        raise EditError(f"transpose needs a whole number of semitones in -127..127, got {semitones!r}")
    keys = set(select_tracks(ns, tracks))
    out = copy_sequence(ns)
    moved, dropped, drums, kept = 0, [], 0, []
    for note in out.notes:
        if track_key(note) in keys and note.is_drum:
            drums += 1
        elif track_key(note) in keys:
            if not 0 <= note.pitch + semitones <= 127:
                dropped.append(note.pitch + semitones)
                continue
            note.pitch += semitones
            note.ClearField("pitch_name")  # the old spelling no longer applies
            moved += 1
        kept.append(note)
    _replace(out.notes, kept)
    pitched = {t.key for t in list_tracks(ns) if not t.key.is_drum}
    key_text = ""
    if pitched and pitched <= keys and semitones % 12 and len(out.key_signatures):
        for signature in out.key_signatures:
            signature.key = (signature.key + semitones) % 12
        key_text = f", key signatures -> {', '.join(_KEY_NAMES[s.key] for s in out.key_signatures)}"
    summary = f"transpose {semitones:+d} ({_tracks_text(sorted(keys), ns)}): {moved} notes transposed"
    if dropped:
        summary += f", {len(dropped)} notes out of MIDI range 0-127 dropped (would be {min(dropped)}..{max(dropped)})"
    if drums:
        summary += f", {drums} drum notes left as they are"
    return EditResult(out, summary + key_text)


def _scale_times(out: NoteSequence, factor: float) -> None:
    """Divide every time by `factor` (play `factor` times as fast)."""
    for note in out.notes:
        note.start_time /= factor
        note.end_time /= factor
    for container in _timed_containers(out):
        for event in container:
            event.time /= factor
    out.total_time /= factor


def change_tempo(ns: NoteSequence, *, factor: float | None = None, bpm: float | None = None) -> EditResult:
    """Play `factor` times as fast, or set the opening tempo to `bpm` quarter notes per minute.

    Every tempo change is scaled by the same factor, so the music keeps its shape (and its MIDI ticks).
    """
    if (factor is None) == (bpm is None):
        raise EditError("change_tempo needs exactly one of factor or bpm")
    first_qpm = TempoMap(ns).qpms[0]
    if bpm is not None:
        if not (math.isfinite(bpm) and bpm > 0):
            raise EditError(f"tempo must be a positive number of beats per minute, got {bpm}")
        factor = bpm / first_qpm
    if not (math.isfinite(factor) and factor > 0):
        raise EditError(f"tempo factor must be a positive number, got {factor}")
    out = copy_sequence(ns)
    _scale_times(out, factor)
    if not any(t.time <= 0 for t in out.tempos):
        out.tempos.add(time=0.0, qpm=first_qpm)
    for tempo in out.tempos:
        tempo.qpm *= factor
        if not MIN_QPM <= tempo.qpm <= MAX_QPM:
            raise EditError(f"tempo would become {tempo.qpm:.4g} quarter notes per minute, outside what MIDI stores")
    new_first = TempoMap(out).qpms[0]
    return EditResult(out, f"tempo x{factor:.4g}: {first_qpm:.4g} -> {new_first:.4g} bpm at the start, "
                           f"{len(out.tempos)} tempo marks scaled, "
                           f"length {ns.total_time:.2f} s -> {out.total_time:.2f} s")


def change_velocity(ns: NoteSequence, *, scale: float | None = None, offset: int | None = None,
                    velocity_range: tuple[int, int] | None = None, tracks: str | int | None = None) -> EditResult:
    """Scale, offset, or compress velocities (the selected tracks' min..max mapped linearly onto `velocity_range`).

    Results are rounded half up and kept in 1-127. Compressing uniform velocities only clamps them into the range.
    """
    if sum(option is not None for option in (scale, offset, velocity_range)) != 1:
        raise EditError("change_velocity needs exactly one of scale, offset or velocity_range")
    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise EditError(f"velocity factor must be a positive number, got {scale}")
    if velocity_range is not None and not 1 <= velocity_range[0] <= velocity_range[1] <= 127:
        raise EditError(f"velocity range must be LOW-HIGH with 1 <= LOW <= HIGH <= 127, got {velocity_range}")
    keys = set(select_tracks(ns, tracks))
    out = copy_sequence(ns)
    notes = [note for note in out.notes if track_key(note) in keys]
    if not notes:
        return EditResult(out, f"velocity ({_tracks_text(sorted(keys), ns)}): no notes to change")
    low, high = min(n.velocity for n in notes), max(n.velocity for n in notes)
    for note in notes:
        if scale is not None:
            value = note.velocity * scale
        elif offset is not None:
            value = note.velocity + offset
        elif high > low:
            lo, hi = velocity_range
            value = lo + (note.velocity - low) * (hi - lo) / (high - low)
        else:
            value = min(max(note.velocity, velocity_range[0]), velocity_range[1])
        note.velocity = min(max(round_half_up(value), 1), 127)
    how = f"x{scale:g}" if scale is not None else f"{offset:+d}" if offset is not None else \
        f"{velocity_range[0]}-{velocity_range[1]}"
    new_low, new_high = min(n.velocity for n in notes), max(n.velocity for n in notes)
    return EditResult(out, f"velocity {how} ({_tracks_text(sorted(keys), ns)}): {len(notes)} notes, "
                           f"range {low}-{high} -> {new_low}-{new_high}")


def set_program(ns: NoteSequence, program: int | str, tracks: str | int | None = None) -> EditResult:
    """Give the selected tracks (default: all pitched tracks) General MIDI `program` (0-127 or a GM name)."""
    try:
        number = gm.parse_program(program) if isinstance(program, str) else int(program)
        gm.program_name(number)
    except ValueError as err:
        raise EditError(str(err)) from None
    keys = select_tracks(ns, tracks)
    if tracks is None:
        keys = [key for key in keys if not key.is_drum]
    if not keys:
        raise EditError("no pitched track to give a program to (name a drum track explicitly to change its kit)")
    out = copy_sequence(ns)
    chosen = set(keys)
    for event in list(out.notes) + list(out.control_changes) + list(out.pitch_bends):
        if track_key(event) in chosen:
            event.program = number
    before = ", ".join(sorted({f"drum kit {k.program}" if k.is_drum else gm.program_name(k.program) for k in keys}))
    after = f"drum kit {number}" if all(k.is_drum for k in keys) else f"{gm.program_name(number)} ({number})"
    return EditResult(out, f"program ({_tracks_text(keys, ns)}): {before} -> {after}")


def grid_quarters(grid: str) -> float:
    """Length in quarter notes of a grid name: whole, half, quarter, 8th, 16th, 32nd, 64th, 1/N, '-triplet'."""
    text = grid.strip().lower()
    triplet = text.endswith("-triplet")
    base = text.removesuffix("-triplet")
    if base in _GRIDS:
        quarters = _GRIDS[base]
    elif base.startswith("1/") and base[2:].isdigit() and int(base[2:]) > 0:
        quarters = 4.0 / int(base[2:])
    else:
        raise EditError(f"unknown grid {grid!r}; use whole, half, quarter, 8th, 16th, 32nd, 64th or 1/N, "
                        "optionally with -triplet (8th-triplet)")
    return quarters * 2.0 / 3.0 if triplet else quarters


def quantize(ns: NoteSequence, grid: str | float, *, durations: bool = False,
             tracks: str | int | None = None) -> EditResult:
    """Move note onsets (and with `durations`, ends; at least one step long) to the nearest grid line.

    The grid is in quarter notes (or a name, see grid_quarters), laid from time 0 through the tempo map; without
    `durations` a note keeps its length in seconds.
    """
    step = grid_quarters(grid) if isinstance(grid, str) else float(grid)
    if not (math.isfinite(step) and step > 0):
        raise EditError(f"quantize grid must be a positive length, got {grid!r}")
    keys = set(select_tracks(ns, tracks))
    out = copy_sequence(ns)
    tempo_map = TempoMap(ns)
    moved, largest = 0, 0.0
    for note in out.notes:
        if track_key(note) not in keys:
            continue
        start_step = round_half_up(tempo_map.to_quarters(note.start_time) / step)
        start = tempo_map.to_seconds(start_step * step)
        if durations:
            end_step = max(round_half_up(tempo_map.to_quarters(note.end_time) / step), start_step + 1)
            end = tempo_map.to_seconds(end_step * step)
        else:
            end = start + (note.end_time - note.start_time)
        shift = abs(start - note.start_time)
        if shift > 1e-9 or abs(end - note.end_time) > 1e-9:
            moved += 1
        largest = max(largest, shift)
        note.start_time, note.end_time = start, end
    out.total_time = max([ns.total_time] + [note.end_time for note in out.notes])
    what = "onsets and durations" if durations else "onsets"
    name = grid if isinstance(grid, str) else f"{step:g} quarters"
    return EditResult(out, f"quantize {what} to {name} ({_tracks_text(sorted(keys), ns)}): {moved} notes moved, "
                           f"largest onset shift {largest * 1000:.0f} ms")


def _trim_stateful(events, key, start: float, end: float) -> list:
    """Copies of the events in [start, end) shifted by -start, plus the last earlier event of each key at time 0."""
    latest, inside = {}, []
    for event in sorted(events, key=lambda e: e.time):
        if event.time <= start:
            latest[key(event)] = event
        elif event.time < end:
            inside.append(event)
    kept = []
    for original in list(latest.values()) + inside:
        kept.append(type(original)())
        kept[-1].CopyFrom(original)
        kept[-1].time = max(original.time - start, 0.0)
    return kept


def _is_header_text(annotation) -> bool:
    return annotation.annotation_type == annotation.UNKNOWN and \
        annotation.text.partition(":")[0] in HEADER_TEXT_KINDS


def trim(ns: NoteSequence, start_seconds: float = 0.0, end_seconds: float | None = None) -> EditResult:
    """Keep [start_seconds, end_seconds) and shift it to time 0; an end past the piece is clamped to its end.

    Notes sounding across a boundary are cut to it. Tempo, signatures, control values, pitch bend, chord and
    section in force at the start are kept at time 0; lyrics/markers/text outside the range are dropped.
    """
    piece_end = piece_end_seconds(ns)
    end = piece_end if end_seconds is None else end_seconds
    if not (math.isfinite(start_seconds) and math.isfinite(end)) or start_seconds < 0:
        raise EditError(f"trim range {start_seconds}:{end_seconds} must be non-negative seconds")
    if end <= start_seconds:
        raise EditError(f"trim range {start_seconds:g}:{end:g} is empty (the end must come after the start)")
    if start_seconds >= piece_end:
        raise EditError(f"trim start {start_seconds:g} s is past the end of the piece ({piece_end:.2f} s)")
    clamped = end > piece_end
    end = min(end, piece_end)
    out = copy_sequence(ns)
    kept = []
    for note in out.notes:
        if note.start_time < end and (note.end_time > start_seconds or note.start_time >= start_seconds):
            note.start_time = max(note.start_time, start_seconds) - start_seconds
            note.end_time = min(note.end_time, end) - start_seconds
            kept.append(note)
    _replace(out.notes, kept)
    no_key = lambda event: 0  # noqa: E731
    for container, key in ((out.tempos, no_key), (out.time_signatures, no_key), (out.key_signatures, no_key),
                           (out.section_annotations, no_key), (out.pitch_bends, track_key),
                           (out.control_changes, lambda e: (track_key(e), e.control_number))):
        _replace(container, _trim_stateful(container, key, start_seconds, end))
    chords = [a for a in out.text_annotations if a.annotation_type == a.CHORD_SYMBOL]
    texts = _trim_stateful(chords, no_key, start_seconds, end)
    for annotation in out.text_annotations:
        if annotation.annotation_type == annotation.CHORD_SYMBOL:
            continue
        if start_seconds <= annotation.time < end or (_is_header_text(annotation) and annotation.time < start_seconds):
            texts.append(type(annotation)())
            texts[-1].CopyFrom(annotation)
            texts[-1].time = max(annotation.time - start_seconds, 0.0)
    _replace(out.text_annotations, sorted(texts, key=lambda a: a.time))
    out.total_time = max([0.0] + [note.end_time for note in out.notes])
    out.subsequence_info.start_time_offset = ns.subsequence_info.start_time_offset + start_seconds
    summary = f"trim {start_seconds:g}-{end:g} s: kept {len(kept)} of {len(ns.notes)} notes, " \
              f"length {piece_end:.2f} s -> {end - start_seconds:.2f} s"
    if clamped:
        summary += f" (end {end_seconds:g} s is past the end of the piece; kept to the end)"
    return EditResult(out, summary)


def trim_bars(ns: NoteSequence, first_bar: int, last_bar: int | None = None) -> EditResult:
    """Keep bars first_bar..last_bar (1-based, inclusive; bars counted from time 0 by the time signatures)."""
    starts = bar_start_seconds(ns)
    last = len(starts) if last_bar is None else last_bar
    if first_bar < 1 or last < first_bar:
        raise EditError(f"bar range {first_bar}:{last} must satisfy 1 <= FIRST <= LAST")
    if first_bar > len(starts):
        raise EditError(f"bar {first_bar} is past the end of the piece ({len(starts)} bars)")
    end = starts[last] if last < len(starts) else None
    result = trim(ns, starts[first_bar - 1], end)
    note = f" (the piece has {len(starts)} bars; kept to the end)" if last > len(starts) else ""
    return EditResult(result.sequence, f"bars {first_bar}-{min(last, len(starts))}: {result.summary}{note}")


def merge_tracks(ns: NoteSequence, tracks: Sequence[str | int]) -> EditResult:
    """Move every event of the selected tracks into the first one (its instrument and program)."""
    keys: list[TrackKey] = []
    for selector in tracks:
        keys += [key for key in select_tracks(ns, selector) if key not in keys]
    if len(keys) < 2:
        raise EditError(f"merge needs at least two tracks, {list(tracks)} selects {len(keys)}")
    if len({key.is_drum for key in keys}) > 1:
        raise EditError("cannot merge drum and pitched tracks")
    target, merged = keys[0], set(keys[1:])
    out = copy_sequence(ns)
    moved = 0
    for event in list(out.notes) + list(out.control_changes) + list(out.pitch_bends):
        if track_key(event) in merged:
            event.instrument, event.program, event.is_drum = target
            moved += isinstance(event, music_pb2.NoteSequence.Note)
    into = next(t for t in list_tracks(ns) if t.key == target)
    return EditResult(out, f"merge ({_tracks_text(keys, ns)}): {moved} notes moved into track {into.index}")


def split_track(ns: NoteSequence, split_pitch: int, track: str | int) -> EditResult:
    """Move the notes below `split_pitch` of one pitched track to a new track (same program, copied controls)."""
    if not 0 <= split_pitch <= 127:
        raise EditError(f"split pitch must be in 0-127, got {split_pitch}")
    keys = select_tracks(ns, track)
    if len(keys) != 1 or keys[0].is_drum:
        raise EditError(f"split needs exactly one pitched track, {track!r} selects {len(keys)}"
                        + (" drum track" if keys and keys[0].is_drum else ""))
    key = keys[0]
    events = list(ns.notes) + list(ns.control_changes) + list(ns.pitch_bends)
    new_instrument = max(e.instrument for e in events) + 1
    out = copy_sequence(ns)
    moved = 0
    for note in out.notes:
        if track_key(note) == key and note.pitch < split_pitch:
            note.instrument = new_instrument
            moved += 1
    for container in (out.control_changes, out.pitch_bends):
        for event in [e for e in container if track_key(e) == key]:
            container.add().CopyFrom(event)
            container[-1].instrument = new_instrument
    source = next(t for t in list_tracks(ns) if t.key == key)
    if source.name:
        out.instrument_infos.add(instrument=new_instrument, name=f"{source.name} (low)")
    return EditResult(out, f"split track {source.index} at pitch {split_pitch}: {moved} notes below it moved to a "
                           f"new track, {source.n_notes - moved} stay")
