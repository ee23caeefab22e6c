"""The GAN training loop: segments -> jit-compiled (n_critic D steps + 1 G step) -> metrics, sample grids,
Orbax checkpoints; exact resume.

`train_gan(config, run_dir)` trains (or continues) the run in `run_dir`. Generator step s always uses the
real batches s * n_critic .. (s + 1) * n_critic - 1 of the seeded stream and noise from fold_in(rng, s), and
the running metric sums travel in the checkpoint, so a run stopped and resumed at any checkpoint writes the
same parameters and metrics as an uninterrupted one. Every `train.sample_every_steps` steps a grid of
`sample.n` samples from fixed noise goes to `<run>/samples/step_<N>_grid.png` and `_all.mid`, and their
MuseGAN metrics to metrics.jsonl (split "samples").
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P
from tqdm.auto import tqdm

from musejax.config import ConfigError
from musejax.train import checkpoint as ckpt_lib
from musejax.train.gan_config import RESUME_GROUPS, GanConfig
from musejax.train.gan_data import GanBatches, GanData, load_gan_data
from musejax.train.gan_run import build_networks, conditioning_styles, gan_loss, gan_meta, make_optimizers
from musejax.train.gan_samples import generate_segments, mean_pairwise_jaccard, write_grid
from musejax.train.gan_steps import create_gan_state, run_keys, summarize, train_step_accumulate, zero_metrics
from musejax.train.mesh import DATA_AXIS, make_mesh, replicated
from musejax.train.metrics import MetricWriter


class NonFiniteGanLossError(FloatingPointError):
    """A GAN loss became NaN or infinite."""


@dataclasses.dataclass
class GanTrainResult:
    run_dir: Path
    step: int  # generator steps trained so far
    finished: bool
    seconds: float


def train_gan(config: GanConfig, run_dir: str | Path, *, resume: bool = True, stop_at_step: int | None = None,
              progress: bool = True, data: GanData | None = None,
              devices: Sequence[jax.Device] | None = None) -> GanTrainResult:
    """Train `config` in `run_dir` (continuing its latest checkpoint if `resume`) up to config.train.steps.

    `stop_at_step` stops after that step with a checkpoint (as a preemption would); `data` replaces the
    corpus of config.data (tests); `devices` defaults to all devices (data parallelism over the batch), except on
    the CPU: one device there. Split over 2 CPU devices (musejax/host.py) the default step ran 20% slower (2.28
    against 2.80 steps/s): its large matmuls already use every core, and the split adds some 80 all-reduces.
    """
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if devices is None and jax.default_backend() == "cpu":
        devices = jax.devices()[:1]
    mesh = make_mesh(devices)
    if progress and mesh.devices.size < jax.device_count():
        print(f"training on {mesh.devices.size} of {jax.device_count()} {jax.default_backend()} devices")
    if config.train.batch_size % mesh.devices.size:
        raise ConfigError(f"config.train.batch_size={config.train.batch_size} must be a multiple of the number "
                          f"of devices ({mesh.devices.size})")
    run_dir.mkdir(parents=True, exist_ok=True)
    manager = ckpt_lib.make_checkpoint_manager(run_dir, config.ckpt)
    try:
        latest = ckpt_lib.start_run(manager, run_dir, config, RESUME_GROUPS, resume)
        if latest is not None and latest >= config.train.steps:
            return GanTrainResult(run_dir, latest, True, time.perf_counter() - started)
        if data is None:
            try:
                data = load_gan_data(config.data, progress=progress)
            except ValueError as err:
                raise ConfigError(f"config.data (corpus {config.data.corpus!r}): {err}") from err
        if len(data.train) < config.train.batch_size:
            raise ConfigError(f"{data.description or 'dataset'}: {len(data.train)} training segments are fewer "
                              f"than one batch (config.train.batch_size={config.train.batch_size})")
        step = _train_loop(config, run_dir, manager, latest, data, mesh, stop_at_step, progress)
        return GanTrainResult(run_dir, step, step >= config.train.steps, time.perf_counter() - started)
    finally:
        manager.wait_until_finished()
        manager.close()


def _train_loop(config: GanConfig, run_dir: Path, manager: Any, latest: int | None, data: GanData, mesh: Any,
                stop_at_step: int | None, progress: bool) -> int:
    meta = gan_meta(data)
    n_styles = conditioning_styles(config, meta)
    generator, discriminator = build_networks(config, n_styles)
    g_tx, d_tx = make_optimizers(config)
    init_rng, step_rng = run_keys(config.train.seed)
    state, abstract_state = create_gan_state(generator, discriminator, g_tx, d_tx, gan_loss(config), n_styles,
                                             init_rng, mesh)
    state, sums, start_step = ckpt_lib.resume_training(manager, latest, state, abstract_state, zero_metrics())
    carry = jax.device_put((state, sums), replicated(mesh))
    step_fn = jax.jit(train_step_accumulate, donate_argnums=0,
                      out_shardings=jax.tree.map(lambda _: replicated(mesh), carry))
    step_rng = jax.device_put(step_rng, replicated(mesh))
    batch_sharding = NamedSharding(mesh, P(None, DATA_AXIS))  # (n_critic, B, ...): split the batch axis
    stream = GanBatches(data, config.train.batch_size, config.train.seed, config.data.transpose_semitones,
                        config.loss.n_critic, with_style=n_styles > 0).from_step(start_step)
    is_main = jax.process_index() == 0

    def save() -> None:
        ckpt_lib.save_checkpoint(manager, carry[0], config, dict(meta, train_sums=ckpt_lib.sums_to_json(carry[1])),
                                 None)

    writer = MetricWriter(run_dir, resume_step=start_step, enabled=is_main)
    total, t = config.train.steps, config.train
    bar = tqdm(total=total, initial=start_step, unit="step", desc="gan", disable=not progress, dynamic_ncols=True)
    last_log_time, last_log_step, saved_step, step = time.perf_counter(), start_step, start_step, start_step
    try:
        while step < total:
            batch = {key: jax.device_put(value, batch_sharding) for key, value in next(stream).items()}
            carry = step_fn(carry, batch, step_rng)
            step += 1
            bar.update(1)
            if step % t.log_every_steps == 0 or step == total:
                summary = summarize(jax.device_get(carry[1]))
                _raise_if_not_finite(summary, step)
                now = time.perf_counter()
                summary["steps_per_second"] = (step - last_log_step) / max(now - last_log_time, 1e-9)
                writer.write(step, "train", summary)
                bar.set_postfix(d=f"{summary['d_loss']:.3f}", g=f"{summary['g_loss']:.3f}", refresh=False)
                carry = (carry[0], jax.device_put(zero_metrics(), replicated(mesh)))
                last_log_time, last_log_step = now, step
            if is_main and t.sample_every_steps and (step % t.sample_every_steps == 0 or step == total):
                writer.write(step, "samples", sample_grid(carry[0], config, data.encoding, run_dir, step))
                last_log_time = time.perf_counter()  # sampling time is not training speed
            if step % t.checkpoint_every_steps == 0 or step == total:
                save()
                saved_step = step
            if stop_at_step is not None and stop_at_step <= step < total:
                break
        if step != saved_step:
            save()
        return step
    except KeyboardInterrupt:
        if step != saved_step:
            save()  # Ctrl-C keeps the progress; `musejax gan train --workdir ...` continues exactly here
        raise
    finally:
        bar.close()
        writer.close()


def _raise_if_not_finite(summary: dict[str, float], step: int) -> None:
    bad = [key for key in ("d_loss", "g_loss") if not math.isfinite(summary[key])]
    if bad:
        raise NonFiniteGanLossError(f"{' and '.join(bad)} became {summary[bad[0]]} at step {step}: training "
                                    f"diverged; lower config.g_optim/d_optim.learning_rate or use loss.kind=wgan-gp")


def sample_grid(state: Any, config: GanConfig, encoding: Any, run_dir: Path, step: int) -> dict[str, float]:
    """Write the step's sample grid (fixed noise: same samples at the same step on resume) and return a few
    MuseGAN metrics of it, averaged over tracks."""
    from musejax.evaluate.musegan import empty_bar_rate, polyphony, used_pitch_classes_per_bar

    variables = {"params": state.g_params, "batch_stats": state.g_batch_stats}
    style = 0 if state.generator.n_styles else None
    segments = generate_segments(state.generator, variables, config.sample.n, seed=config.sample.seed,
                                 threshold=config.sample.threshold, style=style)
    write_grid(segments, encoding, run_dir / "samples", f"step_{step:06d}", qpm=config.sample.qpm)
    with np.errstate(all="ignore"):
        values = {"EB": empty_bar_rate(segments), "UPC": used_pitch_classes_per_bar(segments, encoding.min_pitch),
                  "polyphony": polyphony(segments)}
        out = {key: float(np.nanmean(value)) if np.isfinite(value).any() else float("nan")
               for key, value in values.items()}
    out["density"] = float(segments.mean())
    out["mean_pairwise_jaccard"] = mean_pairwise_jaccard(segments)  # ~0: mode collapse
    return out


def final_samples(run_dir: str | Path, config: GanConfig, out_dir: str | Path | None = None) -> list[Path]:
    """`config.sample.n` samples of the run's latest checkpoint as MIDI + PNG in <run>/samples (or out_dir)."""
    from musejax.train.gan_run import restore_gan
    from musejax.train.gan_samples import write_segments

    restored = restore_gan(run_dir)
    style = 0 if restored.generator.n_styles else None
    segments = generate_segments(restored.generator, restored.variables, config.sample.n, seed=config.sample.seed,
                                 threshold=config.sample.threshold, style=style)
    return write_segments(segments, restored.encoding, out_dir or Path(run_dir) / "samples", qpm=config.sample.qpm)

