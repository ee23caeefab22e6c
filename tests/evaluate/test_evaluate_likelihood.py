"""Likelihood under a trained LM run: per-piece NLL per step equals the trainer's evaluation of the same pieces."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.config import save_config_json
from musejax.lm.config import resolve_config
from musejax.evaluate.likelihood import arrays_nll, run_nll, sequences_nll
from musejax.lm.restore import restore_run
from musejax.train.checkpoint import make_checkpoint_manager, save_checkpoint
from musejax.lm.data import eval_batches, make_encoding, windows_from_arrays
from musejax.train.mesh import make_mesh
from musejax.lm.build import build_lm, data_meta
from musejax.train.state import create_train_state, make_optimizer
from musejax.lm.steps import eval_step, summarize


def rolls(n: int, seed: int) -> list[np.ndarray]:
    """Two-voice piano-rolls of different lengths (T, 88)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        steps = int(rng.integers(10, 70))
        roll = np.zeros((steps, 88), bool)
        t = np.arange(steps)
        roll[t, 39 + t % 5] = True
        roll[t, 20 + (t // 3) % 4] = rng.random(steps) < 0.8
        out.append(roll)
    return out


@pytest.fixture(scope="module")
def run_and_data(tmp_path_factory):
    """A run directory with one checkpoint of a tiny piano-roll GRU (random weights: no training needed)."""
    run_dir = tmp_path_factory.mktemp("run")
    config = resolve_config("lm:tiny", ["--config.data.eval_window_steps=0"])
    splits = {"train": (rolls(8, 0), [0] * 8), "valid": (rolls(5, 1), [0] * 5), "test": (rolls(3, 2), [0] * 3)}
    state, data, _ = write_untrained_run(run_dir, config, splits)
    return run_dir, state, data, splits["valid"][0]


def write_untrained_run(run_dir, config, splits):
    """A run directory with one checkpoint of `config`'s model at its initial weights -> (state, data, meta)."""
    data = windows_from_arrays(config.data, make_encoding(config.data), splits, [], "synthetic")
    meta = data_meta(data)
    lm = build_lm(config, meta)
    tx, _ = make_optimizer(config.optim, config.train.steps)
    state, _ = create_train_state(lm.init_params, lm.apply_fn, tx, jax.random.key(3),
                                  make_mesh(jax.devices()[:1]))
    save_config_json(config, run_dir / "config.json")
    manager = make_checkpoint_manager(run_dir, config.ckpt)
    save_checkpoint(manager, state, config, meta, metric=1.0)
    manager.wait_until_finished()
    manager.close()
    return state, data, meta


def test_nll_equals_the_trainers_whole_piece_evaluation(run_and_data):
    _check_nll_equals_the_trainers(*run_and_data)


def test_counting_nade_nll_equals_the_trainers_and_includes_the_count(tmp_path):
    config = resolve_config("lm:tiny", ["--config.data.eval_window_steps=0", "--config.model.nade_count=True"])
    splits = {"train": (rolls(4, 0), [0] * 4), "valid": (rolls(3, 1), [0] * 3), "test": (rolls(2, 2), [0] * 2)}
    state, data, _ = write_untrained_run(tmp_path, config, splits)
    _check_nll_equals_the_trainers(tmp_path, state, data, splits["valid"][0])
    batch = next(iter(eval_batches(data.valid, 4, data.loss_kind)))
    out = state.apply_fn(state.params, batch, train=False, rng=None)
    assert float(out["step_nll"].min()) > 0  # -log p(note count) is part of each step's NLL


def _check_nll_equals_the_trainers(run_dir, state, data, valid_rolls):
    sums = [jax.jit(eval_step)(state, batch) for batch in eval_batches(data.valid, 4, data.loss_kind)]
    expected = summarize(jax.device_get(jax.tree.map(lambda *x: sum(x), *sums)))["nll"]
    run = restore_run(run_dir)
    nll, steps = arrays_nll(run, valid_rolls, batch_size=2)
    assert steps.tolist() == [len(r) for r in valid_rolls]
    assert nll.sum() / steps.sum() == pytest.approx(expected, rel=1e-5)
    # each piece alone gives the same number as in a batch (padding is masked out)
    alone, _ = arrays_nll(run, valid_rolls[:1], batch_size=1)
    assert alone[0] == pytest.approx(nll[0], rel=1e-5)


def test_sequences_are_encoded_with_the_runs_encoding_and_failures_listed(run_and_data):
    run_dir, _, _, valid_rolls = run_and_data
    run = restore_run(run_dir)
    sequences = []
    for i, roll in enumerate(valid_rolls):
        ns = run.encoding.decode(roll)
        ns.id = f"gen/{i}.mid"
        sequences.append(ns)
    out_of_range = NoteSequence(id="gen/too-low.mid")
    out_of_range.notes.add(pitch=5, start_time=0.0, end_time=1.0, velocity=80)
    out_of_range.total_time = 1.0
    result = sequences_nll(run, sequences + [out_of_range])
    nll, steps = arrays_nll(run, valid_rolls)
    assert result.ids == [f"gen/{i}.mid" for i in range(len(valid_rolls))]
    np.testing.assert_allclose(result.nll_per_step, nll / steps, rtol=1e-5)
    assert result.mean_nll_per_step == pytest.approx(nll.sum() / steps.sum(), rel=1e-5)
    assert [f[0] for f in result.failures] == ["gen/too-low.mid"]
    summary = result.to_dict()
    assert summary["n_pieces"] == len(valid_rolls) and summary["checkpoint_step"] == 0
    assert math.isfinite(summary["nll_per_step"])
    assert run_nll(run_dir, sequences[:2]).nll_per_step == pytest.approx(result.nll_per_step[:2], rel=1e-6)


def test_style_conditioned_run_needs_a_style(tmp_path):
    config = resolve_config("lm:tiny", ["--config.model.style_dim=4"])
    splits = {"train": (rolls(8, 0), [0, 1] * 4), "valid": (rolls(2, 1), [0, 1]), "test": (rolls(2, 2), [0, 1])}
    data = windows_from_arrays(config.data, make_encoding(config.data), splits, ["bach", "folk"], "synthetic")
    lm = build_lm(config, data_meta(data))
    tx, _ = make_optimizer(config.optim, config.train.steps)
    state, _ = create_train_state(lm.init_params, lm.apply_fn, tx, jax.random.key(0),
                                  make_mesh(jax.devices()[:1]))
    save_config_json(config, tmp_path / "config.json")
    manager = make_checkpoint_manager(tmp_path, config.ckpt)
    save_checkpoint(manager, state, config, data_meta(data), metric=1.0)
    manager.wait_until_finished()
    manager.close()
    run = restore_run(tmp_path)
    unlabelled = run.encoding.decode(rolls(1, 5)[0])
    unlabelled.id = "gen/0.mid"
    with pytest.raises(ValueError, match=r"gen/0.mid: .*style-conditioned on \['bach', 'folk'\].*--lm-style"):
        sequences_nll(run, [unlabelled])
    with pytest.raises(ValueError, match="unknown style 'jazz'"):
        sequences_nll(run, [unlabelled], style="jazz")
    labelled = NoteSequence()
    labelled.CopyFrom(unlabelled)
    labelled.sequence_metadata.genre.append("folk")
    by_label = sequences_nll(run, [labelled]).nll_per_step
    by_option = sequences_nll(run, [unlabelled], style="folk").nll_per_step
    other = sequences_nll(run, [unlabelled], style="bach").nll_per_step
    np.testing.assert_allclose(by_label, by_option)
    assert not np.allclose(by_option, other)  # the style embedding changes the prediction


def test_nade_run_scores_pieces_fuller_than_its_training_frames_exactly(tmp_path):
    """A NADE's segment form is sized by the training data's fullest frame; scoring fuller pieces widens it."""
    import dataclasses

    config = resolve_config("lm:tiny", ["--config.data.eval_window_steps=0", "--config.model.output=nade"])
    splits = {"train": (rolls(4, 0), [0] * 4), "valid": (rolls(2, 1), [0] * 2), "test": (rolls(2, 2), [0] * 2)}
    _, _, meta = write_untrained_run(tmp_path, config, splits)
    assert meta["max_notes"] == 2
    chord = np.zeros((6, 88), bool)
    chord[:, 30:40:2] = True  # five notes a frame
    run = restore_run(tmp_path)
    assert run.model.nade_max_notes == 2
    nll, steps = arrays_nll(run, [chord, rolls(1, 5)[0]], batch_size=2)
    wide = dataclasses.replace(run, apply_fn=dataclasses.replace(run.apply_fn,
                                                                 model=run.model.clone(nade_max_notes=88)))
    want, _ = arrays_nll(wide, [chord, rolls(1, 5)[0]], batch_size=2)
    np.testing.assert_allclose(nll, want, rtol=1e-5)
    assert np.all(np.isfinite(nll)) and steps[0] == 6
