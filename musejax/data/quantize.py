"""The numeric core shared by the encodings: tempo map, grid quantisation, bar grid, rolls <-> notes.

Times in a NoteSequence are seconds. Grid encodings convert them to quarter notes through the tempo map
(`ns.tempos`, any number of changes; 120 qpm before the first one, as in MIDI), then to steps with
`floor(quarters * steps_per_quarter + 0.5)` (round half up). A note shorter than one step keeps one step.
Everything is vectorised with numpy; nothing here imports jax.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from note_seq import constants
from note_seq.protobuf.music_pb2 import NoteSequence

DEFAULT_QPM = 120.0
DEFAULT_VELOCITY = 100


class EncodingError(ValueError):
    """A piece cannot be encoded, or an array cannot be decoded; the message names the piece and the reason."""


def piece_name(ns: NoteSequence) -> str:
    """The name errors use for a sequence: its id, else its file name."""
    return ns.id or ns.filename or "<sequence without id>"


def encoding_error(ns: NoteSequence, encoding_name: str, reason: str) -> EncodingError:
    """An EncodingError naming the piece (`ns.id`), the encoding and the reason."""
    return EncodingError(f"{piece_name(ns)}: {encoding_name} encoding: {reason}")


def encoding_options(encoding: Any) -> dict[str, Any]:
    """The options of a frozen-dataclass encoding as a JSON-able dict (used in cache keys and configs)."""
    return {field.name: getattr(encoding, field.name) for field in dataclasses.fields(encoding)}


def check_int_options(encoding: Any, *names: str, minimum: int | None = None) -> None:
    """Validate that the named options of an encoding are integers (at least `minimum` if given)."""
    for field in names:
        value = getattr(encoding, field)
        if (not isinstance(value, (int, np.integer)) or isinstance(value, bool)
                or (minimum is not None and value < minimum)):
            bound = "" if minimum is None else f" >= {minimum}"
            raise ValueError(f"{type(encoding).__name__}: {field} must be an integer{bound}, got {value!r}")


def check_event_array(array: Any, encoding_name: str, vocab_size: int, length: str = "T") -> np.ndarray:
    """A 1-D integer array of tokens in [0, vocab_size), or an EncodingError naming the encoding."""
    events = np.asarray(array)
    if events.ndim != 1 or not np.issubdtype(events.dtype, np.integer):
        raise EncodingError(f"{encoding_name}: expected integer events of shape ({length},), got {events.dtype}"
                            f" {events.shape}")
    if events.size and (events.min() < 0 or events.max() >= vocab_size):
        raise EncodingError(f"{encoding_name}: events must lie in [0, {vocab_size}), got"
                            f" {events.min()}..{events.max()}")
    return events


@dataclasses.dataclass(frozen=True)
class NoteArrays:
    """The non-drum notes of a sequence as parallel arrays (seconds for times)."""
    pitch: np.ndarray
    start_seconds: np.ndarray
    end_seconds: np.ndarray
    velocity: np.ndarray
    part: np.ndarray
    instrument: np.ndarray

    def __len__(self) -> int:
        return len(self.pitch)

    def select(self, mask: np.ndarray) -> NoteArrays:
        """The notes where `mask` is true."""
        return NoteArrays(*(getattr(self, f.name)[mask] for f in dataclasses.fields(self)))


def note_arrays(ns: NoteSequence, encoding_name: str) -> NoteArrays:
    """Collect the sequence's notes, drums left out (no encoding here models drums); validates times."""
    notes = [note for note in ns.notes if not note.is_drum]
    arrays = NoteArrays(
        pitch=np.fromiter((n.pitch for n in notes), np.int64, len(notes)),
        start_seconds=np.fromiter((n.start_time for n in notes), np.float64, len(notes)),
        end_seconds=np.fromiter((n.end_time for n in notes), np.float64, len(notes)),
        velocity=np.fromiter((n.velocity for n in notes), np.int64, len(notes)),
        part=np.fromiter((n.part for n in notes), np.int64, len(notes)),
        instrument=np.fromiter((n.instrument for n in notes), np.int64, len(notes)))
    if not len(arrays):
        raise encoding_error(ns, encoding_name, "no notes (drums are not encoded)")
    if not np.all(np.isfinite(arrays.start_seconds)) or not np.all(np.isfinite(arrays.end_seconds)):
        raise encoding_error(ns, encoding_name, "a note has a non-finite time")
    if arrays.start_seconds.min() < 0:
        raise encoding_error(ns, encoding_name, f"a note starts before 0 s ({arrays.start_seconds.min():g} s)")
    if np.any((arrays.pitch < 0) | (arrays.pitch > 127)):
        raise encoding_error(ns, encoding_name, "a note has a pitch outside MIDI 0..127")
    return arrays


def seconds_to_quarters(ns: NoteSequence, seconds: np.ndarray, encoding_name: str) -> np.ndarray:
    """Convert times in seconds to quarter notes through the tempo map (piecewise-constant qpm)."""
    changes: dict[float, float] = {0.0: DEFAULT_QPM}
    for tempo in sorted(ns.tempos, key=lambda t: t.time):  # equal times: the last one listed wins
        if not np.isfinite(tempo.qpm) or tempo.qpm <= 0:
            raise encoding_error(ns, encoding_name, f"tempo of {tempo.qpm:g} qpm at {tempo.time:g} s")
        changes[max(float(tempo.time), 0.0)] = float(tempo.qpm)
    times = np.fromiter(sorted(changes), np.float64)
    qpm = np.array([changes[t] for t in times])
    quarters_at_change = np.concatenate([[0.0], np.cumsum(np.diff(times) * qpm[:-1] / 60.0)])
    index = np.maximum(np.searchsorted(times, seconds, side="right") - 1, 0)
    return quarters_at_change[index] + (seconds - times[index]) * qpm[index] / 60.0


def round_to_steps(values: np.ndarray) -> np.ndarray:
    """Round to the nearest grid step, halves up (deterministic, unlike numpy's round-half-even)."""
    return np.floor(np.asarray(values) + 0.5).astype(np.int64)


@dataclasses.dataclass(frozen=True)
class GridNotes:
    """Notes on a step grid: end > start for every note; `n_steps` covers every note and `ns.total_time`."""
    notes: NoteArrays
    start_step: np.ndarray
    end_step: np.ndarray
    n_steps: int


def quantize_to_steps(ns: NoteSequence, notes: NoteArrays, steps_per_quarter: int, encoding_name: str,
                      ) -> GridNotes:
    """Put notes on the grid of `steps_per_quarter` steps per quarter note (tempo map, round half up)."""
    def to_steps(seconds: np.ndarray) -> np.ndarray:
        return round_to_steps(seconds_to_quarters(ns, seconds, encoding_name) * steps_per_quarter)

    start = to_steps(notes.start_seconds)
    end = np.maximum(to_steps(notes.end_seconds), start + 1)
    total = int(to_steps(np.array([ns.total_time]))[0])
    return GridNotes(notes, start, end, max(int(end.max(initial=0)), total))


def notes_to_roll(column: np.ndarray, start: np.ndarray, end: np.ndarray, n_steps: int,
                  n_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """(sounding, onsets), both (n_steps, n_columns) bool: a column sounds while any of its notes does."""
    flat_start = start * n_columns + column
    flat_end = end * n_columns + column
    size = (n_steps + 1) * n_columns
    delta = np.bincount(flat_start, minlength=size) - np.bincount(flat_end, minlength=size)
    sounding = np.cumsum(delta.reshape(n_steps + 1, n_columns)[:-1], axis=0) > 0
    onsets = np.zeros((n_steps, n_columns), bool)
    onsets[start, column] = True
    return sounding, onsets


def roll_to_notes(sounding: np.ndarray, onsets: np.ndarray | None = None,
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column, start, end) of the notes in a (steps, columns) roll, sorted by column then start.

    A run of sounding frames is one note; with `onsets`, an onset frame inside a run starts a new note
    (so a repeated note differs from a held one). Onsets on silent frames are ignored.
    """
    sounding = np.asarray(sounding, bool).T
    silent_before = np.ones_like(sounding)
    silent_before[:, 1:] = ~sounding[:, :-1]
    starts = sounding & silent_before
    if onsets is not None:
        starts |= sounding & np.asarray(onsets, bool).T
    continues_next = np.zeros_like(sounding)
    continues_next[:, :-1] = sounding[:, 1:] & ~starts[:, 1:]
    columns, start_steps = np.nonzero(starts)
    _, last_steps = np.nonzero(sounding & ~continues_next)
    return columns, start_steps, last_steps + 1


def resolve_overlaps(pitch: np.ndarray, start: np.ndarray, end: np.ndarray,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Make same-pitch notes disjoint: the union of their sounding time, split at every onset.

    Same-pitch notes with the same onset become one (the longest). Returns (order, pitch, start, end) where
    `order` indexes the input note each output note comes from; output sorted by pitch then start.
    """
    order = np.lexsort((-end, start, pitch))
    pitch, start, end = pitch[order], start[order], end[order]
    first_at_onset = np.ones(len(pitch), bool)
    first_at_onset[1:] = (pitch[1:] != pitch[:-1]) | (start[1:] != start[:-1])
    order, pitch, start, end = order[first_at_onset], pitch[first_at_onset], start[first_at_onset], end[
        first_at_onset]
    offset = pitch.astype(np.int64) * (int(end.max(initial=0)) + 1)  # groups by pitch are ascending
    latest_end = np.maximum.accumulate(offset + end) - offset
    next_start = np.full(len(pitch), np.iinfo(np.int64).max)
    same_pitch_next = pitch[1:] == pitch[:-1]
    next_start[:-1][same_pitch_next] = start[1:][same_pitch_next]
    return order, pitch, start, np.minimum(latest_end, next_start)


def bar_grid(ns: NoteSequence, steps_per_quarter: int, n_steps: int, encoding_name: str,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bars from the time signatures: (start_step, length_steps, partial), one entry per bar.

    Each time signature (4/4 before the first one, as in MIDI) lays bars of its length from where it
    starts until the next one; a bar cut short by the next change is shorter. A bar is `partial` when it
    is shorter than its meter's bar or the only bar of its time signature: a pickup, or one half of a
    measure that note_seq split at a repeat or fermata (it reports those as 3/4 + 1/4 in a 4/4 chorale).
    Bars run while they start before `n_steps`.
    """
    meters: dict[float, tuple[int, int]] = {0.0: (4, 4)}
    for signature in sorted(ns.time_signatures, key=lambda s: s.time):
        if signature.numerator <= 0 or signature.denominator <= 0:
            raise encoding_error(ns, encoding_name, f"time signature {signature.numerator}/"
                                 f"{signature.denominator} at {signature.time:g} s")
        meters[max(float(signature.time), 0.0)] = (signature.numerator, signature.denominator)
    change_seconds = np.fromiter(sorted(meters), np.float64)
    change_quarters = seconds_to_quarters(ns, change_seconds, encoding_name)
    end_quarters = n_steps / steps_per_quarter
    starts, lengths, partial = [], [], []
    for index, seconds in enumerate(change_seconds):
        numerator, denominator = meters[float(seconds)]
        bar_quarters = 4.0 * numerator / denominator
        region_end = change_quarters[index + 1] if index + 1 < len(change_seconds) else np.inf
        bar_starts = np.arange(change_quarters[index], min(region_end, end_quarters) - 1e-9, bar_quarters)
        bar_ends = np.minimum(bar_starts + bar_quarters, region_end)
        first = round_to_steps(bar_starts * steps_per_quarter)
        length = round_to_steps(bar_ends * steps_per_quarter) - first
        short = length < round_to_steps(bar_quarters * steps_per_quarter)
        starts.append(first)
        lengths.append(length)
        partial.append(short | (len(first) == 1))
    start, length, partial_bar = (np.concatenate(x) if x else np.zeros(0) for x in (starts, lengths, partial))
    keep = length > 0
    return start[keep].astype(np.int64), length[keep].astype(np.int64), partial_bar[keep].astype(bool)


def main_meter(ns: NoteSequence) -> tuple[int, int]:
    """(numerator, denominator) of the time signature that spans the most of the piece (4/4 without one): its
    meter, where the first signature may be a pickup's (1/4 before a 4/4 chorale) or a short last bar's."""
    signatures = sorted((s for s in ns.time_signatures if s.numerator > 0 and s.denominator > 0),
                        key=lambda s: s.time)
    if not signatures:
        return 4, 4
    ends = [s.time for s in signatures[1:]] + [max(ns.total_time, signatures[-1].time)]
    spans: dict[tuple[int, int], float] = {}
    for signature, end in zip(signatures, ends):
        meter = (signature.numerator, signature.denominator)
        spans[meter] = spans.get(meter, 0.0) + max(end - signature.time, 0.0)
    return max(spans, key=lambda meter: spans[meter])  # the first of equal spans (dicts keep their order)


def downbeat_quarters(ns: NoteSequence) -> float:
    """Quarters from the start to the first bar line of the main meter (`main_meter`): a pickup's length, 0 for
    a piece that starts on a downbeat or has no time signatures."""
    meter = main_meter(ns)
    for signature in sorted(ns.time_signatures, key=lambda s: s.time):
        if (signature.numerator, signature.denominator) == meter:
            return float(seconds_to_quarters(ns, np.array([signature.time]), "bar lines")[0])
    return 0.0


def piece_bar(ns: NoteSequence, steps_per_quarter: int | None) -> tuple[int, int]:
    """(phase, bar steps) on a grid of `steps_per_quarter`: the place in the bar of step 0 (0 on a downbeat; 12 for
    a quarter's pickup in 4/4 at 4 steps per quarter) and the steps in a bar of the piece's meter (`main_meter`);
    (0, 0), not known, without a grid (None), without time signatures or where a bar is not whole steps."""
    if not steps_per_quarter or not ns.time_signatures:
        return 0, 0
    numerator, denominator = main_meter(ns)
    steps = 4.0 * numerator / denominator * steps_per_quarter
    if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
        return 0, 0
    steps = int(round(steps))
    return int(-round(downbeat_quarters(ns) * steps_per_quarter)) % steps, steps


def bar_meter(steps: int, steps_per_quarter: int) -> tuple[int, int] | None:
    """The meter of a bar of `steps` grid steps: whole quarters over 4 (16 steps at 4 a quarter: 4/4, 12: 3/4),
    else eighths over 8, sixteenths over 16; None if it is none of these."""
    for denominator in (4, 8, 16):
        numerator = steps * denominator / (4.0 * steps_per_quarter)
        if numerator >= 1 and abs(numerator - round(numerator)) < 1e-9:
            return int(round(numerator)), denominator
    return None


def write_bars(ns: NoteSequence, phase: int, steps: int, steps_per_quarter: int, qpm: float) -> None:
    """Set the time signatures of a grid piece (one tempo, `qpm`) whose step 0 is at `phase` in bars of `steps`
    steps: a pickup's meter first when phase > 0, then the bar's (what `piece_bar` reads back). Unchanged where
    the bars are not known (steps 0) or not a meter of whole sixteenths."""
    meter = bar_meter(int(steps), steps_per_quarter) if steps > 0 else None
    pickup = (int(steps) - int(phase)) % int(steps) if meter else 0
    short = bar_meter(pickup, steps_per_quarter) if pickup else None
    if meter is None or (pickup and short is None):
        return
    del ns.time_signatures[:]
    if pickup:
        ns.time_signatures.add(time=0.0, numerator=short[0], denominator=short[1])
    ns.time_signatures.add(time=pickup * 60.0 / (qpm * steps_per_quarter), numerator=meter[0],
                           denominator=meter[1])


def shift_pitch_axis(array: np.ndarray, semitones: int) -> np.ndarray | None:
    """Shift a multi-hot array along its last (pitch) axis; None if an active pitch would fall off."""
    array = np.asarray(array)
    if semitones == 0:
        return array.copy()
    n_pitches = array.shape[-1]
    if abs(semitones) >= n_pitches:
        return None if array.any() else array.copy()
    edge = array[..., n_pitches - semitones:] if semitones > 0 else array[..., :-semitones]
    if edge.any():
        return None
    shifted = np.zeros_like(array)
    if semitones > 0:
        shifted[..., semitones:] = array[..., :n_pitches - semitones]
    else:
        shifted[..., :semitones] = array[..., -semitones:]
    return shifted


def grid_step_seconds(qpm: float, steps_per_quarter: int) -> float:
    """Length of one grid step in seconds at `qpm` quarter notes per minute (validated for decoding)."""
    if not (isinstance(qpm, (int, float, np.number)) and np.isfinite(qpm) and qpm > 0):
        raise EncodingError(f"decode: qpm must be a positive number, got {qpm!r}")
    return 60.0 / (qpm * steps_per_quarter)


def grid_sequence(column_pitch: np.ndarray, start_step: np.ndarray, end_step: np.ndarray, *,
                  seconds_per_step: float, qpm: float, n_steps: int, instrument: np.ndarray | None = None,
                  velocity: np.ndarray | None = None, time_signature: tuple[int, int] | None = (4, 4),
                  ) -> NoteSequence:
    """Build a NoteSequence from notes on a grid (one tempo, optional time signature, total_time = n_steps)."""
    grid_step_seconds(qpm, 1)  # raises EncodingError for a qpm that is not a positive number
    ns = NoteSequence(ticks_per_quarter=constants.STANDARD_PPQ)
    ns.tempos.add(time=0.0, qpm=qpm)
    if time_signature is not None:
        ns.time_signatures.add(time=0.0, numerator=time_signature[0], denominator=time_signature[1])
    count = len(column_pitch)
    instruments = np.zeros(count, np.int64) if instrument is None else instrument
    velocities = np.full(count, DEFAULT_VELOCITY) if velocity is None else velocity
    order = np.lexsort((column_pitch, start_step))
    for i in order.tolist():
        ns.notes.add(pitch=int(column_pitch[i]), velocity=int(velocities[i]),
                     start_time=float(start_step[i]) * seconds_per_step,
                     end_time=float(end_step[i]) * seconds_per_step,
                     instrument=int(instruments[i]), part=int(instruments[i]))
    ns.total_time = n_steps * seconds_per_step
    return ns
