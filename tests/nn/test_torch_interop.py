"""Weights interchange with torch.nn.GRU / LSTM / RNN / Linear: same outputs both directions (CPU torch)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from musejax.nn.cells import RecurrentStack
from musejax.lm.model import PianoRollLM
from musejax.nn.torch_interop import (dense_params_from_torch, dense_params_to_torch, rnn_params_from_torch,
                                          rnn_params_to_torch)

torch = pytest.importorskip("torch")

TORCH_MODULES = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}
STEPS, BATCH, INPUTS, HIDDEN, LAYERS = 11, 3, 7, 9, 2


def _inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(STEPS, BATCH, INPUTS)).astype(np.float32)
    h0 = rng.normal(size=(LAYERS, BATCH, HIDDEN)).astype(np.float32) * 0.5
    return xs, h0


def _run_torch(module, xs: np.ndarray, h0: np.ndarray, cell: str) -> np.ndarray:
    with torch.no_grad():
        state = torch.from_numpy(h0)
        if cell == "lstm":
            state = (state, torch.from_numpy(h0 * 0.3))
        out, _ = module(torch.from_numpy(xs), state)
    return out.numpy()


def _run_musejax(params, xs: np.ndarray, h0: np.ndarray, cell: str) -> np.ndarray:
    stack = RecurrentStack(cell=cell, hidden=HIDDEN, layers=LAYERS, input_size=INPUTS, impl="xla")
    carry = tuple((jnp.asarray(h), jnp.asarray(h * 0.3)) if cell == "lstm" else jnp.asarray(h) for h in h0)
    _, hs = jax.jit(stack.apply)({"params": params}, jnp.asarray(xs), None, carry)
    return np.asarray(hs)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_torch_weights_loaded_into_musejax_give_the_same_outputs(cell):
    torch.manual_seed(0)
    module = TORCH_MODULES[cell](INPUTS, HIDDEN, num_layers=LAYERS)
    params = rnn_params_from_torch(module.state_dict())
    xs, h0 = _inputs()
    np.testing.assert_allclose(_run_musejax(params, xs, h0, cell), _run_torch(module, xs, h0, cell),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_musejax_weights_exported_to_torch_give_the_same_outputs(cell):
    stack = RecurrentStack(cell=cell, hidden=HIDDEN, layers=LAYERS, input_size=INPUTS)
    xs, h0 = _inputs(1)
    params = jax.jit(stack.init)(jax.random.key(3), jnp.asarray(xs))["params"]
    # random biases too, so that b_ih and b_hh being kept apart matters
    rng = np.random.default_rng(4)
    params = jax.tree.map(lambda a: np.asarray(a) + 0.1 * rng.normal(size=a.shape).astype(np.float32), params)
    module = TORCH_MODULES[cell](INPUTS, HIDDEN, num_layers=LAYERS)
    state = rnn_params_to_torch(params)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    np.testing.assert_allclose(_run_torch(module, xs, h0, cell), _run_musejax(params, xs, h0, cell),
                               rtol=1e-5, atol=1e-5)
    roundtrip = rnn_params_from_torch(module.state_dict())
    for got, want in zip(jax.tree.leaves(roundtrip), jax.tree.leaves(params)):
        np.testing.assert_array_equal(got, np.asarray(want))


def test_piano_roll_lm_equals_torch_gru_plus_linear():
    torch.manual_seed(1)
    gru, linear = torch.nn.GRU(88, HIDDEN, batch_first=True), torch.nn.Linear(HIDDEN, 88)
    params = {"rnn": rnn_params_from_torch(gru.state_dict()),
              "readout": dense_params_from_torch(linear.weight, linear.bias)}
    rolls = (np.random.default_rng(2).random((BATCH, STEPS, 88)) < 0.2).astype(np.float32)
    logits = jax.jit(PianoRollLM(hidden=HIDDEN).apply)({"params": params}, jnp.asarray(rolls))
    with torch.no_grad():
        want = linear(gru(torch.from_numpy(rolls))[0]).numpy()
    np.testing.assert_allclose(np.asarray(logits), want, rtol=1e-5, atol=1e-5)
    exported = dense_params_to_torch(params["readout"])
    np.testing.assert_array_equal(exported["weight"], linear.weight.detach().numpy())


def test_prefixed_keys_and_unsupported_modules():
    module = torch.nn.GRU(4, 5)
    prefixed = {f"encoder.gru.{k}": v for k, v in module.state_dict().items()}
    prefixed["encoder.other.weight"] = torch.zeros(2)
    params = rnn_params_from_torch(prefixed, prefix="encoder.gru.")
    assert set(params) == {"layer_0"} and params["layer_0"]["w_x"].shape == (4, 15)
    with pytest.raises(ValueError, match="bidirectional"):
        rnn_params_from_torch(torch.nn.GRU(4, 5, bidirectional=True).state_dict())
    with pytest.raises(ValueError, match="bias=False"):
        rnn_params_from_torch(torch.nn.GRU(4, 5, bias=False).state_dict())
    with pytest.raises(ValueError, match="no weight_ih_l0"):
        rnn_params_from_torch({"fc.weight": np.zeros((2, 2))})
