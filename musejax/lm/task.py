"""Language-model training: `LMTask` (data, NLL step, valid NLL, final valid + test NLL) run by `fit`.

`train(config, run_dir)` trains (or continues) the run in `run_dir` with the shared loop (`train/fit.py`):
step s always uses batch s of the seeded data stream and dropout key fold_in(rng, s), and the running metric
sums travel in the checkpoint, so a run stopped at any step and resumed writes the same metrics and parameters
as an uninterrupted one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import jax
import jax.numpy as jnp

from musejax.config import ConfigError
from musejax.lm.config import Config
from musejax.train import checkpoint as ckpt_lib
from musejax.lm.data import LMData, TrainBatches, eval_batches, load_lm_data, texture_shift_names
from musejax.train.fit import Cadence, FitResult, NonFiniteLossError, TaskBase, fit
from musejax.train.mesh import data_parallel_devices, make_mesh, replicate_tree, shard_batch
from musejax.lm.build import build_lm, data_meta
from musejax.lm.copy_check import INDEX_FILE, build_index, write_index
from musejax.train.state import create_train_state, make_optimizer
from musejax.lm.steps import eval_step, summarize, train_step, zero_train_metrics
from musejax.evaluate.runs import decode_windows, log_samples
from musejax.lm.sample import Run, sample
from musejax.lm.sample_inputs import config_options


__all__ = ["LMTask", "NonFiniteLossError", "check_config", "default_run_dir", "train"]


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
    if config.data.length_bucket_steps < 0:
        raise ConfigError(f"config.data.length_bucket_steps must be >= 0 (0: full windows), "
                          f"got {config.data.length_bucket_steps}")


# Config groups that decide what a run computes; the others (sample, ckpt, name) may change on resume.
RESUME_GROUPS = ("data", "model", "optim", "train")


def _evaluate(eval_fn: Any, state: Any, batches: Sequence[dict[str, jax.Array]]) -> float:
    total = None
    for batch in batches:
        sums = eval_fn(state, batch)
        total = sums if total is None else jax.tree.map(jnp.add, total, sums)
    return summarize(jax.device_get(total))["nll"]


class LMTask(TaskBase):
    """The language-model task for `fit`: piano-roll or event LM batches, the NLL step, valid NLL as the
    checkpoints' metric, and valid + test NLL of the best checkpoint as the final record."""

    name = "train"
    resume_groups = RESUME_GROUPS
    best_metric = ckpt_lib.BEST_METRIC  # "valid_nll"
    best_mode = "min"
    writes_final = True
    train_step = staticmethod(train_step)

    def __init__(self, config: Config, mesh: Any, data: LMData | None = None, progress: bool = True,
                 run_dir: Path | None = None) -> None:
        super().__init__(config, mesh, data, progress, run_dir)
        t = config.train
        self.cadence = Cadence(t.steps, t.log_every_steps, t.eval_every_steps)

    def init(self) -> tuple[Any, Any, dict[str, Any], Any]:
        config, mesh = self.config, self.mesh
        data = self.load_data(load_lm_data)
        if len(data.train) < config.train.batch_size:
            raise ConfigError(f"{data.description or 'dataset'}: {len(data.train)} training windows are fewer than "
                              f"one batch (config.train.batch_size={config.train.batch_size})")
        self.meta = data_meta(data)
        if config.sample.max_copy_bars and self.run_dir is not None and jax.process_index() == 0:
            if not (self.run_dir / INDEX_FILE).is_file():  # the pieces the sampler's copy check compares with
                write_index(build_index(data.encoding, data.train_pieces, data.piece_bars, data.train_ids),
                            self.run_dir)
        lm = build_lm(config, self.meta)
        self.model = lm.model
        tx, schedule = make_optimizer(config.optim, config.train.steps)
        init_rng, step_rng = jax.random.split(jax.random.key(config.train.seed))
        state, abstract_state = create_train_state(lm.init_params, lm.apply_fn, tx, init_rng, mesh)
        self.eval_fn, self.lr_fn = jax.jit(eval_step), jax.jit(schedule)
        self.valid_batches = self._eval_batches("valid")
        return state, abstract_state, zero_train_metrics(), replicate_tree(step_rng, mesh)

    def _eval_batches(self, split: str) -> list[dict[str, jax.Array]]:
        data = self.data
        return [shard_batch(b, self.mesh)
                for b in eval_batches(getattr(data, split), self.config.train.eval_batch_size, data.loss_kind)]

    def batches(self, start_step: int) -> Iterator[dict[str, jax.Array]]:
        config = self.config
        period = getattr(self.model, "position_period", 0)  # the accompaniment's bars follow the place in the bar
        bar_quarters = period / self.data.encoding.steps_per_quarter if period else 4.0
        stream = TrainBatches(self.data, config.train.batch_size, config.train.seed, config.data.transpose_semitones,
                              texture_shift_names(config.data, self.data.loss_kind), config.data.texture_shift_rate,
                              bar_quarters, config.data.length_bucket_steps).from_step(start_step)
        return (shard_batch(batch, self.mesh) for batch in stream)

    def summarize(self, sums: dict[str, Any], step: int) -> dict[str, float]:
        return dict(summarize(sums), learning_rate=float(self.lr_fn(step - 1)))

    def finite(self, values: dict[str, float]) -> dict[str, str]:
        return {"nll": "NLL"}

    def evaluate(self, state: Any, step: int) -> dict[str, float]:
        return {"nll": _evaluate(self.eval_fn, state, self.valid_batches)}

    def best_value(self, metrics: dict[str, float]) -> float:
        return metrics["nll"]

    def after_step(self, state: Any, step: int, writer: Any) -> bool:
        """At each evaluation, `sample.board_n` pieces to TensorBoard (piano-roll + audio), and every
        `sample.board_metrics_every` evaluations their metrics against the valid pieces (split "samples").

        Sampling has its own seed (sample.seed + step), never the training key, so the run computes the same.
        Skipped in multi-process jobs: sampling there is a collective every process must join, and only
        process 0 writes (`musejax sample` serves those runs after training).
        """
        s = self.config.sample
        if not s.board_n or not self.cadence.is_eval(step) or jax.process_count() > 1:
            return False

        if not hasattr(self, "board_reference"):
            # the valid pieces' openings, as long as the samples: length-dependent metrics (notes, bars) compare
            valid, steps = self.data.valid, s.board_steps
            self.board_reference = decode_windows(self.data.encoding, valid.windows[:, :steps], valid.mask[:, :steps],
                                                  limit=64)
        run = Run(model=self.model, params=state.params, encoding=self.data.encoding, styles=self.data.styles,
                  loss_kind=self.data.loss_kind, config=self.config, step=step, meta=self.meta)
        # openings for the board, not pieces for a user: not checked for copies
        options = config_options(self.config, max_copy_bars=0.0)
        sequences = sample(run, s.board_n, s.board_steps, seed=s.seed + step, **options)
        n_evaluation = -(-step // self.cadence.eval_every)  # the last step, off the cadence, counts as the next
        every = s.board_metrics_every
        log_samples(writer, sequences, self.board_reference, step,
                    with_metrics=bool(every) and (n_evaluation % every == 0 or step == self.cadence.steps))
        return True  # sampling time is not training speed

    def postfix(self, summary: dict[str, float]) -> dict[str, str]:
        return {"nll": f"{summary['nll']:.3f}"}

    def describe(self, summary: dict[str, float], metrics: dict[str, float]) -> str:
        return f"train nll {summary['nll']:.4f}  valid nll {metrics['nll']:.4f}"

    def divergence_hint(self) -> str:
        optim = self.config.optim
        return (f"lower config.optim.learning_rate (now {optim.learning_rate:g}) or set config.optim.grad_clip_norm "
                f"(now {optim.grad_clip_norm:g})")

    def finish(self, manager: Any, state: Any, abstract_state: Any, step: int) -> dict[str, Any]:
        """Valid and test NLL per step of the best checkpoint (lowest valid NLL)."""
        state, best_step = ckpt_lib.best_state(manager, state, abstract_state)
        result = {"best_step": best_step}
        for split in ("valid", "test"):
            result[f"{split}_nll"] = _evaluate(self.eval_fn, state, self._eval_batches(split))
        result["n_train_windows"] = len(self.data.train)
        return result


def train(config: Config, run_dir: str | Path, *, resume: bool = True, stop_at_step: int | None = None,
          progress: bool = True, data: LMData | None = None,
          devices: Sequence[jax.Device] | None = None) -> FitResult:
    """Train `config` in `run_dir` (continuing its latest checkpoint if `resume`) up to config.train.steps.

    `stop_at_step` stops early after that step with a checkpoint (as a preemption would); `data` replaces
    the corpus given by config.data (tests); `devices` defaults to all devices (data parallelism; on the CPU,
    the most that divide both batch sizes: `mesh.data_parallel_devices`).
    """
    mesh = make_mesh(data_parallel_devices((config.train.batch_size, config.train.eval_batch_size), devices))
    if progress and mesh.devices.size < jax.device_count():
        print(f"data parallel over {mesh.devices.size} of {jax.device_count()} devices: the most that divide "
              f"config.train.batch_size and eval_batch_size")
    check_config(config, mesh.devices.size)
    return fit(LMTask(config, mesh, data, progress, Path(run_dir)), config, run_dir, resume=resume,
               stop_at_step=stop_at_step, progress=progress)


def default_run_dir(config_name: str, root: str | Path = "runs") -> Path:
    """runs/<config-name>-<YYYYmmdd-HHMMSS> (":" in the name becomes "-")."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{config_name.replace(':', '-')}-{stamp}"


