"""Orbax checkpoints of a run: managers, saving, restoring, the resume checks and the damaged-checkpoint fallback.

Layout: `<run_dir>/checkpoints/<step>/` composite checkpoints with items
  "state"  — the TrainState pytree (StandardSave; restored into the abstract state from jax.eval_shape),
  "config" — the run's config as JSON (also in `<run_dir>/config.json`),
  "meta"   — JSON: encoding name/options, loss kind, feature shape, styles, and the running train-metric
             sums of the unfinished log interval (so a resumed run logs exactly what an uninterrupted one does).
Retention: the `ckpt.keep_best` best checkpoints by the task's metric (the LM's: lowest valid NLL) plus the
`ckpt.keep_latest` newest.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from musejax.config import CkptConfig, ConfigError, TaskConfig, save_config_json

CHECKPOINT_DIR = "checkpoints"
BEST_METRIC = "valid_nll"

# what Orbax logs (as absl warnings) whenever a manager is opened read-only: that it will not save. musejax opens
# every finished run that way (to sample, evaluate, classify), so the notes would follow every such command
READ_ONLY_NOTES = ("Given directory is read only", "CheckpointManagerOptions.read_only")


def _not_a_read_only_note(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(READ_ONLY_NOTES)


logging.getLogger("absl").addFilter(_not_a_read_only_note)


def make_checkpoint_manager(run_dir: str | Path, ckpt: CkptConfig, *, read_only: bool = False,
                            best_metric: str | None = BEST_METRIC, best_mode: str = "min") -> ocp.CheckpointManager:
    """A CheckpointManager for `<run_dir>/checkpoints` keeping the `ckpt.keep_latest` newest and the
    `ckpt.keep_best` best by `best_metric` (lowest for best_mode "min", highest for "max"; None: latest only)."""
    if best_mode not in ("min", "max"):
        raise ValueError(f"best_mode must be min or max, got {best_mode!r}")
    policies = [ocp.checkpoint_managers.LatestN(n=ckpt.keep_latest)]
    if best_metric is not None:
        policies.append(ocp.checkpoint_managers.BestN(
            get_metric_fn=lambda metrics: metrics[best_metric], reverse=best_mode == "min", n=ckpt.keep_best,
            keep_checkpoints_without_metrics=False))
    options = ocp.CheckpointManagerOptions(
        preservation_policy=ocp.checkpoint_managers.AnyPreservationPolicy(policies),
        best_fn=None if best_metric is None else (lambda metrics: metrics[best_metric]), best_mode=best_mode,
        create=not read_only, read_only=read_only, enable_async_checkpointing=True)
    directory = Path(run_dir).absolute() / CHECKPOINT_DIR
    return ocp.CheckpointManager(directory, options=options, item_names=("state", "config", "meta"))


def save_checkpoint(manager: ocp.CheckpointManager, state: Any, config: TaskConfig, meta: dict[str, Any],
                    metric: float | None, best_metric: str | None = BEST_METRIC) -> None:
    """Save (asynchronously) at `state.step`; `metric` (the value of `best_metric`) ranks it for keep-best
    (None: kept only while it is among the latest)."""
    step = int(jax.device_get(state.step))
    metrics = None if metric is None or best_metric is None else {best_metric: float(metric)}
    manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                               config=ocp.args.JsonSave(config.to_dict()),
                                               meta=ocp.args.JsonSave(meta)),
                 metrics=metrics, force=True)


def restore_meta(manager: ocp.CheckpointManager, step: int) -> dict[str, Any]:
    return manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]


PARAM_FIELDS = ("params", "g_params", "d_params")  # the train states' parameter trees (LM and style; a GAN's two)


def restore_state(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> Any:
    """The TrainState saved at `step`, restored into `abstract_state`'s shapes, dtypes and shardings.

    ConfigError when the saved parameters differ from `abstract_state`'s in names or shapes: the model the run's
    config builds today is not the one that was saved (the model code changed, or a field was added without a
    LEGACY_VALUES entry). The checkpoint is sound, so `resume_training` does not set it aside."""
    mismatch = _params_mismatch(manager, step, abstract_state)
    if mismatch:
        run_dir = Path(manager.directory).parent
        raise ConfigError(f"{run_dir}: checkpoint step {step} does not fit the model its config builds ({mismatch}): "
                          f"it was saved by another version of the model; load it with the musejax version that "
                          f"trained it, or train again in another --workdir")
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"]


def _params_mismatch(manager: ocp.CheckpointManager, step: int, abstract_state: Any) -> str:
    """The first parameter whose saved shape (from the checkpoint's metadata) differs from `abstract_state`'s,
    or that only one of them has, described; "" when they agree or the metadata cannot be read (a damaged
    checkpoint: restoring says so)."""
    handler = ocp.StandardCheckpointHandler()  # the item's tree metadata (a Checkpointer would also look for a
    try:  # step metadata file inside the item, which a CheckpointManager keeps one level up, and log its absence)
        saved = handler.metadata(Path(manager.directory) / str(step) / "state")
    except Exception:  # noqa: BLE001 (Orbax raises many kinds for a damaged or missing item)
        return ""
    finally:
        handler.close()

    def shapes(tree: Any) -> dict[str, tuple[int, ...]]:
        leaves = jax.tree_util.tree_leaves_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))
        return {jax.tree_util.keystr(path): tuple(leaf.shape) for path, leaf in leaves}

    for field in PARAM_FIELDS:
        try:
            have, want = shapes(saved[field]), shapes(getattr(abstract_state, field))
        except (AttributeError, KeyError, TypeError):  # not a field of this kind of state
            continue
        for name in sorted(set(have) | set(want)):
            if have.get(name) != want.get(name):
                return (f"{field}{name}: saved {have.get(name, 'absent')}, the model has "
                        f"{want.get(name, 'none')}")
    return ""


def start_run(manager: ocp.CheckpointManager, run_dir: Path, config: Any, resume_groups: tuple[str, ...],
              resume: bool) -> int | None:
    """Before training in `run_dir`: the latest checkpoint step to continue from (None: a fresh run).

    ConfigError if the run has checkpoints and `resume` is False, or if `config` differs from the run's
    config.json in any key of `resume_groups` (the groups that decide what a run computes: a resumed run must
    compute what the original would have). Then (process 0) writes `config` as the run's config.json.
    """
    latest = manager.latest_step()
    path = run_dir / "config.json"
    if latest is not None:
        if not resume:
            raise ConfigError(f"{run_dir}: already has checkpoints (up to step {latest}); resume it or use "
                              f"another --workdir")
        if path.exists():
            saved, current = json.loads(path.read_text()), json.loads(json.dumps(config.to_dict()))
            diffs = [f"{group}.{key}" for group in resume_groups for key, value in current[group].items()
                     if saved.get(group, {}).get(key) != value]
            if diffs:
                raise ConfigError(f"{run_dir}: config differs from the run's config.json in {', '.join(diffs)}; "
                                  f"a resumed run must compute what the original would have: use another --workdir")
    if jax.process_index() == 0:
        save_config_json(config, path)  # sample/ckpt settings may have changed
    return latest


DAMAGED_DIR = "checkpoints-damaged"  # unusable checkpoints are moved here, beside checkpoints/, never deleted


def resume_training(manager: ocp.CheckpointManager, latest: int | None, state: Any, abstract_state: Any,
                    sums: dict[str, Any]) -> tuple[Any, dict[str, Any], int]:
    """(state, running metric sums, start step) of a run: as given (step 0) for a fresh run (`latest` None),
    else restored from checkpoint `latest`, the sums from its meta (so logging continues exactly).

    A checkpoint that cannot be restored (a truncated file, a missing item) is named, moved to
    `<run>/checkpoints-damaged/`, and the previous one is tried; ConfigError when none is usable.
    """
    if latest is None:
        return state, sums, 0
    candidates = sorted((step for step in manager.all_steps() if step <= latest), reverse=True)
    damaged = []
    for step in candidates:
        try:
            restored = restore_state(manager, step, abstract_state)
            meta = restore_meta(manager, step)
        except ConfigError:  # a sound checkpoint of another model: not damage
            raise
        except Exception as err:  # noqa: BLE001 (Orbax and TensorStore raise many kinds for a damaged file)
            where = set_aside(manager, step)
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
            print(f"checkpoint step {step} is unusable ({reason}); moved it to {where}", flush=True)
            damaged.append(step)
            continue
        if damaged:
            print(f"resuming from step {step}, the latest usable checkpoint", flush=True)
        saved = meta.get("train_sums")  # absent from runs of older versions: the sums start at 0
        if saved is not None:
            sums = {key: np.float32(value) for key, value in saved.items()}
        return restored, sums, step
    run_dir = Path(manager.directory).parent
    raise ConfigError(f"{run_dir}: no usable checkpoint: step(s) {', '.join(map(str, damaged))} are damaged (moved to "
                      f"{run_dir / DAMAGED_DIR}); run the same command again to start from step 0")


def set_aside(manager: ocp.CheckpointManager, step: int) -> Path:
    """Move checkpoint `step` out of the manager's directory into checkpoints-damaged/ (kept for inspection)."""
    directory = Path(manager.directory)
    target = directory.parent / DAMAGED_DIR / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if jax.process_index() == 0:
        shutil.move(str(directory / str(step)), str(target))
    manager.reload()
    return target


def open_checkpoint(run_dir: Path, ckpt: CkptConfig, which: str | int, train_command: str,
                    best_metric: str = BEST_METRIC, best_mode: str = "min") -> tuple[ocp.CheckpointManager, int]:
    """Open `<run_dir>/checkpoints` read-only and pick `which`: "best" (by the task's metric, e.g. lowest valid
    NLL; the latest when no checkpoint has one), "latest" or a step number. ConfigError naming the run dir (and
    `train_command`, how to make one) when there is none; the caller closes the manager."""
    if not (run_dir / CHECKPOINT_DIR).is_dir():
        raise ConfigError(f"{run_dir}: run has no checkpoints/ (train it first: {train_command} --workdir {run_dir})")
    manager = make_checkpoint_manager(run_dir, ckpt, read_only=True, best_metric=best_metric, best_mode=best_mode)
    steps = manager.all_steps()
    if not steps:
        manager.close()
        raise ConfigError(f"{run_dir}: run has no checkpoint yet (train it first: {train_command} --workdir {run_dir})")
    if which == "best" and manager.best_step() is not None:
        return manager, int(manager.best_step())
    if which in ("best", "latest"):
        return manager, int(manager.latest_step())
    if str(which).isdigit() and int(which) in steps:
        return manager, int(which)
    manager.close()
    what = f"at step {which}" if str(which).isdigit() else repr(which)
    raise ConfigError(f"{run_dir}: no checkpoint {what} (use best, latest or one of {sorted(steps)})")


def best_state(manager: ocp.CheckpointManager, state: Any, abstract_state: Any) -> tuple[Any, int]:
    """(state, step) of the best checkpoint by the task's metric; `state` itself when it is the best or no
    checkpoint is ranked."""
    last, best = int(jax.device_get(state.step)), manager.best_step()
    if best is None or best == last:
        return state, last
    return restore_state(manager, best, abstract_state), int(best)


def sums_to_json(sums: dict[str, Any]) -> dict[str, float]:
    """Device metric sums -> JSON floats (float32 values survive the round trip exactly)."""
    return {key: float(np.asarray(value)) for key, value in jax.device_get(sums).items()}
