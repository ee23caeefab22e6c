"""musejax.models: PianoRollLM / EventLM shapes, step == sequence, styles, dropout, LSTM/RNN cells, errors."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from musejax.nn.cells import RecurrentStack
from musejax.lm.model import EventLM, PianoRollLM

CELLS = ["gru", "gru-cho", "lstm", "rnn"]
SMALL = dict(hidden=12, layers=2, n_styles=3, style_dim=4)  # one config per cell shared by tests: compiles once


def _rolls(batch: int, steps: int, frame=(88,), seed: int = 0) -> jnp.ndarray:
    return jnp.asarray(np.random.default_rng(seed).random((batch, steps) + frame) < 0.15)


def _init(model, x, style=None):
    if style is None:
        return _cached_init(model, x.shape, str(x.dtype), None)
    return _cached_init(model, x.shape, str(x.dtype), (style.shape, str(style.dtype)))


@functools.lru_cache(maxsize=None)
def _cached_init(model, shape, dtype, style_spec):
    x = jnp.zeros(shape, dtype)
    style = None if style_spec is None else jnp.zeros(*style_spec)
    return jax.jit(model.init)(jax.random.key(0), x, style)


def _apply(model, variables, *args, method="__call__", **kwargs):
    """model.apply under jit (eager Flax dispatch compiles every op separately: slow)."""
    static = tuple(sorted((k, v) for k, v in kwargs.items() if isinstance(v, (bool, int))))
    dynamic = {k: v for k, v in kwargs.items() if k not in dict(static)}
    return _jitted_apply(model, method, static)(variables, args, dynamic)


@functools.lru_cache(maxsize=None)
def _jitted_apply(model, method, static):
    return jax.jit(lambda v, a, d: model.apply(v, *a, method=method, **d, **dict(static)))


def _step_all(model, variables, x, style):
    """Feed x one step at a time through `step`; return (carry, stacked logits)."""
    step = jax.jit(lambda c, xt: model.apply(variables, c, xt, style, method="step"))
    carry = model.apply(variables, x.shape[0], method="initial_carry")
    logits = []
    for t in range(x.shape[1]):
        carry, out = step(carry, x[:, t])
        logits.append(out)
    return carry, jnp.stack(logits, axis=1)


def _stepped_at_positions(model, variables, x, **inputs):
    """Feed x one step at a time through `step` with each step's index as its position (and `inputs`, e.g. end=,
    bar=); return the stacked outputs (B, T, ...)."""
    step = jax.jit(lambda c, xt, t: model.apply(variables, c, xt, None, t, method="step", **inputs))
    state, stepped = model.apply(variables, x.shape[0], method="initial_carry"), []
    for t in range(x.shape[1]):
        state, out = step(state, x[:, t], t)
        stepped.append(out)
    return jnp.stack(stepped, 1)


@pytest.mark.parametrize("cell", CELLS)
def test_piano_roll_step_by_step_equals_full_sequence(cell):
    model = PianoRollLM(cell=cell, **SMALL)
    x, style = _rolls(3, 6), jnp.array([0, 2, 1])
    variables = _init(model, x, style)
    carry, logits = _apply(model, variables, x, style, method="encode")
    assert logits.shape == (3, 6, 88) and logits.dtype == jnp.float32
    step_carry, step_logits = _step_all(model, variables, x, style)
    np.testing.assert_allclose(step_logits, logits, rtol=1e-5, atol=1e-5)
    for got, want in zip(jax.tree.leaves(step_carry), jax.tree.leaves(carry)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    if cell not in ("gru", "lstm"):  # the carry plumbing is shared; check one carry of each structure
        return
    # primer continuation: encoding in two pieces through the carry equals one pass
    first_carry, first = _apply(model, variables, x[:, :3], style, method="encode")
    _, rest = _apply(model, variables, x[:, 3:], style, method="encode", initial_carry=first_carry)
    np.testing.assert_allclose(jnp.concatenate([first, rest], axis=1), logits, rtol=1e-5, atol=1e-5)


def test_position_input_step_by_step_and_across_a_split_sequence():
    model = PianoRollLM(hidden=12, position_period=4)
    x = _rolls(2, 7)
    variables = _init(model, x)
    assert variables["params"]["rnn"]["layer_0"]["w_x"].shape == (88 + 4, 36)
    carry, logits = _apply(model, variables, x, method="encode")
    np.testing.assert_allclose(_stepped_at_positions(model, variables, x), logits, rtol=1e-5, atol=1e-5)
    # a continuation counts on from where its first part stopped
    first_carry, first = _apply(model, variables, x[:, :3], method="encode")
    _, rest = _apply(model, variables, x[:, 3:], method="encode", initial_carry=first_carry, position_offset=3)
    np.testing.assert_allclose(jnp.concatenate([first, rest], 1), logits, rtol=1e-5, atol=1e-5)
    # the place in the bar is read: the same frames one step later in the bar give other logits
    _, shifted = _apply(model, variables, x, method="encode", position_offset=1)
    assert not np.allclose(shifted, logits, atol=1e-4)
    _, wrapped = _apply(model, variables, x, method="encode", position_offset=4)  # a whole period on: the same
    np.testing.assert_allclose(wrapped, logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="position"):
        model.apply(variables, model.apply(variables, 2, method="initial_carry"), x[:, 0], method="step")


def test_place_in_the_bar_counts_from_bar_lines_step_by_step():
    """bar_lines: the place of input t is (t + phase) mod steps per bar (mod the period again); a row (0, 0) is not
    known and counts from the first step, as does a model without bar_lines, which ignores `bar`."""
    model = PianoRollLM(hidden=12, position_period=16, bar_lines=True)
    x = _rolls(3, 7)
    variables = _init(model, x)
    bar = jnp.array([[12, 16], [10, 12], [0, 0]])  # a quarter's pickup in 4/4; 3/4 two beats in; not known
    index = jnp.arange(7)[:, None]
    places = model.apply(variables, jnp.zeros((7, 3, 0)), index, bar, method="_with_position").argmax(-1).T
    np.testing.assert_array_equal(places, [[12, 13, 14, 15, 0, 1, 2], [10, 11, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5, 6]])
    _, logits = _apply(model, variables, x, method="encode", bar=bar)
    np.testing.assert_allclose(_stepped_at_positions(model, variables, x, bar=bar), logits, rtol=1e-5, atol=1e-5)
    _, plain = _apply(model, variables, x, method="encode")
    np.testing.assert_allclose(logits[2], plain[2], rtol=1e-5, atol=1e-5)  # (0, 0): from the first step
    assert not np.allclose(logits[0], plain[0], atol=1e-4)  # the bar is read
    _, shifted = _apply(model, variables, x, method="encode", bar=bar, position_offset=4)  # a pickup piece 4 on
    _, moved = _apply(model, variables, x, method="encode", bar=bar.at[0, 0].set(0))
    np.testing.assert_allclose(shifted[0], moved[0], rtol=1e-5, atol=1e-5)
    unaware = PianoRollLM(hidden=12, position_period=16)
    np.testing.assert_allclose(_apply(unaware, variables, x, bar=bar), plain, rtol=1e-5, atol=1e-5)


def test_steps_left_input_counts_down_in_buckets_step_by_step_and_defaults_to_far():
    model = PianoRollLM(hidden=12, end_buckets=3, end_bucket_steps=2)
    x, end = _rolls(2, 9), jnp.array([9, 4])
    variables = _init(model, x)
    assert variables["params"]["rnn"]["layer_0"]["w_x"].shape == (88 + 4, 36)
    # the one-hot itself: 1-2 steps left -> bucket 0, 3-4 -> 1, 5-6 -> 2, more (or past the end, or no end) -> 3
    index = jnp.arange(9)[:, None]
    columns = model.apply(variables, jnp.zeros((9, 2, 0)), index, end, method="_with_end")
    buckets = np.asarray(columns).argmax(-1).T
    np.testing.assert_array_equal(buckets, [[3, 3, 3, 2, 2, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(model.apply(variables, jnp.zeros((9, 2, 0)), index, None, method="_with_end")
                                  .argmax(-1), 3)
    carry, logits = _apply(model, variables, x, method="encode", end=end)
    np.testing.assert_allclose(_stepped_at_positions(model, variables, x, end=end), logits, rtol=1e-5, atol=1e-5)
    # the input is read; an end beyond the last bucket is the same as none
    assert not np.allclose(_apply(model, variables, x, end=end + 2), logits, atol=1e-4)
    np.testing.assert_allclose(_apply(model, variables, x, end=jnp.array([20, 20])), _apply(model, variables, x),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="position"):
        model.apply(variables, model.apply(variables, 2, method="initial_carry"), x[:, 0], end=end,
                    method="step")


def test_transposition_input_joins_every_step_and_defaults_to_the_keys_as_written():
    model = PianoRollLM(hidden=12, transpositions=2)
    x = _rolls(2, 5)
    variables = _init(model, x)
    assert variables["params"]["rnn"]["layer_0"]["w_x"].shape == (88 + 5, 36)
    written = _apply(model, variables, x)
    np.testing.assert_allclose(_apply(model, variables, x, transpose=jnp.zeros(2, jnp.int32)), written, atol=1e-6)
    moved = _apply(model, variables, x, transpose=jnp.array([2, -1]))
    assert not np.allclose(moved, written, atol=1e-4)
    carry, logits = _apply(model, variables, x, method="encode", transpose=jnp.array([2, -1]))
    step = jax.jit(lambda c, xt: model.apply(variables, c, xt, transpose=jnp.array([2, -1]), method="step"))
    state, stepped = model.apply(variables, 2, method="initial_carry"), []
    for t in range(x.shape[1]):
        state, out = step(state, x[:, t])
        stepped.append(out)
    np.testing.assert_allclose(jnp.stack(stepped, 1), logits, rtol=1e-5, atol=1e-5)


def test_onset_rolls_keep_their_frame_shape():
    model = PianoRollLM(features=176, hidden=8)
    x = _rolls(2, 5, frame=(2, 88))
    variables = _init(model, x)
    assert _apply(model, variables, x).shape == (2, 5, 2, 88)
    assert variables["params"]["rnn"]["layer_0"]["w_x"].shape == (176, 24)
    carry = model.apply(variables, 2, method="initial_carry")
    _, logits_t = _apply(model, variables, carry, x[:, 0], method="step")
    assert logits_t.shape == (2, 2, 88)


@pytest.mark.parametrize("cell", ["gru"])
def test_event_lm_shapes_and_step_equivalence(cell):
    model = EventLM(vocab_size=11, embed_dim=5, cell=cell, hidden=7, layers=2, n_styles=4, style_dim=3)
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, 11, (3, 4)), jnp.int32)
    style = jnp.array([3, 0, 2])
    variables = _init(model, tokens, style)
    logits = _apply(model, variables, tokens, style)
    assert logits.shape == (3, 4, 11)
    _, step_logits = _step_all(model, variables, tokens, style)
    np.testing.assert_allclose(step_logits, logits, rtol=1e-5, atol=1e-5)


def test_style_ids_and_one_hot_weights_give_identical_outputs_and_mixtures_average():
    model = EventLM(vocab_size=11, embed_dim=5, cell="gru", hidden=7, layers=2, n_styles=4, style_dim=3)
    tokens = jnp.asarray(np.random.default_rng(2).integers(0, 11, (3, 4)), jnp.int32)
    ids = jnp.array([3, 0, 2])
    variables = _init(model, tokens, ids)
    by_id = _apply(model, variables, tokens, ids)
    by_weights = _apply(model, variables, tokens, jax.nn.one_hot(ids, 4))
    np.testing.assert_array_equal(by_id, by_weights)
    table = variables["params"]["style_table"]
    mix = jnp.array([[0.5, 0.5, 0.0, 0.0]] * 3)
    emb = model.apply(variables, mix, 3, method="style_embedding")
    np.testing.assert_allclose(emb[0], (table[0] + table[1]) / 2, rtol=1e-6)
    assert not np.allclose(_apply(model, variables, tokens, mix), by_id)


def test_dropout_only_when_not_deterministic():
    model = PianoRollLM(cell="gru", dropout=0.5, **SMALL)
    x, style = _rolls(3, 6), jnp.array([0, 2, 1])
    variables = _init(PianoRollLM(cell="gru", **SMALL), x, style)
    plain = _apply(PianoRollLM(cell="gru", **SMALL), variables, x, style)
    np.testing.assert_array_equal(_apply(model, variables, x, style), plain)
    noisy_a = _apply(model, variables, x, style, deterministic=False, rngs={"dropout": jax.random.key(1)})
    noisy_b = _apply(model, variables, x, style, deterministic=False, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(noisy_a, plain) and not np.allclose(noisy_a, noisy_b)


def _reference_lstm(xs, p, hidden):
    h = c = np.zeros((xs.shape[1], hidden))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    out = []
    for x in xs:
        a = x @ p["w_x"] + p["b_x"] + h @ p["w_h"] + p["b_h"]
        i, f, g, o = (a[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out), c


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_lstm_and_rnn_cells_match_numpy_formulas(cell):
    stack = RecurrentStack(cell=cell, hidden=5, layers=1, input_size=3)
    xs = jnp.asarray(np.random.default_rng(3).normal(size=(7, 2, 3)), jnp.float32)
    variables = jax.jit(stack.init)(jax.random.key(4), xs)
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"]["layer_0"])
    carry, hs = _apply(stack, variables, xs)
    if cell == "lstm":
        want_hs, want_c = _reference_lstm(np.asarray(xs, np.float64), p, 5)
        np.testing.assert_allclose(carry[0][1], want_c, rtol=1e-5, atol=1e-6)
    else:
        h, outs = np.zeros((2, 5)), []
        for x in np.asarray(xs, np.float64):
            h = np.tanh(x @ p["w_x"] + p["b_x"] + h @ p["w_h"] + p["b_h"])
            outs.append(h)
        want_hs = np.stack(outs)
    np.testing.assert_allclose(hs, want_hs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])  # gru-cho gradients: float64 checks in test_ops_gru
def test_a_few_adam_steps_lower_the_loss(cell):
    model = PianoRollLM(cell=cell, **SMALL)
    x, style = _rolls(3, 7, seed=5), jnp.array([0, 1, 2])
    params = _init(model, x[:, :-1], style)["params"]
    tx = optax.adam(1e-2)

    def loss_fn(p):
        logits = model.apply({"params": p}, x[:, :-1], style)
        return optax.sigmoid_binary_cross_entropy(logits, x[:, 1:].astype(jnp.float32)).mean()

    @jax.jit
    def step(p, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(p)
        updates, opt_state = tx.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    opt_state, losses = tx.init(params), []
    for _ in range(15):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0]


def test_errors_name_the_problem():
    x = _rolls(2, 3)
    with pytest.raises(ValueError, match="unknown cell"):
        _init(PianoRollLM(cell="transformer"), x)
    with pytest.raises(ValueError, match="prod\\(frame\\)"):
        _init(PianoRollLM(features=88), _rolls(2, 3, frame=(80,)))
    with pytest.raises(ValueError, match="n_styles=0"):
        _init(PianoRollLM(hidden=4), x, jnp.array([0, 1]))
    styled = PianoRollLM(hidden=4, n_styles=3, style_dim=2)
    with pytest.raises(ValueError, match="pass style ids"):
        _init(styled, x)
    with pytest.raises(ValueError, match="style weights must be"):
        _init(styled, x, jnp.ones((2, 2)) / 2)
    with pytest.raises(ValueError, match="int tokens"):
        _init(EventLM(vocab_size=5), x[..., 0].astype(jnp.float32))
    with pytest.raises(ValueError, match="vocab_size >= 1"):
        _init(EventLM(), x[..., 0].astype(jnp.int32))
