"""TrainState, the optax optimizer and sharded initialisation.

Initialisation follows DESIGN: `jax.eval_shape(init)` gives the abstract state, shardings are attached
(replicated: data parallelism only), then `jit(init, out_shardings=...)` materialises it. The same abstract
state (with shardings) is the target Orbax restores into.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from musejax.config import OptimConfig
from musejax.train.mesh import replicated

# apply_fn(params, batch, *, train, rng) -> logits (B, T, ...)
ApplyFn = Callable[..., jax.Array]


class TrainState(struct.PyTreeNode):
    """Everything a step changes (step, params, optimizer state) plus static model/optimizer functions."""

    step: jax.Array
    params: Any
    opt_state: Any
    apply_fn: ApplyFn = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)

    def apply_gradients(self, grads: Any) -> "TrainState":
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        return self.replace(step=self.step + 1, params=params, opt_state=opt_state)


def learning_rate_schedule(optim: OptimConfig, total_steps: int) -> optax.Schedule:
    """Linear warm-up to the peak, then cosine / linear decay to `end_learning_rate_factor * peak`, or constant."""
    peak = optim.learning_rate
    warmup = max(0, min(optim.warmup_steps, total_steps))
    decay_steps = max(1, total_steps - warmup)
    end = peak * optim.end_learning_rate_factor
    if optim.schedule == "cosine":
        after = optax.cosine_decay_schedule(peak, decay_steps, alpha=optim.end_learning_rate_factor)
    elif optim.schedule == "linear":
        after = optax.linear_schedule(peak, end, decay_steps)
    elif optim.schedule == "constant":
        after = optax.constant_schedule(peak)
    else:
        raise ValueError(f"config.optim.schedule must be cosine, linear or constant, got {optim.schedule!r}")
    if warmup == 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), after], [warmup])


@functools.lru_cache(maxsize=16)
def make_optimizer(optim: OptimConfig, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Global-norm clipping followed by Adam or AdamW on the warm-up + decay schedule.

    Cached per (config, steps): the optimizer is static in the TrainState, so equal configs must give the
    same object for jit caches to be shared between runs in one process.
    """
    schedule = learning_rate_schedule(optim, total_steps)
    if optim.optimizer == "adam":
        core = optax.adam(schedule, b1=optim.b1, b2=optim.b2)
    elif optim.optimizer == "adamw":
        core = optax.adamw(schedule, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay)
    else:
        raise ValueError(f"config.optim.optimizer must be adam or adamw, got {optim.optimizer!r}")
    if optim.grad_clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(optim.grad_clip_norm), core), schedule
    return core, schedule


def _init_state(key: jax.Array, init_params: Callable[[jax.Array], Any], apply_fn: ApplyFn,
                tx: optax.GradientTransformation) -> TrainState:
    params = init_params(key)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), apply_fn=apply_fn, tx=tx)


def abstract_train_state(init_params: Callable[[jax.Array], Any], apply_fn: ApplyFn, tx: optax.GradientTransformation,
                         mesh: Mesh) -> TrainState:
    """The abstract state (`jax.ShapeDtypeStruct`s with replicated shardings) via `jax.eval_shape`: what
    `create_train_state` materialises and what checkpoints are restored into."""
    init = functools.partial(_init_state, init_params=init_params, apply_fn=apply_fn, tx=tx)
    abstract = jax.eval_shape(init, jax.random.key(0))
    sharding = replicated(mesh)
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)


def create_train_state(init_params: Callable[[jax.Array], Any], apply_fn: ApplyFn, tx: optax.GradientTransformation,
                       rng: jax.Array, mesh: Mesh) -> tuple[TrainState, TrainState]:
    """(state, abstract_state): eval_shape -> shardings -> jit(init, out_shardings), params from `init_params(rng)`."""
    abstract = abstract_train_state(init_params, apply_fn, tx, mesh)
    shardings = jax.tree.map(lambda a: a.sharding, abstract)
    init = jax.jit(_init_state, static_argnames=("init_params", "apply_fn", "tx"), out_shardings=shardings)
    state = init(rng, init_params=init_params, apply_fn=apply_fn, tx=tx)
    return state, abstract
