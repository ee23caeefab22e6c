"""Masked language-model losses and the jit-compiled train and eval steps.

Losses are returned as sums and counts so they can be added over batches, devices and log intervals
and divided once: the reported NLL is nats per (unpadded) time step, the way the literature reports it —
piano-roll: the Bernoulli NLL summed over the keys of a step; events: the softmax NLL of the step's event.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from musejax.train.state import TrainState

Batch = dict[str, jax.Array]
Metrics = dict[str, jax.Array]

LOSS_KINDS = ("bernoulli", "categorical")


def masked_nll_sums(logits: jax.Array, targets: jax.Array, mask: jax.Array, kind: str) -> tuple[jax.Array, jax.Array]:
    """(sum of per-step NLL over unpadded steps, number of unpadded steps).

    bernoulli: logits and targets (B, T, ...features), NLL summed over the features of a step;
    categorical: logits (B, T, V), integer targets (B, T). Padded steps (mask 0) contribute exactly nothing.
    A model whose steps have a term beyond their keys' (a counting NADE's -log p(note count)) gives
    {"logits": ..., "step_nll": (B, T)}; the term is added to each step.
    """
    extra = 0.0
    if isinstance(logits, dict):
        logits, extra = logits["logits"], logits["step_nll"]
    if kind == "bernoulli":
        per_element = optax.sigmoid_binary_cross_entropy(logits, targets.astype(logits.dtype))
        per_step = per_element.reshape(*per_element.shape[:2], -1).sum(axis=-1)
    elif kind == "categorical":
        per_step = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    else:
        raise ValueError(f"loss kind must be one of {LOSS_KINDS}, got {kind!r}")
    per_step = per_step + extra
    valid = mask > 0
    nll_sum = jnp.where(valid, per_step, 0.0).sum()
    return nll_sum, valid.sum().astype(jnp.float32)


def row_nll_sums(logits: Any, targets: jax.Array, mask: jax.Array, kind: str) -> tuple[jax.Array, jax.Array]:
    """`masked_nll_sums` of each row of a batch: (B,) NLL sums and (B,) counts of unpadded steps."""
    def one_row(row_logits: Any, row_targets: jax.Array, row_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        return masked_nll_sums(jax.tree.map(lambda a: a[None], row_logits), row_targets[None], row_mask[None], kind)

    return jax.vmap(one_row)(logits, targets, mask)


def _batch_nll(state: TrainState, params: Any, batch: Batch, *, train: bool, rng: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    logits = state.apply_fn(params, batch, train=train, rng=rng)
    return masked_nll_sums(logits, batch["targets"], batch["mask"], state.apply_fn.loss_kind)


def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, Metrics]:
    """One optimizer step on the mean NLL per unpadded step; dropout noise from fold_in(rng, state.step).

    Metrics are sums (nll_sum, steps, grad_norm_sum, batches) to be accumulated and divided once.
    """
    step_rng = jax.random.fold_in(rng, state.step)

    def loss_fn(params):
        nll_sum, count = _batch_nll(state, params, batch, train=True, rng=step_rng)
        return nll_sum / jnp.maximum(count, 1.0), (nll_sum, count)

    (_, (nll_sum, count)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grad_norm = optax.tree.norm(grads)
    new_state = state.apply_gradients(grads)
    metrics = {"nll_sum": nll_sum, "steps": count, "grad_norm_sum": grad_norm, "batches": jnp.ones((), jnp.float32)}
    return new_state, metrics


def eval_step(state: TrainState, batch: Batch) -> Metrics:
    """NLL sums of a batch without dropout: {"nll_sum", "steps"}."""
    nll_sum, count = _batch_nll(state, state.params, batch, train=False, rng=None)
    return {"nll_sum": nll_sum, "steps": count}


def zero_train_metrics() -> Metrics:
    return {key: jnp.zeros((), jnp.float32) for key in ("nll_sum", "steps", "grad_norm_sum", "batches")}


def summarize(sums: dict[str, Any]) -> dict[str, float]:
    """Host-side: sums fetched from the device -> {"nll": per step, "grad_norm": mean per batch}."""
    out = {"nll": float(sums["nll_sum"]) / max(float(sums["steps"]), 1.0)}
    if "grad_norm_sum" in sums:
        out["grad_norm"] = float(sums["grad_norm_sum"]) / max(float(sums["batches"]), 1.0)
    return out
