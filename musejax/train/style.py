"""Style-classifier training: config dataclasses, the class-weighted loss and jit-compiled step, the loop with
Orbax checkpoints (best by valid macro-F1, exact resume), calibration and the test report.

A run directory holds config.json, checkpoints/ (items state, config, meta), metrics.jsonl + TensorBoard events,
and after training calibration.json / .npz (out-of-style rule), report.json, report.md and confusion.png.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from musejax.config import CkptConfig, ConfigError, OptimConfig, apply_overrides, load_config, saved_config_dict
from musejax.config import to_dataclass
from musejax.style.embeddings import split_outputs
from musejax.train.style_data import BALANCE_MODES, BalancedWindows, StyleData, StyleSplit, frame_shape
from musejax.train.style_data import load_style_data
from musejax.train.style_report import final_report


@dataclasses.dataclass(frozen=True)
class StyleDataConfig:
    corpus: str  # bundled corpus names ("," separated, "all") or a folder
    labels: str  # folder corpus: "folder" or a CSV/JSON label file ("" = none)
    merge_styles: str  # "old=new,..." relabelling ("" = none)
    steps_per_quarter: int
    onsets: bool  # piano-roll with an onset channel
    window_steps: int  # window length in steps; pieces are classified by averaging windows
    transpose_semitones: int  # random transposition of training windows (+-)
    max_pieces_per_style: int  # 0 = all training pieces
    valid_fraction: float
    test_fraction: float
    cache_dir: str
    workers: int  # parse processes for an uncached corpus (0 = all cores)


@dataclasses.dataclass(frozen=True)
class StyleModelConfig:
    kind: str  # "conv" | "gru"
    channels: tuple[int, ...]
    kernel_size: int
    hidden: int
    embed_dim: int
    dropout: float


@dataclasses.dataclass(frozen=True)
class StyleTrainConfig:
    steps: int
    batch_size: int
    seed: int
    balance: str  # "sampling" | "loss" | "none"
    log_every_steps: int
    eval_every_steps: int
    eval_batch_size: int


@dataclasses.dataclass(frozen=True)
class StyleClassifyConfig:
    coverage: float  # share of valid pieces the out-of-style threshold accepts


@dataclasses.dataclass(frozen=True)
class StyleConfig:
    name: str
    data: StyleDataConfig
    model: StyleModelConfig
    optim: OptimConfig
    train: StyleTrainConfig
    classify: StyleClassifyConfig
    ckpt: CkptConfig

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_style_config(config: StyleConfig) -> StyleConfig:
    """Validate what the loop relies on (errors name the key)."""
    from musejax.models.style import ENCODER_KINDS

    problems = []
    t, m = config.train, config.model
    for key in ("steps", "batch_size", "log_every_steps", "eval_every_steps", "eval_batch_size"):
        if getattr(t, key) < 1:
            problems.append(f"config.train.{key} must be >= 1, got {getattr(t, key)}")
    if t.balance not in BALANCE_MODES:
        problems.append(f"config.train.balance must be one of {', '.join(BALANCE_MODES)}, got {t.balance!r}")
    if m.kind not in ENCODER_KINDS:
        problems.append(f"config.model.kind must be one of {', '.join(ENCODER_KINDS)}, got {m.kind!r}")
    if config.data.window_steps < 2 ** len(m.channels):
        problems.append(f"config.data.window_steps={config.data.window_steps} is shorter than the "
                        f"{2 ** len(m.channels)} steps the conv blocks pool over")
    if not 0.0 < config.classify.coverage <= 1.0:
        problems.append(f"config.classify.coverage must be in (0, 1], got {config.classify.coverage}")
    if problems:
        raise ConfigError("; ".join(problems))
    return config


def resolve_style_config(spec: str = "style", overrides: Iterable[str] = ()) -> StyleConfig:
    """`musejax/configs/<spec>` + `--config.a.b=v` overrides -> a validated StyleConfig."""
    return check_style_config(to_dataclass(apply_overrides(load_config(spec), overrides), StyleConfig))


def saved_style_config(run_dir: str | Path, overrides: Iterable[str] = ()) -> StyleConfig:
    """A classifier run's config.json (+ overrides) as a StyleConfig."""
    return check_style_config(to_dataclass(saved_config_dict(run_dir, "style", "style classifier", overrides),
                                           StyleConfig))


def build_classifier(model: StyleModelConfig, n_styles: int, onsets: bool = False) -> Any:
    from musejax.models.style import StyleClassifier

    return StyleClassifier(n_styles=n_styles, features=176 if onsets else 88, kind=model.kind,
                           channels=tuple(model.channels), kernel_size=model.kernel_size, hidden=model.hidden,
                           embed_dim=model.embed_dim, dropout=model.dropout)


# ----------------------------------------------------------------------------------------- loss and steps


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


def _accumulate(carry: tuple[Any, dict[str, jax.Array]], batch: dict[str, jax.Array], rng: jax.Array):
    state, sums = carry
    state, metrics = train_step(state, batch, rng)
    return state, jax.tree.map(jnp.add, sums, metrics)


def _zero_sums() -> dict[str, jax.Array]:
    return {k: jnp.zeros((), jnp.float32) for k in ("loss_sum", "weight_sum", "correct", "count", "grad_norm_sum",
                                                      "batches")}


# ---------------------------------------------------------------------------------------------- the loop

BEST_METRIC = "valid_macro_f1"


def _manager(run_dir: Path, ckpt: CkptConfig, read_only: bool = False) -> ocp.CheckpointManager:
    policy = ocp.checkpoint_managers.AnyPreservationPolicy([
        ocp.checkpoint_managers.LatestN(n=ckpt.keep_latest),
        ocp.checkpoint_managers.BestN(get_metric_fn=lambda m: m[BEST_METRIC], n=ckpt.keep_best,
                                      keep_checkpoints_without_metrics=False)])
    options = ocp.CheckpointManagerOptions(preservation_policy=policy, best_fn=lambda m: m[BEST_METRIC],
                                           best_mode="max", create=not read_only, read_only=read_only)
    return ocp.CheckpointManager(run_dir.absolute() / "checkpoints", options=options,
                                 item_names=("state", "config", "meta"))


def _meta(config: StyleConfig, data: StyleData) -> dict[str, Any]:
    return {"styles": data.styles, "steps_per_quarter": config.data.steps_per_quarter, "onsets": config.data.onsets,
            "window_steps": config.data.window_steps, "data": data.description,
            "train_pieces_per_style": data.train.counts(len(data.styles)).tolist(),
            "n_unlabelled": data.n_unlabelled}


@dataclasses.dataclass
class StyleTrainResult:
    run_dir: Path
    step: int
    report: dict[str, Any] | None  # test report (None when stopped early)


def train_classifier(config: StyleConfig, run_dir: str | Path, *, progress: bool = True,
                     data: StyleData | None = None, stop_at_step: int | None = None) -> StyleTrainResult:
    """Train (or exactly resume) a classifier run, then calibrate on valid and report on test."""
    from tqdm.auto import tqdm

    from musejax.config import save_config_json
    from musejax.evaluate.classification import classification_scores
    from musejax.train.mesh import make_mesh, replicated, shard_batch
    from musejax.train.metrics import MetricWriter
    from musejax.train.state import create_train_state, make_optimizer

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    saved = run_dir / "config.json"
    if saved.exists() and json.loads(saved.read_text()) != json.loads(json.dumps(config.to_dict())):
        raise ConfigError(f"{run_dir}: config differs from the run's config.json; use another --workdir")
    if data is None:
        try:
            data = load_style_data(config.data, progress=progress)
        except ValueError as err:
            raise ConfigError(f"config.data (corpus {config.data.corpus!r}): {err}") from err
    save_config_json(config, saved)
    mesh = make_mesh(jax.devices()[:1])
    model = build_classifier(config.model, len(data.styles), config.data.onsets)
    tx, schedule = make_optimizer(config.optim, config.train.steps)
    init_rng, step_rng = jax.random.split(jax.random.key(config.train.seed))
    init = InitStyle(model, config.data.window_steps, frame_shape(config.data.onsets))
    state, abstract = create_train_state(init, ApplyStyle(model), tx, "style",
                                         init_rng, mesh)
    manager = _manager(run_dir, config.ckpt)
    meta = _meta(config, data)
    t = config.train
    closing: list[Any] = []
    try:
        start = manager.latest_step() or 0
        if start:
            state = manager.restore(start, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
        sampler = BalancedWindows(data.train, len(data.styles), config.data.window_steps, t.batch_size, t.seed,
                                  t.balance, config.data.transpose_semitones)
        step_fn = jax.jit(_accumulate, donate_argnums=0)
        carry = jax.device_put((state, _zero_sums()), replicated(mesh))
        writer = MetricWriter(run_dir, resume_step=start)
        bar = tqdm(total=t.steps, initial=start, unit="step", desc="train style", disable=not progress)
        closing.extend([bar.close, writer.close])
        clock, step = time.perf_counter(), start
        while step < t.steps:
            carry = step_fn(carry, shard_batch(sampler.batch(step), mesh), step_rng)
            step += 1
            bar.update(1)
            is_eval = step % t.eval_every_steps == 0 or step == t.steps
            if step % t.log_every_steps == 0 or is_eval:
                sums = jax.device_get(carry[1])
                loss = float(sums["loss_sum"]) / max(float(sums["weight_sum"]), 1e-9)
                if not math.isfinite(loss):
                    raise FloatingPointError(f"training loss is {loss} at step {step}; lower config.optim.learning_rate")
                now = time.perf_counter()
                writer.write(step, "train", {"loss": loss, "accuracy": float(sums["correct"]) / float(sums["count"]),
                                             "grad_norm": float(sums["grad_norm_sum"]) / float(sums["batches"]),
                                             "learning_rate": float(schedule(step - 1)),
                                             "seconds_per_step": (now - clock) / float(sums["batches"])})
                carry, clock = (carry[0], jax.device_put(_zero_sums(), replicated(mesh))), now
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            if is_eval:
                _, probs = split_outputs(model, carry[0].params, data.valid, config.data.window_steps, t.eval_batch_size)
                scores = classification_scores(data.valid.labels, probs.argmax(-1), data.styles)
                writer.write(step, "valid", {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]})
                bar.write(f"step {step}: valid accuracy {scores['accuracy']:.3f}  macro-F1 {scores['macro_f1']:.3f}")
                _save(manager, carry[0], config, meta, scores["macro_f1"])
                clock = time.perf_counter()
            if stop_at_step is not None and stop_at_step <= step < t.steps:
                if step % t.eval_every_steps:
                    _save(manager, carry[0], config, meta, None)
                return StyleTrainResult(run_dir, step, None)
        manager.wait_until_finished()
        best = manager.best_step() or step
        state = manager.restore(best, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
    finally:
        for close in closing:
            close()
        manager.wait_until_finished()
        manager.close()
    report = final_report(model, state.params, data, config, run_dir, best)
    MetricWriter(run_dir, tensorboard=False).write(t.steps, "final", {
        "best_step": best, "test_accuracy": report["test"]["accuracy"], "test_macro_f1": report["test"]["macro_f1"],
        "threshold": report["calibration"]["threshold"]})
    return StyleTrainResult(run_dir, t.steps, report)


def _save(manager: ocp.CheckpointManager, state: Any, config: StyleConfig, meta: dict[str, Any],
          macro_f1: float | None) -> None:
    step = int(jax.device_get(state.step))
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               config=ocp.args.JsonSave(config.to_dict()),
                                               meta=ocp.args.JsonSave(meta)),
                 metrics=None if macro_f1 is None else {BEST_METRIC: float(macro_f1)}, force=True)


class StyleRunError(ValueError):
    """No usable classifier run at the given path (message names it and what to do)."""


def restore_style_run(run_dir: str | Path, which: str = "best") -> tuple[Any, Any, dict[str, Any], int]:
    """(model, params, meta, step) of a classifier run's best (valid macro-F1) or latest checkpoint."""
    from musejax.train.mesh import make_mesh
    from musejax.train.state import abstract_train_state, make_optimizer

    run_dir = Path(run_dir)
    try:
        config = saved_style_config(run_dir)
    except ConfigError as err:
        raise StyleRunError(str(err)) from None
    if not (run_dir / "checkpoints").is_dir():
        raise StyleRunError(f"{run_dir}: classifier run has no checkpoints/ (train it: musejax classify --train "
                            f"--workdir {run_dir})")
    manager = _manager(run_dir, config.ckpt, read_only=True)
    try:
        step = manager.best_step() if which == "best" else manager.latest_step()
        step = step if step is not None else manager.latest_step()
        if step is None:
            raise StyleRunError(f"{run_dir}: classifier run has no checkpoint yet")
        meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        onsets = bool(meta.get("onsets", False))
        model = build_classifier(config.model, len(meta["styles"]), onsets)
        tx, _ = make_optimizer(config.optim, config.train.steps)
        init = InitStyle(model, int(meta["window_steps"]), frame_shape(onsets))
        abstract = abstract_train_state(init, ApplyStyle(model), tx, "style",
                                        make_mesh(jax.devices()[:1]))
        state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))["state"]
    finally:
        manager.close()
    return model, state.params, meta, int(step)
