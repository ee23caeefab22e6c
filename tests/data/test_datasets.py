"""Splits, windows and augmentation: transposition, texture shifts (numpy only; batches:
tests/train/test_input_pipeline.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musejax.data.splits import split_of
from musejax.data.windows import (TEXTURE_AS_WRITTEN, chained, make_windows,
                                  random_transpose, texture_augmentation, transpose_augmentation)

# ---------------------------------------------------------------- splits


def test_split_is_deterministic_disjoint_and_respects_fractions() -> None:
    ids = [f"corpus/dir/piece{i}.mid" for i in range(20000)] + [f"book.abc#{i}" for i in range(1, 5001)]
    first = [split_of(i, 0.1, 0.2) for i in ids]
    assert first == [split_of(i, 0.1, 0.2) for i in reversed(ids)][::-1]  # order-independent, stable
    counts = {name: first.count(name) / len(ids) for name in ("train", "valid", "test")}
    assert abs(counts["valid"] - 0.1) < 0.01 and abs(counts["test"] - 0.2) < 0.01
    assert abs(counts["train"] - 0.7) < 0.015
    # a piece is in exactly one split: the mapping id -> split is a function
    assert len({(i, s) for i, s in zip(ids, first)}) == len(set(ids))
    # golden values: the hash must not change between versions (it decides which pieces are held out)
    assert [split_of(f"c/p{n}", 0.3, 0.3) for n in range(12)] == [
        "train", "train", "valid", "test", "valid", "train", "valid", "valid", "train", "valid", "train", "test"]


def test_split_growing_a_fraction_only_moves_pieces_out_of_train() -> None:
    ids = [f"c/p{i}" for i in range(3000)]
    small = {i: split_of(i, 0.1, 0.1) for i in ids}
    large = {i: split_of(i, 0.2, 0.1) for i in ids}
    assert all(small[i] == large[i] or (small[i] == "train" and large[i] == "valid") for i in ids)
    assert all(split_of(i, 0.0, 0.0) == "train" for i in ids[:100])


@pytest.mark.parametrize("fractions", [(-0.1, 0.1), (0.6, 0.5)])
def test_split_rejects_bad_fractions(fractions: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="fractions"):
        split_of("x", *fractions)


# ---------------------------------------------------------------- windows


def test_windows_and_masks_exact() -> None:
    a = np.arange(1, 11, dtype=np.int32)  # 10 steps
    b = np.arange(100, 103, dtype=np.int32)  # 3 steps: shorter than a window
    empty = np.zeros((0,), dtype=np.int32)
    windows, mask, piece = make_windows([a, empty, b], length=4)
    np.testing.assert_array_equal(windows, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 0, 0], [100, 101, 102, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    np.testing.assert_array_equal(piece, [0, 0, 0, 2])
    assert windows.dtype == np.int32 and mask.dtype == bool

    windows, mask, piece = make_windows([a], length=4, hop=3, pad_value=-1)
    np.testing.assert_array_equal(windows, [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, 9, 10]])
    assert mask.all() and list(piece) == [0, 0, 0]
    windows, mask, _ = make_windows([a[:8]], length=4, hop=3, pad_value=-1)
    np.testing.assert_array_equal(windows, [[1, 2, 3, 4], [4, 5, 6, 7], [7, 8, -1, -1]])


def test_windows_keep_feature_axes_and_validate() -> None:
    rolls = [np.ones((5, 2, 88), dtype=bool), np.ones((2, 2, 88), dtype=bool)]
    windows, mask, _ = make_windows(rolls, length=3)
    assert windows.shape == (3, 3, 2, 88) and not windows[1, 2:].any() and not windows[2, 2:].any()
    assert mask.sum() == 7 and windows.sum() == 7 * 2 * 88
    with pytest.raises(ValueError, match="array 1"):
        make_windows([np.ones((5, 88)), np.ones((5, 89))], length=3)
    with pytest.raises(ValueError, match="length"):
        make_windows(rolls, length=0)


@given(lengths=st.lists(st.integers(0, 40), min_size=1, max_size=6), length=st.integers(1, 12),
       hop=st.integers(1, 12))
@settings(max_examples=60, deadline=None)
def test_windows_cover_every_step(lengths: list[int], length: int, hop: int) -> None:
    hop = min(hop, length)  # with hop > length steps between windows are skipped by design
    arrays = [np.arange(n) + 1000 * i for i, n in enumerate(lengths)]
    windows, mask, piece = make_windows(arrays, length, hop)
    for i, array in enumerate(arrays):
        covered = set(windows[piece == i][mask[piece == i]].tolist())
        assert covered == set(array.tolist())


# ---------------------------------------------------------------- transposition augmentation


@given(low=st.integers(0, 87), span=st.integers(0, 30), max_semitones=st.integers(0, 12), seed=st.integers(0, 2**32))
@settings(max_examples=80, deadline=None)
def test_random_transpose_pianoroll_stays_in_range(low: int, span: int, max_semitones: int, seed: int) -> None:
    from musejax.data.encodings import PianoRollEncoding

    rng = np.random.default_rng(seed)
    high = min(low + span, 87)
    roll = np.zeros((16, 88), dtype=bool)
    roll[np.arange(16), rng.integers(low, high + 1, size=16)] = True
    roll[0, low] = roll[1, high] = True
    out = random_transpose(roll, PianoRollEncoding(), rng, max_semitones)
    assert out.shape == roll.shape and out.dtype == roll.dtype and out.sum() == roll.sum()
    shift = int(np.flatnonzero(out[0])[0]) - low
    assert abs(shift) <= max_semitones and 0 <= low + shift and high + shift <= 87
    np.testing.assert_array_equal(out[:, max(shift, 0):88 + min(shift, 0)], roll[:, max(-shift, 0):88 - max(shift, 0)])


def test_random_transpose_draws_every_allowed_shift_and_only_those() -> None:
    from musejax.data.encodings import PianoRollEncoding

    roll = np.zeros((4, 88), dtype=bool)
    roll[:, 84] = True  # 3 semitones below the top of the range: shifts -5..+3 allowed with max 5
    rng = np.random.default_rng(0)
    shifts = {int(np.flatnonzero(random_transpose(roll, PianoRollEncoding(), rng, 5)[0])[0]) - 84 for _ in range(300)}
    assert shifts == set(range(-5, 4))
    with pytest.raises(ValueError, match="max_semitones"):
        random_transpose(roll, PianoRollEncoding(), rng, -1)


@given(seed=st.integers(0, 2**32), max_semitones=st.integers(0, 12))
@settings(max_examples=50, deadline=None)
def test_transpose_augmentation_of_melody_windows(seed: int, max_semitones: int) -> None:
    from musejax.data.encodings import MelodyEncoding

    encoding = MelodyEncoding()
    rng = np.random.default_rng(seed)
    n_pitches = encoding.max_pitch - encoding.min_pitch + 1
    events = rng.integers(0, 2 + n_pitches, size=24).astype(np.int32)
    mask = np.arange(24) < 20
    window = np.where(mask, events, 0).astype(np.int32)
    augmented = transpose_augmentation(encoding, max_semitones)(window, mask, rng)
    out, shift = augmented["array"], int(augmented["transpose"])
    assert out.shape == window.shape and out.dtype == window.dtype
    assert np.all((out >= 0) & (out < 2 + n_pitches))
    np.testing.assert_array_equal(out < 2, window < 2)  # no-event / note-off untouched
    shifts = set((out - window)[window >= 2].tolist())
    assert shifts <= {shift} and abs(shift) <= max_semitones  # the shift it reports is the one it made
    np.testing.assert_array_equal(out[~mask], 0)


def chorale_window(steps: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """A four-voice window of quarter-note chords (keys of an 88-key roll), the last 16 steps padding."""
    roll = np.zeros((steps, 88), bool)
    chords = [(48, 55, 64, 72), (45, 57, 64, 72), (43, 55, 62, 71), (48, 52, 60, 67)]
    for quarter in range((steps - 16) // 4):
        roll[4 * quarter: 4 * quarter + 4, np.array(chords[quarter % 4]) - 21] = True
    return roll, np.arange(steps) < steps - 16


def test_texture_augmentation_shifts_a_share_and_labels_every_window() -> None:
    window, mask = chorale_window()
    rng = np.random.default_rng(0)
    melody = texture_augmentation(["melody"], 1.0, 4, 4.0)(window, mask, rng)
    assert int(melody["texture"]) == 1  # the first shift's label by default
    np.testing.assert_array_equal(melody["array"].sum(1), window.any(1))  # one line: the top voice
    np.testing.assert_array_equal(melody["array"][:, 72 - 21], window[:, 72 - 21])  # the top voice where it sounds
    chords = texture_augmentation(["accompaniment"], 1.0, 4, 4.0)(window, mask, rng)["array"]
    assert chords[:48].sum(1).min() >= 2 and not chords[48:].any()  # melody over chords; padding stays empty
    onsets = np.flatnonzero((chords[1:] & ~chords[:-1]).any(1)) + 1
    assert set(onsets % 4) == {0}  # chords on the beats of bars that start with the window
    kept = texture_augmentation(["melody"], 0.0, 4, 4.0)(window, mask, rng)
    assert int(kept["texture"]) == TEXTURE_AS_WRITTEN
    np.testing.assert_array_equal(kept["array"], window)
    augment = texture_augmentation(["melody", "melody_chords"], 0.5, 4, 4.0, labels=[3, 7])
    half = [augment(window, mask, rng) for _ in range(300)]
    labels = np.array([int(out["texture"]) for out in half])
    assert 0.35 < (labels != TEXTURE_AS_WRITTEN).mean() < 0.65 and set(labels) == {TEXTURE_AS_WRITTEN, 3, 7}
    for out, label in zip(half, labels):  # the label says which shift the window got, if any
        if label == TEXTURE_AS_WRITTEN:
            np.testing.assert_array_equal(out["array"], window)
        else:
            polyphonic = out["array"].sum(1).max() > 1  # melody_chords (label 7) keeps chords under the tune
            assert polyphonic == (label == 7)
    with pytest.raises(ValueError, match="rate"):
        texture_augmentation(["melody"], 1.5, 4, 4.0)
    with pytest.raises(ValueError, match="label"):
        texture_augmentation(["melody"], 0.5, 4, 4.0, labels=[TEXTURE_AS_WRITTEN])


def test_chained_augmentations_transpose_the_shifted_window() -> None:
    from musejax.data.encodings import PianoRollEncoding

    window, mask = chorale_window()
    both = chained(texture_augmentation(["melody"], 1.0, 4, 4.0), transpose_augmentation(PianoRollEncoding(), 5))
    for seed in range(6):
        out = both(window, mask, np.random.default_rng(seed))
        melody = texture_augmentation(["melody"], 1.0, 4, 4.0)(window, mask, np.random.default_rng(seed))["array"]
        assert int(out["texture"]) == 1
        np.testing.assert_array_equal(out["array"], np.roll(melody, int(out["transpose"]), axis=1))


# ---------------------------------------------------------------- `musejax data build` end to end


def test_cli_build_writes_splits_report_and_summary(tmp_path, capsys) -> None:
    import json

    from musejax.cli import main
    from musejax.data.datasets import load_dataset
    from test_cache import write_tiny_corpus  # pytest puts this folder on sys.path (no __init__.py)

    corpus = write_tiny_corpus(tmp_path / "tiny", n_pieces=12)
    out = tmp_path / "out"
    argv = ["data", "build", "--corpus", str(corpus), "--encoding", "melody", "--steps-per-quarter", "2",
            "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "broken.mid" in printed and "corrupt-midi" in printed and "12" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "failed_files.txt", "report.json", "summary.json", "test.npz", "train.npz", "valid.npz"]
    report = json.loads((out / "report.json").read_text())
    assert report["total"]["n_files"] == 13 and report["total"]["n_loaded"] == 12
    assert report["counts_by_reason"] == {"corrupt-midi": 1} and list(report["corpora"]) == ["tiny"]
    failed = (out / "failed_files.txt").read_text().splitlines()
    assert len(failed) == 1 and failed[0].split("\t")[:2] == [str(corpus / "broken.mid"), "corrupt-midi"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["encoding"] == {"name": "melody", "steps_per_quarter": 2, "min_pitch": 48, "max_pitch": 83}
    assert sum(s["pieces"] for s in summary["splits"].values()) == 12
    assert summary["corpora"]["tiny"] == {"files": 13, "loaded": 12, "failed": 1, "cache": "parsed",
                                          "counts_by_reason": {"corrupt-midi": 1}}

    dataset = load_dataset(out)
    ids = [p.id for pieces in dataset.splits.values() for p in pieces]
    assert sorted(ids) == sorted(f"tiny/piece{i}.mid" for i in range(12))
    assert all(split_of(p.id) == split for split, pieces in dataset.splits.items() for p in pieces)
    piece0 = next(p for pieces in dataset.splits.values() for p in pieces if p.id == "tiny/piece0.mid")
    assert piece0.array.dtype == np.int32 and list(piece0.array[:3]) == [2 + 55 - 48, 2 + 57 - 48, 2 + 59 - 48]

    assert main(argv) == 0  # second build: from the cache, same outputs
    assert "encoded" in capsys.readouterr().out
    assert json.loads((out / "report.json").read_text()) == report


def test_build_dataset_on_every_format_splits_whole_pieces(music_files, tmp_path, tmp_path_factory) -> None:
    from musejax.data.datasets import build_dataset

    cache_dir = tmp_path_factory.mktemp("cache")  # outside the corpus folder
    dataset = build_dataset(str(tmp_path), "pianoroll", cache_dir=cache_dir, workers=1, progress=False,
                            valid_fraction=0.3, test_fraction=0.3)
    where = {p.id: split for split, pieces in dataset.splits.items() for p in pieces}
    assert sum(len(pieces) for pieces in dataset.splits.values()) == len(where)  # each piece in one split
    name = tmp_path.name
    assert {f"{name}/melody.mid", f"{name}/duet.musicxml", f"{name}/chorale.krn", f"{name}/book.abc#1"} <= set(where)
    assert all(split == split_of(piece_id, 0.3, 0.3) for piece_id, split in where.items())
    assert dataset.report.n_loaded == len(where) and dataset.report.failures  # the broken/silent tunes
    assert all(p.array.shape[1:] == (88,) and p.array.any() for pieces in dataset.splits.values() for p in pieces)
    bars = {p.id: p.bar for pieces in dataset.splits.values() for p in pieces}  # (phase, steps per bar)
    assert bars[f"{name}/duet.musicxml"] == (0, 8)  # 2/4 from its first step, at 4 steps a quarter
    again = build_dataset(str(tmp_path), "pianoroll", cache_dir=cache_dir, workers=1, progress=False,
                          valid_fraction=0.3, test_fraction=0.3)
    assert set(again.cache_status.values()) == {"encoded"}
    assert {p.id: p.bar for pieces in again.splits.values() for p in pieces} == bars  # kept by the cache


def test_corpus_all_means_every_bundled_corpus() -> None:
    from musejax.data.corpora import BUNDLED_CORPORA
    from musejax.data.datasets import expand_corpus_names

    assert expand_corpus_names("all") == list(BUNDLED_CORPORA)
    assert expand_corpus_names(["bach-chorales", "/x/y", "all", "/x/y"]) == (
        ["bach-chorales", "/x/y"] + [n for n in BUNDLED_CORPORA if n != "bach-chorales"])
    with pytest.raises(ValueError, match="no corpus"):
        expand_corpus_names([])


def test_cli_build_reports_user_errors_in_one_line(tmp_path, capsys) -> None:
    from musejax.cli import main

    base = ["data", "build", "--encoding", "pianoroll", "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path)]
    assert main(base + ["--corpus", str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(base + ["--corpus", "bach-chorales", "--min-pitch", "30"]) == 2
    assert "min_pitch" in capsys.readouterr().err
