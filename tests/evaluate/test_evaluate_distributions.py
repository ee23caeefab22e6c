"""Set-level comparison (Yang & Lerch 2018): features on a fixture, KDE overlap / KL with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from musejax.evaluate import distributions as D
from musejax.evaluate.pieces import make_grid_piece


def test_features_of_a_hand_computed_melody():
    # C4 quarter, E4 eighth, G4 dotted quarter, C4 whole (4 steps per quarter)
    piece = make_grid_piece([60, 64, 67, 60], [0, 4, 6, 12], [4, 6, 12, 28])
    features = D.piece_features(piece)
    expected_pch = np.zeros(12)
    expected_pch[[0, 4, 7]] = [0.5, 0.25, 0.25]
    np.testing.assert_allclose(features["pitch_class_histogram"], expected_pch)
    transitions = features["pitch_class_transition_matrix"].reshape(12, 12)
    assert transitions[0, 4] == transitions[4, 7] == transitions[7, 0] == pytest.approx(1 / 3)
    assert transitions.sum() == pytest.approx(1.0)
    # length classes: 0 whole, 2 quarter, 3 eighth, 6 dotted quarter
    expected_lengths = np.zeros(12)
    expected_lengths[[0, 2, 3, 6]] = 0.25
    np.testing.assert_allclose(features["note_length_histogram"], expected_lengths)
    assert features["inter_onset_interval"] == pytest.approx([1.0])  # onsets 0, 4, 6, 12 steps: mean 4 steps
    assert features["pitch_interval"] == pytest.approx([14 / 3])  # |+4|, |+3|, |-7|


def test_kde_masses_sum_to_one_and_point_masses_work():
    grid = np.linspace(-5, 5, 1024)
    masses = D.kde_on_grid(np.random.default_rng(0).normal(size=500), grid)
    assert masses.sum() == pytest.approx(1.0) and np.all(masses >= 0)
    point = np.zeros(50)
    assert D.overlap_area(point, point) == pytest.approx(1.0)
    assert D.kl_divergence(point, point) == pytest.approx(0.0, abs=1e-12)


def test_overlap_and_kl_of_gaussians_match_closed_forms():
    rng = np.random.default_rng(0)
    a, b, far = rng.normal(0, 1, 20000), rng.normal(1, 1, 20000), rng.normal(10, 1, 20000)
    # KL(N(0,1) || N(1,1)) = 1/2; overlap area of two unit Gaussians one apart = 2 Phi(-1/2) = 0.617
    assert D.kl_divergence(a, b) == pytest.approx(0.5, abs=0.05)
    assert D.overlap_area(a, b) == pytest.approx(0.617, abs=0.02)
    assert D.overlap_area(a, rng.normal(0, 1, 20000)) > 0.97
    assert D.overlap_area(a, far) < 1e-3
    assert D.kl_divergence(a, far) > 10


def random_piece(rng, pitch_classes, n=24, id=""):
    steps = rng.choice([2, 4, 4, 8], n)
    start = np.concatenate([[0], np.cumsum(steps)[:-1]])
    pitch = 60 + rng.choice(pitch_classes, n) + 12 * rng.integers(-1, 2, n)
    return make_grid_piece(pitch, start, start + steps, id=id)


def test_identical_sets_overlap_almost_fully():
    rng = np.random.default_rng(0)
    pieces = [random_piece(rng, np.arange(12)) for _ in range(40)]
    result = D.compare_sets(pieces, pieces)
    for name, row in result.items():
        # inter holds every intra distance twice plus the 40 self-distances (zeros): 1/40 of its mass
        assert row["overlap_area"] > 0.9, name
        assert row["kl_divergence"] < 0.1, name
        assert row["intra_generated"] == row["intra_reference"]


def test_disjoint_pitch_sets_do_not_overlap():
    rng = np.random.default_rng(1)
    major_triads = [random_piece(rng, np.array([0, 4, 7])) for _ in range(30)]
    tritones = [random_piece(rng, np.array([1, 6, 10])) for _ in range(30)]
    row = D.compare_sets(tritones, major_triads)["pitch_class_histogram"]
    assert row["overlap_area"] < 0.02
    assert row["kl_divergence"] > 3
    assert row["inter"]["mean"] > 2 * row["intra_reference"]["mean"]


def test_compare_sets_needs_two_pieces_per_set():
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="at least two pieces"):
        D.compare_sets([random_piece(rng, np.arange(12))], [random_piece(rng, np.arange(12))] * 3)


def test_compare_values_skips_nan_and_summarises():
    row = D.compare_values(np.array([1.0, 2.0, np.nan, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert row["generated"] == {"mean": 2.0, "std": pytest.approx(np.std([1, 2, 3])), "n": 3}
    assert row["overlap_area"] == pytest.approx(1.0) and row["kl_divergence"] == pytest.approx(0.0, abs=1e-9)
