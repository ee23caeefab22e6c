"""experiments/sample_quality.py: end to end on two tiny runs (Bernoulli and NADE output) of a synthetic corpus, with
a MIDI primer; the real-vs-real baseline of a set against itself."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from experiment_scripts import load_experiment

CHORD_TONES = (0, 4, 7)  # C major triad: the synthetic pieces stay in C


@pytest.fixture(scope="module")
def sample_quality():
    return load_experiment("sample_quality")


def write_piece(path: Path, seed: int, bars: int = 6) -> Path:
    """Three voices of random-walk chord tones in quarter and eighth notes, 4/4 at 120 qpm."""
    import pretty_midi

    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for voice, low in enumerate((48, 60, 72)):
        instrument = pretty_midi.Instrument(program=0, name=f"voice {voice}")
        quarters = 0.0
        while quarters < 4 * bars:
            length = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
            pitch = low + int(rng.choice(CHORD_TONES)) + 12 * int(rng.integers(0, 2)) * (voice == 0)
            instrument.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=quarters / 2,
                                                     end=min(quarters + length, 4 * bars) / 2))
            quarters += length
        midi.instruments.append(instrument)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


def synthetic_corpus(folder: Path, valid_fraction: float, test_fraction: float) -> Path:
    """MIDI pieces named so that split_of puts 6 in train, 1 in valid and 3 in test."""
    from musejax.data.splits import split_of

    wanted = {"train": 6, "valid": 1, "test": 3}
    for index in range(200):
        name = f"piece{index:03d}.mid"
        split = split_of(f"{folder.name}/{name}", valid_fraction, test_fraction)
        if wanted[split]:
            write_piece(folder / name, seed=index)
            wanted[split] -= 1
        if not any(wanted.values()):
            return folder
    raise AssertionError(f"split_of did not fill the splits: {wanted}")


def untrained_run(config, run_dir: Path) -> Path:
    """A run directory as `musejax train` leaves it (config.json, a best checkpoint with the data's meta), holding
    the initial parameters: the experiment needs a loadable run, not a good one, and skipping the train-step
    compilation keeps this file fast."""
    import jax

    from musejax.config import save_config_json
    from musejax.train.checkpoint import make_checkpoint_manager, save_checkpoint
    from musejax.lm.data import load_lm_data
    from musejax.train.mesh import make_mesh
    from musejax.lm.build import build_lm, data_meta
    from musejax.train.state import create_train_state, make_optimizer

    data = load_lm_data(config.data, progress=False)
    meta = data_meta(data)
    lm = build_lm(config, meta)
    tx, _ = make_optimizer(config.optim, config.train.steps)
    state, _ = create_train_state(lm.init_params, lm.apply_fn, tx, jax.random.key(0),
                                  make_mesh(jax.devices()[:1]))
    run_dir.mkdir(parents=True)
    save_config_json(config, run_dir / "config.json")
    manager = make_checkpoint_manager(run_dir, config.ckpt)
    save_checkpoint(manager, state, config, meta, metric=1.0)
    manager.wait_until_finished()
    manager.close()
    return run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """lm:tiny run directories on the synthetic corpus, one per output."""
    from musejax.lm.config import resolve_config

    root = tmp_path_factory.mktemp("sample-quality")
    corpus = synthetic_corpus(root / "corpus", 0.2, 0.2)
    return {output: untrained_run(resolve_config("lm:tiny", [
        f"--config.data.corpus={corpus}", f"--config.data.cache_dir={root / 'cache'}",
        "--config.data.valid_fraction=0.2", "--config.data.test_fraction=0.2", f"--config.model.output={output}",
        "--config.model.nade_hidden=8"]), root / output) for output in ("bernoulli", "nade")}


def test_report_compares_both_models_with_the_real_baseline(sample_quality, runs, tmp_path):
    from musejax.evaluate.distributions import FEATURES
    from musejax.evaluate.metrics import METRICS

    primers = tmp_path / "primers"
    write_piece(primers / "primer.mid", seed=1000, bars=2)
    own_baseline = {"n_pairs": 1, "pitch_class_distance": 0.25, "polyphony_difference": 0.5, "key_agreement": 1.0}
    (primers / sample_quality.PRIMER_BASELINE).write_text(json.dumps(own_baseline))  # as primer_sets.py writes
    out = tmp_path / "out"
    result = sample_quality.main(["--run", str(runs["bernoulli"]), "--run", str(runs["nade"]), "--n", "4",
                                  "--baseline-draws", "2", "--primers", str(primers), "--bars", "2",
                                  "--continuations", "2", "--out", str(out), "--no-progress"])
    assert json.loads((out / "sample_quality.json").read_text()) == result
    assert list(result["models"]) == ["bernoulli", "nade"]
    for label, model in result["models"].items():
        assert model["output"] == label and model["samples"]["n"] == 4
        assert model["data"]["n_test"] == 3 and model["data"]["n_baseline"] == model["samples"]["n_evaluated"]
        sections = [model["whole"], *model["quarters"]]
        assert [s["quarter"] for s in model["quarters"]] == [1, 2, 3, 4]
        for section in sections:
            assert set(section["metrics"]) == set(METRICS) and set(section["distributions"]) == set(FEATURES)
        for entry in [*model["whole"]["metrics"].values(), *model["whole"]["distributions"].values()]:
            assert math.isfinite(entry["ratio"]) and entry["meets_target"] == (entry["ratio"] >= 0.8)
        copying = model["copying"]
        assert copying["samples"]["n_pieces"] == 4 and copying["samples"]["longest_span_bars"] >= 0
        continuation = model["continuation"]
        assert continuation["summary"]["n_pairs"] == 2 and continuation["baseline"] == own_baseline
        assert {row["read_as"] for row in continuation["pairs"]} <= {"as written", "melody", "melody_chords"}
        read_as = [continuation["summary"][f"read_as_{shift}"] for shift in ("melody", "melody_chords")]
        assert sum(read_as) == np.mean([row["read_as"] != "as written" for row in continuation["pairs"]])
        assert all(math.isfinite(continuation["summary"][key]) for key in ("pitch_class_distance", "key_agreement"))
        assert len(list((out / f"samples-{label}").glob("*.mid"))) == 4
        real = model["real_as_samples"]  # a real set of the samples' number, scored as the samples are
        assert real["n"] == 4 and real["summary"]["n_compared"] == model["whole"]["summary"]["n_compared"]
    markdown = (out / "sample_quality.md").read_text()
    assert markdown.count("Calibration: a further random set of 4 training pieces") == 1  # both runs: one split
    for heading in ("### Whole pieces", "### Quarters", "### Copying", "### Continuations", "Verdict:",
                    "the bars that follow each primer", "| primer read as a melody (share of continuations) | n/a |"):
        assert heading in markdown


def test_real_vs_real_baseline_of_a_set_against_itself(sample_quality):
    from musejax.evaluate.pieces import make_grid_piece

    def piece(seed: int):
        rng = np.random.default_rng(seed)
        starts = np.arange(0, 64, 2)
        pitches = 60 + rng.choice([0, 2, 4, 5, 7, 9, 11], len(starts))
        return make_grid_piece(np.concatenate([pitches, pitches - 12]), np.tile(starts, 2), np.tile(starts + 2, 2),
                               id=f"p{seed}")

    train = [piece(seed) for seed in range(24)]
    test = [piece(seed) for seed in range(100, 110)]
    everything = [np.arange(len(train))]
    itself = sample_quality.quality(train, train, test, everything)
    ratios = [e["ratio"] for group in ("metrics", "distributions") for e in itself[group].values()]
    assert ratios == pytest.approx([1.0] * len(ratios))
    # a disjoint half of the same real set as the "samples": ratios near 1 too
    halves = sample_quality.quality(train[:12], train, test, sample_quality.baseline_subsets(24, 12, 4, seed=0))
    ratios = np.array([e["ratio"] for group in ("metrics", "distributions") for e in halves[group].values()
                       if e["ratio"] is not None])
    assert len(ratios) >= 15 and 0.9 < np.median(ratios) < 1.1 and ratios.min() > 0.6
    # the calibration scores another real subset the same way: near 1, and its misses are the entries below target
    subsets = sample_quality.baseline_subsets(24, 12, 4, seed=0)
    real = sample_quality.real_as_samples(train, test, subsets, 12, seed=0)
    assert real["n"] == 12 and real["summary"]["min_ratio"] > 0.6
    assert len(real["missed"]) == real["summary"]["n_compared"] - real["summary"]["n_meeting_target"]


def test_test_primers_are_the_first_halves_the_baseline_compares(sample_quality):
    from musejax.data.encodings import PianoRollEncoding

    encoding = PianoRollEncoding(steps_per_quarter=4)
    roll = np.zeros((64, 88), bool)  # four 4/4 bars: a C held for two bars, then an E
    roll[:32, 60 - 21] = True
    roll[32:, 64 - 21] = True
    items = [("corpus/a.mid", roll, (0, 0))]
    test = sample_quality.decoded_pieces(encoding, items, 4)
    (primer,) = sample_quality.first_half_primers(encoding, items, test)
    assert primer.id == "corpus/a.mid (first half)"
    assert encoding.encode(primer).tolist() == roll[:32].tolist()
    half = sample_quality.halves(test[0])
    assert half["key_first"] == "C major" and half["pitch_class_distance"] == 1.0 and not half["key_agrees"]
    # a piece with a quarter's pickup keeps its bar lines: halved at the bar line nearest its middle (step 36 of
    # 68), the first half's meters those of the score (a 1/4 pickup, then 4/4)
    pickup = np.concatenate([roll[:4], roll])
    test = sample_quality.decoded_pieces(encoding, [("corpus/b.mid", pickup, (12, 16))], 4)
    assert test[0].bar_start.tolist()[:3] == [0, 4, 20]
    (primer,) = sample_quality.first_half_primers(encoding, [("corpus/b.mid", pickup, (12, 16))], test)
    assert encoding.encode(primer).tolist() == pickup[:36].tolist()
    assert [(s.numerator, s.denominator) for s in primer.time_signatures] == [(1, 4), (4, 4)]


def test_against_valid_judges_by_the_valid_split(sample_quality, runs, tmp_path):
    """`--against valid` (for tuning sampling options) compares with the valid pieces, never the test split."""
    from musejax.lm.sample import load_run

    run = load_run(runs["nade"])
    splits = sample_quality.run_split_arrays(run.config.data, run.encoding)
    assert len(splits["valid"]) == 1 < len(splits["test"])  # the fixture's valid split is too small to judge by
    with pytest.raises(SystemExit, match="two valid pieces with notes; got 2 samples .* and 1 valid pieces"):
        sample_quality.main(["--run", str(runs["nade"]), "--n", "2", "--baseline-draws", "1", "--against", "valid",
                             "--out", str(tmp_path / "out"), "--no-progress"])
