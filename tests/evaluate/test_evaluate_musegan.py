"""The MuseGAN metric set on multitrack arrays: hand-computed fixture, batching, agreement with per-piece metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musejax.data.encodings import MultitrackEncoding
from musejax.evaluate import metrics, musegan
from musejax.evaluate.pieces import grid_piece

MIN_PITCH = 48  # index 0 = C3


def fixture_segment() -> np.ndarray:
    """2 tracks x 2 bars x 8 steps x 24 pitches at 2 steps per quarter (4 beats of 2 steps per bar).

    track 0: C3 bar 0 steps 0-3, E3 bar 0 step 4; bar 1 silent.
    track 1: G3 from bar 0 step 0 to bar 1 step 1 (one 10-step note across the bar line), C4 bar 0 step 0,
             D4 bar 1 steps 4-7, F#3 bar 1 steps 6-7.
    """
    x = np.zeros((2, 2, 8, 24), bool)
    x[0, 0, 0:4, 0] = True  # C3
    x[0, 0, 4, 4] = True  # E3
    x[1, 0, :, 7] = True  # G3 ...
    x[1, 1, 0:2, 7] = True  # ... held into bar 1
    x[1, 0, 0, 12] = True  # C4
    x[1, 1, 4:8, 14] = True  # D4
    x[1, 1, 6:8, 6] = True  # F#3
    return x


def test_empty_bars_and_used_pitch_classes():
    x = fixture_segment()
    np.testing.assert_allclose(musegan.empty_bar_rate(x), [0.5, 0.0])
    # track 0: bar 0 {C, E} (bar 1 empty, not averaged); track 1: bar 0 {G, C}, bar 1 {G, D, F#}
    np.testing.assert_allclose(musegan.used_pitch_classes_per_bar(x, MIN_PITCH), [2.0, 2.5])
    silent = np.zeros((1, 2, 8, 24), bool)
    assert math.isnan(musegan.used_pitch_classes_per_bar(silent, MIN_PITCH)[0])


def test_qualified_notes():
    x = fixture_segment()
    # notes: track 0 C (4 steps), E (1); track 1 G (10, across the bar line), C4 (1), D (4), F# (2)
    np.testing.assert_allclose(musegan.qualified_note_rate(x, min_steps=2), [1 / 2, 3 / 4])
    np.testing.assert_allclose(musegan.qualified_note_rate(x, min_steps=5), [0.0, 1 / 4])
    # the paper's threshold is a 32nd note: 3 of 24 steps per beat; on coarser grids every note qualifies
    assert [musegan.qualified_steps(s) for s in (24, 12, 8, 4, 2)] == [3, 2, 1, 1, 1]
    np.testing.assert_allclose(musegan.qualified_note_rate(x, steps_per_quarter=2), [1.0, 1.0])
    assert math.isnan(musegan.qualified_note_rate(np.zeros((1, 1, 4, 12), bool))[0])


def test_polyphony_and_pitch_class_entropy_per_track():
    x = fixture_segment()
    # track 1: bar 0 step 0 two pitches, steps 1-7 one; bar 1 steps 0-1 one, 4-5 one, 6-7 two -> 17 / 14
    np.testing.assert_allclose(musegan.polyphony(x), [1.0, 17 / 14])
    # note pitch classes: track 0 C, E -> 1 bit; track 1 G, C, D, F# -> 2 bits
    np.testing.assert_allclose(musegan.pitch_class_entropy(x, MIN_PITCH), [1.0, 2.0])


def test_tonal_distance_against_hand_computed_centroids():
    # Harte et al. centroids of single pitch classes (r1 = r2 = 1, r3 = 0.5):
    s3 = math.sqrt(3)
    c = np.array([0, 1, 0, 1, 0, 0.5])
    g = np.array([1 / 2, s3 / 2, 1, 0, s3 / 4, -1 / 4])  # l = 7: angles pi/6, pi/2, 2pi/3 after reduction
    e = np.array([s3 / 2, -1 / 2, 0, 1, s3 / 4, -1 / 4])  # l = 4: angles 2pi/3, 0, 2pi/3
    np.testing.assert_allclose(musegan.tonal_matrix()[:, [0, 7, 4]].T, [c, g, e], atol=1e-12)
    # beats where both tracks sound: 0 (C vs 2 G + 1 C), 1 (C vs G), 2 (E vs G)
    expected = np.mean([np.linalg.norm(c - (2 * g + c) / 3), np.linalg.norm(c - g), np.linalg.norm(e - g)])
    td = musegan.tonal_distance(fixture_segment(), MIN_PITCH, steps_per_beat=2)
    assert td.shape == (2, 2)
    assert td[0, 1] == pytest.approx(expected) and td[1, 0] == pytest.approx(expected)
    assert td[0, 0] == 0.0 and td[1, 1] == 0.0
    with pytest.raises(ValueError, match="whole number of beats"):
        musegan.tonal_distance(fixture_segment(), MIN_PITCH, steps_per_beat=3)


def test_tonal_distance_nan_when_tracks_never_sound_together():
    x = np.zeros((2, 1, 8, 24), bool)
    x[0, 0, 0:2, 0] = True
    x[1, 0, 4:6, 7] = True
    assert math.isnan(musegan.tonal_distance(x, MIN_PITCH, steps_per_beat=2)[0, 1])


def test_leading_axes_are_batched():
    rng = np.random.default_rng(0)
    batch = rng.random((3, 2, 4, 2, 16, 24)) < 0.1
    for function in (musegan.empty_bar_rate, musegan.polyphony, musegan.qualified_note_rate):
        together = function(batch)
        for i in np.ndindex(batch.shape[:2]):
            np.testing.assert_allclose(together[i], function(batch[i]), equal_nan=True)
    together = musegan.tonal_distance(batch, MIN_PITCH)
    np.testing.assert_allclose(together[1, 0], musegan.tonal_distance(batch[1, 0], MIN_PITCH), equal_nan=True)


def test_polyphony_and_entropy_agree_with_per_piece_metrics_of_the_decoded_track():
    encoding = MultitrackEncoding(n_tracks=1, n_bars=2, steps_per_bar=16)
    rng = np.random.default_rng(1)
    for _ in range(5):
        segment = rng.random(encoding.segment_shape) < 0.03
        segment[0, 0, 0, 40] = True
        piece = grid_piece(encoding.decode(segment))
        assert musegan.polyphony(segment)[0] == pytest.approx(metrics.polyphony(piece))
        assert musegan.pitch_class_entropy(segment, encoding.min_pitch)[0] == pytest.approx(
            metrics.pitch_class_entropy(piece))


def test_set_table_averages_over_segments_skipping_undefined_values():
    x = fixture_segment()
    silent_track_0 = x.copy()
    silent_track_0[0] = False
    table = musegan.musegan_metrics(np.stack([x, silent_track_0]), min_pitch=MIN_PITCH, steps_per_quarter=2,
                                    track_names=["S", "B"])
    assert table["n_segments"] == 2 and table["tracks"] == ["S", "B"]
    assert table["EB"] == pytest.approx([0.75, 0.0])
    assert table["UPC"] == pytest.approx([2.0, 2.5])  # the silent track's NaN is skipped
    assert table["QN"] == pytest.approx([1.0, 1.0])
    assert set(table["TD"]) == {"S / B"}
    with pytest.raises(ValueError, match="N, tracks, bars, steps, pitches"):
        musegan.musegan_metrics(x, min_pitch=MIN_PITCH)
