"""GAN training: `GanTask` (segments -> jit-compiled n_critic D steps + 1 G step, sample grids) run by `fit`.

`train_gan(config, run_dir)` trains (or continues) the run in `run_dir` with the shared loop (train/fit.py). Generator step s always uses the
real batches s * n_critic .. (s + 1) * n_critic - 1 of the seeded stream and noise from fold_in(rng, s), and
the running metric sums travel in the checkpoint, so a run stopped and resumed at any checkpoint writes the
same parameters and metrics as an uninterrupted one. Every `train.sample_every_steps` steps a grid of
`sample.n` samples from fixed noise goes to `<run>/samples/step_<N>_grid.png` and `_all.mid`, and their
MuseGAN metrics to metrics.jsonl (split "samples").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import jax
import numpy as np

from musejax.config import ConfigError
from musejax.train.fit import Cadence, FitResult, TaskBase, fit
from musejax.gan.config import RESUME_GROUPS, GanConfig
from musejax.gan.data import GanBatches, GanData, load_gan_data
from musejax.gan.run import build_networks, conditioning_styles, gan_loss, gan_meta, make_optimizers, restore_gan
from musejax.gan.sample import (generate_segments, mean_pairwise_jaccard, segments_to_sequence, write_grid,
    write_segments)
from musejax.gan.steps import create_gan_state, run_keys, summarize, train_step, zero_metrics
from musejax.train.mesh import replicate_tree, shard_batch, small_model_mesh
from musejax.evaluate.musegan import empty_bar_rate, polyphony, used_pitch_classes_per_bar
from musejax.evaluate.runs import log_samples


class GanTask(TaskBase):
    """The GAN task for `fit`: real segments (n_critic batches per generator step), the joint D/G step, and a
    grid of samples from fixed noise every `train.sample_every_steps`; no validation, latest checkpoints only."""

    name = "gan"
    resume_groups = RESUME_GROUPS
    best_metric = None
    best_mode = "min"
    writes_final = False
    train_step = staticmethod(train_step)

    def __init__(self, config: GanConfig, mesh: Any, data: GanData | None, progress: bool, run_dir: Path) -> None:
        super().__init__(config, mesh, data, progress, run_dir)
        t = config.train
        self.cadence = Cadence(t.steps, t.log_every_steps, checkpoint_every=t.checkpoint_every_steps)

    def init(self) -> tuple[Any, Any, dict[str, Any], Any]:
        config, mesh = self.config, self.mesh
        data = self.load_data(load_gan_data)
        if len(data.train) < config.train.batch_size:
            raise ConfigError(f"{data.description or 'dataset'}: {len(data.train)} training segments are fewer "
                              f"than one batch (config.train.batch_size={config.train.batch_size})")
        self.meta = gan_meta(data)
        self.n_styles = conditioning_styles(config, self.meta)
        generator, discriminator = build_networks(config, self.n_styles)
        g_tx, d_tx = make_optimizers(config)
        init_rng, step_rng = run_keys(config.train.seed)
        state, abstract_state = create_gan_state(generator, discriminator, g_tx, d_tx, gan_loss(config), self.n_styles,
                                                 init_rng, mesh)
        return state, abstract_state, zero_metrics(), replicate_tree(step_rng, mesh)

    def batches(self, start_step: int) -> Iterator[dict[str, jax.Array]]:
        config = self.config
        stream = GanBatches(self.data, config.train.batch_size, config.train.seed, config.data.transpose_semitones,
                            config.loss.n_critic, with_style=self.n_styles > 0).from_step(start_step)
        return (shard_batch(batch, self.mesh, axis=1) for batch in stream)  # (n_critic, B, ...): split B

    def summarize(self, sums: dict[str, Any], step: int) -> dict[str, float]:
        return summarize(sums)

    def finite(self, values: dict[str, float]) -> dict[str, str]:
        return {key: key for key in ("d_loss", "g_loss") if key in values}

    def best_value(self, metrics: dict[str, float]) -> float:
        raise NotImplementedError("the GAN ranks no checkpoint")

    def after_step(self, state: Any, step: int, writer: Any) -> bool:
        t = self.config.train
        if jax.process_index() != 0 or not t.sample_every_steps or (step % t.sample_every_steps and step != t.steps):
            return False
        values, segments = sample_grid(state, self.config, self.data.encoding, self.run_dir, step)
        writer.write(step, "samples", values)
        self._board(segments, step, writer)
        return True  # sampling time is not training speed

    def _board(self, segments: np.ndarray, step: int, writer: Any) -> None:
        """The grid's first `sample.board_n` segments in TensorBoard (piano-roll + audio) and, every
        `sample.board_metrics_every` grids, their `musejax evaluate` metrics against the held-out segments."""
        s, t = self.config.sample, self.config.train
        if not s.board_n:
            return

        encoding = self.data.encoding
        if not hasattr(self, "board_reference"):
            self.board_reference = [segments_to_sequence(segment[None], encoding, qpm=s.qpm)
                                    for segment in self.data.heldout[:64]]
        sequences = [segments_to_sequence(segment[None], encoding, qpm=s.qpm) for segment in segments[:s.board_n]]
        n_grid = -(-step // t.sample_every_steps)  # the last step, off the cadence, counts as the next grid
        every = s.board_metrics_every
        log_samples(writer, sequences, self.board_reference, step,
                    with_metrics=bool(every) and (n_grid % every == 0 or step == t.steps))

    def postfix(self, summary: dict[str, float]) -> dict[str, str]:
        return {"d": f"{summary['d_loss']:.3f}", "g": f"{summary['g_loss']:.3f}"}

    def describe(self, summary: dict[str, float], metrics: dict[str, float]) -> str:
        return f"d_loss {summary.get('d_loss', float('nan')):.4f}  g_loss {summary.get('g_loss', float('nan')):.4f}"

    def divergence_hint(self) -> str:
        return "lower config.g_optim/d_optim.learning_rate or use loss.kind=wgan-gp"


def train_gan(config: GanConfig, run_dir: str | Path, *, resume: bool = True, stop_at_step: int | None = None,
              progress: bool = True, data: GanData | None = None,
              devices: Sequence[jax.Device] | None = None) -> FitResult:
    """Train `config` in `run_dir` (continuing its latest checkpoint if `resume`) up to config.train.steps.

    `stop_at_step` stops after that step with a checkpoint (as a preemption would); `data` replaces the
    corpus of config.data (tests); `devices` as in `mesh.small_model_mesh` (data parallelism over the batch).
    """
    run_dir = Path(run_dir)
    mesh = small_model_mesh(config.train.batch_size, devices)
    if progress and mesh.devices.size < jax.device_count():
        print(f"training on {mesh.devices.size} of {jax.device_count()} {jax.default_backend()} devices")
    return fit(GanTask(config, mesh, data, progress, run_dir), config, run_dir, resume=resume,
               stop_at_step=stop_at_step, progress=progress)


def sample_grid(state: Any, config: GanConfig, encoding: Any, run_dir: Path,
                step: int) -> tuple[dict[str, float], np.ndarray]:
    """Write the step's sample grid (fixed noise: same samples at the same step on resume); return a few
    MuseGAN metrics of it, averaged over tracks, and its segments."""

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
    return out, segments


def final_samples(run_dir: str | Path, config: GanConfig, out_dir: str | Path | None = None) -> list[Path]:
    """`config.sample.n` samples of the run's latest checkpoint as MIDI + PNG in <run>/samples (or out_dir)."""

    restored = restore_gan(run_dir)
    style = 0 if restored.generator.n_styles else None
    segments = generate_segments(restored.generator, restored.variables, config.sample.n, seed=config.sample.seed,
                                 threshold=config.sample.threshold, style=style)
    return write_segments(segments, restored.encoding, out_dir or Path(run_dir) / "samples", qpm=config.sample.qpm)

