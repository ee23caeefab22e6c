"""Passages of a piece (pieces.slice_piece / split_points / split_piece) and how one follows another
(evaluate/continuation.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musejax.evaluate.continuation import compare_passages, note_density, summarize_passages
from musejax.evaluate.pieces import make_grid_piece, slice_piece, split_piece, split_points


def chords(*progression: tuple[int, ...], steps: int = 4):
    """One chord per `steps` steps (4 steps per quarter, 4/4 bars of 16 steps)."""
    pitch, start, end = [], [], []
    for index, chord in enumerate(progression):
        pitch += list(chord)
        start += [index * steps] * len(chord)
        end += [(index + 1) * steps] * len(chord)
    return make_grid_piece(pitch, start, end, id="chords")


def test_slice_clips_notes_and_keeps_bar_lines():
    piece = make_grid_piece([60, 64, 67, 72], [0, 8, 16, 30], [20, 12, 24, 32], id="x")  # bars at 0, 16
    part = slice_piece(piece, 8, 24)
    assert part.id == "x@8-24"
    assert sorted(zip(part.pitch.tolist(), part.start.tolist(), part.end.tolist())) == [
        (60, 0, 12), (64, 0, 4), (67, 8, 16)]
    assert part.bar_start.tolist() == [0, 8] and part.bar_length.tolist() == [8, 16]  # a cut bar is a short first bar
    assert part.n_steps == 16
    silent = slice_piece(piece, 24, 30)
    assert silent.n_notes == 0 and silent.n_steps == 0
    assert slice_piece(piece, 0, piece.n_steps).pitch.tolist() == piece.pitch.tolist()
    with pytest.raises(ValueError, match="x: slice needs 0 <= start <= end"):
        slice_piece(piece, 5, 4)


def test_split_points_fall_on_bar_lines_when_there_are_enough():
    four_bars = make_grid_piece([60, 62], [0, 40], [40, 64])  # bars of 16 steps
    assert split_points(four_bars, 4).tolist() == [0, 16, 32, 48, 64]
    assert split_points(four_bars, 2).tolist() == [0, 32, 64]
    one_bar = make_grid_piece([60], [0], [16])
    assert split_points(one_bar, 4).tolist() == [0, 4, 8, 12, 16]  # too few bars: exact quarters of the time
    parts = split_piece(four_bars, 4)
    assert [p.n_notes for p in parts] == [1, 1, 2, 1]  # the note held over bar 3's line sounds in both parts
    assert all(p.n_steps == 16 for p in parts)


def test_a_passage_follows_itself_and_a_transposition_does_not():
    c_major = chords((60, 64, 67), (65, 69, 72), (67, 71, 74), (60, 64, 67))
    same = compare_passages(c_major, c_major)
    assert same["pitch_class_distance"] == 0 and same["polyphony_difference"] == 0 and same["density_difference"] == 0
    assert same["key_first"] == "C major" and same["key_agrees"] and same["scale_agrees"]
    tritone = make_grid_piece(c_major.pitch + 6, c_major.start, c_major.end)
    apart = compare_passages(c_major, tritone)
    assert apart["key_second"] == "F# major" and not apart["key_agrees"] and not apart["scale_agrees"]
    assert apart["pitch_class_distance"] == pytest.approx(10 / 12)  # only F and B (1/12 each) stay in both
    relative = compare_passages(c_major, chords((57, 60, 64), (62, 65, 69), (64, 67, 71), (57, 60, 64)))
    assert relative["key_second"] == "A minor" and not relative["key_agrees"] and relative["scale_agrees"]


def test_density_uses_the_given_span_and_summaries_skip_undefined_values():
    piece = chords((60, 64), (62,), (64,), (65,))  # 5 notes in 16 steps = 4 quarters
    assert note_density(piece) == pytest.approx(5 / 4)
    assert note_density(piece, 32) == pytest.approx(5 / 8)  # a closing rest of 4 quarters counts
    empty = make_grid_piece([], [], [])
    assert math.isnan(note_density(empty))
    rows = [compare_passages(piece, piece), compare_passages(piece, empty)]
    assert math.isnan(rows[1]["pitch_class_distance"]) and not rows[1]["key_agrees"]
    summary = summarize_passages(rows)
    assert summary["n_pairs"] == 2 and summary["pitch_class_distance"] == 0 and summary["key_agreement"] == 0.5
    assert summarize_passages([])["pitch_class_distance"] is None
    assert np.isfinite(summary["polyphony_second"])
