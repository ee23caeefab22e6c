"""The NADE frame distribution (musejax/lm/nade.py) and its use as the piano-roll LM's output."""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from musejax.lm import nade
from musejax.lm.model import PianoRollLM

N_KEYS, N_HIDDEN = 6, 5


def _params(seed: int, n_frames: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: jnp.asarray(rng.normal(size=shape) * scale, jnp.float32)  # noqa: E731
    return f32(n_frames, N_KEYS), f32(n_frames, N_HIDDEN), f32(N_KEYS, N_HIDDEN), f32(N_KEYS, N_HIDDEN)


def _all_frames() -> jnp.ndarray:
    return jnp.asarray(list(itertools.product((0, 1), repeat=N_KEYS)), jnp.float32)  # (64, 6)


def _loop_logits(frames, visible, hidden, w, v, left_embed=None):
    """The definition, one key at a time: logit_i = c_i + V_i . sigmoid(b + sum_{j<i} v_j W_j [+ E[notes left]])."""
    pre = hidden
    left = frames.sum(axis=1).astype(jnp.int32)
    logits = []
    for i in range(frames.shape[1]):
        shifted = pre if left_embed is None else pre + left_embed[left]
        logits.append(visible[:, i] + jax.nn.sigmoid(shifted) @ v[i])
        pre = pre + frames[:, i:i + 1] * w[i]
        left = left - frames[:, i].astype(jnp.int32)
    return jnp.stack(logits, axis=1)


def _log_prob(logits, frames):
    return -optax.sigmoid_binary_cross_entropy(logits, frames).sum(axis=-1)


@pytest.mark.parametrize("form", ["segments", "dense"])
def test_probabilities_of_all_frames_sum_to_one(form):
    frames = _all_frames()
    visible, hidden, w, v = _params(0, 1, scale=2.0)
    visible, hidden = (jnp.repeat(a, len(frames), axis=0) for a in (visible, hidden))
    logits = (nade.nade_logits(frames, visible, hidden, w, v, max_notes=N_KEYS) if form == "segments"
              else nade.nade_logits_dense(frames, visible, hidden, w, v))
    total = jnp.exp(_log_prob(logits, frames)).sum()
    assert abs(float(total) - 1.0) < 1e-5


def test_parallel_forms_match_the_key_by_key_loop_forward_and_gradient():
    frames = jnp.asarray(np.random.default_rng(1).random((40, N_KEYS)) < 0.4, jnp.float32)
    args = _params(2, len(frames))

    def nll(fn, *a):
        return -_log_prob(fn(frames, *a), frames).sum()

    def segments(f, *a):
        return nade.nade_logits(f, *a[:4], N_KEYS, *a[4:])

    left_embed = jnp.asarray(np.random.default_rng(3).normal(size=(N_KEYS + 1, N_HIDDEN)), jnp.float32)
    for extra in ((), (left_embed,)):  # plain, and a counting NADE's hidden units told the notes left
        argnums = tuple(range(len(args) + len(extra)))
        want_value, want_grads = jax.value_and_grad(lambda *a: nll(_loop_logits, *a), argnums)(*args, *extra)
        for fn in (segments, nade.nade_logits_dense):
            value, grads = jax.value_and_grad(lambda *a: nll(fn, *a), argnums)(*args, *extra)
            np.testing.assert_allclose(value, want_value, rtol=1e-5)
            for got, want in zip(grads, want_grads):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_segment_form_takes_leading_axes():
    """The model calls it on (T, B, K), unflattened: the same logits as on the flattened frames."""
    frames = jnp.asarray(np.random.default_rng(5).random((4, 3, N_KEYS)) < 0.4, jnp.float32)
    visible, hidden, w, v = _params(6, 12)
    left_embed = jnp.asarray(np.random.default_rng(7).normal(size=(N_KEYS + 1, N_HIDDEN)), jnp.float32)
    flat = nade.nade_logits(frames.reshape(12, N_KEYS), visible, hidden, w, v, N_KEYS, left_embed)
    shaped = nade.nade_logits(frames, visible.reshape(4, 3, N_KEYS), hidden.reshape(4, 3, N_HIDDEN), w, v,
                              N_KEYS, left_embed)
    np.testing.assert_allclose(np.asarray(shaped).reshape(12, N_KEYS), flat, rtol=1e-6, atol=1e-6)


def test_segment_form_is_exact_up_to_max_notes_only():
    frames = _all_frames()
    args = _params(3, len(frames))
    want = _loop_logits(frames, *args)
    got = nade.nade_logits(frames, *args, max_notes=3)
    fits = np.asarray(frames.sum(axis=1) <= 3)
    np.testing.assert_allclose(np.asarray(got)[fits], np.asarray(want)[fits], rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.asarray(got)[~fits], np.asarray(want)[~fits])
    with pytest.raises(ValueError, match="6 sounding keys.*at most 3"):
        nade.check_max_notes(np.asarray(frames), 3, "test frames")


def test_samples_of_a_fitted_nade_match_its_target_distribution():
    """Fit a NADE to a fixed distribution over 6-key frames, then draw from it: chi-squared against the target."""
    rng = np.random.default_rng(4)
    frames = _all_frames()
    target = rng.dirichlet(np.full(len(frames), 0.3))
    n_hidden = 24  # enough units to fit any distribution over 64 frames closely
    params = {name: jnp.asarray(rng.normal(size=shape) * 0.1, jnp.float32) for name, shape in
              (("c", (N_KEYS,)), ("b", (n_hidden,)), ("w", (N_KEYS, n_hidden)), ("v", (N_KEYS, n_hidden)))}

    def loss(p):
        logits = nade.nade_logits(frames, jnp.broadcast_to(p["c"], frames.shape),
                                  jnp.broadcast_to(p["b"], (len(frames), n_hidden)), p["w"], p["v"], N_KEYS)
        return -(jnp.asarray(target, jnp.float32) * _log_prob(logits, frames)).sum()

    # a decaying rate: at a constant 0.05 Adam ends oscillating around the optimum, and how far off it stops
    # depends on the machine's float rounding (L1 0.002 at -O2, 0.032 at the tests' -O0 on one 2-core machine)
    opt = optax.adam(optax.cosine_decay_schedule(0.05, 2000, alpha=0.01))
    state = opt.init(params)

    @jax.jit
    def step(p, s):
        grads = jax.grad(loss)(p)
        updates, s = opt.update(grads, s)
        return optax.apply_updates(p, updates), s

    for _ in range(2000):
        params, state = step(params, state)
    n_draws = 20000
    drawn = nade.nade_sample(jnp.broadcast_to(params["c"], (n_draws, N_KEYS)),
                             jnp.broadcast_to(params["b"], (n_draws, n_hidden)), params["w"], params["v"],
                             jax.random.uniform(jax.random.key(0), (n_draws, N_KEYS)))
    codes = np.asarray(drawn).astype(int) @ (2 ** np.arange(N_KEYS)[::-1])
    observed = np.bincount(codes, minlength=len(frames))
    # the model's own probabilities are what the sampler must reproduce; the fit makes them near the target
    logits = nade.nade_logits(frames, jnp.broadcast_to(params["c"], frames.shape),
                              jnp.broadcast_to(params["b"], (len(frames), n_hidden)), params["w"], params["v"], N_KEYS)
    model_p = np.exp(np.asarray(_log_prob(logits, frames), np.float64))
    assert np.abs(model_p - target).sum() < 0.03
    for probabilities in (model_p, target):  # the sampler reproduces the model, and so the fitted distribution
        expected = probabilities / probabilities.sum() * n_draws
        keep = expected >= 5
        chi2 = (((observed - expected) ** 2 / expected)[keep]).sum()
        p_value = stats.chi2.sf(chi2, keep.sum() - 1)
        assert p_value > 1e-3, (chi2, p_value)


@pytest.mark.parametrize("mode", ["greedy", "threshold"])
def test_deterministic_sampling_modes_follow_the_conditionals(mode):
    visible, hidden, w, v = _params(6, 8, scale=2.0)
    drawn = nade.nade_sample(visible, hidden, w, v, None, mode=mode, threshold=0.5)
    logits = _loop_logits(drawn.astype(jnp.float32), visible, hidden, w, v)
    np.testing.assert_array_equal(np.asarray(drawn), np.asarray(logits > 0))


@pytest.mark.parametrize("cell, order, layers", [
    ("lstm", "high-low", 1), pytest.param("gru", "low-high", 2, marks=pytest.mark.slow)])
def test_piano_roll_lm_nade_output_is_a_normalised_frame_distribution(cell, order, layers):
    model = PianoRollLM(features=N_KEYS, hidden=8, output="nade", nade_hidden=4, nade_max_notes=N_KEYS,
                        nade_order=order, layers=layers, cell=cell, impl="xla")
    frames = _all_frames()
    history = jnp.asarray(np.random.default_rng(7).random((1, 3, N_KEYS)) < 0.5, jnp.float32)
    params = model.init(jax.random.key(1), history, targets=history)["params"]
    # every frame as the 4th step after the same 3-step history
    inputs = jnp.concatenate([jnp.zeros((len(frames), 1, N_KEYS)), jnp.repeat(history, len(frames), 0)], axis=1)
    targets = jnp.concatenate([jnp.repeat(history, len(frames), 0), frames[:, None]], axis=1)
    logits = model.apply({"params": params}, inputs, targets=targets)
    assert logits.shape == targets.shape
    log_p_last = _log_prob(logits[:, -1], frames)
    assert abs(float(jnp.exp(log_p_last).sum()) - 1.0) < 1e-5
    # the step API gives the same conditionals: sampling greedily reproduces the argmax chain
    carry = model.apply({"params": params}, len(frames), method="initial_carry")
    for t in range(4):
        carry, outputs = model.apply({"params": params}, carry, inputs[:, t], method="step")
    drawn = model.apply({"params": params}, outputs, None, mode="greedy", method="draw_frame")
    greedy_targets = targets.at[:, -1].set(drawn.astype(jnp.float32))
    chain = model.apply({"params": params}, inputs, targets=greedy_targets)[:, -1]
    np.testing.assert_array_equal(np.asarray(chain > 0), np.asarray(drawn))
    assert model.apply({"params": params}, inputs) is None  # no targets: no NADE logits


@pytest.mark.parametrize("count_input", ["nade-hidden", "state"])
def test_counting_nade_is_normalised_and_its_sampler_draws_from_it(count_input):
    """nade_count=True: p(frame) = p(n) p(frame | n) sums to 1 over all frames, each conditional NADE puts all
    its mass on frames of n notes, and draw_frame's samples follow the model (chi-squared); the count read from
    the NADE's hidden biases (default) or from the state (runs saved before)."""
    model = PianoRollLM(features=N_KEYS, hidden=8, output="nade", nade_hidden=4, nade_max_notes=N_KEYS,
                        nade_order="high-low", nade_count=True, nade_count_input=count_input, impl="xla")
    frames = _all_frames()
    inputs = jnp.asarray(np.random.default_rng(8).random((1, 2, N_KEYS)) < 0.5, jnp.float32)
    params = model.init(jax.random.key(2), inputs, targets=inputs)["params"]
    assert params["count_readout"]["kernel"].shape == ({"nade-hidden": 4, "state": 8}[count_input], N_KEYS + 1)
    params = jax.tree.map(lambda a: a * 3.0, params)  # sharper conditionals than at init
    out = model.apply({"params": params}, jnp.repeat(inputs, len(frames), 0),
                      targets=jnp.concatenate([jnp.repeat(inputs[:, :1], len(frames), 0), frames[:, None]], axis=1))
    log_p = _log_prob(out["logits"][:, -1], frames) - out["step_nll"][:, -1]
    assert abs(float(jnp.exp(log_p).sum()) - 1.0) < 1e-5
    # the keys alone, given each frame's own count, are a distribution over the frames of that count
    counts = np.asarray(frames.sum(axis=1)).astype(int)
    p_keys = np.exp(np.asarray(_log_prob(out["logits"][:, -1], frames), np.float64))
    np.testing.assert_allclose(np.bincount(counts, weights=p_keys), np.ones(N_KEYS + 1), rtol=1e-5)

    n_draws = 20000
    carry = model.apply({"params": params}, n_draws, method="initial_carry")
    carry, _ = model.apply({"params": params}, carry, jnp.repeat(inputs[:, 0], n_draws, 0), method="step")
    _, outputs = model.apply({"params": params}, carry, jnp.repeat(inputs[:, 1], n_draws, 0), method="step")
    noise = jax.random.uniform(jax.random.key(3), (n_draws, model.noise_width))
    drawn = model.apply({"params": params}, outputs, noise, method="draw_frame")
    codes = np.asarray(drawn).astype(int) @ (2 ** np.arange(N_KEYS)[::-1])
    observed = np.bincount(codes, minlength=len(frames))
    expected = np.exp(np.asarray(log_p, np.float64)) * n_draws
    keep = expected >= 5
    chi2 = (((observed - expected) ** 2 / expected)[keep]).sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-3, chi2
    greedy = model.apply({"params": params}, outputs, None, mode="greedy", method="draw_frame")
    want = jnp.argmax(outputs["count_logits"], axis=-1)
    np.testing.assert_array_equal(np.asarray(greedy.sum(axis=-1)), np.asarray(want))


def test_the_note_count_is_drawn_at_the_count_temperature():
    """draw_frame(count_temperature=c) draws each frame's note count from softmax(count_logits / c), and the keys
    still number exactly the count (chi-squared against c = 2; the draws reject the distribution at c = 1)."""
    model = PianoRollLM(features=N_KEYS, hidden=8, output="nade", nade_hidden=4, nade_max_notes=N_KEYS,
                        nade_count=True, impl="xla")
    inputs = jnp.asarray(np.random.default_rng(8).random((1, 1, N_KEYS)) < 0.5, jnp.float32)
    params = model.init(jax.random.key(2), inputs, targets=inputs)["params"]
    params = jax.tree.map(lambda a: a * 3.0, params)  # a peaked count distribution
    n_draws = 20000
    carry = model.apply({"params": params}, n_draws, method="initial_carry")
    _, outputs = model.apply({"params": params}, carry, jnp.repeat(inputs[:, 0], n_draws, 0), method="step")
    noise = jax.random.uniform(jax.random.key(5), (n_draws, model.noise_width))
    drawn = model.apply({"params": params}, outputs, noise, count_temperature=2.0, method="draw_frame")
    observed = np.bincount(np.asarray(drawn).sum(axis=-1).astype(int), minlength=N_KEYS + 1)
    logits = np.asarray(outputs["count_logits"][0], np.float64)

    def p_value(temperature: float) -> float:
        expected = np.exp(logits / temperature - np.logaddexp.reduce(logits / temperature)) * n_draws
        keep = expected >= 5
        return stats.chi2.sf((((observed - expected) ** 2 / expected)[keep]).sum(), keep.sum() - 1)

    assert p_value(2.0) > 1e-3
    assert p_value(1.0) < 1e-6  # the temperature changed what was drawn


def test_placing_a_counted_frame_note_by_note_matches_the_key_by_key_draw():
    """nade_place (the counting NADE's sampler: a note at a time) draws what nade_sample draws key by key given
    the count, at temperature 1; towards temperature 0 it tends to its greedy frame."""
    visible, hidden, w, v = (jnp.broadcast_to(a[:1], (20000, a.shape[1])) if i < 2 else a
                             for i, a in enumerate(_params(9, 1, scale=2.0)))
    left_embed = jnp.asarray(np.random.default_rng(10).normal(size=(N_KEYS + 1, N_HIDDEN)), jnp.float32)
    count = jnp.full((20000,), 2)
    codes = 2 ** np.arange(N_KEYS)
    by_key = nade.nade_sample(visible, hidden, w, v, jax.random.uniform(jax.random.key(0), (20000, N_KEYS)),
                              count=count, left_embed=left_embed)
    placed = nade.nade_place(visible, hidden, w, v, jax.random.uniform(jax.random.key(1), (20000, N_KEYS)), count,
                             left_embed)
    assert (np.asarray(placed).sum(axis=1) == 2).all()
    a, b = (np.bincount(np.asarray(x).astype(int) @ codes, minlength=2 ** N_KEYS) for x in (by_key, placed))
    seen = (a + b) > 0
    chi2, p_value, _, _ = stats.chi2_contingency(np.stack([a[seen], b[seen]]))
    assert p_value > 1e-3, chi2
    greedy = nade.nade_place(visible[:1], hidden[:1], w, v, None, count[:1], left_embed, greedy=True)
    cold = nade.nade_place(visible[:2000], hidden[:2000], w, v,
                           jax.random.uniform(jax.random.key(2), (2000, N_KEYS)), count[:2000], left_embed,
                           temperature=0.02)
    assert np.mean(np.all(np.asarray(cold) == np.asarray(greedy), axis=1)) > 0.99


def test_placing_notes_from_the_nucleus_draws_only_its_keys_in_their_proportions():
    """nade_place with top_p: each note's key comes from the likeliest keys whose probability reaches top_p,
    renormalised. One note (count 1) over fixed biases: the key distribution is known in closed form."""
    visible, hidden, w, v = (jnp.broadcast_to(a[:1], (20000, a.shape[1])) if i < 2 else a
                             for i, a in enumerate(_params(15, 1, scale=0.5)))
    count = jnp.ones((20000,), jnp.int32)
    full = nade.nade_place(visible[:1], hidden[:1], w, v, None, count[:1], greedy=True)  # the likeliest key
    logits = visible[0] + jax.nn.sigmoid(hidden[0]) @ v.T
    off = np.concatenate([[0.0], np.cumsum(np.asarray(jax.nn.log_sigmoid(-logits)))[:-1]])
    p = np.exp(np.asarray(jax.nn.log_sigmoid(logits)) + off)
    p[-1] = np.exp(off[-1])  # the last key takes the rest
    order = np.argsort(-p)
    keep = order[: np.searchsorted(np.cumsum(p[order]), 0.7) + 1]  # the nucleus of 0.7
    assert 1 < len(keep) < N_KEYS  # the test needs a cut that keeps more than one key
    placed = np.asarray(nade.nade_place(visible, hidden, w, v, jax.random.uniform(jax.random.key(3), (20000, N_KEYS)),
                                        count, top_p=0.7))
    keys = placed.argmax(axis=1)
    assert (placed.sum(axis=1) == 1).all() and set(np.unique(keys)) <= set(keep.tolist())
    assert np.asarray(full)[0, order[0]]
    expected = p[keep] / p[keep].sum() * len(keys)
    chi2, p_value = stats.chisquare(np.bincount(keys, minlength=N_KEYS)[keep], expected)
    assert p_value > 1e-3, chi2
