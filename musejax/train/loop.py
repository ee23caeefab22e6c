"""The training loop: data -> sharded jit-compiled steps -> metrics, evaluation, checkpoints; exact resume.

`train(config, run_dir)` trains (or continues) the run in `run_dir`. Step s always uses batch s of the
seeded data stream and dropout key fold_in(rng, s), and the running metric sums travel in the checkpoint,
so a run stopped at any step and resumed writes the same metrics and parameters as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from musejax.config import Config, ConfigError
from musejax.train import checkpoint as ckpt_lib
from musejax.train.data import LMData, TrainBatches, eval_batches, load_lm_data
from musejax.train.mesh import data_parallel_devices, make_mesh, replicated, shard_batch
from musejax.train.metrics import MetricWriter, read_metrics
from musejax.train.model import build_lm, data_meta
from musejax.train.state import create_train_state, make_optimizer
from musejax.train.steps import eval_step, summarize, train_step_accumulate, zero_train_metrics


class NonFiniteLossError(FloatingPointError):
    """The training or validation loss became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    step: int  # steps trained so far
    final: dict[str, Any] | None  # the "final" record (best step, valid and test NLL); None if stopped early
    devices: int  # devices the batch was split over


def check_config(config: Config, n_devices: int) -> None:
    """Validate the training settings the loop relies on (clear errors naming the key)."""
    t = config.train
    for name in ("steps", "log_every_steps", "eval_every_steps"):
        if getattr(t, name) < 1:
            raise ConfigError(f"config.train.{name} must be >= 1, got {getattr(t, name)}")
    for name in ("batch_size", "eval_batch_size"):
        value = getattr(t, name)
        if value < 1 or value % n_devices:
            raise ConfigError(f"config.train.{name}={value} must be a positive multiple of the number of devices "
                              f"({n_devices}); e.g. --config.train.{name}={max(1, value // n_devices) * n_devices}")
    if config.ckpt.keep_latest < 1 or config.ckpt.keep_best < 1:
        raise ConfigError("config.ckpt.keep_latest and config.ckpt.keep_best must be >= 1")


# Config groups that decide what a run computes; the others (sample, ckpt, name) may change on resume.
RESUME_GROUPS = ("data", "model", "optim", "train")


def _evaluate(eval_fn: Any, state: Any, batches: Sequence[dict[str, jax.Array]]) -> float:
    total = None
    for batch in batches:
        sums = eval_fn(state, batch)
        total = sums if total is None else jax.tree.map(jnp.add, total, sums)
    return summarize(jax.device_get(total))["nll"]


def _raise_if_not_finite(value: float, what: str, step: int, config: Config) -> None:
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"{what} NLL is {value} at step {step}: training diverged; lower config.optim.learning_rate "
            f"(now {config.optim.learning_rate:g}) or set config.optim.grad_clip_norm (now {config.optim.grad_clip_norm:g})")


def train(config: Config, run_dir: str | Path, *, resume: bool = True, stop_at_step: int | None = None,
          progress: bool = True, data: LMData | None = None,
          devices: Sequence[jax.Device] | None = None) -> TrainResult:
    """Train `config` in `run_dir` (continuing its latest checkpoint if `resume`) up to config.train.steps.

    `stop_at_step` stops early after that step with a checkpoint (as a preemption would); `data` replaces
    the corpus given by config.data (tests); `devices` defaults to all devices (data parallelism; on the CPU,
    the most that divide both batch sizes: `mesh.data_parallel_devices`).
    """
    run_dir = Path(run_dir)
    mesh = make_mesh(data_parallel_devices((config.train.batch_size, config.train.eval_batch_size), devices))
    if progress and mesh.devices.size < jax.device_count():
        print(f"data parallel over {mesh.devices.size} of {jax.device_count()} devices: the most that divide "
              f"config.train.batch_size and eval_batch_size")
    check_config(config, mesh.devices.size)
    run_dir.mkdir(parents=True, exist_ok=True)
    manager = ckpt_lib.make_checkpoint_manager(run_dir, config.ckpt)
    try:
        latest = ckpt_lib.start_run(manager, run_dir, config, RESUME_GROUPS, resume)
        if latest is not None:
            finals = read_metrics(run_dir, "final")
            if latest >= config.train.steps and finals:  # finished: nothing to do
                return TrainResult(run_dir, latest, {k: v for k, v in finals[-1].items() if k not in ("step", "split")},
                                   mesh.devices.size)
        data = data if data is not None else _load_data(config, progress)
        if len(data.train) < config.train.batch_size:
            raise ConfigError(f"{data.description or 'dataset'}: {len(data.train)} training windows are fewer than "
                              f"one batch (config.train.batch_size={config.train.batch_size})")
        return _train_loop(config, run_dir, manager, latest, data, mesh, stop_at_step, progress)
    finally:
        manager.wait_until_finished()
        manager.close()


def _load_data(config: Config, progress: bool) -> LMData:
    try:
        return load_lm_data(config.data, progress=progress)
    except ValueError as err:  # unknown corpus, empty split, bad encoding options: the user's to fix
        raise ConfigError(f"config.data (corpus {config.data.corpus!r}): {err}") from err


def _train_loop(config: Config, run_dir: Path, manager: Any, latest: int | None, data: LMData, mesh: Any,
                stop_at_step: int | None, progress: bool) -> TrainResult:
    meta = data_meta(data)
    lm = build_lm(config, meta)
    tx, schedule = make_optimizer(config.optim, config.train.steps)
    init_rng, step_rng = jax.random.split(jax.random.key(config.train.seed))
    state, abstract_state = create_train_state(lm.init_params, lm.apply_fn, tx, data.loss_kind, init_rng, mesh)
    step_rng = jax.device_put(step_rng, replicated(mesh))
    state, sums, start_step = ckpt_lib.resume_training(manager, latest, state, abstract_state, zero_train_metrics())
    is_main = jax.process_index() == 0
    total = config.train.steps
    carry = jax.device_put((state, sums), replicated(mesh))
    step_fn = jax.jit(train_step_accumulate, donate_argnums=0,
                      out_shardings=jax.tree.map(lambda _: replicated(mesh), carry))
    eval_fn = jax.jit(eval_step)
    lr_fn = jax.jit(schedule)
    valid_batches = [shard_batch(b, mesh) for b in eval_batches(data.valid, config.train.eval_batch_size, data.loss_kind)]
    stream = TrainBatches(data, config.train.batch_size, config.train.seed,
                          config.data.transpose_semitones).from_step(start_step)

    def save(valid_nll: float | None) -> None:
        ckpt_lib.save_checkpoint(manager, carry[0], config, dict(meta, train_sums=ckpt_lib.sums_to_json(carry[1])),
                                 valid_nll)

    writer = MetricWriter(run_dir, resume_step=start_step, enabled=is_main)
    bar = tqdm(total=total, initial=start_step, unit="step", desc="train", disable=not progress, dynamic_ncols=True)
    last_log_time, last_log_step, saved_step = time.perf_counter(), start_step, start_step
    step = start_step
    try:
        while step < total:
            carry = step_fn(carry, shard_batch(next(stream), mesh), step_rng)
            step += 1
            bar.update(1)
            is_eval = step % config.train.eval_every_steps == 0 or step == total
            if step % config.train.log_every_steps == 0 or is_eval:
                summary = summarize(jax.device_get(carry[1]))
                _raise_if_not_finite(summary["nll"], "training", step, config)
                now = time.perf_counter()
                summary.update(learning_rate=float(lr_fn(step - 1)),
                               steps_per_second=(step - last_log_step) / max(now - last_log_time, 1e-9))
                writer.write(step, "train", summary)
                bar.set_postfix(nll=f"{summary['nll']:.3f}", refresh=False)
                carry = (carry[0], jax.device_put(zero_train_metrics(), replicated(mesh)))
                last_log_time, last_log_step = now, step
            if is_eval:
                valid_nll = _evaluate(eval_fn, carry[0], valid_batches)
                _raise_if_not_finite(valid_nll, "validation", step, config)
                writer.write(step, "valid", {"nll": valid_nll})
                bar.write(f"step {step}: train nll {summary['nll']:.4f}  valid nll {valid_nll:.4f}")
                save(valid_nll)
                saved_step = step
                last_log_time = time.perf_counter()  # evaluation time is not training speed
            if stop_at_step is not None and stop_at_step <= step < total:
                break
        if step < total:  # stopped early on request: leave a checkpoint to resume from
            if step != saved_step:
                save(None)
            return TrainResult(run_dir, step, None, mesh.devices.size)
        manager.wait_until_finished()
        final = _final_evaluation(manager, carry[0], abstract_state, eval_fn, data, config, mesh)
        writer.write(total, "final", final)
        return TrainResult(run_dir, total, final, mesh.devices.size)
    except KeyboardInterrupt:
        if step != saved_step:
            save(None)  # Ctrl-C: keep the progress; `musejax train --workdir ...` continues exactly here
        raise
    finally:
        bar.close()
        writer.close()


def _final_evaluation(manager: Any, state: Any, abstract_state: Any, eval_fn: Any, data: LMData, config: Config,
                      mesh: Any) -> dict[str, Any]:
    """Valid and test NLL per step of the best checkpoint (lowest valid NLL)."""
    best_step = manager.best_step()
    last_step = int(jax.device_get(state.step))
    if best_step is not None and best_step != last_step:
        state = ckpt_lib.restore_state(manager, best_step, abstract_state)
    else:
        best_step = last_step
    result = {"best_step": int(best_step)}
    for split in ("valid", "test"):
        batches = [shard_batch(b, mesh) for b in eval_batches(getattr(data, split), config.train.eval_batch_size, data.loss_kind)]
        result[f"{split}_nll"] = _evaluate(eval_fn, state, batches)
    result["n_train_windows"] = len(data.train)
    return result


def default_run_dir(config_name: str, root: str | Path = "runs") -> Path:
    """runs/<config-name>-<YYYYmmdd-HHMMSS> (":" in the name becomes "-")."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{config_name.replace(':', '-')}-{stamp}"


