"""A GAN run's pieces: networks and optimizers from the config, the checkpoint meta, and `restore_gan`.

`meta` (saved in every checkpoint) describes the data side so a run reloads without its corpus: the
multitrack encoding's options, the style names and, for an exact resume, the running metric sums.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import jax

from musejax.config import ConfigError
from musejax.gan.config import GanConfig, saved_gan_config
from musejax.gan.steps import GanLoss, abstract_gan_state
from musejax.gan.model import MultitrackDiscriminator, MultitrackGenerator
from musejax.train.state import make_optimizer
from musejax.train import checkpoint as ckpt_lib
from musejax.gan.data import make_encoding
from musejax.train.mesh import make_mesh


def build_networks(config: GanConfig, n_styles: int) -> tuple[Any, Any]:
    """(MultitrackGenerator, MultitrackDiscriminator) as configured; conditional when config.model.style_dim > 0."""

    d, m = config.data, config.model
    conditional = n_styles if m.style_dim > 0 else 0
    generator = MultitrackGenerator(n_tracks=d.n_tracks, n_bars=d.n_bars, steps_per_bar=d.steps_per_bar,
                                    n_pitches=d.n_pitches, mode=m.mode, latent_dim=m.latent_dim,
                                    temporal_hidden=m.temporal_hidden, bar_widths=tuple(m.bar_widths),
                                    n_styles=conditional, style_dim=max(m.style_dim, 1),
                                    initial_density=m.initial_density)
    discriminator = MultitrackDiscriminator(steps_per_beat=d.steps_per_quarter, channels=tuple(m.d_channels),
                                            hidden=m.d_hidden, n_styles=conditional,
                                            minibatch_std_group=m.d_minibatch_std_group)
    return generator, discriminator


def make_optimizers(config: GanConfig) -> tuple[Any, Any]:
    """Two optax optimizers (the LM's `make_optimizer`): G over train.steps steps, D over steps * n_critic.

    Each runs on its network's parameters flattened into one vector (`optax.flatten`: the same element-wise
    update, but a handful of fused ops instead of a few per parameter tensor, which compiles faster).
    """
    return _optimizers(config.g_optim, config.train.steps, config.d_optim, config.train.steps * config.loss.n_critic)


@functools.lru_cache(maxsize=16)
def _optimizers(g_optim: Any, g_steps: int, d_optim: Any, d_steps: int) -> tuple[Any, Any]:
    """Cached: the optimizers are static in the state, so equal configs must give equal objects (shared jit caches)."""
    import optax


    return optax.flatten(make_optimizer(g_optim, g_steps)[0]), optax.flatten(make_optimizer(d_optim, d_steps)[0])


def gan_loss(config: GanConfig) -> GanLoss:
    return GanLoss(kind=config.loss.kind, gp_weight=float(config.loss.gp_weight), n_critic=config.loss.n_critic,
                   binary_fakes=config.loss.binary_fakes)


def gan_meta(data: Any) -> dict[str, Any]:
    """JSON description of a `GanData` for the checkpoint."""
    return {"encoding": {"name": data.encoding.name, **data.encoding.options()}, "styles": list(data.styles),
            "unlabelled_train_segments": int((data.train_style < 0).sum()), "data": data.description}


def conditioning_styles(config: GanConfig, meta: dict[str, Any]) -> int:
    """Number of styles the networks condition on (0 = unconditional); errors if labels are missing."""
    if config.model.style_dim <= 0:
        return 0
    if not meta["styles"] or meta.get("unlabelled_train_segments", 0):
        raise ConfigError(f"config.model.style_dim={config.model.style_dim} needs a style label on every piece; "
                          f"data {meta.get('data', '')!r} has styles {meta['styles']} and "
                          f"{meta.get('unlabelled_train_segments', 0)} unlabelled training segments")
    return len(meta["styles"])


@dataclasses.dataclass
class RestoredGan:
    """A trained GAN loaded back: the generator and its variables ({"params", "batch_stats"}), encoding, styles."""

    run_dir: Path
    config: GanConfig
    step: int
    generator: Any
    variables: dict[str, Any]
    encoding: Any
    styles: list[str]
    state: Any


def restore_gan(run_dir: str | Path, which: str | int = "latest") -> RestoredGan:
    """Load a GAN run's config and a checkpoint ("latest" or a step); ConfigError naming the run dir if none.
    (A GAN has no validation loss: "best" is the latest.)"""

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ConfigError(f"{run_dir}: not a run directory (no config.json)")
    config = saved_gan_config(run_dir)
    manager, step = ckpt_lib.open_checkpoint(run_dir, config.ckpt, which, "musejax gan train")
    try:
        meta = ckpt_lib.restore_meta(manager, step)
        generator, discriminator = build_networks(config, conditioning_styles(config, meta))
        g_tx, d_tx = make_optimizers(config)
        abstract = abstract_gan_state(generator, discriminator, g_tx, d_tx, gan_loss(config),
                                      generator.n_styles, make_mesh(jax.devices()[:1]))
        state = ckpt_lib.restore_state(manager, step, abstract)
    finally:
        manager.close()
    return RestoredGan(run_dir=run_dir, config=config, step=int(step), generator=generator,
                       variables={"params": state.g_params, "batch_stats": state.g_batch_stats},
                       encoding=make_encoding(config.data), styles=list(meta["styles"]), state=state)
