"""experiments/polyphonic.py and what it reads: BL2012 files as .mat / pickle / JSON, their errors, the
polyphonic config, and one tiny end-to-end run."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from experiment_scripts import load_experiment
from musejax.data.bl2012 import load_bl2012


@pytest.fixture(scope="module")
def polyphonic():
    return load_experiment("polyphonic")


def _splits(seed: int = 0, pieces: dict[str, int] | None = None) -> dict[str, list[np.ndarray]]:
    """Random (T, 88) bool rolls of 5..20 steps with 0..4 keys per step, lowest and highest key included."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (pieces or {"train": 6, "valid": 2, "test": 2}).items():
        rolls = []
        for _ in range(n):
            roll = np.zeros((int(rng.integers(5, 21)), 88), bool)
            for step in roll:
                step[rng.choice(88, size=int(rng.integers(0, 5)), replace=False)] = True
            rolls.append(roll)
        splits[split] = rolls
    splits["train"][0][0, [0, 87]] = True  # MIDI 21 and 108
    return splits


def _cells(matrices: list[np.ndarray]) -> np.ndarray:
    """A MATLAB cell array (1 x n) for scipy.io.savemat; np.array() would stack equal shapes instead."""
    cells = np.empty((1, len(matrices)), dtype=object)
    for i, matrix in enumerate(matrices):
        cells[0, i] = matrix
    return cells


def write_mat(path: Path, splits: dict[str, list[np.ndarray]], dtypes=(np.float64, np.uint8, bool)) -> Path:
    """BL2012 .mat layout: traindata / validdata / testdata cells of T x 88 matrices (dtypes cycle: double,
    uint8, logical as repositories store them)."""
    scipy.io.savemat(path, {f"{split}data": _cells([r.astype(dtypes[i % len(dtypes)]) for i, r in enumerate(rolls)])
                            for split, rolls in splits.items()})
    return path


def pitch_lists(splits: dict[str, list[np.ndarray]]) -> dict[str, list[list[list[int]]]]:
    return {split: [[(np.flatnonzero(step) + 21).tolist() for step in roll] for roll in rolls]
            for split, rolls in splits.items()}


@pytest.mark.parametrize("suffix", [".mat", ".pickle", ".json"])
def test_every_layout_loads_the_same_rolls(tmp_path, suffix):
    splits = _splits()
    path = tmp_path / f"tiny{suffix}"
    if suffix == ".mat":
        write_mat(path, splits)
    elif suffix == ".pickle":
        path.write_bytes(pickle.dumps(pitch_lists(splits), protocol=2))
    else:
        path.write_text(json.dumps(pitch_lists(splits)))
    loaded = load_bl2012(path)
    assert {k: len(v) for k, v in loaded.items()} == {"train": 6, "valid": 2, "test": 2}
    for split, rolls in splits.items():
        for got, want in zip(loaded[split], rolls):
            assert got.dtype == bool
            np.testing.assert_array_equal(got, want)


def test_mat_column_cells_and_training_data(tmp_path):
    """A column cell array (n x 1) reads as a row one does; `load_lm_data` takes a .mat corpus, and so does
    `run_split_arrays` (a run's pieces for sample_quality.py and the sampler's copy check)."""
    from musejax.lm.config import resolve_config
    from musejax.lm.data import load_lm_data, make_encoding
    from musejax.lm.run_pieces import run_split_arrays

    splits = _splits(1)
    path = tmp_path / "column.mat"
    scipy.io.savemat(path, {f"{split}data": _cells(rolls).T for split, rolls in splits.items()})
    for got, want in zip(load_bl2012(path)["train"], splits["train"]):
        np.testing.assert_array_equal(got, want)
    data = load_lm_data(resolve_config("polyphonic:tiny", [f"--config.data.corpus={path}"]).data, progress=False)
    assert data.valid.mask.sum() == sum(len(r) for r in splits["valid"]) and data.feature_shape == (88,)
    config = resolve_config("polyphonic:tiny", [f"--config.data.corpus={path}"]).data
    items = run_split_arrays(config, make_encoding(config))
    assert [array.tolist() for _, array, _ in items["test"]] == [r.tolist() for r in splits["test"]]


def _bad_mat(path: Path, **overrides) -> Path:
    splits = _splits(2, {"train": 2, "valid": 1, "test": 1})
    variables = {f"{split}data": _cells(rolls) for split, rolls in splits.items()}
    scipy.io.savemat(path, {k: v for k, v in {**variables, **overrides}.items() if v is not None})
    return path


def test_bad_files_name_the_file_and_what_was_expected(tmp_path):
    cases = [
        (_bad_mat(tmp_path / "novalid.mat", validdata=None, extra=np.zeros(2)),
         r"novalid\.mat: not a BL2012 \.mat file: missing validdata \(has: traindata, testdata, extra\); expected cell "
         r"arrays traindata, validdata, testdata of T x 88 binary matrices"),
        (_bad_mat(tmp_path / "narrow.mat", testdata=_cells([np.zeros((3, 87))])),
         r"narrow\.mat: testdata cell 0: expected a T x 88 matrix \(MIDI 21\.\.108\), got 3 x 87"),
        (_bad_mat(tmp_path / "half.mat", traindata=_cells([np.full((2, 88), 0.5)])),
         r"half\.mat: traindata cell 0: expected a binary \(0/1\) matrix, got 0\.5 at step 0, key 0"),
        (_bad_mat(tmp_path / "numeric.mat", traindata=np.zeros((4, 88))),
         r"numeric\.mat: traindata is a float64 array, not a cell array; expected cell arrays"),
        (_bad_mat(tmp_path / "emptycell.mat", validdata=np.empty((0, 0), dtype=object)),
         r"emptycell\.mat: empty split\(s\) valid: expected at least one piece with at least one time step"),
    ]
    garbage = tmp_path / "garbage.mat"
    garbage.write_bytes(b"not a mat file" * 20)
    cases.append((garbage, r"garbage\.mat: not a readable BL2012 mat file"))
    for name, raw in (("emptytest.json", {"train": [[[60]]], "valid": [[[60]]], "test": []}),
                      ("silent.json", {"train": [[[60]]], "valid": [[], []], "test": [[[60]]]}),
                      ("high.json", {"train": [[[60]]], "valid": [[[109]]], "test": [[[60]]]}),
                      ("list.json", [[[60]]])):
        (tmp_path / name).write_text(json.dumps(raw))
    cases += [(tmp_path / "emptytest.json", r"emptytest\.json: empty split\(s\) test: expected at least one piece"),
              (tmp_path / "silent.json", r"silent\.json: empty split\(s\) valid"),
              (tmp_path / "high.json", r"high\.json: split 'valid' piece 0 step 0: pitch 109 is outside 21\.\.108"),
              (tmp_path / "list.json", r"list\.json: not a BL2012 file: expected a dict with keys train, valid, test")]
    for path, message in cases:
        with pytest.raises(ValueError, match=message) as error:
            load_bl2012(path)
        assert "\n" not in str(error.value)


@pytest.mark.parametrize("raw, reason", [
    ({"training": [[[60]]]}, "missing key(s) train, valid, test"),
    ({"train": [[[60]]], "valid": [], "test": [[[60]]]}, "empty split(s) valid"),
    ({"train": [[[20, 60]]], "valid": [[[60]]], "test": [[[60]]]}, "pitch 20 is outside 21..108"),
])
def test_script_rejects_bad_data_in_one_line(polyphonic, tmp_path, capsys, raw, reason):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(SystemExit) as exit_info:
        polyphonic.main(["--data", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"polyphonic.py: error: {path}: ") and reason in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_config_variants_and_data_set_names(polyphonic):
    from musejax.lm.config import resolve_config

    nade, bernoulli = resolve_config("polyphonic"), resolve_config("polyphonic:bernoulli")
    assert (nade.model.output, bernoulli.model.output) == ("nade", "bernoulli")
    assert nade.data.eval_window_steps == 0  # whole pieces
    # training windows are transposed, with the shift an input that scoring sets to 0 (the pieces as written)
    assert nade.data.transpose_semitones > 0 and nade.model.transpose_input
    assert nade.data.window_steps >= 128 and nade.data.hop_steps == nade.data.window_steps // 2
    assert resolve_config("polyphonic:tiny").train.steps < 10
    with pytest.raises(ValueError, match="unknown variant 'lstm'"):
        resolve_config("polyphonic:lstm")
    names = {"JSB Chorales.pickle": "JSB Chorales", "jsb_chorales.mat": "JSB Chorales",
             "Nottingham.pickle": "Nottingham", "MuseData.mat": "MuseData", "Piano-midi.de.pickle": "Piano-midi.de",
             "piano_midi.json": "Piano-midi.de", "chorales.json": "unknown"}
    assert {name: polyphonic.dataset_of(name) for name in names} == names


def test_tiny_run_writes_results(polyphonic, tmp_path):
    data = tmp_path / "JSB Chorales (tiny).json"
    data.write_text(json.dumps(pitch_lists(_splits(3, {"train": 8, "valid": 2, "test": 2}))))
    out = tmp_path / "out"
    results = polyphonic.main(["--data", str(data), "--out", str(out), "--config", "polyphonic:tiny", "--seed", "2",
                               "--no-progress", "--config.train.steps=4", "--config.train.seed=1"])
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert {"data", "model", "params", "train_nll", "valid_nll", "test_nll"} <= set(saved)
    assert saved["data"] == data.name and saved["model"] == "nade" and saved["dataset"] == "JSB Chorales"
    assert isinstance(saved["params"], int) and saved["params"] > 0
    assert all(math.isfinite(saved[f"{s}_nll"]) and saved[f"{s}_nll"] > 0 for s in ("train", "valid", "test"))
    steps, nlls = zip(*saved["valid_curve"])
    assert steps == (2, 4) and saved["best_step"] == steps[int(np.argmin(nlls))]  # test at the best valid step
    assert saved["valid_nll"] == pytest.approx(min(nlls), rel=1e-4)
    # an override of the seed wins over --seed, and the record names the seed the model trained with
    assert saved["config"]["train"]["seed"] == saved["seed"] == 1 and saved["published_rnn_nade_test_nll"] == 5.56
    table = (out / "results.md").read_text()
    assert "| data | model | params | train NLL | valid NLL | test NLL |" in table
    assert f"| {data.name} (JSB Chorales) | nade | {saved['params']:,} |" in table and "| 5.56 | 5.50 |" in table
    assert "randomly transposed by up to 5 semitones each way (BL2012 trained without)" in table  # not like for like
