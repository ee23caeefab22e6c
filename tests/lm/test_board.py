"""TensorBoard samples: the LM loop logs piano-rolls, audio and sample metrics at its evaluations, and training
computes exactly what it computes without them (also across a resume)."""

from __future__ import annotations

import jax
import numpy as np

from musejax.lm.task import train
from musejax.lm.restore import restore_run
from lm_fixtures import records, tiny_config, tiny_data
from tensorboard_events import events

BOARD = ["--config.sample.board_n=2", "--config.sample.board_steps=16", "--config.sample.board_metrics_every=2",
         "--config.train.log_every_steps=4", "--config.train.eval_every_steps=5"]


def test_samples_reach_tensorboard_without_changing_training(tmp_path):
    config = tiny_config(*BOARD)
    plain = tiny_config(*BOARD[3:])
    data = tiny_data(config)
    board = train(config, tmp_path / "board", data=data, progress=False)
    without = train(plain, tmp_path / "plain", data=data, progress=False)
    assert board.final == without.final
    assert [r for r in records(tmp_path / "board") if r["split"] != "samples"] == records(tmp_path / "plain")
    for x, y in zip(jax.tree.leaves(restore_run(tmp_path / "board", "latest").state),
                    jax.tree.leaves(restore_run(tmp_path / "plain", "latest").state)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))

    samples = [r for r in records(tmp_path / "board") if r["split"] == "samples"]
    assert [r["step"] for r in samples] == [10, 20]  # evaluations 2 and 4 of 5, 10, 15, 20
    assert 0 <= samples[0]["polyphony_overlap"] <= 1 and samples[0]["pitch_range"] >= 0
    values = [(e.step, v) for e in events(tmp_path / "board") for v in e.summary.value]
    steps = {tag: sorted(step for step, v in values if v.tag == tag) for tag in {v.tag for _, v in values}}
    for index in range(2):
        assert steps[f"samples/pianoroll_{index}"] == steps[f"samples/audio_{index}"] == [5, 10, 15, 20]
    image = next(v.image for _, v in values if v.tag == "samples/pianoroll_0")
    audio = next(v.audio for _, v in values if v.tag == "samples/audio_0")
    assert image.encoded_image_string[:4] == b"\x89PNG" and image.width > 10 and image.height > 10
    assert audio.sample_rate == 16000 and audio.length_frames > 16000 * 0.5
    assert steps["samples/polyphony_overlap"] == [10, 20]


def test_a_resumed_run_logs_the_same_samples(tmp_path):
    config = tiny_config(*BOARD)
    data = tiny_data(config)
    train(config, tmp_path / "full", data=data, progress=False)
    train(config, tmp_path / "part", data=data, progress=False, stop_at_step=12)
    train(config, tmp_path / "part", data=data, progress=False)
    assert records(tmp_path / "part") == records(tmp_path / "full")
