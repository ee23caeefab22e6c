"""experiments/chung2014.py and the BL2012 file it builds from the chorales (musejax/data/bl2012_corpus.py:
beat frames, in C, split by piece); a --quick smoke run."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from experiment_scripts import load_experiment
from musejax.data.bl2012_corpus import BL2012_HELDOUT_FRACTION, beat_frames, transpose_final_bass_to_c


@pytest.fixture(scope="module")
def chung2014():
    return load_experiment("chung2014")


def _roll(steps: list[list[int]]) -> np.ndarray:
    roll = np.zeros((len(steps), 88), bool)
    for t, pitches in enumerate(steps):
        roll[t, [p - 21 for p in pitches]] = True
    return roll


def test_transpose_final_bass_to_c():
    ends_on_g = _roll([[55, 62, 71, 79], [43, 59, 67, 74], []])  # trailing silence is skipped
    shifted = transpose_final_bass_to_c(ends_on_g, "g-piece")
    assert np.flatnonzero(shifted[1])[0] + 21 == 48  # G2 -> C3 (+5)
    np.testing.assert_array_equal(np.roll(ends_on_g, 5, axis=1), shifted)
    ends_on_f = _roll([[53, 60, 69]])
    assert np.flatnonzero(transpose_final_bass_to_c(ends_on_f, "f")[0]).tolist() == [48 - 21, 55 - 21, 64 - 21]
    top = _roll([[106, 107]])  # A#7 cannot go up by 2: ten semitones down instead
    assert np.flatnonzero(transpose_final_bass_to_c(top, "top")[0])[0] + 21 == 96
    with pytest.raises(ValueError, match="silent: no notes"):
        transpose_final_bass_to_c(np.zeros((3, 88), bool), "silent")


def test_beat_frames_keep_what_sounds_on_each_beat():
    fine = np.zeros((8, 88), bool)
    fine[0:4, 10] = True  # a quarter note on beat 1
    fine[5, 20] = True  # a sixteenth between beats: not on a beat
    fine[4:8, 30] = True
    assert [np.flatnonzero(f).tolist() for f in beat_frames(fine, 4)] == [[10], [30]]
    # eighth-note frames (BL2012's Nottingham, MuseData, Piano-midi.de): what sounds on each eighth's onset
    assert [np.flatnonzero(f).tolist() for f in beat_frames(fine, 4, 2)] == [[10], [10], [30], [30]]
    with pytest.raises(ValueError, match="must divide"):
        beat_frames(fine, 4, 3)


def _tiny_chorale_folder(root: Path, heldout_fraction: float) -> Path:
    """Four train, one valid and one test chorale (by split_of of their ids) copied from the bundled corpus."""
    from musejax.data.corpora import resolve_corpus
    from musejax.data.splits import split_of

    folder = root / "chorales"
    folder.mkdir()
    wanted = {"train": 4, "valid": 1, "test": 1}
    for file in sorted(resolve_corpus("bach-chorales").files, key=lambda f: f.path.stat().st_size):
        split = split_of(f"chorales/{file.path.name}", heldout_fraction, heldout_fraction)
        if wanted[split]:
            shutil.copy(file.path, folder / file.path.name)
            wanted[split] -= 1
        if not any(wanted.values()):
            return folder
    raise AssertionError(f"bundled chorales did not fill the splits: {wanted}")


def test_eighth_note_frames_hold_the_quarter_frames_and_those_between(tmp_path):
    from musejax.data.bl2012_corpus import build_bl2012_from_corpus

    folder = _tiny_chorale_folder(tmp_path, BL2012_HELDOUT_FRACTION)
    built = {n: build_bl2012_from_corpus(tmp_path / f"{n}.json", str(folder), to_c=False, progress=False,
                                         cache_dir=str(tmp_path / "cache"), frames_per_quarter=n) for n in (1, 2)}
    for split, quarters in built[1].items():
        for quarter, eighth in zip(quarters, built[2][split], strict=True):
            assert len(eighth) in (2 * len(quarter) - 1, 2 * len(quarter))
            assert (eighth[::2] == quarter).all()
    assert any((e[1::2] != e[:-1:2][: len(e[1::2])]).any() for e in built[2]["train"])  # notes between the beats
    with pytest.raises(ValueError, match="frames per quarter note must be one of 1, 2, 4"):
        build_bl2012_from_corpus(tmp_path / "x.json", str(folder), frames_per_quarter=3)


def test_quick_run_writes_the_table(chung2014, tmp_path):
    from musejax.data.bl2012 import load_bl2012

    folder = _tiny_chorale_folder(tmp_path, BL2012_HELDOUT_FRACTION)
    out = tmp_path / "out"
    results = chung2014.main(["--corpus", str(folder), "--out", str(out), "--quick", "--cache-dir", str(tmp_path / "cache"),
                              "--no-progress", "--config.train.steps=6", "--config.train.eval_every_steps=2",
                              "--config.train.log_every_steps=2", "--config.train.batch_size=2",
                              "--config.train.eval_batch_size=2"])
    assert json.loads((out / "results.json").read_text()) == json.loads(json.dumps(results))
    splits = load_bl2012(out / "chorales-quarter-in-c.pickle")
    assert {k: len(v) for k, v in splits.items()} == {"train": 4, "valid": 1, "test": 1}
    for roll in (r for rolls in splits.values() for r in rolls):
        last = roll[np.flatnonzero(roll.any(1))[-1]]
        assert (np.flatnonzero(last)[0] + 21) % 12 == 0  # ends on a C in the bass
    assert results["data"]["splits"]["train"]["pieces"] == 4 and results["quick"]
    rows = {r["cell"]: r for r in results["results"]}
    assert list(rows) == ["tanh", "gru", "lstm"]
    gates = {"tanh": 1, "gru": 3, "lstm": 4}
    for cell, row in rows.items():  # counts from the param pytree = the closed form of one layer + readout
        units = row["units"]
        assert row["params"] == gates[cell] * units * (88 + units + 2) + units * 88 + 88
        assert all(math.isfinite(row[f"{s}_nll"]) and row[f"{s}_nll"] > 0 for s in ("train", "valid", "test"))
        steps, nlls = zip(*row["valid_curve"])
        assert steps == (2, 4, 6)
        assert row["best_step"] == steps[int(np.argmin(nlls))]  # test taken at the best valid step
        assert row["valid_nll"] == pytest.approx(min(nlls), rel=1e-4)
    table = (out / "results.md").read_text()
    assert "| cell | units | params | train NLL | valid NLL | test NLL |" in table
    for cell, row in rows.items():
        assert f"| {cell} | {row['units']} | {row['params']:,} |" in table
    assert "| gru |" in table and "8.54" in table


def test_unknown_cell_is_a_usage_error(chung2014, capsys):
    with pytest.raises(SystemExit):
        chung2014.main(["--cells", "gru,rnn"])
    assert "unknown rnn" in capsys.readouterr().err
