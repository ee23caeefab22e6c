"""Training: masked losses, loss goes down, exact resume, checkpoint retention, non-finite loss, the command."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import logging as absl_logging

from lm_fixtures import records, synthetic_rolls, tiny_config, tiny_data
from musejax.config import ConfigError
from musejax.lm.config import resolve_config
from musejax.lm.restore import restore_run
from musejax.train.checkpoint import make_checkpoint_manager, resume_training, save_checkpoint
from musejax.lm.data import TrainBatches, eval_batches, lm_batch, make_encoding, windows_from_arrays
from musejax.train.fit import RunLockedError
from musejax.lm.task import NonFiniteLossError, train
from musejax.train.mesh import make_mesh
from musejax.train.metrics import read_metrics
from musejax.lm.build import build_lm, data_meta
from musejax.train.state import create_train_state, make_optimizer
from musejax.lm.steps import masked_nll_sums, train_step, zero_train_metrics


# ------------------------------------------------------------------------------------------------ losses


def test_bernoulli_nll_is_summed_over_keys_and_averaged_over_unpadded_steps():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 88)).astype(np.float32)
    targets = (rng.random((2, 5, 88)) < 0.1).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.float32)
    nll_sum, count = masked_nll_sums(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), "bernoulli")
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    per_step = -(targets * np.log(p) + (1 - targets) * np.log(1 - p)).sum(-1)
    assert float(count) == 8
    np.testing.assert_allclose(float(nll_sum), (per_step * mask).sum(), rtol=1e-5)


def test_categorical_nll_matches_log_softmax():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(3, 4, 7)).astype(np.float32)
    targets = rng.integers(0, 7, size=(3, 4))
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], np.float32)
    nll_sum, count = masked_nll_sums(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask), "categorical")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -(np.take_along_axis(log_p, targets[..., None], -1)[..., 0] * mask).sum()
    assert float(count) == 7
    np.testing.assert_allclose(float(nll_sum), expected, rtol=1e-5)


def test_windows_know_their_place_in_the_bar_and_batches_carry_it():
    """Each window's bar: its piece's phase moved on by the window's start (bars of 16 with a 12-step pickup:
    windows at 0, 8, 16, 24 start at 12, 4, 12, 4), steps per bar kept; (0, 0) stays unknown; through the
    training stream (shuffled, grouped by length) and the evaluation batches (padding rows unknown)."""
    config = tiny_config()  # training windows of 16 steps every 8, evaluation windows of 32
    rolls = [np.zeros((n, 88), bool) for n in (40, 10, 20)]
    splits = {"train": (rolls[:2], [0, 0]), "valid": (rolls[2:], [0]), "test": (rolls[1:2], [0])}
    bars = {"train": [(12, 16), (0, 0)], "valid": [(2, 12)], "test": [(0, 0)]}
    data = windows_from_arrays(config.data, make_encoding(config.data), splits, ["bach"], "zeros", bars)
    np.testing.assert_array_equal(data.train.bar, [[12, 16], [4, 16], [12, 16], [4, 16], [0, 0]])
    assert data.piece_bars == [(12, 16), (0, 0)]
    batch = eval_batches(data.valid, 2, data.loss_kind)[0]
    np.testing.assert_array_equal(batch["bar"], [[2, 12], [0, 0]])
    by_end = {40: [12, 16], 32: [4, 16], 24: [12, 16], 16: [4, 16], 10: [0, 0]}
    for bucket in (0, 8):
        first = next(TrainBatches(data, 4, 0, 0, length_bucket=bucket).from_step(0))
        assert [by_end[int(end)] for end in first["end"]] == first["bar"].tolist()
    assert windows_from_arrays(config.data, make_encoding(config.data), splits, ["bach"]).train.bar is None
    np.testing.assert_array_equal(lm_batch(data.train.windows, data.train.mask, data.train.style, "bernoulli")["bar"],
                                  0)
    assert build_lm(config, data_meta(data)).model.bar_lines and data_meta(data)["piece_bars"] == [[12, 16], [0, 0]]


def test_windows_know_the_steps_to_their_pieces_end_and_batches_carry_them():
    config = tiny_config()  # training windows of 16 steps every 8, evaluation windows of 32
    rolls = [np.zeros((n, 88), bool) for n in (40, 10, 20)]
    splits = {"train": (rolls[:2], [0, 0]), "valid": (rolls[2:], [0]), "test": (rolls[1:2], [0])}
    data = windows_from_arrays(config.data, make_encoding(config.data), splits, ["bach"], "zeros")
    np.testing.assert_array_equal(data.train.left, [40, 32, 24, 16, 10])  # windows at 0, 8, 16, 24 of 40; one of 10
    np.testing.assert_array_equal(data.valid.left, [20])
    batch = eval_batches(data.valid, 2, data.loss_kind)[0]
    assert batch["end"][0] == 20 and batch["end"][1] > 10**6  # a padding row: no end
    assert lm_batch(data.train.windows, data.train.mask, data.train.style, "bernoulli")["end"].min() > 10**6
    first = next(TrainBatches(data, 4, 0, 0).from_step(0))
    ends = {40: 16, 32: 16, 24: 16, 16: 16, 10: 10}  # each window's unpadded steps follow from its end
    assert all(ends[int(end)] == int(mask.sum()) for end, mask in zip(first["end"], first["mask"]))
    model = build_lm(tiny_config("--config.model.end_quarters=4"), data_meta(data)).model
    assert (model.end_buckets, model.end_bucket_steps) == (4, config.data.steps_per_quarter)
    assert build_lm(config, data_meta(data)).model.end_buckets == config.model.end_quarters


def test_padding_changes_neither_loss_nor_the_update():
    config = tiny_config()
    data = tiny_data(config)
    lm = build_lm(config, data_meta(data))
    tx, _ = make_optimizer(config.optim, config.train.steps)
    state, _ = create_train_state(lm.init_params, lm.apply_fn, tx, jax.random.key(0), make_mesh())
    batch = eval_batches(data.valid, 4, "bernoulli")[0]
    assert (batch["mask"] == 0).any(), "the fixture must contain padding"
    noisy = {k: v.copy() for k, v in batch.items()}
    pad = batch["mask"] == 0
    rng = np.random.default_rng(3)
    noisy["inputs"][pad] = rng.random((pad.sum(), 88))
    noisy["targets"][pad] = rng.random((pad.sum(), 88)) < 0.5
    step = jax.jit(train_step)
    (state_a, metrics_a), (state_b, metrics_b) = step(state, batch, jax.random.key(1)), step(state, noisy, jax.random.key(1))
    assert float(metrics_a["nll_sum"]) == float(metrics_b["nll_sum"]) and int(state_a.step) == 1
    assert float(metrics_a["steps"]) == batch["mask"].sum()
    for a, b in zip(jax.tree.leaves(state_a.params), jax.tree.leaves(state_b.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    _, metrics_c = step(state, batch, jax.random.key(2))  # other dropout noise, other loss: the key is used
    assert float(metrics_c["nll_sum"]) != float(metrics_a["nll_sum"])


def test_event_batches_predict_the_next_event():
    windows = np.array([[5, 6, 7, 0], [3, 4, 0, 0]], np.int32)
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    batch = lm_batch(windows, mask, np.zeros(2, np.int32), "categorical")
    np.testing.assert_array_equal(batch["inputs"], [[5, 6, 7], [3, 4, 0]])
    np.testing.assert_array_equal(batch["targets"], [[6, 7, 0], [4, 0, 0]])
    np.testing.assert_array_equal(batch["mask"], [[1, 1, 0], [1, 0, 0]])


# ---------------------------------------------------------------------------------------------- training


def test_loss_decreases_on_a_tiny_dataset(tmp_path):
    config = tiny_config()
    result = train(config, tmp_path / "run", data=tiny_data(config), progress=False)
    train_nll = [r["nll"] for r in read_metrics(tmp_path / "run", "train")]
    valid_nll = [r["nll"] for r in read_metrics(tmp_path / "run", "valid")]
    assert train_nll == sorted(train_nll, reverse=True) and train_nll[-1] < 0.6 * train_nll[0], train_nll
    assert valid_nll[-1] < valid_nll[0] and result.final["valid_nll"] == valid_nll[-1]
    assert np.isfinite(result.final["test_nll"])


def test_event_lm_on_melody_tokens_learns(tmp_path):
    config = tiny_config("--config.data.encoding=melody")
    rng = np.random.default_rng(0)

    def melodies(n):  # note-on, no-event, note-on a third higher, ...: a learnable event grammar
        return [np.array([base + 2 * (t % 4) if t % 2 == 0 else 0 for t in range(int(rng.integers(12, 40)))], np.int32)
                for base in rng.integers(2, 20, size=n)]

    splits = {"train": (melodies(16), [0] * 16), "valid": (melodies(3), [0] * 3), "test": (melodies(3), [0] * 3)}
    data = windows_from_arrays(config.data, make_encoding(config.data), splits, ["folk"], "melodies")
    assert data.loss_kind == "categorical"
    result = train(config, tmp_path / "run", data=data, progress=False)
    train_nll = [r["nll"] for r in read_metrics(tmp_path / "run", "train")]
    assert train_nll[-1] < 0.8 * train_nll[0] and result.final["test_nll"] < train_nll[0]
    restored = restore_run(tmp_path / "run")
    assert restored.loss_kind == "categorical" and restored.encoding.name == "melody"


@pytest.mark.parametrize("output", ["bernoulli", "nade", "nade-count"])
def test_resumed_run_matches_an_uninterrupted_one_exactly(tmp_path, output):
    config = tiny_config("--config.train.log_every_steps=4", f"--config.model.output={output.split('-')[0]}",
                         f"--config.model.nade_count={output == 'nade-count'}")
    assert config.model.dropout > 0  # the dropout RNG stream must resume exactly too
    data = tiny_data(config)
    full = train(config, tmp_path / "full", data=data, progress=False)
    stopped = train(config, tmp_path / "part", data=data, progress=False, stop_at_step=7)  # mid log interval
    assert stopped.step == 7 and stopped.final is None
    assert max(r["step"] for r in read_metrics(tmp_path / "part")) <= 7
    resumed = train(config, tmp_path / "part", data=data, progress=False)
    assert resumed.final == full.final
    assert records(tmp_path / "part") == records(tmp_path / "full")
    a, b = restore_run(tmp_path / "full", "latest"), restore_run(tmp_path / "part", "latest")
    assert a.step == b.step == config.train.steps
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # a finished run is not trained again
    again = train(config, tmp_path / "part", data=data, progress=False)
    assert again.final == full.final and records(tmp_path / "part") == records(tmp_path / "full")


def test_resume_refuses_a_different_config(tmp_path):
    config = tiny_config()
    data = tiny_data(config)
    train(config, tmp_path / "run", data=data, progress=False, stop_at_step=3)
    with pytest.raises(ConfigError, match="model.hidden"):
        train(tiny_config("--config.model.hidden=24"), tmp_path / "run", data=data, progress=False)
    with pytest.raises(ConfigError, match="already has checkpoints"):
        train(config, tmp_path / "run", data=data, progress=False, resume=False)


def test_a_second_run_into_a_live_workdir_is_refused_until_its_holder_dies(tmp_path):
    import signal
    import subprocess
    import sys

    config = tiny_config()
    data = tiny_data(config)
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\n"
                               "from pathlib import Path\nfrom musejax.train.fit import run_lock\n"
                               f"with run_lock(Path({str(tmp_path)!r})):\n    print('held', flush=True)\n"
                               "    time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockedError, match=rf"another run is training in this directory \(process {holder.pid} "):
            train(config, tmp_path, data=data, progress=False, stop_at_step=2)
        assert not (tmp_path / "checkpoints").exists()  # refused before touching the run
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert train(config, tmp_path, data=data, progress=False, stop_at_step=2).step == 2  # the kill freed it


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # Orbax's aborted read coroutines
@pytest.mark.parametrize("damage", [pytest.param("truncated", marks=pytest.mark.slow), "missing item"])
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys, damage):
    config = tiny_config("--config.ckpt.keep_latest=2")
    data = tiny_data(config)
    full = train(config, tmp_path / "full", data=data, progress=False)
    run = tmp_path / "run"
    train(config, run, data=data, progress=False, stop_at_step=10)
    train(config, run, data=data, progress=False, stop_at_step=13)
    latest = run / "checkpoints" / "13"
    if damage == "truncated":
        files = sorted((p for p in (latest / "state").rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
        files[0].write_bytes(files[0].read_bytes()[: files[0].stat().st_size // 2])
    else:
        shutil.rmtree(latest / "state")
    resumed = train(config, run, data=data, progress=False)
    out = capsys.readouterr().out
    assert "checkpoint step 13 is unusable" in out and "resuming from step 10" in out
    assert [p.name.split("-")[0] for p in (run / "checkpoints-damaged").iterdir()] == ["13"]  # kept, not deleted
    assert resumed.final == full.final and records(run) == records(tmp_path / "full")


def test_no_usable_checkpoint_is_a_clear_error(tmp_path):
    config = tiny_config()
    data = tiny_data(config)
    train(config, tmp_path, data=data, progress=False, stop_at_step=3)
    shutil.rmtree(tmp_path / "checkpoints" / "3" / "state")
    with pytest.raises(ConfigError, match=r"no usable checkpoint: step\(s\) 3 are damaged .*start from step 0"):
        train(config, tmp_path, data=data, progress=False)
    assert train(config, tmp_path, data=data, progress=False, stop_at_step=2).step == 2  # then a fresh start


def test_a_checkpoint_of_another_model_is_a_clear_error_and_is_not_set_aside(tmp_path):
    """A sound checkpoint whose parameters do not fit the model the config builds today (the model code changed)
    names the parameter, for sampling and for resuming, and stays where it is."""
    config = tiny_config()
    data = tiny_data(config)
    train(config, tmp_path, data=data, progress=False, stop_at_step=3)
    other = tiny_config(f"--config.model.hidden={config.model.hidden + 4}")
    lm = build_lm(other, data_meta(data))
    tx, _ = make_optimizer(other.optim, other.train.steps)
    state, abstract = create_train_state(lm.init_params, lm.apply_fn, tx, jax.random.key(0), make_mesh())
    manager = make_checkpoint_manager(tmp_path, config.ckpt)
    try:
        with pytest.raises(ConfigError, match=rf"checkpoint step 3 does not fit the model its config builds "
                                              rf"\(params\[.+\]: saved \({config.model.hidden}, \d+\), "
                                              rf"the model has \({other.model.hidden}, \d+\)\)"):
            resume_training(manager, 3, state, abstract, zero_train_metrics())
    finally:
        manager.close()
    assert (tmp_path / "checkpoints" / "3").is_dir() and not (tmp_path / "checkpoints-damaged").exists()
    assert restore_run(tmp_path, "latest").step == 3  # the run's own model still loads it


def test_checkpoints_keep_the_best_by_valid_nll_and_the_latest(tmp_path):
    config = tiny_config()
    data = tiny_data(config)
    lm = build_lm(config, data_meta(data))
    tx, _ = make_optimizer(config.optim, config.train.steps)
    state, _ = create_train_state(lm.init_params, lm.apply_fn, tx, jax.random.key(0), make_mesh())
    manager = make_checkpoint_manager(tmp_path, config.ckpt)
    for step, valid_nll in [(1, 3.0), (2, 1.0), (3, 2.0), (4, 2.5), (5, None)]:
        save_checkpoint(manager, state.replace(step=jnp.asarray(step, jnp.int32)), config, {}, valid_nll)
        manager.wait_until_finished()
    assert sorted(manager.all_steps()) == [2, 5]
    assert manager.best_step() == 2
    manager.close()


def test_run_directory_and_restore_run(tmp_path, caplog):
    config = tiny_config()
    data = tiny_data(config)
    train(config, tmp_path / "run", data=data, progress=False)
    run_dir = tmp_path / "run"
    assert (run_dir / "config.json").exists() and (run_dir / "metrics.jsonl").exists()
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert json.loads((run_dir / "config.json").read_text())["model"]["hidden"] == config.model.hidden
    steps = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.WARNING)  # a command run earlier in this process set it to ERROR
    try:
        with caplog.at_level(logging.WARNING):
            best = restore_run(run_dir)  # opens the checkpoints read-only: Orbax's notes on that are dropped
            absl_logging.warning("another absl warning")  # and only those
    finally:
        absl_logging.set_verbosity(verbosity)
    assert [r.getMessage() for r in caplog.records if r.name == "absl"] == ["another absl warning"]
    assert config.train.steps in steps and best.step in steps and len(steps) <= 2
    assert best.config == config and best.styles == ["bach"] and best.encoding.name == "pianoroll"
    batch = eval_batches(data.valid, 4, "bernoulli")[0]
    out = best.apply_fn(best.params, batch, train=False, rng=None)  # lm:tiny's NADE draws the note count first
    assert out["logits"].shape == batch["targets"].shape and out["step_nll"].shape == batch["targets"].shape[:2]
    carry = best.model.apply({"params": best.params}, 2, method="initial_carry")
    carry, step_outputs = best.model.apply({"params": best.params}, carry, jnp.zeros((2, 88)), None, 0,
                                           method="step")  # lm:tiny reads the place in the bar: step 0
    assert best.model.output == "nade"  # lm:tiny, like lm, has a NADE output: the step gives its biases
    assert step_outputs["visible_bias"].shape == (2, 88)
    frame = best.model.apply({"params": best.params}, step_outputs, None, mode="greedy", method="draw_frame")
    assert frame.shape == (2, 88) and frame.dtype == bool
    with pytest.raises(ConfigError, match="not a run directory"):
        restore_run(tmp_path / "nothing")
    # config.json records the task kind; a run written before it did, whose config module was since renamed,
    # reloads from its own config.json
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["kind"] == "lm"
    del saved["kind"]
    saved["name"] = "lm_renamed_since:tiny"
    (run_dir / "config.json").write_text(json.dumps(saved))
    assert restore_run(run_dir).params is not None


def test_non_finite_loss_raises_a_clear_error(tmp_path):
    config = tiny_config()
    data = tiny_data(config)
    data.train.windows = data.train.windows.astype(np.float32)
    data.train.windows[:, 0, 0] = np.nan  # every window: NaN inputs -> NaN loss
    with pytest.raises(NonFiniteLossError, match=r"training NLL is nan at step 5.*learning_rate"):
        train(config, tmp_path / "run", data=data, progress=False)


def test_batch_larger_than_the_data_is_a_clear_error(tmp_path):
    config = tiny_config("--config.train.batch_size=512")
    with pytest.raises(ConfigError, match="fewer than one batch"):
        train(config, tmp_path / "run", data=tiny_data(config), progress=False)
    config = tiny_config("--config.data.length_bucket_steps=-8")
    with pytest.raises(ConfigError, match=r"config\.data\.length_bucket_steps must be >= 0"):
        train(config, tmp_path / "run2", data=tiny_data(config), progress=False)


def test_texture_shift_settings_are_checked_and_give_the_model_its_label_input():
    from musejax.lm.build import build_lm
    from musejax.lm.data import LM_TEXTURE_SHIFTS, texture_shift_names

    for override, message in (("--config.data.texture_shift_rate=1.5", "texture_shift_rate must be in"),
                              ("--config.data.texture_shifts=melody,stretch", "unknown shift 'stretch'")):
        with pytest.raises(ConfigError, match=message):
            texture_shift_names(tiny_config(override).data, "bernoulli")
    assert texture_shift_names(tiny_config().data, "categorical") == ()  # events: no texture to shift
    meta = {"loss_kind": "bernoulli", "feature_shape": [88], "vocab_size": 0, "styles": [], "max_notes": 4}
    assert build_lm(tiny_config(), meta).model.textures == 1 + len(LM_TEXTURE_SHIFTS)
    assert not build_lm(tiny_config("--config.data.texture_shift_rate=0"), meta).model.textures


# ------------------------------------------------------------------------------------------------ command


def write_tiny_corpus(folder: Path, n_pieces: int = 16) -> None:
    """Block-chord MIDI files (the readers' real input path)."""
    import note_seq
    from note_seq.protobuf import music_pb2

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(n_pieces):
        ns = music_pb2.NoteSequence(ticks_per_quarter=220)
        ns.tempos.add(qpm=120)
        for beat in range(24):
            root = 60 + int(rng.integers(-5, 6))
            for pitch in (root, root + 4, root + 7):
                ns.notes.add(pitch=pitch, start_time=beat * 0.5, end_time=beat * 0.5 + 0.5, velocity=80)
        ns.total_time = 12.0
        note_seq.sequence_proto_to_midi_file(ns, str(folder / f"piece_{index:02d}.mid"))


def test_train_command_end_to_end(tmp_path, capsys):
    from musejax.cli import main

    write_tiny_corpus(tmp_path / "corpus")
    run_dir = tmp_path / "run"
    argv = ["train", "--config", "lm:tiny", "--workdir", str(run_dir), "--no-progress",
            f"--config.data.corpus={tmp_path / 'corpus'}", f"--config.data.cache_dir={tmp_path / 'cache'}",
            "--config.data.valid_fraction=0.25", "--config.data.test_fraction=0.25", "--config.sample.n=2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "valid NLL" in out and "test NLL" in out
    assert (run_dir / "config.json").exists() and (run_dir / "metrics.jsonl").exists()
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()] == ["20"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        f"sample_00{i}.{suffix}" for i in range(2) for suffix in ("mid", "png", "wav")]
    # it ends by saying where the samples (and their audio) are and the one command that opens the report
    report = run_dir / "evaluation" / "report.html"
    assert str(run_dir / "samples" / "sample_000.wav") in out
    assert out.rstrip().splitlines()[-1].endswith(f"python -m webbrowser {report.resolve().as_uri()}")
    assert "<table>" in report.read_text() and 'src="../samples/sample_001.wav"' in report.read_text()
    final = read_metrics(run_dir, "final")[-1]
    assert final["best_step"] == 20 and np.isfinite(final["test_nll"])
    # continuing the finished run (its saved config + overrides) trains nothing more; unknown keys are errors
    assert main(["train", "--workdir", str(run_dir), "--no-progress", "--config.sample.n=1"]) == 0
    assert read_metrics(run_dir, "final") == [final] and json.loads((run_dir / "config.json").read_text())["sample"]["n"] == 1
    assert main(["train", "--workdir", str(run_dir), "--no-progress", "--config.model.hidden=7"]) == 2
    assert "config differs from the run's config.json in model.hidden" in capsys.readouterr().err
    assert main(["train", "--workdir", str(tmp_path / "x"), "--config.model.hiden=3"]) == 2
    assert "unknown config key config.model.hiden" in capsys.readouterr().err
    assert main(["train", "--workdir", str(run_dir), "--no-resume"]) == 2


def test_bl2012_file_as_corpus(tmp_path):
    from musejax.data.bl2012 import save_bl2012

    save_bl2012(tmp_path / "jsb.json", {"train": synthetic_rolls(6, 0), "valid": synthetic_rolls(2, 1),
                                        "test": synthetic_rolls(2, 2)})
    config = resolve_config("chung2014:gru", [f"--config.data.corpus={tmp_path / 'jsb.json'}",
                                              "--config.data.window_steps=16"])
    from musejax.lm.data import load_lm_data

    data = load_lm_data(config.data, progress=False)
    assert data.loss_kind == "bernoulli" and data.styles == [] and data.train.windows.shape[1:] == (16, 88)
    assert data.valid.mask.sum() == sum(len(r) for r in synthetic_rolls(2, 1))


def _flat(outputs):
    """The model's outputs (logits, or a counting NADE's logits and count NLL) as one vector."""
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree.leaves(outputs)])


def test_weight_noise_perturbs_training_forward_passes_only():
    from musejax.lm.build import add_weight_noise

    meta = {"encoding": {"name": "pianoroll"}, "loss_kind": "bernoulli", "feature_shape": [88], "vocab_size": 0,
            "styles": [], "unlabelled_train_windows": 0, "data": "test"}
    # the Bernoulli output, as the preset that uses weight noise (configs/chung2014.py): the noise is the same
    # for every output, and the NADE's compilations would double the test's time
    config = resolve_config("lm:tiny", ["--config.model.weight_noise=0.1", "--config.model.dropout=0.0",
                                        "--config.model.output=bernoulli"])
    lm = build_lm(config, meta)
    params = jax.jit(lm.init_params)(jax.random.key(0))
    noisy = add_weight_noise(params, jax.random.key(1), 0.1)
    deltas = np.concatenate([np.ravel(a - b) for a, b in zip(jax.tree.leaves(noisy), jax.tree.leaves(params))])
    assert abs(deltas.std() - 0.1) < 0.01 and abs(deltas.mean()) < 0.01
    frames = jnp.asarray(np.random.default_rng(0).random((2, 5, 88)) < 0.1, jnp.float32)
    batch = {"inputs": frames, "targets": frames}
    apply = jax.jit(lambda p, rng, train: _flat(lm.apply_fn(p, batch, train=train, rng=rng)), static_argnums=2)
    clean, clean_again = apply(params, jax.random.key(2), False), apply(params, jax.random.key(3), False)
    np.testing.assert_array_equal(clean, clean_again)  # evaluation never sees noise
    a, b = apply(params, jax.random.key(2), True), apply(params, jax.random.key(3), True)
    assert not np.allclose(a, clean) and not np.allclose(a, b)  # fresh noise per step key
    np.testing.assert_array_equal(a, apply(params, jax.random.key(2), True))  # and reproducible
    with pytest.raises(ConfigError, match="weight_noise"):
        build_lm(resolve_config("lm:tiny", ["--config.model.weight_noise=-1.0"]), meta)


def test_input_flips_corrupt_training_inputs_only():
    from musejax.lm.build import flip_keys

    frames = jnp.asarray(np.random.default_rng(0).random((64, 32, 88)) < 0.05, jnp.float32)
    flipped = flip_keys(frames, jax.random.key(0), 0.01)
    assert abs(float(jnp.mean(flipped != frames)) - 0.01) < 0.002
    assert set(np.unique(np.asarray(flipped)).tolist()) <= {0.0, 1.0}
    meta = {"encoding": {"name": "pianoroll"}, "loss_kind": "bernoulli", "feature_shape": [88], "vocab_size": 0,
            "styles": [], "max_notes": 8, "unlabelled_train_windows": 0, "data": "test"}
    lm = build_lm(resolve_config("lm:tiny", ["--config.model.input_flips=0.05", "--config.model.dropout=0.0"]), meta)
    params = jax.jit(lm.init_params)(jax.random.key(0))
    batch = {"inputs": frames[:2, :5], "targets": frames[:2, :5]}
    apply = jax.jit(lambda p, rng, train: _flat(lm.apply_fn(p, batch, train=train, rng=rng)), static_argnums=2)
    np.testing.assert_array_equal(apply(params, jax.random.key(2), False), apply(params, jax.random.key(3), False))
    assert not np.allclose(apply(params, jax.random.key(2), True), apply(params, jax.random.key(3), True))
    with pytest.raises(ConfigError, match="input_flips"):
        build_lm(resolve_config("lm:tiny", ["--config.model.input_flips=0.7"]), meta)
