"""The style classifier's model build, class-weighted loss and the pure jit-compiled train step."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax

from musejax.style.config import StyleModelConfig
from musejax.style.model import StyleClassifier


def build_classifier(model: StyleModelConfig, n_styles: int, onsets: bool = False) -> Any:
    return StyleClassifier(n_styles=n_styles, features=176 if onsets else 88, kind=model.kind,
                           channels=tuple(model.channels), kernel_size=model.kernel_size, hidden=model.hidden,
                           embed_dim=model.embed_dim, dropout=model.dropout)



def weighted_cross_entropy(logits: jax.Array, labels: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(sum of weight * softmax cross-entropy, sum of weights); the loss is their ratio."""
    per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(weights * per_example), jnp.sum(weights)


@dataclasses.dataclass(frozen=True)
class ApplyStyle:
    """apply_fn(params, batch, *, train, rng) -> window logits; compares by value (jit caches are shared)."""

    model: Any

    def __call__(self, params: Any, batch: dict[str, jax.Array], *, train: bool, rng: jax.Array | None) -> jax.Array:
        rngs = {"dropout": rng} if train and rng is not None else None
        return self.model.apply({"params": params}, batch["x"], batch["mask"], deterministic=not train, rngs=rngs)


@dataclasses.dataclass(frozen=True)
class InitStyle:
    model: Any
    window_steps: int
    frame: tuple[int, ...] = (88,)

    def __call__(self, key: jax.Array) -> Any:
        x = jnp.zeros((1, self.window_steps, *self.frame), jnp.float32)
        return self.model.init({"params": key}, x, jnp.ones((1, self.window_steps), bool))["params"]


def train_step(state: Any, batch: dict[str, jax.Array], rng: jax.Array) -> tuple[Any, dict[str, jax.Array]]:
    """One AdamW step on the weighted mean cross-entropy; metrics are sums (loss, weight, correct, count)."""
    step_rng = jax.random.fold_in(rng, state.step)

    def loss_fn(params):
        logits = state.apply_fn(params, batch, train=True, rng=step_rng)
        loss_sum, weight_sum = weighted_cross_entropy(logits, batch["label"], batch["weight"])
        return loss_sum / jnp.maximum(weight_sum, 1e-9), (loss_sum, weight_sum, logits)

    (_, (loss_sum, weight_sum, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    correct = jnp.sum(jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
    metrics = {"loss_sum": loss_sum, "weight_sum": weight_sum, "correct": correct,
               "count": jnp.float32(logits.shape[0]), "grad_norm_sum": optax.tree.norm(grads), "batches": jnp.float32(1)}
    return state.apply_gradients(grads), metrics


def zero_sums() -> dict[str, jax.Array]:
    return {k: jnp.zeros((), jnp.float32) for k in ("loss_sum", "weight_sum", "correct", "count", "grad_norm_sum",
                                                      "batches")}
