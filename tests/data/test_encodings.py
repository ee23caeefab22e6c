"""Tests for musejax.data.encodings: hand-computed fixtures, exact round-trip properties, real chorales."""
from __future__ import annotations

import json
import time

import music21
import note_seq
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.encodings import (
    ENCODINGS, EncodingError, MelodyEncoding, MultitrackEncoding, PerformanceEncoding, PianoRollEncoding,
    get_encoding)

FAST = settings(max_examples=50, deadline=None)
SECONDS_PER_QUARTER = 0.5  # 120 qpm


def make_sequence(notes, *, piece_id="test/piece", tempos=((0.0, 120.0),), time_signatures=((0.0, 4, 4),),
                  total_seconds=None, part_infos=()) -> NoteSequence:
    """notes: (pitch, start_s, end_s[, part, velocity[, instrument]]); part doubles as instrument by default."""
    ns = NoteSequence(id=piece_id, ticks_per_quarter=220)
    for when, qpm in tempos:
        ns.tempos.add(time=when, qpm=qpm)
    for when, numerator, denominator in time_signatures:
        ns.time_signatures.add(time=when, numerator=numerator, denominator=denominator)
    for part in part_infos:
        ns.part_infos.add(part=part)
    for pitch, start, end, *rest in notes:
        part, velocity, instrument = (list(rest) + [0, 100, None][len(rest):])[:3]
        ns.notes.add(pitch=pitch, start_time=start, end_time=end, part=part, velocity=velocity,
                     instrument=part if instrument is None else instrument)
    ns.total_time = max([n.end_time for n in ns.notes] + [total_seconds or 0.0])
    return ns


def in_quarters(notes):
    """(pitch, start_q, end_q, *rest) at 120 qpm -> seconds."""
    return [(p, s * SECONDS_PER_QUARTER, e * SECONDS_PER_QUARTER, *rest) for p, s, e, *rest in notes]


def note_set(ns, with_velocity=False, with_instrument=False):
    return sorted((n.pitch, round(n.start_time, 6), round(n.end_time, 6))
                  + ((n.velocity,) if with_velocity else ()) + ((n.instrument,) if with_instrument else ())
                  for n in ns.notes)


# ---------------------------------------------------------------- registry and options

def test_get_encoding_names_options_and_errors():
    assert set(ENCODINGS) == {"pianoroll", "melody", "performance", "multitrack"}
    for name in ENCODINGS:
        encoding = get_encoding(name)
        assert encoding.name == name
        assert get_encoding(name, **json.loads(json.dumps(encoding.options()))) == encoding
    assert get_encoding("pianoroll", steps_per_quarter=1, onsets=True) == PianoRollEncoding(1, True)
    assert MelodyEncoding().vocab_size == 38 and PerformanceEncoding().vocab_size == 388
    with pytest.raises(ValueError, match="unknown encoding 'abc'"):
        get_encoding("abc")
    with pytest.raises(ValueError, match="no option"):
        get_encoding("melody", onsets=True)
    for bad in (lambda: PianoRollEncoding(steps_per_quarter=0), lambda: MelodyEncoding(min_pitch=60, max_pitch=65),
                lambda: PerformanceEncoding(velocity_bins=200), lambda: MultitrackEncoding(min_pitch=100)):
        with pytest.raises(ValueError):
            bad()


def test_errors_name_the_piece_and_reason():
    empty = make_sequence([], piece_id="corpus/empty.mid")
    for name in ENCODINGS:
        with pytest.raises(EncodingError, match="corpus/empty.mid.*no notes"):
            get_encoding(name).encode(empty)
    high = make_sequence([(120, 0.0, 1.0)], piece_id="x/high.mid")
    with pytest.raises(EncodingError, match="x/high.mid.*piano range"):
        PianoRollEncoding().encode(high)
    with pytest.raises(EncodingError, match="shape"):
        PianoRollEncoding(onsets=True).decode(np.zeros((4, 88), bool))
    with pytest.raises(EncodingError, match=r"\[0, 38\)"):
        MelodyEncoding().decode(np.array([40]))
    probe = make_sequence(in_quarters([(60, 0, 16)]))
    for name in ENCODINGS:
        encoding = get_encoding(name)
        array = encoding.encode(probe)
        with pytest.raises(EncodingError, match="qpm must be a positive number"):
            encoding.decode(array[0] if name == "multitrack" else array, qpm=0.0)


# ---------------------------------------------------------------- piano-roll

def test_pianoroll_chord_on_quarter_grid():
    ns = make_sequence(in_quarters([(60, 0, 2), (64, 0, 2), (67, 0, 2), (48, 0, 1), (72, 1, 1.25)]))
    roll = PianoRollEncoding(steps_per_quarter=1).encode(ns)
    expected = np.zeros((2, 88), bool)
    expected[0, [60 - 21, 64 - 21, 67 - 21, 48 - 21]] = True
    expected[1, [60 - 21, 64 - 21, 67 - 21, 72 - 21]] = True  # a sixteenth keeps one whole step
    np.testing.assert_array_equal(roll, expected)


def test_pianoroll_held_versus_repeated_note_with_onsets():
    held = make_sequence(in_quarters([(60, 0, 2)]))
    repeated = make_sequence(in_quarters([(60, 0, 1), (60, 1, 2)]))
    plain, with_onsets = PianoRollEncoding(1), PianoRollEncoding(1, onsets=True)
    np.testing.assert_array_equal(plain.encode(held), plain.encode(repeated))
    assert with_onsets.encode(held)[:, 1, 39].tolist() == [True, False]
    assert with_onsets.encode(repeated)[:, 1, 39].tolist() == [True, True]
    assert note_set(with_onsets.decode(with_onsets.encode(repeated))) == [(60, 0.0, 0.5), (60, 0.5, 1.0)]
    assert note_set(plain.decode(plain.encode(repeated))) == [(60, 0.0, 1.0)]


def test_tempo_map_with_a_tempo_change():
    # 120 qpm for 2 s (= 4 quarters), then 60 qpm: 2.5 s is quarter 4.5, i.e. sixteenth step 18.
    ns = make_sequence([(60, 1.0, 1.5), (62, 2.5, 3.0)], tempos=((0.0, 120.0), (2.0, 60.0)))
    roll = PianoRollEncoding(steps_per_quarter=4).encode(ns)
    assert roll.shape == (20, 88)
    assert np.flatnonzero(roll[:, 60 - 21]).tolist() == [8, 9, 10, 11]
    assert np.flatnonzero(roll[:, 62 - 21]).tolist() == [18, 19]


def test_rounding_is_half_up_and_short_notes_keep_a_step():
    ns = make_sequence(in_quarters([(60, 0.5, 0.6), (62, 2.5, 3.5), (64, 4.0, 4.1)]))
    roll = PianoRollEncoding(steps_per_quarter=1).encode(ns)
    assert [np.flatnonzero(roll[:, p - 21]).tolist() for p in (60, 62, 64)] == [[1], [3], [4]]


def test_trailing_silence_and_pickup_position_are_kept():
    ns = make_sequence(in_quarters([(60, 1, 2)]), total_seconds=4 * SECONDS_PER_QUARTER)
    roll = PianoRollEncoding(steps_per_quarter=1).encode(ns)
    assert roll[:, 39].tolist() == [False, True, False, False]


@st.composite
def pianorolls(draw, onsets: bool):
    steps = draw(st.integers(1, 24))
    sounding = draw(st.lists(st.booleans(), min_size=steps * 6, max_size=steps * 6))
    roll = np.zeros((steps, 88), bool)
    keys = draw(st.lists(st.integers(0, 87), min_size=6, max_size=6, unique=True))
    roll[:, keys] = np.array(sounding).reshape(steps, 6)
    assume(roll.any())
    if not onsets:
        return roll
    onset = np.array(draw(st.lists(st.booleans(), min_size=roll.size, max_size=roll.size))).reshape(roll.shape)
    run_start = roll & ~np.vstack([np.zeros((1, 88), bool), roll[:-1]])
    return np.stack([roll, (onset & roll) | run_start], axis=1)


@FAST
@given(st.data())
def test_pianoroll_round_trip_is_identity(data):
    for onsets in (False, True):
        encoding = PianoRollEncoding(steps_per_quarter=data.draw(st.sampled_from([1, 4])), onsets=onsets)
        roll = data.draw(pianorolls(onsets))
        np.testing.assert_array_equal(encoding.encode(encoding.decode(roll, qpm=97.0)), roll)


@FAST
@given(st.lists(st.tuples(st.integers(21, 108), st.integers(0, 20), st.integers(1, 6)), min_size=1, max_size=12))
def test_on_grid_sequence_round_trip_keeps_notes(raw):
    notes, busy = [], set()
    for pitch, start, length in raw:  # same-pitch notes must not overlap to come back one for one
        steps = {(pitch, t) for t in range(start, start + length)}
        if not steps & busy:
            busy |= steps
            notes.append((pitch, start * 0.125, (start + length) * 0.125))
    ns = make_sequence(notes)
    encoding = PianoRollEncoding(steps_per_quarter=4, onsets=True)
    assert note_set(encoding.decode(encoding.encode(ns))) == note_set(ns)


@FAST
@given(pianorolls(onsets=False), st.integers(-12, 12))
def test_pianoroll_transpose_matches_transposed_sequence(roll, semitones):
    encoding = PianoRollEncoding(steps_per_quarter=4)
    shifted = encoding.transpose(roll, semitones)
    keys = np.flatnonzero(roll.any(axis=0))
    assert (shifted is None) == bool(keys.min() + semitones < 0 or keys.max() + semitones > 87)
    if shifted is not None:
        ns = encoding.decode(roll)
        for note in ns.notes:
            note.pitch += semitones
        np.testing.assert_array_equal(encoding.encode(ns), shifted)
        np.testing.assert_array_equal(encoding.transpose(shifted, -semitones), roll)


# ---------------------------------------------------------------- melody

def test_melody_two_bars_with_rest_and_repeated_note():
    ns = make_sequence(in_quarters([(60, 0, 1), (62, 1, 2), (64, 3, 4), (64, 4, 5), (65, 5, 7), (67, 7, 8)]))
    events = MelodyEncoding().encode(ns)
    expected = np.zeros(32, np.int32)
    for step, token in {0: 2 + 12, 4: 2 + 14, 8: 1, 12: 2 + 16, 16: 2 + 16, 20: 2 + 17, 28: 2 + 19}.items():
        expected[step] = token
    np.testing.assert_array_equal(events, expected)
    assert note_set(MelodyEncoding().decode(events)) == note_set(ns)


def test_melody_skyline_and_octave_folding():
    # soprano 72 (q0-1) over alto 67 (q0-2); alto re-attacked under a held top note is ignored;
    # then 90 (folded down to 78) and 30 (folded up to 54).
    ns = make_sequence(in_quarters([(72, 0, 1), (67, 0, 2), (60, 0.5, 1), (90, 2, 3), (30, 3, 4)]))
    events = MelodyEncoding(steps_per_quarter=2).encode(ns)
    assert events.tolist() == [2 + 24, 0, 2 + 19, 0, 2 + 30, 0, 2 + 6, 0]
    unison = make_sequence(in_quarters([(72, 0, 2), (72, 1, 2)]))  # a re-attack of the top pitch
    assert MelodyEncoding(steps_per_quarter=1).encode(unison).tolist() == [2 + 24, 2 + 24]


@st.composite
def melody_streams(draw, encoding: MelodyEncoding):
    raw = draw(st.lists(st.integers(0, encoding.vocab_size - 1), min_size=1, max_size=32))
    events, sounding = [], False
    for token in raw:  # a note-off is only valid while a note sounds
        token = 0 if token == 1 and not sounding else token
        sounding = token >= 2 or (sounding and token == 0)
        events.append(token)
    assume(max(events) >= 2)
    return np.array(events, np.int32)


@FAST
@given(st.data())
def test_melody_round_trip_is_identity(data):
    encoding = MelodyEncoding(steps_per_quarter=data.draw(st.sampled_from([1, 4])))
    events = data.draw(melody_streams(encoding))
    np.testing.assert_array_equal(encoding.encode(encoding.decode(events, qpm=80.0)), events)
    shifted = encoding.transpose(events, 5)
    pitches = events[events >= 2]
    assert (shifted is None) == bool(pitches.max() + 5 >= encoding.vocab_size)


# ---------------------------------------------------------------- performance

def test_performance_events_hand_computed():
    ns = make_sequence([(60, 0.0, 0.5, 0, 100), (64, 0.0, 0.5, 0, 100), (67, 3.0, 3.25, 0, 40)])
    encoding = PerformanceEncoding()
    expected = [356 + 24, 60, 64, 256 + 49, 128 + 60, 128 + 64, 256 + 99, 256 + 99, 256 + 49, 356 + 9, 67,
                256 + 24, 128 + 67]
    assert encoding.encode(ns).tolist() == expected
    decoded = encoding.decode(np.array(expected))
    assert note_set(decoded, with_velocity=True) == [(60, 0.0, 0.5, 97), (64, 0.0, 0.5, 97), (67, 3.0, 3.25, 37)]
    assert encoding.transpose(np.array(expected), 61) is None  # 67 + 61 > 127
    assert encoding.transpose(np.array(expected), -2)[:3].tolist() == [380, 58, 62]


def test_performance_overlapping_same_pitch_notes_split_at_onsets():
    ns = make_sequence([(60, 0.0, 1.0), (60, 0.5, 0.7), (60, 0.5, 0.6)])
    decoded = PerformanceEncoding().decode(PerformanceEncoding().encode(ns))
    assert note_set(decoded) == [(60, 0.0, 0.5), (60, 0.5, 1.0)]


@FAST
@given(st.lists(st.tuples(st.integers(58, 62), st.integers(0, 400), st.integers(1, 250), st.integers(1, 127)),
                min_size=1, max_size=10))
def test_performance_round_trips(raw):
    encoding = PerformanceEncoding()
    ns = make_sequence([(p, s / 100, (s + d) / 100, 0, v) for p, s, d, v in raw])
    events = encoding.encode(ns)
    decoded = encoding.decode(events)
    np.testing.assert_array_equal(encoding.encode(decoded), events)
    assert all(n.end_time > n.start_time for n in decoded.notes)
    if len({p for p, *_ in raw}) == len(raw):  # disjoint same-pitch notes come back one for one
        assert note_set(decoded, with_velocity=True) == sorted(
            (p, round(s / 100, 6), round((s + d) / 100, 6), (v - 1) // 4 * 4 + 1) for p, s, d, v in raw)


@FAST
@given(st.lists(st.integers(0, 387), max_size=40))
def test_performance_decode_tolerates_any_stream(tokens):
    decoded = PerformanceEncoding().decode(np.array(tokens, np.int64))
    assert all(n.end_time > n.start_time for n in decoded.notes)


# ---------------------------------------------------------------- multitrack

def satb(first_quarter, n_bars, pickup=True):
    notes = [(72, first_quarter - 1, first_quarter, 0)] if pickup else []
    for part, pitch in enumerate((72, 67, 64, 48)):
        notes += [(pitch, first_quarter + 4 * b, first_quarter + 4 * b + 4, part) for b in range(n_bars)]
    return in_quarters(notes)


def test_multitrack_aligns_to_the_first_downbeat_after_a_pickup():
    ns = make_sequence(satb(1, 4), time_signatures=((0.0, 1, 4), (0.5, 4, 4)), part_infos=(0, 1, 2, 3))
    segments = MultitrackEncoding().encode(ns)
    assert segments.shape == (1, 4, 4, 16, 84)
    for track, pitch in enumerate((72, 67, 64, 48)):
        assert segments[0, track, :, :, pitch - 24].all()  # whole notes from the downbeat on, no pickup
        assert segments[0, track].sum() == 64


def test_multitrack_joins_split_measures_and_documents_meters():
    # 4/4 bar, then a measure split as 3/4 + 1/4 (as note_seq reports fermata bars), then two 4/4 bars.
    signatures = ((0.0, 4, 4), (2.0, 3, 4), (3.5, 1, 4), (4.0, 4, 4))
    ns = make_sequence(satb(0, 4, pickup=False), time_signatures=signatures, part_infos=(0, 1, 2, 3))
    assert MultitrackEncoding().encode(ns).shape[0] == 1
    rest_first = make_sequence([(p, s + 8.0, e + 8.0, part) for p, s, e, part in satb(0, 4, pickup=False)])
    segments = MultitrackEncoding().encode(rest_first)  # four silent bars first: that segment is left out
    assert segments.shape[0] == 1 and segments[0, :, 0, 0].any()
    waltz = make_sequence(in_quarters([(60, 3 * b, 3 * b + 3) for b in range(8)]), piece_id="w/waltz.xml",
                          time_signatures=((0.0, 3, 4),))
    with pytest.raises(EncodingError, match="w/waltz.xml.*no 4 consecutive bars of 16 steps"):
        MultitrackEncoding().encode(waltz)
    assert MultitrackEncoding(steps_per_bar=12).encode(waltz).shape == (2, 4, 4, 12, 84)
    assert MultitrackEncoding(steps_per_bar=12).decode(np.zeros((4, 4, 12, 84), bool)).time_signatures[0] \
        .numerator == 3


def test_multitrack_voice_to_track_rules():
    notes = in_quarters([(60 + 2 * i, 0, 16, i) for i in range(5)])
    score = make_sequence(notes, part_infos=(4, 3, 2, 1, 0))  # score order wins over part numbers
    tracks = MultitrackEncoding().encode(score)[0].any(axis=(1, 2))
    assert [np.flatnonzero(t).tolist() for t in tracks] == [[44], [42], [40], [38]]  # 5th part dropped
    midi = make_sequence([(p, s, e, 0, 100, i) for p, s, e, i in [(60, 0.0, 8.0, 3), (48, 0.0, 8.0, 1)]])
    tracks = MultitrackEncoding().encode(midi)[0].any(axis=(1, 2))
    assert [np.flatnonzero(t).tolist() for t in tracks] == [[24], [36], [], []]  # instruments ascending


@FAST
@given(st.data())
def test_multitrack_round_trip_is_identity(data):
    encoding = MultitrackEncoding(n_tracks=3, n_bars=2, steps_per_bar=6, min_pitch=60, n_pitches=5,
                                  steps_per_quarter=2)
    cells = data.draw(st.lists(st.booleans(), min_size=180, max_size=180))
    segment = np.array(cells).reshape(encoding.segment_shape)
    assume(segment.any())
    np.testing.assert_array_equal(encoding.encode(encoding.decode(segment)), segment[None])
    up = encoding.transpose(segment, 1)
    assert (up is None) == bool(segment[..., -1].any())


# ---------------------------------------------------------------- MIDI files and real chorales

def test_decoded_sequences_survive_a_midi_file(tmp_path):
    ns = make_sequence(satb(1, 4) + [(60, 0.013, 0.731, 0, 77)], time_signatures=((0.0, 1, 4), (0.5, 4, 4)),
                       part_infos=(0, 1, 2, 3))
    for name in ENCODINGS:
        encoding = get_encoding(name)
        array = encoding.encode(ns)
        path = tmp_path / f"{name}.mid"
        note_seq.sequence_proto_to_midi_file(encoding.decode(array[0] if name == "multitrack" else array), path)
        again = encoding.encode(note_seq.midi_file_to_note_sequence(str(path)))
        np.testing.assert_array_equal(again, array[:1] if name == "multitrack" else array)


@pytest.fixture(scope="module")
def chorales():
    pieces = []
    for work in ("bwv66.6", "bwv7.7", "bwv269"):  # bwv269 is in 3/4
        ns = note_seq.musicxml_file_to_sequence_proto(str(music21.corpus.getWork(work)))
        ns.id = f"bach-chorales/{work}"
        pieces.append(ns)
    return pieces


def test_real_chorales_encode_and_decode_sensibly(chorales):
    for ns in chorales:
        roll = PianoRollEncoding(onsets=True).encode(ns)
        assert roll[:, 0].sum(axis=1).max() <= 4 and roll[:, 0].any(axis=1).mean() > 0.9
        np.testing.assert_array_equal(PianoRollEncoding(onsets=True).encode(
            PianoRollEncoding(onsets=True).decode(roll)), roll)

        melody = MelodyEncoding()
        events = melody.encode(ns)
        soprano = [n.pitch for n in ns.notes if n.part == 0]
        on_pitches = events[events >= 2] - 2 + 48
        assert set(on_pitches.tolist()) <= set(soprano) and len(on_pitches) >= 0.9 * len(soprano)

        performance = PerformanceEncoding()
        perf = performance.encode(ns)
        decoded = performance.decode(perf)
        assert max(n.end_time for n in decoded.notes) == pytest.approx(max(n.end_time for n in ns.notes), abs=0.01)
        assert len(decoded.notes) >= 0.9 * len(ns.notes)  # only unisons merge

        multitrack = MultitrackEncoding(steps_per_bar=12 if ns.time_signatures[0].numerator == 3 else 16)
        segments = multitrack.encode(ns)
        assert len(segments) >= 1 and segments.any(axis=(2, 3, 4)).all()  # all four voices in every segment
        mean_pitch = [np.nonzero(segments[:, t])[-1].mean() for t in range(4)]
        assert mean_pitch == sorted(mean_pitch, reverse=True)  # S above A above T above B
        np.testing.assert_array_equal(multitrack.encode(multitrack.decode(segments[1])), segments[1:2])
    with pytest.raises(EncodingError, match="bwv269: multitrack encoding: no 4 consecutive bars of 16"):
        MultitrackEncoding().encode(chorales[2])


@pytest.mark.slow
def test_whole_bach_corpus_encodes_in_seconds():
    sequences = []
    for path in music21.corpus.getComposer("bach", fileExtensions=("mxl", "xml")):
        ns = note_seq.musicxml_file_to_sequence_proto(str(path))
        ns.id = str(path)
        sequences.append(ns)
    assert len(sequences) > 350
    for name in ENCODINGS:
        encoding, started, encoded = get_encoding(name), time.perf_counter(), 0
        for ns in sequences:
            try:
                encoded += len(encoding.encode(ns)) > 0
            except EncodingError:
                pass
        assert time.perf_counter() - started < 5.0, name
        assert encoded >= (300 if name == "multitrack" else len(sequences))


@pytest.mark.parametrize("encoding", [MelodyEncoding(), PerformanceEncoding()], ids=["melody", "performance"])
def test_decode_refuses_arrays_that_are_not_event_streams(encoding):
    with pytest.raises(EncodingError, match=rf"{encoding.name}: expected integer events of shape \([TN],\)"):
        encoding.decode(np.zeros((2, 3), np.int32))
    with pytest.raises(EncodingError, match=rf"{encoding.name}: expected integer events of shape \([TN],\)"):
        encoding.decode(np.zeros(4, np.float32))
    with pytest.raises(EncodingError, match=rf"{encoding.name}: events must lie in \[0, {encoding.vocab_size}\)"):
        encoding.decode(np.array([0, encoding.vocab_size], np.int32))
