"""musejax.ops.gru: custom-VJP scan vs naive references (float64), variants, cell, impl dispatch, validation."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from musejax.ops import gru


def _random_inputs(seed: int, steps: int, batch: int, hidden: int, dtype=jnp.float32):
    rng = np.random.default_rng(seed)
    gx = rng.normal(size=(steps, batch, 3 * hidden))
    h0 = rng.normal(size=(batch, hidden)) * 0.5
    w_h = rng.normal(size=(hidden, 3 * hidden)) / np.sqrt(hidden)
    b_h = rng.normal(size=(3 * hidden,)) * 0.5
    return tuple(jnp.asarray(a, dtype) for a in (gx, h0, w_h, b_h))


def _naive_gru(gx, h0, w_h, b_h, variant):
    """Python loop over steps, written from the formulas (torch.nn.GRU docs / Cho et al. 2014)."""
    n_hidden = h0.shape[-1]
    w_hr, w_hz, w_hn = w_h[:, :n_hidden], w_h[:, n_hidden:2 * n_hidden], w_h[:, 2 * n_hidden:]
    b_hr, b_hz, b_hn = b_h[:n_hidden], b_h[n_hidden:2 * n_hidden], b_h[2 * n_hidden:]
    h, outputs = h0, []
    for t in range(gx.shape[0]):
        x_r, x_z, x_n = gx[t, :, :n_hidden], gx[t, :, n_hidden:2 * n_hidden], gx[t, :, 2 * n_hidden:]
        r = 1 / (1 + jnp.exp(-(x_r + h @ w_hr + b_hr)))
        z = 1 / (1 + jnp.exp(-(x_z + h @ w_hz + b_hz)))
        if variant == "cudnn":
            n = jnp.tanh(x_n + r * (h @ w_hn + b_hn))
        else:
            n = jnp.tanh(x_n + (r * h) @ w_hn + b_hn)
        h = (1 - z) * n + z * h
        outputs.append(h)
    return jnp.stack(outputs)


@pytest.mark.parametrize("variant", ["cudnn", "cho"])
@pytest.mark.parametrize("steps,batch,hidden", [(1, 1, 1), (6, 3, 17)])
def test_forward_and_gradients_match_naive_loop_in_float64(variant, steps, batch, hidden):
    with jax.enable_x64(True):
        gx, h0, w_h, b_h = _random_inputs(steps * 100 + hidden, steps, batch, hidden, jnp.float64)
        cotangent = jnp.asarray(np.random.default_rng(7).normal(size=(steps, batch, hidden)), jnp.float64)

        def fast(*args):
            return jnp.sum(gru.gru_sequence(*args, variant=variant, impl="xla") * cotangent)

        def naive(*args):
            return jnp.sum(_naive_gru(*args, variant) * cotangent)

        np.testing.assert_allclose(gru.gru_sequence(gx, h0, w_h, b_h, variant=variant, impl="xla"),
                                   jax.jit(_naive_gru, static_argnums=4)(gx, h0, w_h, b_h, variant),
                                   rtol=1e-12, atol=1e-12)
        fast_grads = jax.jit(jax.grad(fast, argnums=(0, 1, 2, 3)))(gx, h0, w_h, b_h)
        naive_grads = jax.jit(jax.grad(naive, argnums=(0, 1, 2, 3)))(gx, h0, w_h, b_h)
        for name, got, want in zip(("gx", "h0", "w_h", "b_h"), fast_grads, naive_grads):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=f"d/d{name}")


@pytest.mark.parametrize("variant", ["cudnn", "cho"])
def test_custom_vjp_passes_numerical_gradient_check(variant):
    with jax.enable_x64(True):
        args = _random_inputs(3, 5, 2, 4, jnp.float64)
        check_grads(lambda *a: gru.gru_sequence(*a, variant=variant, impl="xla"), args, order=1, modes=["rev"],
                    atol=1e-6, rtol=1e-6)


def test_cho_variant_matches_hand_written_numpy_step():
    gx, h0, w_h, b_h = (np.asarray(a, np.float64) for a in _random_inputs(11, 1, 4, 6))
    n_hidden = 6
    r = 1 / (1 + np.exp(-(gx[0, :, :6] + h0 @ w_h[:, :6] + b_h[:6])))
    z = 1 / (1 + np.exp(-(gx[0, :, 6:12] + h0 @ w_h[:, 6:12] + b_h[6:12])))
    n = np.tanh(gx[0, :, 12:] + (r * h0) @ w_h[:, 2 * n_hidden:] + b_h[12:])
    want = (1 - z) * n + z * h0
    got = gru.gru_sequence(*(jnp.asarray(a, jnp.float32) for a in (gx, h0, w_h, b_h)), variant="cho")
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
    cudnn = gru.gru_sequence(*(jnp.asarray(a, jnp.float32) for a in (gx, h0, w_h, b_h)), variant="cudnn")
    assert not np.allclose(cudnn, got, atol=1e-4), "the two variants must differ when b_hn != 0"


@pytest.mark.parametrize("variant", ["cudnn", "cho"])
def test_cell_equals_one_sequence_step(variant):
    gx, h0, w_h, b_h = _random_inputs(5, 9, 3, 8)
    hs = gru.gru_sequence(gx, h0, w_h, b_h, variant=variant)
    cell = jax.jit(lambda g, h: gru.gru_cell(g, h, w_h, b_h, variant=variant))
    h = h0
    for t in range(gx.shape[0]):
        h = cell(gx[t], h)
        np.testing.assert_allclose(h, hs[t], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gru.gru_sequence_reference(gx, h0, w_h, b_h, variant=variant), hs, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("variant", ["cudnn", "cho"])
def test_per_gate_entry_point_matches_and_returns_per_gate_cotangents(variant):
    gx, h0, w_h, b_h = _random_inputs(8, 5, 2, 6)
    gates = tuple(jnp.split(gx, 3, axis=-1))
    cotangent = jnp.asarray(np.random.default_rng(9).normal(size=(5, 2, 6)), jnp.float32)

    def whole(gx):
        return jnp.sum(gru.gru_sequence(gx, h0, w_h, b_h, variant=variant) * cotangent)

    def split(gates):
        return jnp.sum(gru.gru_sequence_gates(gates, h0, w_h, b_h, variant=variant) * cotangent)

    np.testing.assert_allclose(jax.jit(split)(gates), jax.jit(whole)(gx), rtol=1e-6)
    d_gates = jax.jit(jax.grad(split))(gates)
    np.testing.assert_allclose(jnp.concatenate(d_gates, axis=-1), jax.jit(jax.grad(whole))(gx), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="3 gate arrays of one shape"):
        gru.gru_sequence_gates(gates[:2], h0, w_h, b_h)


def test_works_under_jit_and_vmap():
    gx, h0, w_h, b_h = _random_inputs(6, 4, 2, 3)
    direct = gru.gru_sequence(gx, h0, w_h, b_h)
    jitted = jax.jit(lambda *a: gru.gru_sequence(*a))(gx, h0, w_h, b_h)
    np.testing.assert_allclose(jitted, direct, rtol=1e-6, atol=1e-6)
    stacked = jax.vmap(lambda g: jnp.sum(jax.grad(lambda w: jnp.sum(gru.gru_sequence(g, h0, w, b_h)))(w_h)))(
        jnp.stack([gx, 2 * gx]))
    assert stacked.shape == (2,) and np.all(np.isfinite(stacked))


def test_impl_dispatch_on_cpu(monkeypatch):
    monkeypatch.delenv(gru.INTERPRET_ENV, raising=False)  # the interpreter opt-in: tests/kernels/test_kernels_in_models.py
    assert gru.resolved_impl("xla") == "xla"
    if jax.default_backend() != "gpu":
        assert gru.resolved_impl("auto") == "xla"
        gx, h0, w_h, b_h = _random_inputs(0, 2, 1, 2)
        with pytest.raises(RuntimeError, match="impl='triton' needs an NVIDIA GPU"):
            gru.gru_sequence(gx, h0, w_h, b_h, impl="triton")
    with pytest.raises(ValueError, match="impl must be one of"):
        gru.resolved_impl("cuda")


@pytest.mark.parametrize("bad,match", [
    (dict(gx=(4, 2, 10)), "gx must be"),
    (dict(h0=(3, 4)), "hidden state must be"),
    (dict(w_h=(4, 4)), "w_h must be"),
    (dict(b_h=(4,)), "b_h must be"),
])
def test_shape_validation_names_the_argument(bad, match):
    shapes = dict(gx=(4, 2, 12), h0=(2, 4), w_h=(4, 12), b_h=(12,))
    shapes.update(bad)
    args = [jnp.zeros(shapes[k]) for k in ("gx", "h0", "w_h", "b_h")]
    with pytest.raises(ValueError, match=match):
        gru.gru_sequence(*args)
    with pytest.raises(ValueError, match="variant must be one of"):
        gru.gru_sequence(*[jnp.zeros(s) for s in (dict(gx=(4, 2, 12), h0=(2, 4), w_h=(4, 12), b_h=(12,))).values()],
                         variant="lstm")
