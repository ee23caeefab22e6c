"""Multitrack GAN: shapes of the three modes, BatchNorm modes, which step updates what, losses, the WGAN-GP
penalty on toy critics, exact resume, and `musejax gan train|sample` end to end on a tiny corpus."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiment_scripts import load_experiment
from gan_fixtures import SHAPE, real_batch, synthetic_data
from musejax.gan.model import MODES, MultitrackDiscriminator, MultitrackGenerator
from musejax.gan.config import resolve_gan_config
from musejax.gan.steps import (GanLoss, create_gan_state, d_step, g_step, gradient_penalty, minimax_d_loss,
                                     nonsaturating_g_loss, run_keys)
from musejax.train.mesh import make_mesh
from musejax.train.metrics import read_metrics

# Tests share the tiny config's networks and optimizers (equal static arguments share jit compilations with
# the training loop), and compile each function once: compilation dominates their time on CPU.


@pytest.fixture(scope="module")
def tiny():
    from musejax.gan.run import build_networks, gan_loss, make_optimizers

    config = resolve_gan_config("gan:tiny")
    generator, discriminator = build_networks(config, 0)
    g_tx, d_tx = make_optimizers(config)
    state, _ = create_gan_state(generator, discriminator, g_tx, d_tx, gan_loss(config), 0,
                                run_keys(config.train.seed)[0], make_mesh(jax.devices()[:1]))
    return config, state


def same_tree(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@functools.partial(jax.jit, static_argnames=("generator", "train"))
def apply_generator(generator, params, batch_stats, noise, train):
    variables = {"params": params, "batch_stats": batch_stats}
    if train:
        return generator.apply(variables, noise, train=True, mutable=["batch_stats"])
    return generator.apply(variables, noise, train=False), {"batch_stats": batch_stats}


# ------------------------------------------------------------------------------------------------ model


@pytest.mark.parametrize("mode", MODES)
def test_generator_shapes_and_parameters_in_every_mode(mode):
    generator = MultitrackGenerator(mode=mode, latent_dim=8, temporal_hidden=16, bar_widths=(16, 8))
    noise = jax.ShapeDtypeStruct(generator.noise_shape(3), jnp.float32)
    assert noise.shape == (3, {"composer": 2, "jamming": 8, "hybrid": 10}[mode], 8)
    variables = jax.eval_shape(generator.init, jax.random.key(1), noise)
    assert jax.eval_shape(generator.apply, variables, noise).shape == (3, *SHAPE)
    kernel = variables["params"]["bar_generator"]["GroupDense_0"]["kernel"]
    assert kernel.shape[0] == (1 if mode == "composer" else 4)  # one bar generator, or one per track
    assert variables["batch_stats"]["bar_generator"]["BatchNorm_0"]["mean"].shape == (kernel.shape[0], 16)
    assert ("shared_temporal" in variables["params"]) == (mode != "jamming")
    assert ("track_temporal" in variables["params"]) == (mode != "composer")
    with pytest.raises(ValueError, match="noise must be"):
        jax.eval_shape(generator.apply, variables, jax.ShapeDtypeStruct((3, 1, 8), jnp.float32))


def test_generator_output_is_a_probability_and_own_noise_moves_only_its_track(tiny):
    _, state = tiny
    noise = state.generator.sample_noise(jax.random.key(0), 4)
    out, _ = apply_generator(state.generator, state.g_params, state.g_batch_stats, noise, False)
    assert out.shape == (4, *SHAPE) and bool(jnp.all((out > 0) & (out < 1)))
    changed = noise.at[:, 2 + 1].add(1.0)  # hybrid rows: shared, shared temporal, then one per track
    moved, _ = apply_generator(state.generator, state.g_params, state.g_batch_stats, changed, False)
    difference = np.asarray(jnp.abs(moved - out).sum(axis=(0, 2, 3, 4)))
    assert difference[1] > 0 and np.allclose(difference[[0, 2, 3]], 0.0)


def test_initial_density_sets_the_untrained_output_level():
    densities = {}
    for density in (0.5, 0.02):
        generator = MultitrackGenerator(latent_dim=8, temporal_hidden=16, bar_widths=(16, 8), initial_density=density)
        noise = generator.sample_noise(jax.random.key(0), 8)
        out = jax.jit(lambda n, g=generator: g.apply(g.init(jax.random.key(1), n), n))(noise)
        densities[density] = float(out.mean())
    assert 0.4 < densities[0.5] < 0.6 and 0.01 < densities[0.02] < 0.06
    with pytest.raises(ValueError, match="initial_density"):
        small = MultitrackGenerator(latent_dim=8, temporal_hidden=16, bar_widths=(16, 8), initial_density=0.0)
        jax.eval_shape(small.init, jax.random.key(0), small.sample_noise(jax.random.key(0), 1))  # traced only

def test_batchnorm_uses_batch_statistics_in_training_and_running_averages_in_eval(tiny):
    _, state = tiny
    noise = state.generator.sample_noise(jax.random.key(0), 4)
    other = noise.at[1:].set(state.generator.sample_noise(jax.random.key(1), 3))  # same first sample
    args = (state.generator, state.g_params, state.g_batch_stats)
    eval_a, unchanged = apply_generator(*args, noise, False)
    eval_b, _ = apply_generator(*args, other, False)
    np.testing.assert_array_equal(eval_a[0], eval_b[0])  # eval: a sample ignores its batch
    assert same_tree(unchanged, {"batch_stats": state.g_batch_stats})
    train_a, updates = apply_generator(*args, noise, True)
    train_b, _ = apply_generator(*args, other, True)
    assert not np.allclose(train_a[0], train_b[0], atol=1e-5)  # train: batch statistics
    assert not same_tree(updates["batch_stats"], state.g_batch_stats)  # running averages move
    assert not np.allclose(train_a, eval_a, atol=1e-5)


def test_discriminator_gives_one_logit_and_projects_the_style():
    x = jnp.asarray(real_batch(3), jnp.float32)
    plain = MultitrackDiscriminator(channels=(8, 8, 16, 16), hidden=16)
    assert jax.eval_shape(plain.apply, jax.eval_shape(plain.init, jax.random.key(0), x), x).shape == (3,)
    conditional = MultitrackDiscriminator(channels=(8, 8, 16, 16), hidden=16, n_styles=2)

    @jax.jit
    def logits_per_style(x):
        variables = conditional.init(jax.random.key(0), x, jnp.zeros(3, jnp.int32))
        return conditional.apply(variables, x, jnp.zeros(3, jnp.int32)), conditional.apply(variables, x, jnp.ones(3, jnp.int32))

    a, b = logits_per_style(x)
    assert a.shape == (3,) and not np.allclose(a, b)
    with pytest.raises(ValueError, match="style"):
        jax.eval_shape(conditional.apply, jax.eval_shape(conditional.init, jax.random.key(0), x, jnp.zeros(3, jnp.int32)), x)


# ------------------------------------------------------------------------------------------------ losses


def test_minimax_losses_at_an_undecided_discriminator():
    zeros = jnp.zeros(5)
    np.testing.assert_allclose(minimax_d_loss(zeros, zeros), 2 * np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(nonsaturating_g_loss(zeros), np.log(2.0), rtol=1e-6)


def test_gradient_penalty_on_toy_critics():
    rng = np.random.default_rng(0)
    real, fake = (jnp.asarray(rng.normal(size=(4, 3, 5)), jnp.float32) for _ in range(2))
    mix = jnp.asarray([0.0, 0.25, 0.5, 1.0])
    w = jnp.asarray(rng.normal(size=(3, 5)), jnp.float32)
    linear = lambda x: jnp.einsum("bij,ij->b", x, w)  # noqa: E731  gradient w everywhere
    quadratic = lambda x: 0.5 * jnp.sum(x ** 2, axis=(1, 2))  # noqa: E731  gradient = the point itself
    penalties = jax.jit(lambda r, f, m: (gradient_penalty(linear, r, f, m), gradient_penalty(quadratic, r, f, m)))
    linear_penalty, quadratic_penalty = penalties(real, fake, mix)
    np.testing.assert_allclose(linear_penalty, (np.linalg.norm(np.asarray(w)) - 1.0) ** 2, rtol=1e-5)
    between = np.asarray(mix)[:, None, None] * np.asarray(real) + (1 - np.asarray(mix)[:, None, None]) * np.asarray(fake)
    expected = np.mean((np.linalg.norm(between.reshape(4, -1), axis=1) - 1.0) ** 2)
    np.testing.assert_allclose(quadratic_penalty, expected, rtol=1e-5)


def test_minibatch_std_is_zero_for_identical_examples_and_groups_any_batch():
    from musejax.gan.model import minibatch_std

    same = jnp.ones((8, 5))
    np.testing.assert_allclose(minibatch_std(same, 4), 1e-4, rtol=1e-3)  # sqrt of the 1e-8 floor
    h = jnp.asarray([[0.0], [2.0], [0.0], [4.0], [1.0], [1.0]])
    np.testing.assert_allclose(minibatch_std(h, 2)[:, 0], [1, 1, 2, 2, 0, 0], atol=1e-3)  # pairs
    np.testing.assert_allclose(minibatch_std(h, 4)[:, 0],  # 6 is not a multiple of 4: groups of 3
                               np.repeat([np.std([0, 2, 0]), np.std([4, 1, 1])], 3), atol=1e-3)


def test_jaccard_distances_and_mean_pairwise_distance():
    from musejax.gan.sample import jaccard_distances, mean_pairwise_jaccard

    a = np.zeros((3, 1, 1, 2, 12), bool)
    a[0, 0, 0, 0, :4] = True  # cells 0..3
    a[1, 0, 0, 0, 2:6] = True  # cells 2..5: 2 shared of 6
    distances = jaccard_distances(a, a)  # a[2] is empty
    np.testing.assert_allclose(distances, [[0, 2 / 3, 1], [2 / 3, 0, 1], [1, 1, 0]])
    assert mean_pairwise_jaccard(a) == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert mean_pairwise_jaccard(np.repeat(a[:1], 4, axis=0)) == 0.0  # a collapsed set


def test_d_step_updates_only_the_discriminator_and_g_step_only_the_generator():
    """On a conditional composer GAN with the minimax loss (the WGAN-GP loss runs in the loop tests)."""
    generator = MultitrackGenerator(mode="composer", latent_dim=8, temporal_hidden=16, bar_widths=(16, 8),
                                    n_styles=2, style_dim=4)
    discriminator = MultitrackDiscriminator(channels=(8, 8, 16, 16), hidden=16, n_styles=2)
    tx = optax.flatten(optax.adam(1e-3, 0.5, 0.9))
    state, _ = create_gan_state(generator, discriminator, tx, tx, GanLoss("minimax", 10.0, 1), 2,
                                run_keys(0)[0], make_mesh(jax.devices()[:1]))
    style = jnp.asarray([0, 1, 1, 0, 1, 0], jnp.int32)

    @jax.jit
    def both_steps(state, real):
        return d_step(state, real, style, jax.random.key(1)), g_step(state, 6, style, jax.random.key(2))

    (after_d, d_metrics), (after_g, g_metrics) = both_steps(state, jnp.asarray(real_batch(6)))
    assert not same_tree(after_d.d_params, state.d_params)
    assert not same_tree(after_d.d_params["style_projection"], state.d_params["style_projection"])
    assert same_tree(after_d.g_params, state.g_params) and same_tree(after_d.g_batch_stats, state.g_batch_stats)
    assert same_tree(after_d.g_opt_state, state.g_opt_state)
    assert not same_tree(after_g.g_params, state.g_params)
    assert not same_tree(after_g.g_params["style_embedding"], state.g_params["style_embedding"])
    assert not same_tree(after_g.g_batch_stats, state.g_batch_stats)
    assert same_tree(after_g.d_params, state.d_params) and same_tree(after_g.d_opt_state, state.d_opt_state)
    assert all(np.isfinite(float(v)) for v in {**d_metrics, **g_metrics}.values())
    assert float(d_metrics["gradient_penalty"]) == 0.0


# ------------------------------------------------------------------------------------------ loop, resume


def test_batches_of_a_step_do_not_depend_on_where_the_stream_started():
    from musejax.gan.data import GanBatches

    config = resolve_gan_config("gan:tiny")
    batches = GanBatches(synthetic_data(config), batch_size=8, seed=3, transpose_semitones=5, n_critic=2,
                         with_style=True)
    from_zero, from_two = batches.from_step(0), batches.from_step(2)
    straight = [next(from_zero) for _ in range(4)]
    assert straight[0]["real"].shape == (2, 8, *SHAPE) and straight[0]["style"].shape == (2, 8)
    for expected in straight[2:]:
        got = next(from_two)
        assert all(np.array_equal(got[k], expected[k]) for k in expected)
    assert not np.array_equal(straight[0]["real"], straight[1]["real"])


def test_config_errors_name_the_key():
    from musejax.config import ConfigError

    with pytest.raises(ConfigError, match="config.model.mode"):
        resolve_gan_config("gan:tiny", ["--config.model.mode=duet"])
    with pytest.raises(ConfigError, match="config.data.n_pitches"):
        resolve_gan_config("gan", ["--config.data.n_pitches=50"])


def test_resume_is_exact(tmp_path):
    from musejax.gan.task import train_gan
    from musejax.gan.run import restore_gan

    config = resolve_gan_config("gan:tiny")
    data = synthetic_data(config)
    train_gan(config, tmp_path / "straight", data=data, progress=False)
    first = train_gan(config, tmp_path / "resumed", data=data, progress=False, stop_at_step=2)
    assert first.step == 2 and not first.finished
    train_gan(config, tmp_path / "resumed", data=data, progress=False)
    straight, resumed = restore_gan(tmp_path / "straight"), restore_gan(tmp_path / "resumed")
    assert straight.step == resumed.step == config.train.steps
    assert same_tree(straight.state, resumed.state)  # both networks, BatchNorm statistics, optimizer states
    drop = lambda rs: [{k: v for k, v in r.items() if k != "steps_per_second"} for r in rs]  # noqa: E731
    assert drop(read_metrics(tmp_path / "straight")) == drop(read_metrics(tmp_path / "resumed"))
    train_records = read_metrics(tmp_path / "resumed", "train")
    assert [r["step"] for r in train_records] == [2, 4]
    assert all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) and r["gradient_penalty"] > 0
               for r in train_records)  # the WGAN-GP losses (the tiny config's)
    grids = sorted(p.name for p in (tmp_path / "resumed" / "samples").iterdir())
    assert grids == sorted(p.name for p in (tmp_path / "straight" / "samples").iterdir())


def write_chorale_like_midi(path: Path, seed: int, beats: int = 64) -> None:
    """Four voices (one instrument each) of quarter notes in C major, 4/4 at 120 qpm."""
    import pretty_midi

    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    for voice, base in enumerate((72, 64, 55, 48)):
        instrument = pretty_midi.Instrument(program=52, name=f"voice {voice}")
        for beat in range(beats):
            pitch = base + int(rng.choice([0, 2, 4, 5, 7, 9]))
            instrument.notes.append(pretty_midi.Note(80, pitch, beat * 0.5, beat * 0.5 + 0.5))
        midi.instruments.append(instrument)
    midi.write(str(path))


def test_gan_command_trains_and_samples_midi_and_png(tmp_path, capsys):
    import note_seq

    from musejax.cli import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index in range(12):
        write_chorale_like_midi(corpus / f"piece_{index:02d}.mid", index)
    run_dir = tmp_path / "run"
    assert main(["gan", "train", "--config", "gan:tiny", "--workdir", str(run_dir), "--no-progress",
                 f"--config.data.corpus={corpus}", f"--config.data.cache_dir={tmp_path / 'cache'}",
                 "--config.sample.board_n=2"]) == 0
    from tensorboard_events import events

    tags = {(e.step, v.tag) for e in events(run_dir) for v in e.summary.value}
    assert {(2, "samples/pianoroll_1"), (4, "samples/audio_0")} <= tags  # each grid's samples in TensorBoard
    # (the metrics against the held-out segments need two samples with notes: untrained, these are silent;
    # tests/lm/test_board.py checks them on the LM)
    assert json.loads((run_dir / "config.json").read_text())["data"]["corpus"] == str(corpus)
    assert (run_dir / "samples" / "step_000004_grid.png").stat().st_size > 0
    assert main(["gan", "sample", "--run", str(run_dir), "--n", "3", "--bernoulli", "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.glob("sample_00?.*")) == [f"sample_00{i}.{s}" for i in range(3) for s in ("mid", "png")]
    assert (out / "sample_grid.png").read_bytes()[:4] == b"\x89PNG"
    ns = note_seq.midi_file_to_note_sequence(str(out / "sample_000.mid"))
    assert ns.total_time > 0 and set(n.instrument for n in ns.notes) <= {0, 1, 2, 3}
    assert main(["gan", "sample", "--run", str(run_dir), "--n", "2", "--out", str(tmp_path / "heard"), "--audio",
                 "--sample-rate", "8000"]) == 0
    assert sorted(p.name for p in (tmp_path / "heard").glob("sample_00?.wav")) == ["sample_000.wav", "sample_001.wav"]
    assert "WAV" in capsys.readouterr().out
    assert main(["gan", "sample", "--run", str(tmp_path / "nowhere")]) == 2
    assert "no config.json" in capsys.readouterr().err

    quality = load_experiment("gan_quality")
    assert quality.main(["--run", str(run_dir), "--n", "8", "--out", str(tmp_path / "quality")]) == 0
    result = json.loads((tmp_path / "quality" / "gan_quality.json").read_text())
    assert set(result["summary"]) == {"EB", "UPC", "QN", "polyphony", "pitch_class_entropy", "TD"}
    assert set(result["mode_collapse"]) == {"training", "held-out", "untrained", "trained"}
    training = result["per_track"]["training"]
    assert training["EB"] == [0.0] * 4 and training["polyphony"] == [1.0] * 4  # the fixture: one note per beat
    assert result["n_segments"]["trained"] == 8
    assert "| EB |" in (tmp_path / "quality" / "gan_quality.md").read_text()
