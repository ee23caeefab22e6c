"""Style-classifier training: `StyleTask` for the shared loop (train/fit.py: Orbax checkpoints, best by valid
macro-F1, exact resume), then calibration and the test report.

A run directory holds config.json, checkpoints/ (items state, config, meta), metrics.jsonl + TensorBoard events,
and after training calibration.json / .npz (out-of-style rule), report.json, report.md and confusion.png.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import jax

from musejax.config import ConfigError
from musejax.errors import UserError
from musejax.evaluate.classification import classification_scores
from musejax.style.embeddings import split_outputs
from musejax.train import checkpoint as ckpt_lib
from musejax.train.fit import Cadence, TaskBase, fit
from musejax.train.mesh import local_copy, make_mesh, replicate_tree, shard_batch, small_model_mesh
from musejax.train.state import abstract_train_state, create_train_state, make_optimizer
from musejax.style.config import StyleConfig, saved_style_config, texture_shift_names
from musejax.style.data import BalancedWindows, StyleData, frame_shape, load_style_data
from musejax.style.report import final_report
from musejax.style.steps import ApplyStyle, InitStyle, build_classifier, train_step, zero_sums


class StyleRunError(UserError):
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
    train_step = staticmethod(train_step)

    def __init__(self, config: StyleConfig, mesh: Any, data: StyleData | None, progress: bool, run_dir: Path) -> None:
        super().__init__(config, mesh, data, progress, run_dir)
        t = config.train
        self.cadence = Cadence(t.steps, t.log_every_steps, t.eval_every_steps)
        self.report: dict[str, Any] | None = None

    def init(self) -> tuple[Any, Any, dict[str, Any], Any]:
        config, mesh = self.config, self.mesh
        data = self.load_data(load_style_data)
        self.meta = _meta(config, data)
        self.model = build_classifier(config.model, len(data.styles), config.data.onsets)
        tx, schedule = make_optimizer(config.optim, config.train.steps)
        self.schedule = schedule
        init_rng, step_rng = jax.random.split(jax.random.key(config.train.seed))
        init = InitStyle(self.model, config.data.window_steps, frame_shape(config.data.onsets))
        state, abstract_state = create_train_state(init, ApplyStyle(self.model), tx, init_rng, mesh)
        return state, abstract_state, zero_sums(), replicate_tree(step_rng, mesh)

    def batches(self, start_step: int) -> Iterator[dict[str, jax.Array]]:
        t, data = self.config.train, self.data
        d = self.config.data
        sampler = BalancedWindows(data.train, len(data.styles), d.window_steps, t.batch_size, t.seed, t.balance,
                                  d.transpose_semitones, d.texture_shift_rate, texture_shift_names(d.texture_shifts),
                                  d.steps_per_quarter, varied=d.accompaniments == "varied")
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
        state, best = ckpt_lib.best_state(manager, state, abstract_state)
        self.report = final_report(self.model, local_copy(state.params), self.data, self.config, self.run_dir, best)
        return {"best_step": best, "test_accuracy": self.report["test"]["accuracy"],
                "test_macro_f1": self.report["test"]["macro_f1"], "threshold": self.report["calibration"]["threshold"]}


def train_classifier(config: StyleConfig, run_dir: str | Path, *, progress: bool = True,
                     data: StyleData | None = None, stop_at_step: int | None = None,
                     devices: Sequence[jax.Device] | None = None) -> StyleTrainResult:
    """Train (or exactly resume) a classifier run, then calibrate on valid and report on test.

    `devices` as in `mesh.small_model_mesh` (data parallelism over the batch)."""
    run_dir = Path(run_dir)
    task = StyleTask(config, small_model_mesh(config.train.batch_size, devices), data, progress, run_dir)
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
        manager, step = ckpt_lib.open_checkpoint(run_dir, config.ckpt, which, "musejax classify --train",
                                                 best_metric=BEST_METRIC, best_mode="max")
    except ConfigError as err:
        raise StyleRunError(str(err)) from None
    try:
        meta = ckpt_lib.restore_meta(manager, step)
        onsets = bool(meta.get("onsets", False))
        model = build_classifier(config.model, len(meta["styles"]), onsets)
        tx, _ = make_optimizer(config.optim, config.train.steps)
        init = InitStyle(model, int(meta["window_steps"]), frame_shape(onsets))
        abstract = abstract_train_state(init, ApplyStyle(model), tx, make_mesh(jax.devices()[:1]))
        state = ckpt_lib.restore_state(manager, step, abstract)
    finally:
        manager.close()
    return model, state.params, meta, int(step)
