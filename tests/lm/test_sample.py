"""Sampling: filtering, determinism, greedy/threshold/top-k/top-p behaviour, styles, primers, files, the command."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import note_seq
import numpy as np
import pytest

from lm_fixtures import MELODY, event_run, pianoroll_run
from musejax.lm import sample as sampling
from musejax.cli import main as cli_main
from musejax.data.encodings import PianoRollEncoding
from musejax.data.performance import PerformanceEncoding
from musejax.lm.config import Config, DataConfig
from musejax.lm.model import PianoRollLM
from musejax.lm.sample import Run, SampleError, filter_logits, parse_mix, sample, sample_arrays



def nade_run(styles: tuple[str, ...] = (), hidden: int = 8, seed: int = 0, position_period: int = 0) -> Run:
    """A piano-roll LM with a NADE output (random weights, biases large enough to make notes)."""
    model = PianoRollLM(features=88, hidden=hidden, cell="gru", impl="xla", output="nade", nade_hidden=6,
                        nade_max_notes=88, n_styles=len(styles), style_dim=4, position_period=position_period)
    frames = jnp.zeros((1, 2, 88))
    style = jnp.zeros((1,), jnp.int32) if styles else None
    params = model.init(jax.random.key(seed), frames, style, targets=frames)["params"]
    params["readout"]["bias"] = jax.random.normal(jax.random.key(seed + 1), (88,)) - 2.0
    params["nade_w"] = 3.0 * jax.random.normal(jax.random.key(seed + 2), params["nade_w"].shape)
    params["nade_v"] = 3.0 * jax.random.normal(jax.random.key(seed + 3), params["nade_v"].shape)
    return Run(model=model, params=params, encoding=PianoRollEncoding(), styles=list(styles), loss_kind="bernoulli")


def with_constant_logits(run: Run, logits: np.ndarray) -> Run:
    """The same model with a zero readout kernel: every step predicts `logits` whatever the input."""
    params = jax.tree.map(lambda x: x, run.params)
    params["readout"] = {"kernel": jnp.zeros_like(params["readout"]["kernel"]),
                         "bias": jnp.asarray(logits, jnp.float32)}
    return Run(model=run.model, params=params, encoding=run.encoding, styles=run.styles, loss_kind=run.loss_kind)


def greedy_reference(run: Run, prefix: np.ndarray, steps: int, texture: int | None = None) -> np.ndarray:
    """Python step loop: feed prefix[:-1] step by step, then pick the most likely next input `steps` times."""
    variables = {"params": run.params}
    carry = run.model.apply(variables, 1, method="initial_carry")
    label = None if texture is None else jnp.array([texture])
    for x in prefix[:-1]:
        carry, _ = run.model.apply(variables, carry, jnp.asarray(x)[None], texture=label, method="step")
    x, out = jnp.asarray(prefix[-1])[None], []
    for _ in range(steps):
        carry, logits = run.model.apply(variables, carry, x, texture=label, method="step")
        x = (jnp.argmax(logits, -1).astype(jnp.int32) if run.loss_kind == "categorical"
             else (logits > 0).astype(jnp.float32))
        out.append(np.asarray(x[0]))
    return np.stack(out)


# --------------------------------------------------------------------------------------------- filtering


def test_top_k_keeps_the_k_largest_logits():
    logits = jnp.array([[1.0, 5.0, 3.0, 4.0, 2.0]])
    kept = np.isfinite(np.asarray(filter_logits(logits, top_k=2)))
    np.testing.assert_array_equal(kept, [[False, True, False, True, False]])
    np.testing.assert_array_equal(np.asarray(filter_logits(logits, top_k=5)), np.asarray(logits))


def test_top_p_keeps_the_smallest_nucleus_reaching_p():
    probs = np.array([[0.05, 0.5, 0.15, 0.3], [0.97, 0.01, 0.01, 0.01]])
    logits = jnp.asarray(np.log(probs), jnp.float32)
    # row 0 sorted: 0.5, 0.3 (0.8), 0.15 (0.95), 0.05; p=0.75 needs {0.5, 0.3}; p=0.85 adds 0.15
    kept = lambda p: np.isfinite(np.asarray(filter_logits(logits, top_p=p)))
    np.testing.assert_array_equal(kept(0.75), [[False, True, False, True], [True, False, False, False]])
    np.testing.assert_array_equal(kept(0.85), [[False, True, True, True], [True, False, False, False]])
    np.testing.assert_array_equal(kept(0.5), [[False, True, False, False], [True, False, False, False]])
    assert kept(1.0).all()
    assert kept(1e-6).sum() == 2  # the most likely token always survives


# -------------------------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("make_run", [pianoroll_run, event_run, nade_run], ids=["pianoroll", "events", "nade"])
def test_same_seed_same_samples_and_different_seeds_differ(make_run):
    run = make_run()
    first = sample(run, 2, 16, seed=7)
    again = sample(run, 2, 16, seed=7)
    other = sample(run, 2, 16, seed=8)
    assert [ns.notes for ns in first] == [ns.notes for ns in again]
    assert [ns.notes for ns in first] != [ns.notes for ns in other]
    assert first[0].notes != first[1].notes  # the n samples of one call are different draws


@pytest.mark.parametrize("make_run, options", [
    (pianoroll_run, {}), (lambda: pianoroll_run(onsets=True), {"threshold": 0.4}),
    (lambda: event_run(styles=("a", "b")), {"top_p": 0.9, "mix": {"a": 0.3, "b": 0.7}}),
    (event_run, {"top_k": 5, "primer_events": 6}), (lambda: nade_run(styles=("a", "b")), {"mix": {"a": 0.4, "b": 0.6}})],
    ids=["bernoulli", "threshold", "events-mix", "events-primer", "nade-mix"])
def test_samples_split_over_devices_equal_one_device_samples(make_run, options, monkeypatch):
    assert jax.device_count() == 2  # conftest: two CPU devices
    assert sampling._sampling_mesh(4).devices.size == 2 and sampling._sampling_mesh(3) is None
    run, options = make_run(), dict(options)
    if "primer_events" in options:
        primer = sample(run, 1, options.pop("primer_events"), seed=1)[0]
        primer.filename = "primer.mid"
        options["primer"] = primer
    split = sample_arrays(run, 4, 12, seed=3, **options)
    monkeypatch.setattr(sampling, "_sampling_mesh", lambda n: None)
    np.testing.assert_array_equal(split, sample_arrays(run, 4, 12, seed=3, **options))


def test_one_compilation_serves_other_seeds_temperatures_and_top_p():
    run = event_run(seed=5)
    sample_arrays(run, 2, 16, seed=0, temperature=1.0, top_p=0.9)
    compiled = sampling._generate._cache_size()
    sample_arrays(run, 2, 16, seed=1, temperature=0.7, top_p=0.5)
    assert sampling._generate._cache_size() == compiled


def test_temperature_zero_is_the_greedy_step_loop():
    run = event_run()
    greedy = sample(run, 2, 16, seed=0, temperature=0.0)
    events = MELODY.encode(greedy[0])
    expected = greedy_reference(run, sampling._start_input(run), 16)
    np.testing.assert_array_equal(MELODY.encode(greedy[1]), events)
    np.testing.assert_array_equal(sample_arrays(run, 2, 16, seed=3, temperature=1e-4),
                                  sample_arrays(run, 2, 16, temperature=0.0))  # the limit T -> 0
    decoded = MELODY.decode(np.concatenate([sampling._start_input(run), expected]))
    assert greedy[0].notes == decoded.notes


def test_top_k_one_equals_greedy_argmax_for_any_seed():
    run = event_run(seed=3)
    greedy = sample_arrays(run, 2, 16, temperature=0.0)
    for seed in (0, 1):
        np.testing.assert_array_equal(sample_arrays(run, 2, 16, seed=seed, top_k=1), greedy)


def test_piano_roll_threshold_and_greedy():
    run = pianoroll_run()
    greedy = sample_arrays(run, 2, 16, temperature=0.0)
    np.testing.assert_array_equal(greedy[0], greedy_reference(run, sampling._start_input(run), 16).astype(bool))
    np.testing.assert_array_equal(greedy[1], greedy[0])
    np.testing.assert_array_equal(sample_arrays(run, 2, 16, seed=5, threshold=0.5), greedy)
    np.testing.assert_array_equal(sample_arrays(run, 2, 16, seed=5, temperature=1e-4), greedy)
    assert sample_arrays(run, 2, 16, seed=5, threshold=1e-6).all()  # p > 1e-6 for every key: all keys sound
    nothing = sample(run, 2, 16, seed=5, threshold=1 - 1e-6)[0]
    assert len(nothing.notes) == 0 and nothing.total_time == pytest.approx(16 * 0.125)


def test_bernoulli_frequencies_follow_the_sigmoid_and_temperature():
    run = with_constant_logits(pianoroll_run(), np.full(88, math.log(0.2 / 0.8)))
    assert sample_arrays(run, 32, 64, seed=0).mean() == pytest.approx(0.2, abs=0.01)  # 180k Bernoulli(0.2)
    hot = sample_arrays(run, 32, 64, seed=0, temperature=2.0)
    assert hot.mean() == pytest.approx(1 / 3, abs=0.01)  # sigmoid(logit(0.2) / 2) = 1/3


def test_onset_rolls_sound_where_they_start():
    roll = sample_arrays(pianoroll_run(onsets=True), 2, 16, seed=2)
    assert roll.shape == (2, 16, 2, 88)
    assert roll[:, :, 1].any() and not (roll[:, :, 1] & ~roll[:, :, 0]).any()


def test_top_p_and_temperature_sampling_frequencies():
    probs = np.array([0.5, 0.3, 0.15, 0.05] + [0.0] * (MELODY.vocab_size - 4)) + 1e-12
    run = with_constant_logits(event_run(), np.log(probs / probs.sum()))
    events = sample_arrays(run, 32, 128, seed=0, top_p=0.75)[:, 1:]  # 4096 draws after the start event
    np.testing.assert_allclose(np.bincount(events.ravel(), minlength=4)[:4] / events.size,
                               [0.5 / 0.8, 0.3 / 0.8, 0, 0], atol=0.03)
    cold = sample_arrays(run, 32, 128, seed=0, temperature=0.5, top_k=2)[:, 1:]
    assert set(np.unique(cold)) == {0, 1}
    assert np.mean(cold == 0) == pytest.approx(0.25 / (0.25 + 0.09), abs=0.03)  # p^(1/T) renormalised


# ----------------------------------------------------------------------------------------------- styles


def test_styles_by_name_mix_and_cycle():
    run = event_run(styles=("bach", "irish"))
    bach = sample(run, 2, 16, seed=1, style="bach")
    one_hot = sample(run, 2, 16, seed=1, mix={"bach": 2.0, "irish": 0.0})  # normalised to one-hot = the id
    assert [ns.notes for ns in bach] == [ns.notes for ns in one_hot]
    assert list(bach[0].sequence_metadata.genre) == ["bach"]
    blend = sample(run, 2, 16, seed=1, mix=parse_mix("bach:0.5,irish:0.5"))
    assert list(blend[0].sequence_metadata.genre) == ["bach:0.5+irish:0.5"]
    assert [ns.notes for ns in blend] != [ns.notes for ns in bach]
    cycled = sample(run, 2, 16, seed=1)  # no choice: sample i gets style i mod 2
    assert [list(ns.sequence_metadata.genre) for ns in cycled] == [["bach"], ["irish"]]
    assert cycled[0].notes == bach[0].notes


def test_style_and_setting_errors_are_clear():
    styled, plain, roll = event_run(styles=("bach", "irish")), event_run(), pianoroll_run()
    with pytest.raises(SampleError, match="unknown style 'jazz'.*known styles: bach, irish"):
        sample(styled, 1, 8, style="jazz")
    with pytest.raises(SampleError, match="sum to > 0"):
        sample(styled, 1, 8, mix={"bach": 0.0, "irish": 0.0})
    with pytest.raises(SampleError, match="unknown style 'jazz' in the mix"):
        sample(styled, 1, 8, mix={"jazz": 1.0})
    with pytest.raises(SampleError, match="without style conditioning"):
        sample(plain, 1, 8, style="bach")
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(SampleError, match=r"top-p must lie in \(0, 1\]"):
            sample(plain, 1, 8, top_p=bad)
    with pytest.raises(SampleError, match="piano-roll model"):
        sample(roll, 1, 8, top_k=3)
    with pytest.raises(SampleError, match="a NADE that draws its note count first"):
        sample(roll, 1, 8, top_p=0.9)  # independent keys: no choice among keys for a nucleus to cut
    for model in (roll, plain, nade_run()):  # no note count to draw: Bernoulli keys, events, a NADE without one
        with pytest.raises(SampleError, match="count temperature applies to a NADE that draws its note count"):
            sample(model, 1, 8, count_temperature=1.1)
    with pytest.raises(SampleError, match="event model"):
        sample(plain, 1, 8, threshold=0.5)
    for text in ("bach", "bach:x", ":0.5"):
        with pytest.raises(SampleError, match="NAME:WEIGHT"):
            parse_mix(text)


# ----------------------------------------------------------------------------------------------- primers


def write_primer(path: Path, qpm: float = 90.0) -> note_seq.NoteSequence:
    """A four-bar 3/4 tune on the sixteenth grid (so encoding it is exact), written as MIDI."""
    ns = note_seq.NoteSequence(ticks_per_quarter=220)
    ns.tempos.add(qpm=qpm)
    ns.time_signatures.add(numerator=3, denominator=4)
    quarter = 60.0 / qpm
    for i, pitch in enumerate([60, 64, 67, 72, 67, 64, 65, 69, 72, 71, 67, 62]):
        ns.notes.add(pitch=pitch, velocity=90, start_time=i * quarter, end_time=(i + 0.75) * quarter)
        ns.notes.add(pitch=pitch - 24, velocity=70, start_time=i * quarter, end_time=(i + 1) * quarter)
    ns.total_time = 12 * quarter
    note_seq.sequence_proto_to_midi_file(ns, str(path))
    return ns


def test_samples_take_the_bars_of_the_piece_their_length_comes_from():
    """A model that reads bar lines: each free sample is drawn in the bars (pickup and meter) of the training piece
    its length is drawn from, and written with them (read back by piece_bar); `bars` counts bars of that meter;
    the step loop sees the same places in the bar."""
    from musejax.data.quantize import piece_bar

    model = PianoRollLM(features=88, hidden=8, cell="gru", impl="xla", position_period=16, bar_lines=True)
    params = model.init(jax.random.key(0), jnp.zeros((1, 2, 88)))["params"]
    params["readout"]["bias"] = jax.random.normal(jax.random.key(1), (88,))
    run = Run(model=model, params=params, encoding=PianoRollEncoding(), loss_kind="bernoulli",
              meta={"piece_lengths": [20, 30], "piece_bars": [[12, 16], [4, 12]]})
    by_length = {20: (12, 16), 30: (4, 12)}
    seen = set()
    for ns in sample(run, 6, seed=2):
        steps = len(PianoRollEncoding().encode(ns)) if ns.notes else None
        bar = piece_bar(ns, 4)
        seen.add(bar)
        assert bar in by_length.values() and (steps is None or steps <= max(by_length))
        assert ns.total_time == pytest.approx([n for n, b in by_length.items() if b == bar][0] * 0.125)
    assert seen == set(by_length.values())
    per_bar = {ns.total_time / 2 / 0.125: piece_bar(ns, 4)[1] for ns in sample(run, 6, bars=2, seed=2)}
    assert all(steps == bar for steps, bar in per_bar.items())  # two bars of 16 or of 12 steps
    drawn = sampling.sample_bars(run, 2, seed=5)
    greedy = sample_arrays(run, 2, 12, seed=5, temperature=0.0)
    variables = {"params": run.params}
    for row in range(2):
        carry, x = model.apply(variables, 1, method="initial_carry"), jnp.zeros((1, 88))
        for t in range(12):
            carry, logits = model.apply(variables, carry, x, None, t, bar=jnp.asarray(drawn[row:row + 1]),
                                        method="step")
            x = (logits > 0).astype(jnp.float32)
            np.testing.assert_array_equal(np.asarray(x[0], bool), greedy[row, t])


def test_primer_with_a_pickup_keeps_its_bar_lines(tmp_path):
    """A primer in 3/4 with a quarter's pickup (a 1/4 bar first, as scores are read): the continuation keeps both
    meters at the sample's tempo, and bars are 3/4 bars (not the pickup's)."""
    run = pianoroll_run()
    primer = write_primer(tmp_path / "primer.mid")
    del primer.time_signatures[:]
    primer.time_signatures.add(time=0.0, numerator=1, denominator=4)
    primer.time_signatures.add(time=60.0 / 90.0, numerator=3, denominator=4)
    assert sampling.steps_per_bar(run, primer) == 12
    for ns in sample(run, 1, bars=2, seed=0, primer=primer):
        assert [(round(t.time, 4), t.numerator, t.denominator) for t in ns.time_signatures] == [
            (0.0, 1, 4), (round(60.0 / 90.0, 4), 3, 4)]
        assert ns.total_time == pytest.approx((48 + 24) * 60 / 90 / 4, rel=1e-4)


def test_primer_continuation_starts_with_the_primer_on_the_grid(tmp_path):
    from musejax.data.readers import read_piece

    run = pianoroll_run()
    write_primer(tmp_path / "primer.mid")
    primer = read_piece(tmp_path / "primer.mid")
    primer_roll = PianoRollEncoding().encode(primer)
    assert len(primer_roll) == 48
    for ns in sample(run, 2, 16, seed=3, primer=primer):
        assert ns.tempos[0].qpm == pytest.approx(90.0, rel=1e-4)  # MIDI stores microseconds per quarter
        assert (ns.time_signatures[0].numerator, ns.time_signatures[0].denominator) == (3, 4)
        assert sampling.primer_end_seconds(ns) == pytest.approx(8.0, rel=1e-4)  # 12 quarters at 90 qpm
        assert ns.total_time == pytest.approx((48 + 16) * 60 / 90 / 4, rel=1e-4)
        np.testing.assert_array_equal(PianoRollEncoding().encode(ns)[:48], primer_roll)
    # the continuation is conditioned on the primer: the greedy continuation is the step loop after it
    greedy = sample_arrays(run, 2, 16, temperature=0.0, primer=primer)[0]
    prefix = np.concatenate([np.zeros((1, 88), np.float32), primer_roll.astype(np.float32)])
    np.testing.assert_array_equal(greedy[48:], greedy_reference(run, prefix, 16).astype(bool))
    assert not np.array_equal(greedy[48:], sample_arrays(run, 2, 16, temperature=0.0)[0])


def test_a_primer_is_continued_under_its_likelier_texture_label_and_a_piece_is_drawn_as_written(tmp_path):
    import optax
    from musejax.data.readers import read_piece

    model = PianoRollLM(features=88, hidden=8, cell="gru", impl="xla", textures=5)
    params = model.init(jax.random.key(4), jnp.zeros((1, 2, 88)))["params"]
    params["readout"]["bias"] = jax.random.normal(jax.random.key(5), (88,))
    w_x = params["rnn"]["layer_0"]["w_x"]  # the last five rows read the texture label: make it matter
    params["rnn"]["layer_0"]["w_x"] = w_x.at[-5:].set(5.0 * jax.random.normal(jax.random.key(6), w_x[-5:].shape))
    config = Config(data=DataConfig(texture_shift_rate=0.5, texture_shifts="melody"))  # labels 0 and 1, even odds
    run = Run(model=model, params=params, encoding=PianoRollEncoding(), loss_kind="bernoulli", config=config)
    write_primer(tmp_path / "primer.mid")
    primer = read_piece(tmp_path / "primer.mid")
    prefix = np.concatenate([np.zeros((1, 88), np.float32), PianoRollEncoding().encode(primer).astype(np.float32)])

    def primer_nll(label: int) -> float:  # a step loop: -log p(primer | label)
        variables, carry, total = {"params": params}, model.apply({"params": params}, 1, method="initial_carry"), 0.0
        for x, target in zip(prefix[:-1], prefix[1:]):
            carry, logits = model.apply(variables, carry, jnp.asarray(x)[None], texture=jnp.array([label]),
                                        method="step")
            total += float(optax.sigmoid_binary_cross_entropy(logits[0], jnp.asarray(target)).sum())
        return total

    nll = [primer_nll(0), primer_nll(1)]
    assert abs(nll[0] - nll[1]) > 1.0  # the label matters
    likelier = int(np.argmin(nll))
    np.testing.assert_array_equal(sampling.primer_texture(run, prefix, None, 3), [likelier] * 3)
    continued = sample_arrays(run, 1, 16, temperature=0.0, primer=primer)[0][len(prefix) - 1:]
    np.testing.assert_array_equal(continued, greedy_reference(run, prefix, 16, texture=likelier).astype(bool))
    assert not np.array_equal(continued, greedy_reference(run, prefix, 16, texture=1 - likelier).astype(bool))
    unprimed = sample_arrays(run, 1, 16, temperature=0.0)[0]
    start = np.zeros((1, 88), np.float32)
    np.testing.assert_array_equal(unprimed, greedy_reference(run, start, 16, texture=0).astype(bool))
    np.testing.assert_array_equal(unprimed, greedy_reference(run, start, 16).astype(bool))  # None: as written
    assert not np.array_equal(unprimed, greedy_reference(run, start, 16, texture=1).astype(bool))


def test_nade_continues_a_primer_by_bars_in_its_metre(tmp_path):
    from musejax.data.readers import read_piece

    run = nade_run(position_period=32)  # the place in the bar as an input counts on after the primer (48 steps)
    w_x = run.params["rnn"]["layer_0"]["w_x"]  # rows 88..119 read the place in the bar: make it matter
    noise = jax.random.normal(jax.random.key(9), w_x[88:120].shape)
    run.params["rnn"]["layer_0"]["w_x"] = w_x.at[88:120].set(5.0 * noise)
    write_primer(tmp_path / "primer.mid")  # 3/4, 48 sixteenth steps
    primer = read_piece(tmp_path / "primer.mid")
    arrays = sample_arrays(run, 2, bars=2, seed=1, primer=primer)
    assert [len(a) for a in arrays] == [48 + 24] * 2  # two bars of 3/4 = 24 sixteenths
    primer_roll = PianoRollEncoding().encode(primer)
    np.testing.assert_array_equal(arrays[0][:48], primer_roll)
    assert arrays[0][48:].any(axis=1).mean() > 0.5  # the random NADE makes notes
    # greedy: each frame is the NADE's key-by-key argmax after the primer, as a Python loop computes it
    greedy = sample_arrays(run, 1, 4, temperature=0.0, primer=primer)[0][48:]
    variables = {"params": run.params}
    carry = run.model.apply(variables, 1, method="initial_carry")
    x = jnp.zeros((1, 88))
    for t, frame in enumerate(primer_roll):
        carry, _ = run.model.apply(variables, carry, x, None, t, method="step")
        x = jnp.asarray(frame, jnp.float32)[None]
    for t, want in enumerate(greedy, start=len(primer_roll)):
        carry, outputs = run.model.apply(variables, carry, x, None, t, method="step")
        x = run.model.apply(variables, outputs, None, mode="greedy", method="draw_frame").astype(jnp.float32)
        np.testing.assert_array_equal(np.asarray(x[0], bool), want)


def test_a_model_that_reads_the_steps_left_is_told_each_samples_own_end():
    run = pianoroll_run()
    model = run.model.clone(end_buckets=4, end_bucket_steps=2)
    params = model.init(jax.random.key(3), jnp.zeros((1, 2, 88)))["params"]
    params["readout"]["bias"] = run.params["readout"]["bias"]
    run = dataclasses.replace(run, model=model, params=params)
    short, long = sample_arrays(run, 2, [6, 12], seed=1), sample_arrays(run, 2, [12, 12], seed=1)
    assert [len(a) for a in short] == [6, 12]
    np.testing.assert_array_equal(short[1], long[1])  # the same draws, the same end
    assert not np.array_equal(short[0], long[0][:6])  # the same draws, an end 6 steps earlier


def test_default_lengths_are_drawn_from_the_corpus_pieces():
    run = pianoroll_run()
    run.meta = {"piece_lengths": [20, 30, 30]}
    lengths = [len(a) for a in sample_arrays(run, 8, seed=2)]
    assert set(lengths) == {20, 30}
    assert lengths == [len(a) for a in sample_arrays(run, 8, seed=2)]  # seeded
    assert [len(a) for a in sample_arrays(run, 2, [5, 9], seed=2)] == [5, 9]
    assert sampling.sample_lengths(run, 2, bars=3) == [48, 48]
    assert sampling.sample_lengths(run, 3, primer_steps=28) == [64, 64, 64]  # at least 4 bars of 4/4
    with pytest.raises(SampleError, match="not both"):
        sample_arrays(run, 1, 8, bars=2)
    with pytest.raises(SampleError, match="no bars"):
        sampling.steps_per_bar(Run(model=None, params=None, encoding=PerformanceEncoding(), loss_kind="categorical"))


def test_event_primer_is_kept_and_continued():
    run = event_run()
    primer = MELODY.decode(np.array([0, 14, 0, 0, 16, 0, 17, 1, 19, 0], np.int32), qpm=100.0)
    for ns in sample(run, 2, 16, seed=0, primer=primer):
        events = MELODY.encode(ns)
        np.testing.assert_array_equal(events[:9], [0, 14, 0, 0, 16, 0, 17, 1, 19])


def test_written_midi_parses_back_and_png_exists(tmp_path):
    run = pianoroll_run()
    primer = PianoRollEncoding().decode(np.eye(88, dtype=bool)[[40, 44, 47, 52] * 4], qpm=100.0)
    paths = sampling.write_samples(run, tmp_path / "out", n=2, steps=16, seed=0, threshold=0.6, primer=primer)
    assert [p.name for p in paths] == ["sample_000.mid", "sample_001.mid"]
    sequences = sample(run, 2, 16, seed=0, threshold=0.6, primer=primer)
    for path, ns in zip(paths, sequences):
        back = note_seq.midi_file_to_note_sequence(str(path))
        assert sorted((n.pitch, round(n.start_time, 3)) for n in back.notes) == \
               sorted((n.pitch, round(n.start_time, 3)) for n in ns.notes)
        assert back.tempos[0].qpm == pytest.approx(100.0)
        png = path.with_suffix(".png")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


# ------------------------------------------------------------------------------- a real run and the command


@pytest.fixture(scope="module")
def styled_melody_run(tmp_path_factory) -> Path:
    """A tiny style-conditioned melody LM trained for a few steps into a real run directory."""
    from musejax.lm.config import resolve_config
    from musejax.lm.data import make_encoding, windows_from_arrays
    from musejax.lm.task import train

    config = resolve_config("lm:tiny", ["--config.data.encoding=melody", "--config.model.style_dim=4",
                                        "--config.train.steps=4", "--config.train.log_every_steps=2",
                                        "--config.train.eval_every_steps=2", "--config.sample.n=0"])
    rng = np.random.default_rng(0)

    def tunes(count: int, style: int) -> tuple[list[np.ndarray], list[int]]:
        pieces = [np.where(rng.random(24) < 0.5, 0, rng.integers(2 + 12 * style, 14 + 12 * style, 24)).astype(np.int32)
                  for _ in range(count)]
        return pieces, [style] * count

    def split(count: int) -> tuple[list[np.ndarray], list[int]]:
        (a, sa), (b, sb) = tunes(count, 0), tunes(count, 1)
        return a + b, sa + sb

    data = windows_from_arrays(config.data, make_encoding(config.data),
                               {"train": split(8), "valid": split(2), "test": split(2)}, ["bach", "irish"], "synthetic")
    run_dir = tmp_path_factory.mktemp("runs") / "melody"
    train(config, run_dir, data=data, progress=False)
    return run_dir


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli_main(["sample", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_command_continues_a_primer_from_a_real_run(styled_melody_run, tmp_path, capsys):
    write_primer(tmp_path / "primer.mid")
    code, out, err = run_cli(capsys, "--run", styled_melody_run, "--n", 2, "--steps", 16, "--primer",
                             tmp_path / "primer.mid", "--style", "irish", "--top-p", 0.9, "--top-k", 5,
                             "--out", tmp_path / "out", "--checkpoint", "latest")
    assert code == 0, err
    assert "primer" in out and "continuation" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "sample_000.mid", "sample_000.png", "sample_001.mid", "sample_001.png"]
    from musejax.data.readers import read_piece

    primer_events = MELODY.encode(read_piece(tmp_path / "primer.mid"))
    for name in ("sample_000.mid", "sample_001.mid"):
        events = MELODY.encode(note_seq.midi_file_to_note_sequence(str(tmp_path / "out" / name)))
        np.testing.assert_array_equal(events[:len(primer_events)], primer_events)
        assert len(events) <= len(primer_events) + 16


def test_command_samples_at_the_run_configs_settings_by_default(styled_melody_run, tmp_path, capsys):
    settings = sampling.load_run(styled_melody_run).config.sample
    assert (settings.temperature, settings.top_p) == (1.0, 0.9)  # lm/config.py's defaults
    outputs = {}
    for name, extra in {"default": [], "same": ["--temperature", 1.0, "--top-p", 0.9],
                        "hot": ["--temperature", 1.5]}.items():
        code, out, err = run_cli(capsys, "--run", styled_melody_run, "--n", 2, "--steps", 32, "--out",
                                 tmp_path / name, *extra)
        assert code == 0, err
        assert "copy check: " in out and "of 2 samples copied >= 2 bars of a training piece" in out
        outputs[name] = [(tmp_path / name / f"sample_00{i}.mid").read_bytes() for i in range(2)]
    assert outputs["default"] == outputs["same"] != outputs["hot"]


def test_command_writes_a_wav_beside_each_midi_with_audio(styled_melody_run, tmp_path, capsys):
    from musejax.midi.audio import read_wav

    code, out, err = run_cli(capsys, "--run", styled_melody_run, "--n", 2, "--steps", 16, "--out", tmp_path / "o",
                             "--audio", "--sample-rate", "22050")
    assert code == 0, err
    assert "MIDI + PNG + WAV" in out
    for index in range(2):
        ns = note_seq.midi_file_to_note_sequence(str(tmp_path / "o" / f"sample_00{index}.mid"))
        samples, rate = read_wav(tmp_path / "o" / f"sample_00{index}.wav")
        assert rate == 22050 and len(samples) / rate >= ns.total_time + 0.5 - 1e-3  # to the sample's end, + tail
        assert 0.5 < abs(samples).max() <= 1.0 or not ns.notes


def test_load_run_and_default_output_folder(styled_melody_run, capsys):
    run = sampling.load_run(styled_melody_run)
    assert run.styles == ["bach", "irish"] and run.conditioned and run.loss_kind == "categorical"
    code, out, err = run_cli(capsys, "--run", styled_melody_run, "--n", 2, "--steps", 16, "--mix", "bach:1,irish:3")
    assert code == 0, err
    assert (styled_melody_run / "samples" / "sample_001.png").is_file()


def test_the_copy_check_reads_the_pieces_training_saw_and_draws_again_what_copies(styled_melody_run, tmp_path):
    from musejax.evaluate.originality import find_copies
    from musejax.lm.copy_check import INDEX_FILE, MAX_REDRAWS, CopyReport, training_index
    from musejax.lm.run_pieces import grid_pieces

    run = sampling.load_run(styled_melody_run)
    assert (styled_melody_run / INDEX_FILE).is_file()  # written by training, from the pieces it was given
    index = training_index(run)
    assert index.piece_ids == [f"train/{i}" for i in range(16)]
    greedy = sample(run, 2, 32, temperature=0)  # every draw the same: a sample that copies copies every time
    spans = [found.max_span_bars for found in find_copies(index, grid_pieces(greedy, 4)[0])]
    longest = max(spans)
    assert longest > 0
    report = CopyReport()
    again = sample(run, 2, 32, temperature=0, max_copy_bars=longest, copy_report=report)
    copying = [i for i, span in enumerate(spans) if span >= longest]
    assert [c["index"] for c in report.copied] == copying == report.still_copying and report.redraws == MAX_REDRAWS
    assert [MELODY.encode(ns).tolist() for ns in again] == [MELODY.encode(ns).tolist() for ns in greedy]
    report = CopyReport()
    sample(run, 2, 32, temperature=0, max_copy_bars=longest + 0.01, copy_report=report)
    assert report.copied == [] and report.redraws == 0 and report.n_checked == 2


@pytest.mark.parametrize("args, message", [
    (["--style", "jazz"], "unknown style 'jazz'"),
    (["--mix", "bach:0,irish:0"], "sum to > 0"),
    (["--mix", "bach=1"], "NAME:WEIGHT"),
    (["--top-p", "1.5"], r"top-p must lie in \(0, 1\]"),
    (["--top-p", "0"], r"top-p must lie in \(0, 1\]"),
    (["--threshold", "0.5"], "event model"),
    (["--checkpoint", "12345"], "no checkpoint at step 12345"),
    (["--max-copy-bars", "-1"], "max copy bars must be >= 0"),
    (["--primer", "BAD"], "primer .*bad.mid: corrupt-midi"),
    (["--primer", "MISSING"], "missing.mid: primer file not found"),
])
def test_command_errors_are_one_line(styled_melody_run, tmp_path, capsys, args, message):
    (tmp_path / "bad.mid").write_bytes(b"MThd this is not a MIDI file")
    paths = {"BAD": tmp_path / "bad.mid", "MISSING": tmp_path / "missing.mid"}
    args = [str(paths.get(a, a)) for a in args]
    code, out, err = run_cli(capsys, "--run", styled_melody_run, "--n", 2, "--steps", 16, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("musejax sample: error: ")
    assert re.search(message, err), err


def test_command_refuses_a_run_without_checkpoint(styled_melody_run, tmp_path, capsys):
    code, _, err = run_cli(capsys, "--run", tmp_path / "nothing")
    assert code == 2 and "not a run directory" in err and err.count("\n") == 1
    (tmp_path / "fresh").mkdir()  # configured but never trained
    (tmp_path / "fresh" / "config.json").write_text((styled_melody_run / "config.json").read_text())
    code, _, err = run_cli(capsys, "--run", tmp_path / "fresh")
    assert code == 2 and "no checkpoints" in err and err.count("\n") == 1


def test_a_runs_own_settings_keep_top_p_only_where_its_model_has_a_choice_to_cut():
    from musejax.lm.config import resolve_config

    nade = resolve_config("lm")  # the default: a counting NADE, top_p 0.9, temperature 1, its count at 1.15
    assert sampling.config_options(nade) == {"temperature": 1.0, "top_p": 0.9, "count_temperature": 1.15,
                                             "max_copy_bars": 2.0}
    bernoulli = resolve_config("polyphonic:bernoulli")
    options = sampling.config_options(bernoulli)
    assert "top_p" not in options and "count_temperature" not in options and bernoulli.sample.top_p == 0.9


def test_a_run_saved_before_the_count_temperature_or_the_copy_check_samples_as_it_did():
    from musejax.config import to_dataclass
    from musejax.lm.config import resolve_config

    saved = dataclasses.asdict(resolve_config("lm"))
    del saved["sample"]["count_temperature"], saved["sample"]["max_copy_bars"]
    options = sampling.config_options(to_dataclass(saved, Config))
    assert options["count_temperature"] == 1.0 and options["max_copy_bars"] == 0.0


def test_command_draws_a_counting_nade_run_from_its_configs_nucleus(tmp_path, capsys):
    """The default LM (a NADE that draws its note count first) samples each note's key from config.sample.top_p
    and its count at config.sample.count_temperature; --top-p and --count-temperature override them."""
    from lm_fixtures import tiny_config, tiny_data
    from musejax.lm.task import train

    config = tiny_config("--config.train.steps=4", "--config.train.eval_every_steps=4", "--config.sample.n=0")
    assert (config.model.output, config.model.nade_count, config.sample.top_p) == ("nade", True, 0.9)
    run_dir = tmp_path / "nade"
    train(config, run_dir, data=tiny_data(config), progress=False)
    outputs = {}
    for name, extra in {"default": [], "same": ["--temperature", 1.0, "--top-p", 0.9, "--count-temperature", 1.15],
                        "narrow": ["--top-p", 0.3], "counts": ["--count-temperature", 3.0]}.items():
        code, _, err = run_cli(capsys, "--run", run_dir, "--n", 4, "--steps", 32, "--out", tmp_path / name, *extra)
        assert code == 0, err
        outputs[name] = [(tmp_path / name / f"sample_00{i}.mid").read_bytes() for i in range(4)]
    assert outputs["default"] == outputs["same"] != outputs["narrow"]
    assert outputs["counts"] != outputs["default"]
    code, _, err = run_cli(capsys, "--run", run_dir, "--n", 1, "--count-temperature", 0, "--out", tmp_path / "bad")
    assert code == 2 and "count temperature must be > 0, got 0" in err and err.count("\n") == 1
