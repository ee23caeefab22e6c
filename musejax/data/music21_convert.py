"""music21 scores -> NoteSequences, directly (4x faster than via music21's MIDI export, and it keeps parts).

Used for MusicXML, Humdrum and the ABC tunes note-seq rejects. Ties are joined, grace notes and chord
symbols skipped, repeats kept as written; part i of the score is note.part = note.instrument = i.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from note_seq import NoteSequence

SCORE_DEFAULT_VELOCITY = 64


def _tempo_rows(score) -> list[tuple[float, float, float]]:
    """Tempo map as (offset in quarters, seconds at that offset, quarters per minute) rows;
    120 qpm before the first mark (as note-seq); the first mark at an offset wins (parts repeat them)."""
    from music21 import tempo

    marks: dict[float, float] = {}
    iterator = score.recurse().getElementsByClass(tempo.MetronomeMark)
    for mark in iterator:
        qpm = mark.getQuarterBPM()
        if qpm:
            marks.setdefault(float(iterator.currentHierarchyOffset()), float(qpm))
    rows, offset, seconds, qpm = [(0.0, 0.0, 120.0)], 0.0, 0.0, 120.0
    for start in sorted(marks):
        seconds += (start - offset) * 60.0 / qpm
        offset, qpm = start, marks[start]
        if start == rows[-1][0]:
            rows.pop()
        rows.append((start, seconds, qpm))
    return rows


def _to_seconds(rows: list[tuple[float, float, float]], offset: float) -> float:
    for start, seconds, qpm in reversed(rows):
        if offset >= start:
            return seconds + (offset - start) * 60.0 / qpm
    return offset * 60.0 / rows[0][2]


def _short_meter(quarters: float, denominator: int) -> tuple[int, int] | None:
    """A meter whose bar lasts `quarters` (a pickup's): numerator / denominator, the denominator doubled until
    the numerator is whole (1/4 for a quarter's pickup in 4/4, 1/8 for an eighth's in 6/8); None past 1/64."""
    while denominator <= 64:
        numerator = quarters * denominator / 4.0
        if abs(numerator - round(numerator)) < 1e-6 and round(numerator) >= 1:
            return int(round(numerator)), denominator
        denominator *= 2
    return None


def _meters(part) -> list[tuple[float, int, int]]:
    """(offset in quarters, numerator, denominator) of the part's meters, as the bars are written: a measure
    shorter than its time signature's bar (a pickup, a last bar that completes it, a bar split at a repeat)
    gets a meter of its own length, so bar lines fall where the score has them. A score keeps a pickup's
    notes at offset 0 under the full time signature; read as-is, every later bar line would be off by the
    pickup (two thirds of the bundled chorales)."""
    from music21 import meter, stream

    measures = list(part.getElementsByClass(stream.Measure))
    if not measures:  # no bars written: the time signatures where they stand
        signatures = part.recurse().getElementsByClass(meter.TimeSignature)
        return [(float(signatures.currentHierarchyOffset()), s.numerator, s.denominator) for s in signatures]
    rows = []
    for measure in measures:
        signature = measure.timeSignature or measure.getContextByClass(meter.TimeSignature)
        numerator, denominator = (signature.numerator, signature.denominator) if signature else (4, 4)
        written = float(measure.duration.quarterLength)
        if 0 < written < 4.0 * numerator / denominator - 1e-6:
            numerator, denominator = _short_meter(written, denominator) or (numerator, denominator)
        rows.append((float(measure.offset), numerator, denominator))
    return rows


def music21_to_sequence(score, *, default_velocity: int = SCORE_DEFAULT_VELOCITY) -> NoteSequence:
    """Convert a music21 Score (or Part/Stream) to a NoteSequence: ties joined, grace notes and chord
    symbols skipped, repeats as written; part i -> note.part = note.instrument = i."""
    from music21 import harmony, key
    from note_seq import constants
    from note_seq.protobuf import music_pb2

    ns = music_pb2.NoteSequence(ticks_per_quarter=constants.STANDARD_PPQ)
    ns.source_info.source_type = ns.source_info.SCORE_BASED
    ns.source_info.parser = ns.source_info.MUSIC21
    rows = _tempo_rows(score)
    for start, seconds, qpm in rows:
        ns.tempos.add(time=seconds, qpm=qpm)
    parts = list(getattr(score, "parts", [])) or [score]
    for index, part in enumerate(parts):
        instrument = part.getInstrument(returnDefault=False)
        program = getattr(instrument, "midiProgram", None) or 0
        if part.partName:
            ns.part_infos.add(part=index, name=str(part.partName))
        open_ties = {}  # midi pitch -> proto note a tie (start/continue) may extend
        iterator = part.recurse().notes
        for element in iterator:
            length = float(element.quarterLength)
            if isinstance(element, harmony.Harmony) or element.duration.isGrace or length <= 0:
                continue
            start = float(iterator.currentHierarchyOffset())
            start_seconds, end_seconds = _to_seconds(rows, start), _to_seconds(rows, start + length)
            velocity = int(element.volume.velocity or default_velocity)
            for sounding in (element.notes if element.isChord else [element]):
                if not hasattr(sounding, "pitch"):
                    continue  # unpitched percussion
                pitch = int(sounding.pitch.midi)
                tie = sounding.tie.type if sounding.tie is not None else None
                held = open_ties.pop(pitch, None)
                # A tie joins the next same-pitch note that starts where it ends (some encoders omit "stop").
                if held is not None and abs(held.end_time - start_seconds) < 1e-6:
                    held.end_time = end_seconds
                else:
                    held = ns.notes.add(pitch=pitch, velocity=velocity, part=index, instrument=index,
                                        program=int(program), start_time=start_seconds, end_time=end_seconds)
                if tie in ("start", "continue"):
                    open_ties[pitch] = held
        if index == 0:  # meters and keys from the first part (they are shared in every corpus we read)
            for offset, numerator, denominator in _meters(part):
                last = ns.time_signatures[-1] if ns.time_signatures else None
                if last is None or (last.numerator, last.denominator) != (numerator, denominator):
                    ns.time_signatures.add(time=_to_seconds(rows, offset), numerator=numerator,
                                           denominator=denominator)
            keys = part.recurse().getElementsByClass(key.KeySignature)
            for signature in keys:
                as_key = signature if isinstance(signature, key.Key) else signature.asKey("major")
                modes = music_pb2.NoteSequence.KeySignature.Mode
                mode = modes.Value(as_key.mode.upper()) if as_key.mode.upper() in modes.keys() else modes.MAJOR
                ns.key_signatures.add(time=_to_seconds(rows, float(keys.currentHierarchyOffset())),
                                      key=as_key.tonic.pitchClass, mode=mode)
    ns.total_time = max((note.end_time for note in ns.notes), default=0.0)
    metadata = score.metadata
    if metadata is not None:
        if metadata.title:
            ns.sequence_metadata.title = str(metadata.title)
        ns.sequence_metadata.composers.extend(str(c) for c in metadata.composers)
    return ns


def parse_file(path: Path, music21_format: str) -> NoteSequence:
    """Parse a file with music21 (no pickle cache written) and convert its first score."""
    from music21 import converter, stream

    score = converter.parseFile(str(path), format=music21_format, forceSource=True, storePickle=False)
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    return music21_to_sequence(score)
