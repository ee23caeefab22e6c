"""MIDI bytes <-> NoteSequence without losing lyrics, markers, text and signatures.

note-seq's MIDI reader (pretty_midi underneath) keeps notes, control changes, pitch bends, track names and the
first track's tempos, time and key signatures. It drops every text meta event (lyrics, markers, text, cue points,
copyright, the conductor track's name) and signatures placed on other tracks. `add_midi_extras` carries those
into the NoteSequence: signatures as signatures, text as `ns.text_annotations` (type UNKNOWN, tagged
`"<kind>:<text>"`, e.g. `"lyrics:Ky-"`, `"marker:Chorus"`), so edits move them with the music.
`sequence_to_midi_bytes` (and `write_midi`, the project's one MIDI writer) writes them back into the first
(conductor) track, where pretty_midi also puts lyrics,
and stores tempos to the microsecond (pretty_midi truncates). Chord-symbol annotations (from MusicXML) are written
as text events; beat annotations are analysis data and are not written.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import mido
import note_seq
from note_seq import constants
import pretty_midi
from note_seq.protobuf import music_pb2

from musejax.data.atomic import write_bytes_atomically

# mido meta-message types carried through an edit; header kinds belong to the whole piece (kept by a trim).
TEXT_KINDS: tuple[str, ...] = ("lyrics", "marker", "text", "cue_marker", "copyright", "track_name")
HEADER_TEXT_KINDS: frozenset[str] = frozenset({"copyright", "track_name"})

_TextAnnotation = music_pb2.NoteSequence.TextAnnotation
# Marks where a primer ends in a sampled continuation; written to MIDI as the text event "primer end".
PRIMER_END_ANNOTATION = "musejax:primer-end"
PRIMER_END_TEXT = "primer end"


def tag_text(kind: str, text: str) -> str:
    """The text_annotations text for a MIDI meta event of `kind`."""
    if kind not in TEXT_KINDS:
        raise ValueError(f"unknown MIDI text kind {kind!r}; expected one of {TEXT_KINDS}")
    return f"{kind}:{text}"


def untag_text(annotation: _TextAnnotation) -> tuple[str, str] | None:
    """(kind, text) of an annotation to write as a MIDI meta event, or None for one that is not written."""
    if annotation.annotation_type == _TextAnnotation.CHORD_SYMBOL:
        return "text", annotation.text
    if annotation.annotation_type != _TextAnnotation.UNKNOWN:
        return None
    if annotation.text == PRIMER_END_ANNOTATION:
        return "text", PRIMER_END_TEXT
    kind, sep, text = annotation.text.partition(":")
    if sep and kind in TEXT_KINDS:
        return kind, text
    return "text", annotation.text


def _meta_events(data: bytes) -> list[tuple[float, mido.MetaMessage, bool]]:
    """(time_seconds, message, in_a_track_with_channel_events) for every meta event, in time order.

    Times follow pretty_midi's tempo map, the one note-seq's reader used for the notes.
    """
    midi = mido.MidiFile(file=io.BytesIO(data))
    with warnings.catch_warnings():  # pretty_midi warns about signatures outside track 0: we handle those
        warnings.simplefilter("ignore", RuntimeWarning)
        timing = pretty_midi.PrettyMIDI(io.BytesIO(data))
    events = []
    for track in midi.tracks:
        has_channel_events = any(not message.is_meta and message.type != "sysex" for message in track)
        tick = 0
        for message in track:
            tick += message.time
            if message.is_meta:
                events.append((float(timing.tick_to_time(tick)), message, has_channel_events))
    events.sort(key=lambda event: event[0])
    return events


def add_midi_extras(ns: music_pb2.NoteSequence, data: bytes) -> music_pb2.NoteSequence:
    """A copy of `ns` (read from MIDI `data`) plus what note-seq's reader dropped: text meta events as tagged
    text annotations, and time/key signatures found outside the first track (duplicates skipped).

    Track names of tracks holding notes are not repeated (note-seq keeps them as instrument names).
    """
    out = music_pb2.NoteSequence()
    out.CopyFrom(ns)
    for time_seconds, message, has_channel_events in _meta_events(data):
        if message.type in TEXT_KINDS and not (message.type == "track_name" and has_channel_events):
            text = message.name if message.type == "track_name" else message.text
            out.text_annotations.add(time=time_seconds, text=tag_text(message.type, text),
                                     annotation_type=_TextAnnotation.UNKNOWN)
        elif message.type == "time_signature":
            if not any(abs(s.time - time_seconds) < 1e-6 and (s.numerator, s.denominator) ==
                       (message.numerator, message.denominator) for s in out.time_signatures):
                out.time_signatures.add(time=time_seconds, numerator=message.numerator,
                                        denominator=message.denominator)
        elif message.type == "key_signature":
            key, mode = divmod(pretty_midi.key_name_to_key_number(message.key), 12)[::-1]
            if not any(abs(k.time - time_seconds) < 1e-6 and (k.key, k.mode) == (key, mode)
                       for k in out.key_signatures):
                out.key_signatures.add(time=time_seconds, key=key, mode=mode)
    return out


def _name_instruments(ns: music_pb2.NoteSequence) -> music_pb2.NoteSequence:
    """Renumber tracks 1..N (note-seq's writer loses data when two tracks share instrument 0) and name them."""
    out = music_pb2.NoteSequence()
    out.CopyFrom(ns)
    events = list(out.notes) + list(out.control_changes) + list(out.pitch_bends)
    keys = sorted({(e.instrument, e.program, e.is_drum) for e in events})
    number = {key: index + 1 for index, key in enumerate(keys)}
    names = {info.instrument: info.name for info in ns.instrument_infos if info.name}
    part_names = {info.part: info.name for info in ns.part_infos if info.name}
    parts: dict[tuple, set[int]] = {}
    for note in ns.notes:
        parts.setdefault((note.instrument, note.program, note.is_drum), set()).add(note.part)
    del out.instrument_infos[:]
    for key in keys:
        name = names.get(key[0])
        if name is None and len(parts.get(key, ())) == 1:
            name = part_names.get(next(iter(parts[key])))
        if name:
            out.instrument_infos.add(instrument=number[key], name=name)
    for event in events:
        event.instrument = number[(event.instrument, event.program, event.is_drum)]
    return out


def sequence_to_midi_bytes(ns: music_pb2.NoteSequence) -> bytes:
    """A standard MIDI file for `ns`: note-seq's writer plus the text meta events it would drop."""
    pm = note_seq.note_sequence_to_pretty_midi(_name_instruments(ns))
    pm.instruments = [i for i in pm.instruments if i.notes or i.control_changes or i.pitch_bends]
    buffer = io.BytesIO()
    pm.write(buffer)
    midi = mido.MidiFile(file=io.BytesIO(buffer.getvalue()))
    qpm_at_tick = {0: constants.DEFAULT_QUARTERS_PER_MINUTE}
    for tempo in sorted(ns.tempos, key=lambda t: t.time):
        qpm_at_tick[pm.time_to_tick(max(tempo.time, 0.0))] = tempo.qpm
    conductor = midi.tracks[0]
    timed, tick = [], 0
    for message in conductor:
        tick += message.time
        if message.type == "set_tempo" and tick in qpm_at_tick:
            message = message.copy(tempo=mido.bpm2tempo(qpm_at_tick[tick]))
        if message.type != "end_of_track":
            timed.append((tick, message))
    end_tick = tick
    for annotation in ns.text_annotations:
        tagged = untag_text(annotation)
        if tagged is None:
            continue
        kind, text = tagged
        event_tick = pm.time_to_tick(max(annotation.time, 0.0))
        field = "name" if kind == "track_name" else "text"
        timed.append((event_tick, mido.MetaMessage(kind, **{field: text})))
        end_tick = max(end_tick, event_tick)
    timed.sort(key=lambda item: item[0])  # stable: meta events stay after tempo/signatures at the same tick
    conductor.clear()
    previous = 0
    for event_tick, message in timed:
        conductor.append(message.copy(time=event_tick - previous))
        previous = event_tick
    conductor.append(mido.MetaMessage("end_of_track", time=end_tick - previous))
    out = io.BytesIO()
    midi.save(file=out)
    return out.getvalue()


def write_midi(ns: music_pb2.NoteSequence, path: str | Path) -> Path:
    """Write `ns` as a standard MIDI file (`sequence_to_midi_bytes`), atomically; returns the path."""
    path = Path(path)
    write_bytes_atomically(path, sequence_to_midi_bytes(ns))
    return path


def primer_end_seconds(sequence: music_pb2.NoteSequence) -> float | None:
    """Where the primer ends in a sampled continuation (marked by `sample`), or None."""
    for annotation in sequence.text_annotations:
        if annotation.text == PRIMER_END_ANNOTATION:
            return float(annotation.time)
    return None
