"""The one training loop every task uses: `fit(task, config, run_dir)`.

fit owns what all tasks share: the run directory's config.json and the resume check, the progress bar,
metrics.jsonl + TensorBoard, the log / evaluation / checkpoint cadence, best + latest Orbax checkpoints (ranked
by the metric the task names), exact resume (step s always sees batch s and the step key; the running metric
sums travel in the checkpoint), the save on Ctrl-C and at an early stop, and the NaN guard. A task
(`FitTask`) supplies init, the jit-able step, batches, evaluate and what to do once training is over.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import socket
import time
from pathlib import Path
from typing import Any, Iterator, Protocol

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from musejax.config import ConfigError
from musejax.errors import UserError
from musejax.train import checkpoint as ckpt_lib
from musejax.train.mesh import replicate_tree, replicated
from musejax.train.metrics import MetricWriter, read_metrics


class NonFiniteLossError(FloatingPointError, UserError):
    """A training or validation loss became NaN or infinite (its message says which setting to change)."""


class RunLockedError(ConfigError):
    """Another live process is training in the run directory."""


LOCK_FILE = ".lock"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold `<run_dir>/.lock` (an exclusive flock) while training: a second run into the same directory stops
    with RunLockedError. The kernel releases the lock when the holder exits, also after a kill."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        yield
        return
    path = run_dir / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "unknown"
            raise RunLockedError(f"{run_dir}: another run is training in this directory (process {holder}); wait "
                                 f"for it to finish or use another --workdir") from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()} on {socket.gethostname()}\n".encode())
        yield
    finally:
        os.close(descriptor)  # closing releases the flock


@dataclasses.dataclass(frozen=True)
class Cadence:
    """When fit logs, evaluates and checkpoints (every N steps; the last step always does all three)."""

    steps: int  # total steps
    log_every: int
    eval_every: int = 0  # 0: no evaluation
    checkpoint_every: int = 0  # 0: a checkpoint at each evaluation only (and at the end)

    def is_eval(self, step: int) -> bool:
        return bool(self.eval_every) and (step % self.eval_every == 0 or step == self.steps)

    def is_log(self, step: int) -> bool:
        return step % self.log_every == 0 or step == self.steps or self.is_eval(step)

    def is_checkpoint(self, step: int) -> bool:
        return (self.is_eval(step) or step == self.steps
                or bool(self.checkpoint_every) and step % self.checkpoint_every == 0)


class FitTask(Protocol):
    """What a task gives fit. `init` is called once the run is known to need training (after the resume check)."""

    name: str  # progress-bar label
    cadence: Cadence
    writes_final: bool  # finish() returns a "final" record: a run is finished once that record is written
    resume_groups: tuple[str, ...]  # config groups a resumed run must not change
    best_metric: str | None  # key of evaluate()'s result that ranks checkpoints (None: latest only)
    best_mode: str  # "min" | "max"
    mesh: Any
    meta: dict[str, Any]  # JSON saved with every checkpoint

    def init(self) -> tuple[Any, Any, dict[str, Any], Any]:
        """(state, abstract_state, zero metric sums, step rng), all on the mesh."""

    def train_step(self, state: Any, batch: Any, rng: Any) -> tuple[Any, dict[str, Any]]:
        """state, batch, rng -> (state, metric values to add to the running sums); fit adds them
        (`accumulating`) and jit-compiles the two as one call with the carry donated."""

    def batches(self, start_step: int) -> Iterator[Any]:
        """Device-ready batches from batch `start_step` of the seeded stream."""

    def summarize(self, sums: dict[str, Any], step: int) -> dict[str, float]:
        """Train metrics of a log interval from its sums (host values)."""

    def finite(self, values: dict[str, float]) -> dict[str, str]:
        """Keys of a train summary or of evaluate()'s metrics that must be finite (the NaN guard) -> their name
        in the error message."""

    def evaluate(self, state: Any, step: int) -> dict[str, float]:
        """Validation metrics at an evaluation step (logged as the "valid" record)."""

    def best_value(self, metrics: dict[str, float]) -> float:
        """The value of `best_metric` from evaluate()'s metrics (it ranks the step's checkpoint)."""

    def after_step(self, state: Any, step: int, writer: MetricWriter) -> bool:
        """Per-step extras (e.g. sample grids); True if they took wall time that is not training speed."""

    def finish(self, manager: Any, state: Any, abstract_state: Any, step: int) -> dict[str, Any] | None:
        """After the last step (checkpoints written): the "final" record, or None."""

    def divergence_hint(self) -> str:
        """What to change when a loss diverges (appended to the NaN guard's error)."""

    def postfix(self, summary: dict[str, float]) -> dict[str, str]:
        """The progress bar's postfix after a log step."""

    def describe(self, summary: dict[str, float], metrics: dict[str, float]) -> str:
        """The line printed at an evaluation step (after "step N: ")."""


class TaskBase:
    """What every task shares: its config, mesh, data (None: loaded in `init`), progress flag and run directory,
    the checkpoint meta (set in `init`), and the hooks most tasks leave as they are."""

    def __init__(self, config: Any, mesh: Any, data: Any, progress: bool, run_dir: Path | None = None) -> None:
        self.config, self.mesh, self.data, self.progress, self.run_dir = config, mesh, data, progress, run_dir
        self.meta: dict[str, Any] = {}

    def load_data(self, loader: Any) -> Any:
        """`self.data`, loaded by `load_corpus(loader, config.data)` unless given."""
        if self.data is None:
            self.data = load_corpus(loader, self.config.data, self.progress)
        return self.data

    def evaluate(self, state: Any, step: int) -> dict[str, float]:
        return {}

    def after_step(self, state: Any, step: int, writer: MetricWriter) -> bool:
        return False

    def finish(self, manager: Any, state: Any, abstract_state: Any, step: int) -> dict[str, Any] | None:
        return None


def load_corpus(loader: Any, data: Any, progress: bool) -> Any:
    """`loader(data, progress=...)`, a task's data from its config.data; a corpus that cannot be used (unknown,
    empty split, bad options) is the user's to fix: ConfigError naming it."""
    try:
        return loader(data, progress=progress)
    except ValueError as err:
        raise ConfigError(f"config.data (corpus {data.corpus!r}): {err}") from err


@functools.lru_cache(maxsize=None)
def accumulating(train_step: Any) -> Any:
    """The task's `train_step` plus adding its metrics to the running sums, as one call: (state, sums), batch,
    rng -> (state, sums). Jit-compiled with the carry donated, state and sums always advance together (an
    interrupt never leaves a step counted in one but not the other) and metrics reach the host once per log
    interval. Cached: the same step gives the same function, so jit caches are shared between runs."""

    def step_and_add(carry: tuple[Any, dict[str, Any]], batch: Any, rng: Any) -> tuple[Any, dict[str, Any]]:
        state, sums = carry
        state, metrics = train_step(state, batch, rng)
        return state, jax.tree.map(jnp.add, sums, metrics)

    return step_and_add


@dataclasses.dataclass
class FitResult:
    run_dir: Path
    step: int  # steps trained so far
    final: dict[str, Any] | None  # the "final" record; None if stopped early or the task writes none
    finished: bool
    seconds: float
    devices: int  # devices the batch was split over


def fit(task: FitTask, config: Any, run_dir: str | Path, *, resume: bool = True,
        stop_at_step: int | None = None, progress: bool = True) -> FitResult:
    """Train `task` in `run_dir` up to its cadence's steps, continuing the latest checkpoint if `resume`.

    `task.init` (data, model) runs after the run directory's resume check, so a finished run returns without
    loading data. `stop_at_step` stops after that step with a checkpoint (as a preemption would).
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if jax.process_index() == 0:  # one lock per run: the other processes of a multi-host job share it
            stack.enter_context(run_lock(run_dir))
        manager = ckpt_lib.make_checkpoint_manager(run_dir, config.ckpt, best_metric=task.best_metric,
                                                   best_mode=task.best_mode)
        stack.callback(manager.close)
        stack.callback(manager.wait_until_finished)  # runs first: pending async saves complete before the close
        latest = ckpt_lib.start_run(manager, run_dir, config, task.resume_groups, resume)
        if latest is not None and latest >= task.cadence.steps:
            finals = read_metrics(run_dir, "final")
            final = {k: v for k, v in finals[-1].items() if k not in ("step", "split")} if finals else None
            if finals or not task.writes_final:
                return FitResult(run_dir, latest, final, True, time.perf_counter() - started, task.mesh.devices.size)
        step, final = _loop(task, config, run_dir, manager, latest, stop_at_step, progress)
        return FitResult(run_dir, step, final, step >= task.cadence.steps, time.perf_counter() - started,
                         task.mesh.devices.size)


def _loop(task: Any, config: Any, run_dir: Path, manager: Any, latest: int | None, stop_at_step: int | None,
          progress: bool) -> tuple[int, dict[str, Any] | None]:
    mesh, cadence = task.mesh, task.cadence
    state, abstract_state, zero_sums, step_rng = task.init()
    zero_sums = jax.device_get(zero_sums)  # host copies: each log interval puts fresh ones (the carry is donated)
    state, sums, start_step = ckpt_lib.resume_training(manager, latest, state, abstract_state, zero_sums)
    carry = replicate_tree((state, sums), mesh)
    step_fn = jax.jit(accumulating(task.train_step), donate_argnums=0, out_shardings=jax.tree.map(lambda _: replicated(mesh), carry))
    stream = task.batches(start_step)
    is_main = jax.process_index() == 0

    def save(metric: float | None) -> None:
        ckpt_lib.save_checkpoint(manager, carry[0], config, dict(task.meta, train_sums=ckpt_lib.sums_to_json(carry[1])),
                                 metric, best_metric=task.best_metric)

    writer = MetricWriter(run_dir, resume_step=start_step, enabled=is_main)
    bar = tqdm(total=cadence.steps, initial=start_step, unit="step", desc=task.name, disable=not progress,
               dynamic_ncols=True)
    last_log_time, last_log_step, saved_step, step = time.perf_counter(), start_step, start_step, start_step
    summary: dict[str, float] = {}
    try:
        while step < cadence.steps:
            carry = step_fn(carry, next(stream), step_rng)
            step += 1
            bar.update(1)
            if cadence.is_log(step):
                summary = task.summarize(jax.device_get(carry[1]), step)
                _raise_if_not_finite(task, summary, "training", step)
                now = time.perf_counter()
                summary["steps_per_second"] = (step - last_log_step) / max(now - last_log_time, 1e-9)
                writer.write(step, "train", summary)
                bar.set_postfix(task.postfix(summary), refresh=False)
                carry = (carry[0], replicate_tree(zero_sums, mesh))
                last_log_time, last_log_step = now, step
            metric = None
            if cadence.is_eval(step):
                metrics = task.evaluate(carry[0], step)
                _raise_if_not_finite(task, metrics, "validation", step)
                writer.write(step, "valid", metrics)
                bar.write(f"step {step}: {task.describe(summary, metrics)}")
                metric = task.best_value(metrics) if task.best_metric else None
                last_log_time = time.perf_counter()  # evaluation time is not training speed
            if task.after_step(carry[0], step, writer):
                last_log_time = time.perf_counter()
            if cadence.is_checkpoint(step):
                save(metric)
                saved_step = step
            if stop_at_step is not None and stop_at_step <= step < cadence.steps:
                break
        if step != saved_step:  # stopped early on request: leave a checkpoint to resume from
            save(None)
        if step < cadence.steps:
            return step, None
        manager.wait_until_finished()
        final = task.finish(manager, carry[0], abstract_state, step)
        if final is not None:
            writer.write(step, "final", final)
        return step, final
    except KeyboardInterrupt:
        if step != saved_step:
            save(None)  # Ctrl-C keeps the progress: the same command continues exactly here
        raise
    finally:
        bar.close()
        writer.close()


def _raise_if_not_finite(task: Any, values: dict[str, float], what: str, step: int) -> None:
    names = task.finite(values)
    bad = [key for key in names if not math.isfinite(values[key])]
    if bad:
        raise NonFiniteLossError(f"{what} {' and '.join(names[key] for key in bad)} {'is' if len(bad) == 1 else 'are'} "
                                 f"{values[bad[0]]} at step {step}: training diverged; {task.divergence_hint()}")
