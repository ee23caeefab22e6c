"""BL2012 polyphonic format: load pickle/JSON into (T, 88) piano-rolls, save, and reject bad files."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from musejax.data.bl2012 import load_bl2012, save_bl2012

RAW = {
    "train": [[[60, 64, 67], [], [21, 108]], [[62.0]]],  # floats as in some original pickles
    "valid": [[[55], [55, 59]]],
    "test": [[], [[48]]],  # an empty piece is kept (a split must hold one piece with a time step)
}


def _expected_first_piece() -> np.ndarray:
    roll = np.zeros((3, 88), dtype=bool)
    roll[0, [60 - 21, 64 - 21, 67 - 21]] = True
    roll[2, [0, 87]] = True
    return roll


@pytest.mark.parametrize("suffix", [".pickle", ".json"])
def test_load_as_is(tmp_path, suffix):
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(RAW))
    else:
        path.write_bytes(pickle.dumps(RAW, protocol=2))
    splits = load_bl2012(path)
    assert set(splits) == {"train", "valid", "test"}
    assert [r.shape for r in splits["train"]] == [(3, 88), (1, 88)]
    assert [r.shape for r in splits["test"]] == [(0, 88), (1, 88)]
    assert splits["train"][0].dtype == bool
    np.testing.assert_array_equal(splits["train"][0], _expected_first_piece())
    assert np.flatnonzero(splits["train"][1][0]).tolist() == [62 - 21]


def test_python2_latin1_pickle(tmp_path):
    """The original files are Python 2 pickles: protocol 0/2 with str, decoded as latin-1."""
    path = tmp_path / "py2.pickle"
    # Hand-written protocol-0 pickle of {'train': [[[60]]], 'valid': [[[62]]], 'test': [[[64]]]}, py2 str keys.
    path.write_bytes(b"(dp0\nS'test'\np1\n(lp2\n(lp3\n(lp4\nI64\naaasS'train'\np5\n(lp6\n(lp7\n(lp8\nI60\naaasS'valid'"
                     b"\np9\n(lp10\n(lp11\n(lp12\nI62\naaas.")
    splits = load_bl2012(path)
    assert [np.flatnonzero(splits[s][0][0]).tolist() for s in ("train", "valid", "test")] == [[39], [41], [43]]


@pytest.mark.parametrize("suffix", [".pickle", ".json"])
def test_save_then_load_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(0)
    splits = {name: [rng.random((int(rng.integers(1, 30)), 88)) < 0.05 for _ in range(n)]
              for name, n in (("train", 4), ("valid", 2), ("test", 1))}
    path = tmp_path / f"out{suffix}"
    save_bl2012(path, splits)
    again = load_bl2012(path)
    for name in splits:
        assert len(again[name]) == len(splits[name])
        for a, b in zip(again[name], splits[name]):
            np.testing.assert_array_equal(a, b)
    raw = json.loads(path.read_text()) if suffix == ".json" else pickle.loads(path.read_bytes())
    assert all(isinstance(p, int) for piece in raw["train"] for step in piece for p in step)


def test_invalid_files_name_file_and_piece(tmp_path):
    missing_key = tmp_path / "nokey.json"
    missing_key.write_text(json.dumps({"train": [], "test": []}))
    with pytest.raises(ValueError, match=r"nokey\.json: missing key\(s\) valid"):
        load_bl2012(missing_key)
    low = tmp_path / "low.json"
    low.write_text(json.dumps({"train": [[[60]], [[60], [20]]], "valid": [], "test": []}))
    with pytest.raises(ValueError, match=r"low\.json: split 'train' piece 1 step 1: pitch 20 is outside 21\.\.108"):
        load_bl2012(low)
    high = tmp_path / "high.pickle"
    high.write_bytes(pickle.dumps({"train": [], "valid": [[[109]]], "test": []}))
    with pytest.raises(ValueError, match=r"high\.pickle: split 'valid' piece 0 step 0: pitch 109"):
        load_bl2012(high)
    fraction = tmp_path / "frac.json"
    fraction.write_text(json.dumps({"train": [[[60.5]]], "valid": [], "test": []}))
    with pytest.raises(ValueError, match="not a whole MIDI number"):
        load_bl2012(fraction)
    not_dict = tmp_path / "list.json"
    not_dict.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a dict"):
        load_bl2012(not_dict)
    garbage = tmp_path / "garbage.pickle"
    garbage.write_bytes(b"\x00\x01 not a pickle")
    with pytest.raises(ValueError, match=r"garbage\.pickle: not a readable BL2012 pickle"):
        load_bl2012(garbage)
    with pytest.raises(ValueError, match="no such BL2012 file"):
        load_bl2012(tmp_path / "absent.pickle")
    wrong_suffix = tmp_path / "data.csv"
    wrong_suffix.write_text("x")
    with pytest.raises(ValueError, match="unknown BL2012 file type"):
        load_bl2012(wrong_suffix)


def test_pickle_with_code_is_refused(tmp_path):
    evil = tmp_path / "evil.pickle"
    evil.write_bytes(b"cos\nsystem\n(S'echo hacked'\ntR.")
    with pytest.raises(ValueError, match="refusing to load os.system"):
        load_bl2012(evil)


def test_save_validates(tmp_path):
    good = {"train": [np.zeros((2, 88), bool)], "valid": [], "test": []}
    with pytest.raises(ValueError, match=r"missing test"):
        save_bl2012(tmp_path / "x.json", {"train": [], "valid": []})
    with pytest.raises(ValueError, match=r"piece 0: expected shape \(T, 88\)"):
        save_bl2012(tmp_path / "x.json", {**good, "valid": [np.zeros((2, 87), bool)]})
    with pytest.raises(ValueError, match="only 0/1"):
        save_bl2012(tmp_path / "x.json", {**good, "test": [np.full((1, 88), 2)]})
    with pytest.raises(ValueError, match="not '.npz'"):
        save_bl2012(tmp_path / "x.npz", good)


@pytest.mark.parametrize("suffix,compress", [(".pickle", False), (".mat", True)])
def test_damaged_files_are_one_error_naming_the_file(tmp_path, suffix, compress):
    """Truncated or overwritten bytes: the file loads (if the damage left it valid) or raises ValueError naming it,
    whatever the parser underneath raised (seen: AttributeError, TypeError, MemoryError from pickle; zlib.error and
    IndexError from scipy's .mat reader)."""
    import random

    import scipy.io

    rng = np.random.default_rng(0)
    rolls = {name: [rng.random((int(rng.integers(5, 40)), 88)) < 0.05 for _ in range(4)]
             for name in ("train", "valid", "test")}
    good = tmp_path / f"good{suffix}"
    if suffix == ".mat":
        cells = {}
        for name, pieces in rolls.items():
            cells[f"{name}data"] = np.empty((1, len(pieces)), object)
            for index, roll in enumerate(pieces):
                cells[f"{name}data"][0, index] = roll.astype(float)
        scipy.io.savemat(good, cells, do_compression=compress)
    else:
        save_bl2012(good, rolls)
    data = good.read_bytes()
    damaged = tmp_path / f"damaged{suffix}"
    for trial in range(60):  # (trial 67 of the pickle spends 25 s unpickling a damaged big number)
        draw = random.Random(trial)
        raw = bytearray(data[: draw.randrange(len(data))] if trial % 3 == 0 else data)
        if trial % 3:
            for _ in range(draw.randint(1, 8)):
                raw[draw.randrange(len(raw))] = draw.randrange(256)
        damaged.write_bytes(bytes(raw))
        try:
            load_bl2012(damaged)
        except ValueError as error:
            assert str(error).startswith(f"{damaged}: ") and "\n" not in str(error)
