"""Style-classifier training: config dataclasses, the class-weighted loss and jit-compiled step, and `StyleTask`
for the shared loop (train/fit.py: Orbax checkpoints, best by valid macro-F1, exact resume), then calibration and
the test report.

A run directory holds config.json, checkpoints/ (items state, config, meta), metrics.jsonl + TensorBoard events,
and after training calibration.json / .npz (out-of-style rule), report.json, report.md and confusion.png.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import jax
import jax.numpy as jnp
import optax

from musejax.config import CkptConfig, ConfigError, OptimConfig, apply_overrides, load_config, saved_config_dict
from musejax.config import to_dataclass
from musejax.evaluate.classification import classification_scores
from musejax.style.embeddings import split_outputs
from musejax.train import checkpoint as ckpt_lib
from musejax.train.fit import Cadence, TaskBase, fit
from musejax.train.mesh import local_copy, make_mesh, replicate_tree, shard_batch
from musejax.train.state import abstract_train_state, create_train_state, make_optimizer
from musejax.style.data import BALANCE_MODES, BalancedWindows, StyleData, frame_shape
from musejax.style.data import load_style_data
from musejax.style.report import final_report


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
    from musejax.style.model import ENCODER_KINDS

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
    from musejax.style.model import StyleClassifier

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


class StyleRunError(ValueError):
    """No usable classifier run at the given path (message names it and what to do)."""


# ---------------------------------------------------------------------------------------------- the task

BEST_METRIC = "valid_macro_f1"
RESUME_GROUPS = ("data", "model", "optim", "train")  # classify.coverage and ckpt may change on resume


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


class StyleTask(TaskBase):
    """The style-classifier task for `fit`: balanced windows, the weighted cross-entropy step, valid macro-F1
    as the checkpoints' metric; at the end, the out-of-style calibration and the test report of the best step."""

    name = "train style"
    resume_groups = RESUME_GROUPS
    best_metric = BEST_METRIC
    best_mode = "max"
    writes_final = True
    train_step = staticmethod(_accumulate)

    def __init__(self, config: StyleConfig, mesh: Any, data: StyleData | None, progress: bool, run_dir: Path) -> None:
        super().__init__(config, mesh, data, progress, run_dir)
        t = config.train
        self.cadence = Cadence(t.steps, t.log_every_steps, t.eval_every_steps)
        self.report: dict[str, Any] | None = None

    def init(self) -> tuple[Any, Any, dict[str, Any], Any]:
        config, mesh = self.config, self.mesh
        if self.data is None:
            try:
                self.data = load_style_data(config.data, progress=self.progress)
            except ValueError as err:
                raise ConfigError(f"config.data (corpus {config.data.corpus!r}): {err}") from err
        data = self.data
        self.meta = _meta(config, data)
        self.model = build_classifier(config.model, len(data.styles), config.data.onsets)
        tx, schedule = make_optimizer(config.optim, config.train.steps)
        self.schedule = schedule
        init_rng, step_rng = jax.random.split(jax.random.key(config.train.seed))
        init = InitStyle(self.model, config.data.window_steps, frame_shape(config.data.onsets))
        state, abstract_state = create_train_state(init, ApplyStyle(self.model), tx, "style", init_rng, mesh)
        return state, abstract_state, _zero_sums(), replicate_tree(step_rng, mesh)

    def batches(self, start_step: int) -> Iterator[dict[str, jax.Array]]:
        t, data = self.config.train, self.data
        sampler = BalancedWindows(data.train, len(data.styles), self.config.data.window_steps, t.batch_size, t.seed,
                                  t.balance, self.config.data.transpose_semitones)
        return (shard_batch(sampler.batch(step), self.mesh) for step in itertools.count(start_step))

    def summarize(self, sums: dict[str, Any], step: int) -> dict[str, float]:
        return {"loss": float(sums["loss_sum"]) / max(float(sums["weight_sum"]), 1e-9),
                "accuracy": float(sums["correct"]) / float(sums["count"]),
                "grad_norm": float(sums["grad_norm_sum"]) / float(sums["batches"]),
                "learning_rate": float(self.schedule(step - 1))}

    def finite(self, values: dict[str, float]) -> dict[str, str]:
        return {"loss": "loss"} if "loss" in values else {}

    def evaluate(self, state: Any, step: int) -> dict[str, float]:
        data, t = self.data, self.config.train
        _, probs = split_outputs(self.model, local_copy(state.params), data.valid, self.config.data.window_steps,
                                 t.eval_batch_size)
        scores = classification_scores(data.valid.labels, probs.argmax(-1), data.styles)
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    def best_value(self, metrics: dict[str, float]) -> float:
        return metrics["macro_f1"]

    def postfix(self, summary: dict[str, float]) -> dict[str, str]:
        return {"loss": f"{summary['loss']:.3f}"}

    def describe(self, summary: dict[str, float], metrics: dict[str, float]) -> str:
        return f"valid accuracy {metrics['accuracy']:.3f}  macro-F1 {metrics['macro_f1']:.3f}"

    def divergence_hint(self) -> str:
        return f"lower config.optim.learning_rate (now {self.config.optim.learning_rate:g})"

    def finish(self, manager: Any, state: Any, abstract_state: Any, step: int) -> dict[str, Any]:
        """Calibrate the out-of-style rule and report on test with the best checkpoint (valid macro-F1)."""
        best = manager.best_step() or step
        if best != int(jax.device_get(state.step)):
            state = ckpt_lib.restore_state(manager, best, abstract_state)
        self.report = final_report(self.model, local_copy(state.params), self.data, self.config, self.run_dir, best)
        return {"best_step": best, "test_accuracy": self.report["test"]["accuracy"],
                "test_macro_f1": self.report["test"]["macro_f1"], "threshold": self.report["calibration"]["threshold"]}


def train_classifier(config: StyleConfig, run_dir: str | Path, *, progress: bool = True,
                     data: StyleData | None = None, stop_at_step: int | None = None,
                     devices: Sequence[jax.Device] | None = None) -> StyleTrainResult:
    """Train (or exactly resume) a classifier run, then calibrate on valid and report on test.

    `devices` defaults to all devices (data parallelism over the batch), except in a one-process job on the
    CPU: one device there, as for the GAN (a small model; its CPU devices are slices of one machine)."""
    run_dir = Path(run_dir)
    if devices is None and jax.default_backend() == "cpu" and jax.process_count() == 1:
        devices = jax.devices()[:1]
    mesh = make_mesh(devices)
    if config.train.batch_size % mesh.devices.size:
        raise ConfigError(f"config.train.batch_size ({config.train.batch_size}) must be a multiple of the number "
                          f"of devices ({mesh.devices.size})")
    task = StyleTask(config, mesh, data, progress, run_dir)
    result = fit(task, config, run_dir, stop_at_step=stop_at_step, progress=progress)
    report = task.report
    if report is None and result.final is not None:  # finished before: the report it wrote
        report = json.loads((run_dir / "report.json").read_text())
    return StyleTrainResult(run_dir, result.step, report)


def restore_style_run(run_dir: str | Path, which: str = "best") -> tuple[Any, Any, dict[str, Any], int]:
    """(model, params, meta, step) of a classifier run's best (valid macro-F1) or latest checkpoint."""
    run_dir = Path(run_dir)
    try:
        config = saved_style_config(run_dir)
    except ConfigError as err:
        raise StyleRunError(str(err)) from None
    if not (run_dir / "checkpoints").is_dir():
        raise StyleRunError(f"{run_dir}: classifier run has no checkpoints/ (train it: musejax classify --train "
                            f"--workdir {run_dir})")
    manager = ckpt_lib.make_checkpoint_manager(run_dir, config.ckpt, read_only=True, best_metric=BEST_METRIC,
                                               best_mode="max")
    try:
        step = manager.best_step() if which == "best" else manager.latest_step()
        step = step if step is not None else manager.latest_step()
        if step is None:
            raise StyleRunError(f"{run_dir}: classifier run has no checkpoint yet")
        meta = ckpt_lib.restore_meta(manager, step)
        onsets = bool(meta.get("onsets", False))
        model = build_classifier(config.model, len(meta["styles"]), onsets)
        tx, _ = make_optimizer(config.optim, config.train.steps)
        init = InitStyle(model, int(meta["window_steps"]), frame_shape(onsets))
        abstract = abstract_train_state(init, ApplyStyle(model), tx, "style", make_mesh(jax.devices()[:1]))
        state = ckpt_lib.restore_state(manager, step, abstract)
    finally:
        manager.close()
    return model, state.params, meta, int(step)
