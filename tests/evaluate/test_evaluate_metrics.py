"""Per-piece metrics on hand-computed fixtures, the grid/line extraction, and agreement with muspy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.quantize import EncodingError
from musejax.evaluate import metrics as M
from musejax.evaluate.pieces import grid_piece, make_grid_piece


def fixture_piece():
    """Three 4/4 bars at 4 steps per quarter; bar 1 is silent.

    (pitch, start, end, voice): C4 0-4 v0, E4 0-4 v1, G4 0-8 v2, D4 4-6 v0, C5 8-9 v0, C4 36-38 v0, F#4 40-41 v1.
    """
    notes = [(60, 0, 4, 0), (64, 0, 4, 1), (67, 0, 8, 2), (62, 4, 6, 0), (72, 8, 9, 0), (60, 36, 38, 0), (66, 40, 41, 1)]
    pitch, start, end, voice = map(np.array, zip(*notes))
    return make_grid_piece(pitch, start, end, voice, steps_per_quarter=4, id="fixture")


def test_pitch_counts_and_range():
    piece = fixture_piece()
    assert M.pitch_range(piece) == 12  # C4..C5
    assert M.pitches_used(piece) == 6  # 60 62 64 66 67 72
    assert M.pitch_classes_used(piece) == 5  # C D E F# G


def test_polyphony_counts_distinct_sounding_pitches_per_step():
    piece = fixture_piece()
    # steps 0-3: 3 pitches, 4-5: 2, 6-7: 1, 8: 1, 36-37: 1, 40: 1 -> 22 pitch-steps over 12 sounding steps
    assert M.polyphony(piece) == pytest.approx(22 / 12)
    # more than two pitches only on steps 0-3, of the 41 steps up to the last note end
    assert M.polyphony_rate(piece) == pytest.approx(4 / 41)
    assert M.polyphony_rate(piece, threshold=1) == pytest.approx(6 / 41)


def test_scale_rates():
    piece = fixture_piece()
    assert M.pitch_in_scale_rate(piece, 0, "major") == pytest.approx(6 / 7)  # F# is outside C major
    assert M.pitch_in_scale_rate(piece, 7, "major") == 1.0  # G major holds every note
    assert M.pitch_in_scale_rate(piece, 9, "minor") == pytest.approx(6 / 7)  # A natural minor = C major set
    assert M.scale_consistency(piece) == 1.0
    with pytest.raises(ValueError, match="mode"):
        M.pitch_in_scale_rate(piece, 0, "dorian")


def test_entropies_in_bits():
    piece = fixture_piece()
    # pitch counts: 60 twice, five others once
    expected = -(2 / 7 * math.log2(2 / 7) + 5 * (1 / 7) * math.log2(1 / 7))
    assert M.pitch_entropy(piece) == pytest.approx(expected)
    # pitch classes: C three times (60, 72, 60), D E F# G once
    expected = -(3 / 7 * math.log2(3 / 7) + 4 * (1 / 7) * math.log2(1 / 7))
    assert M.pitch_class_entropy(piece) == pytest.approx(expected)
    one_pitch = make_grid_piece([60, 60], [0, 4], [2, 6])
    assert M.pitch_entropy(one_pitch) == 0.0 and M.pitch_class_entropy(one_pitch) == 0.0


def test_empty_beats_and_measures():
    piece = fixture_piece()
    # 11 beats (41 steps); beats 0, 1, 2, 9, 10 sound
    assert M.empty_beat_rate(piece) == pytest.approx(6 / 11)
    assert M.empty_measure_rate(piece) == pytest.approx(1 / 3)
    # a note ending exactly on a beat line does not occupy the next beat (muspy's loop would count it)
    assert M.empty_beat_rate(make_grid_piece([60, 62], [0, 8], [4, 9])) == pytest.approx(1 / 3)


def test_groove_consistency():
    piece = fixture_piece()
    # onset patterns: bar 0 {0, 4, 8}, bar 1 {}, bar 2 {4, 8}: Hamming 3 and 2 over 16 steps
    assert M.groove_consistency(piece) == pytest.approx(1 - (3 / 16 + 2 / 16) / 2)
    same_every_bar = make_grid_piece([60] * 8, np.arange(8) * 8, np.arange(8) * 8 + 2)
    assert M.groove_consistency(same_every_bar) == 1.0


def test_bars_of_different_length_are_not_compared():
    # a one-quarter pickup bar then 4/4 bars: the pickup/bar 1 pair is skipped
    piece = make_grid_piece([60, 62, 64], [0, 4, 20], [4, 8, 24], bar_start=np.array([0, 4, 20]),
                            bar_length=np.array([4, 16, 16]))
    assert M.groove_consistency(piece) == 1.0  # bar 1 {0}, bar 2 {0}
    assert M.empty_measure_rate(piece) == 0.0


def test_empty_piece_gives_nan_rates_and_zero_counts():
    empty = make_grid_piece([], [], [])
    assert M.pitch_range(empty) == 0 and M.pitches_used(empty) == 0
    values = M.piece_metrics(empty)
    for name in ("polyphony", "polyphony_rate", "scale_consistency", "pitch_entropy", "empty_beat_rate",
                 "empty_measure_rate", "groove_consistency", "pitch_in_scale_rate"):
        assert math.isnan(values[name]), name


def test_key_estimate():
    c_major = make_grid_piece([60, 62, 64, 65, 67, 69, 71, 72, 67, 60], np.arange(10) * 4,
                              np.arange(10) * 4 + np.array([8, 2, 4, 2, 6, 2, 2, 8, 6, 8]))
    assert M.estimate_key(c_major) == (0, "major")
    a_minor = make_grid_piece([57, 60, 64, 57, 59, 60, 62, 64, 56, 57], np.arange(10) * 4,
                              np.arange(10) * 4 + np.array([8, 4, 4, 8, 2, 2, 2, 4, 4, 8]))
    assert M.estimate_key(a_minor) == (9, "minor")


def test_piece_metrics_has_every_metric():
    values = M.piece_metrics(fixture_piece())
    assert list(values) == list(M.METRICS)
    assert values["n_notes"] == 7 and values["length_quarters"] == 41 / 4


def sequence(notes, time_signatures=((0.0, 4, 4),), part_infos=()):
    """notes: (pitch, start_s, end_s, part) at 120 qpm (a quarter = 0.5 s)."""
    ns = NoteSequence(id="corpus/piece.xml", ticks_per_quarter=220)
    ns.tempos.add(time=0.0, qpm=120.0)
    for when, numerator, denominator in time_signatures:
        ns.time_signatures.add(time=when, numerator=numerator, denominator=denominator)
    for part in part_infos:
        ns.part_infos.add(part=part)
    for pitch, start, end, part in notes:
        ns.notes.add(pitch=pitch, start_time=start, end_time=end, part=part, instrument=part, velocity=80)
    ns.total_time = max(n.end_time for n in ns.notes)
    return ns


def test_grid_piece_quantises_and_takes_bars_from_time_signatures():
    # a one-quarter pickup (1/4) then 3/4 bars; parts listed as 2, 0 so part 2 is voice 0
    ns = sequence([(67, 0.0, 0.5, 2), (60, 0.5, 1.02, 0), (64, 0.49, 2.0, 2)],
                  time_signatures=((0.0, 1, 4), (0.5, 3, 4)), part_infos=(2, 0))
    piece = grid_piece(ns, steps_per_quarter=4)
    assert piece.id == "corpus/piece.xml"
    assert piece.pitch.tolist() == [67, 60, 64]
    assert piece.start.tolist() == [0, 4, 4] and piece.end.tolist() == [4, 8, 16]
    assert piece.voice.tolist() == [0, 1, 0]
    assert piece.bar_start.tolist() == [0, 4] and piece.bar_length.tolist() == [4, 12]
    assert piece.typical_bar_steps in (4, 12)


def test_grid_piece_without_notes_names_the_piece():
    ns = NoteSequence(id="corpus/empty.mid")
    ns.notes.add(pitch=36, start_time=0, end_time=1, is_drum=True)
    with pytest.raises(EncodingError, match="corpus/empty.mid"):
        grid_piece(ns)


def test_note_lines_top_and_bottom_of_chordal_voices():
    # voice 0 plays chords (60+64, 62, 59+65); voice 1 is a line (48, 50); voice 2 has a single note
    piece = make_grid_piece([60, 64, 62, 59, 65, 48, 50, 40], [0, 0, 4, 8, 8, 0, 4, 0], [4, 4, 8, 12, 12, 4, 8, 4],
                            [0, 0, 0, 0, 0, 1, 1, 2])
    lines = piece.lines
    by_line = [lines.pitch[lines.line == i].tolist() for i in range(lines.n_lines)]
    assert by_line == [[64, 62, 65], [60, 62, 59], [48, 50]]
    first, ioi, interval = lines.transitions()
    assert ioi.tolist() == [4, 4, 4, 4, 4] and interval.tolist() == [-2, 3, 2, -3, 2]


def muspy_music(piece):
    muspy = pytest.importorskip("muspy")
    tracks = []
    for voice in np.unique(piece.voice):
        mine = piece.voice == voice
        tracks.append(muspy.Track(notes=[muspy.Note(int(s), int(p), int(e - s), 64)
                                         for s, e, p in zip(piece.start[mine], piece.end[mine], piece.pitch[mine])]))
    return muspy, muspy.Music(resolution=piece.steps_per_quarter, tracks=tracks)


def test_metrics_agree_with_muspy():
    """On pieces whose note ends avoid beat lines and whose length is not a whole number of bars (where muspy
    adds a beat/bar, see metrics.py), every shared metric equals muspy's."""
    rng = np.random.default_rng(0)
    pieces = [fixture_piece()]
    for _ in range(30):
        n = int(rng.integers(1, 40))
        start = rng.integers(0, 120, n)
        end = start + rng.integers(1, 9, n)
        end = np.where(end % 4 == 0, end + 1, end)
        end[np.argmax(end)] += 1 if end.max() % 16 == 0 else 0
        pieces.append(make_grid_piece(rng.integers(30, 90, n), start, end, rng.integers(0, 3, n)))
    for piece in pieces:
        muspy, music = muspy_music(piece)
        ours = M.piece_metrics(piece)
        theirs = {"pitch_range": muspy.pitch_range(music), "pitches_used": muspy.n_pitches_used(music),
                  "pitch_classes_used": muspy.n_pitch_classes_used(music), "polyphony": muspy.polyphony(music),
                  "polyphony_rate": muspy.polyphony_rate(music), "scale_consistency": muspy.scale_consistency(music),
                  "pitch_entropy": muspy.pitch_entropy(music), "pitch_class_entropy": muspy.pitch_class_entropy(music),
                  "empty_beat_rate": muspy.empty_beat_rate(music),
                  "empty_measure_rate": muspy.empty_measure_rate(music, 16),
                  "groove_consistency": muspy.groove_consistency(music, 16)}
        for name, value in theirs.items():
            assert ours[name] == pytest.approx(value, nan_ok=True), (name, piece.pitch, piece.start, piece.end)
        root, mode = M.estimate_key(piece)
        assert M.pitch_in_scale_rate(piece, root, mode) == pytest.approx(muspy.pitch_in_scale_rate(music, root, mode))
