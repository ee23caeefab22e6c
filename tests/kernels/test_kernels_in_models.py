"""impl="triton" inside the real models, train loop and sampler, on the CPU through Triton's interpreter.

With MUSEJAX_TRITON_INTERPRET=1, impl="triton" off the GPU runs the same kernels and the same jax binding
(custom_vjp, jit) as on a GPU, with jax.pure_callback in place of jax_triton.triton_call. So CI checks the wiring
from the config's `model.impl` down to the kernels; the GPU tests check jax_triton itself.
"""
from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch  # noqa: F401 - Triton's interpreter needs torch CPU tensors

from musejax.lm.model import PianoRollLM
from musejax.ops import gru as gru_ops
from musejax.lm.sample import Run, sample_arrays
from musejax.lm.task import train
from musejax_kernels.gru import ops as kernel_ops
from lm_fixtures import event_run, pianoroll_run, records, tiny_config, tiny_data


@pytest.fixture
def kernel_launches(monkeypatch):
    """Interpret impl="triton"; record the name of every kernel launched (each launch still runs)."""
    monkeypatch.setenv(gru_ops.INTERPRET_ENV, "1")
    launched: list[str] = []
    real_launch = kernel_ops.launch

    def launch(module, name, *args, **kwargs):
        launched.append(name)
        return real_launch(module, name, *args, **kwargs)

    monkeypatch.setattr(kernel_ops, "launch", launch)
    return launched


def test_impl_triton_off_the_gpu_asks_for_the_interpreter_opt_in(monkeypatch):
    monkeypatch.delenv(gru_ops.INTERPRET_ENV, raising=False)
    with pytest.raises(RuntimeError, match=f"needs an NVIDIA GPU.*{gru_ops.INTERPRET_ENV}=1"):
        gru_ops.resolved_impl("triton")
    monkeypatch.setenv(gru_ops.INTERPRET_ENV, "0")
    with pytest.raises(RuntimeError, match="needs an NVIDIA GPU"):
        gru_ops.resolved_impl("triton")
    monkeypatch.setenv(gru_ops.INTERPRET_ENV, "1")
    gru_ops._resolve.cache_clear()
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "torch", None)  # as if torch were not installed
        with pytest.raises(RuntimeError, match="triton and torch for Triton's interpreter"):
            gru_ops.resolved_impl("triton")
    assert gru_ops.resolved_impl("triton") == "triton"
    assert gru_ops.resolved_impl("auto") == "xla"  # auto never picks the interpreter


@pytest.mark.parametrize("cell", ["gru", "gru-cho"])  # the default formulation and the seed's variant
def test_model_gradients_with_impl_triton_match_xla(kernel_launches, cell):
    """Every parameter's gradient of a 2-layer LM (H = 24: not a power of two), from a non-zero initial state."""
    x = jnp.asarray(np.random.default_rng(5).random((3, 9, 88)) < 0.1, jnp.float32)
    cotangent = jax.random.normal(jax.random.key(6), (3, 9, 88))
    model = PianoRollLM(features=88, hidden=24, layers=2, cell=cell, impl="xla")
    params = model.init(jax.random.key(7), x)["params"]
    zero = model.apply({"params": params}, 3, method="initial_carry")
    carry = jax.tree.map(lambda c: 0.3 * jax.random.normal(jax.random.key(8), c.shape), zero)

    def grads(impl):
        def loss(p, c):
            _, logits = model.clone(impl=impl).apply({"params": p}, x, initial_carry=c, method="encode")
            return jnp.sum(logits * cotangent)

        return jax.jit(jax.grad(loss, argnums=(0, 1)))(params, carry)

    want = grads("xla")
    got = grads("triton")
    assert kernel_launches.count("gru_backward_kernel") == 2  # one reverse-time launch per layer
    for (path, g), w in zip(jax.tree_util.tree_leaves_with_path(got), jax.tree.leaves(want)):
        err = float(jnp.max(jnp.abs(g - w)) / jnp.max(jnp.abs(w)))
        assert err <= 1e-5, f"{jax.tree_util.keystr(path)}: relative error {err:.3g}"


def _metrics(tmp_path, cell: str, impl: str) -> list[dict]:
    config = tiny_config(f"--config.model.cell={cell}", f"--config.model.impl={impl}", "--config.train.steps=10",
                         "--config.train.eval_every_steps=10")
    train(config, tmp_path / impl, data=tiny_data(config), progress=False)
    return records(tmp_path / impl)


# the default formulation; the seed's variant under slow (its kernels' gradients are checked above, by default)
@pytest.mark.parametrize("cell", ["gru", pytest.param("gru-cho", marks=pytest.mark.slow)])
def test_train_loop_with_impl_triton_matches_xla(tmp_path, kernel_launches, cell):
    xla = _metrics(tmp_path, cell, "xla")
    assert kernel_launches == []
    triton = _metrics(tmp_path, cell, "triton")
    # training steps (forward with saved gates + backward through time) and forward-only evaluation
    assert {"gru_forward_kernel", "gru_backward_kernel"} <= set(kernel_launches)
    assert [r.keys() for r in triton] == [r.keys() for r in xla]
    for got, want in zip(triton, xla):
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-5), (key, got, want)
            else:
                assert got[key] == value, (key, got, want)


@pytest.mark.parametrize("make_run, options", [
    (event_run, {"temperature": 0.0}),
    (pianoroll_run, {"threshold": 0.5}),
], ids=["events-greedy", "pianoroll-threshold"])
def test_sampling_with_impl_triton_matches_xla(make_run, options, kernel_launches):
    run = make_run()
    expected = sample_arrays(run, 2, 12, seed=4, **options)
    assert kernel_launches == []
    triton_run = Run(model=run.model.clone(impl="triton"), params=run.params, encoding=run.encoding,
                     styles=run.styles, loss_kind=run.loss_kind)
    np.testing.assert_array_equal(sample_arrays(triton_run, 2, 12, seed=4, **options), expected)
    assert kernel_launches and set(kernel_launches) == {"gru_forward_kernel"}  # the fused cell is a T=1 launch
