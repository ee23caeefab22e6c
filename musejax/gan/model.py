"""Multitrack bar GAN (MuseGAN, Dong et al. AAAI 2018): a generator of n_bars bars for n_tracks tracks and a
convolutional discriminator, both pure Flax modules over arrays (B, tracks, bars, steps, pitches).

Generator: noise -> temporal generator (one latent per bar, for bar-to-bar coherence) -> bar generator
(dense -> reshape -> transposed convolutions with BatchNorm + ReLU -> sigmoid). The three MuseGAN modes:
  "composer": one bar generator makes all tracks (tracks = output channels) from shared noise
              (time-independent z and a time-dependent z through one shared temporal generator);
  "jamming":  one bar generator per track, each with its own noise and its own temporal generator;
  "hybrid":   one bar generator per track fed the shared noise *and* its own per-track noise.
Per-track generators are one module with a leading group axis (one group per track): separate weights and
BatchNorm statistics per track, one batched computation (composer: a single group making all tracks). The noise of a batch is one array
(B, n_noise, latent_dim), `n_noise` rows (see `MultitrackGenerator.noise_rows`), drawn by `sample_noise`.
BatchNorm statistics live in the "batch_stats" collection: `train=True` normalises with batch statistics
and returns updated running averages (`mutable=["batch_stats"]`), `train=False` uses the running averages.

Discriminator: tracks as channels of 3-D convolutions over (bar, step, pitch) with LeakyReLU (octave-wise
pitch convolution, then beat, then whole-bar, then neighbouring bars), dense, one logit.

Every convolution here has kernel = stride (non-overlapping patches, as most of MuseGAN's layers), so each
is written as a reshape and one matrix product: the same function as `nn.Conv` / `nn.ConvTranspose` with
those strides, but 10-20x faster to differentiate on CPU (XLA's strided-convolution gradients, and the
double gradient WGAN-GP needs, are slow there), which is what lets the default run fit on two CPU cores. With n_styles > 0 it is the projection
discriminator of Miyato & Koyama (2018): logit += <embed(style), features>; the generator then concatenates
a style embedding to its noise. No normalisation in the discriminator (WGAN-GP's penalty is per example).
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array
MODES = ("composer", "jamming", "hybrid")
PITCHES_PER_OCTAVE = 12


def _logit(p: float) -> float:
    if not 0.0 < p < 1.0:
        raise ValueError(f"musejax/gan/model.py: initial_density must be in (0, 1), got {p}")
    return math.log(p / (1.0 - p))


def _odd_part(n: int) -> tuple[int, int]:
    """n = odd * 2**doublings -> (odd, doublings)."""
    doublings = 0
    while n % 2 == 0:
        n //= 2
        doublings += 1
    return n, doublings


class GroupDense(nn.Module):
    """Dense layer with separate weights per group: x (groups, ..., in) -> (groups, ..., features)."""
    features: int
    groups: int
    bias_init_value: float = 0.0

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(batch_axis=(0,)),
                            (self.groups, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.constant(self.bias_init_value), (self.groups, self.features))
        flat = x.reshape(self.groups, -1, x.shape[-1])
        out = jnp.einsum("gni,gio->gno", flat, kernel) + bias[:, None, :]
        return out.reshape(*x.shape[:-1], self.features)


def _norm_relu(x: Array, train: bool) -> Array:
    """BatchNorm per (group, feature) over every other axis, then ReLU."""
    return nn.relu(nn.BatchNorm(use_running_average=not train, axis=(0, -1), momentum=0.9, epsilon=1e-5)(x))


def _expand(x: Array, axis: int, factor: int, dense: GroupDense) -> Array:
    """Transposed convolution with kernel = stride = `factor` along `axis` (counted without the feature axis
    at the end): every position becomes `factor` positions, each its own linear map of the features."""
    y = dense(x)  # (..., factor * features)
    features = y.shape[-1] // factor
    y = y.reshape(*y.shape[:-1], factor, features)
    y = jnp.moveaxis(y, -2, axis + 1)
    shape = list(x.shape[:-1])
    shape[axis] *= factor
    return y.reshape(*shape, features)


class TemporalGenerator(nn.Module):
    """(groups, B, latent_dim) -> (groups, B, n_bars, latent_dim): one latent per bar (MuseGAN's G_temp).

    Dense to (odd part of n_bars, hidden), then transposed convolutions (kernel = stride = 2) doubling bars.
    """
    n_bars: int
    latent_dim: int
    hidden: int
    groups: int = 1

    @nn.compact
    def __call__(self, z: Array, *, train: bool) -> Array:
        odd, doublings = _odd_part(self.n_bars)
        x = _norm_relu(GroupDense(odd * self.hidden, self.groups)(z), train)
        x = x.reshape(*z.shape[:2], odd, self.hidden)
        for layer in range(doublings):
            last = layer == doublings - 1
            x = _expand(x, 2, 2, GroupDense(2 * (self.latent_dim if last else self.hidden), self.groups))
            if not last:
                x = _norm_relu(x, train)
        return x if doublings else GroupDense(self.latent_dim, self.groups)(x)


class BarGenerator(nn.Module):
    """(groups, N, input) bar latents -> (groups, N, steps_per_bar, n_pitches, channels) logits.

    Dense to (odd part of steps_per_bar, 1 pitch position, widths[0]); transposed convolutions (kernel =
    stride) double the time axis, spread the pitch axis over the octaves (after the first doubling) and
    finally make the 12 pitches of each octave. BatchNorm + ReLU after every layer but the last.
    """
    steps_per_bar: int
    n_pitches: int
    channels: int
    widths: Sequence[int]
    groups: int = 1
    output_bias: float = 0.0  # initial logit of every cell

    def width(self, layer: int) -> int:
        return self.widths[min(layer, len(self.widths) - 1)]

    @nn.compact
    def __call__(self, h: Array, *, train: bool) -> Array:
        odd, doublings = _odd_part(self.steps_per_bar)
        octaves = self.n_pitches // PITCHES_PER_OCTAVE
        x = _norm_relu(GroupDense(odd * self.width(0), self.groups)(h), train)
        x = x.reshape(*h.shape[:2], odd, 1, self.width(0))  # (groups, N, time, pitch, features)
        layer = 1
        for doubling in range(max(doublings, 1)):
            if doubling < doublings:
                x = _norm_relu(_expand(x, 2, 2, GroupDense(2 * self.width(layer), self.groups)), train)
                layer += 1
            if doubling == 0 and octaves > 1:
                x = _norm_relu(_expand(x, 3, octaves, GroupDense(octaves * self.width(layer), self.groups)), train)
                layer += 1
        return _expand(x, 3, PITCHES_PER_OCTAVE, GroupDense(PITCHES_PER_OCTAVE * self.channels, self.groups,
                                                             bias_init_value=self.output_bias))


class MultitrackGenerator(nn.Module):
    """noise (B, noise_rows, latent_dim) [+ style ids (B,)] -> (B, n_tracks, n_bars, steps_per_bar, n_pitches).

    Returns probabilities (sigmoid); `return_logits=True` gives the logits instead.
    """
    n_tracks: int = 4
    n_bars: int = 4
    steps_per_bar: int = 16
    n_pitches: int = 48
    mode: str = "hybrid"
    latent_dim: int = 32
    temporal_hidden: int = 128
    bar_widths: Sequence[int] = (256, 128, 128, 64, 64, 32)
    n_styles: int = 0
    style_dim: int = 16
    # cell density the untrained generator starts from (its output bias is logit(initial_density)): 0.5 is an
    # unbiased start; the data's density (a chorale voice: one of 48 pitches, ~0.02) spares the generator
    # from first learning to silence 98% of the cells
    initial_density: float = 0.5

    @property
    def noise_rows(self) -> int:
        """Noise vectors per sample: shared (2: time-independent, temporal) and/or per track (2 per track)."""
        return {"composer": 2, "jamming": 2 * self.n_tracks, "hybrid": 2 + 2 * self.n_tracks}[self.mode]

    def noise_shape(self, batch_size: int) -> tuple[int, int, int]:
        return batch_size, self.noise_rows, self.latent_dim

    def sample_noise(self, key: Array, batch_size: int) -> Array:
        """Standard normal noise of `noise_shape(batch_size)`."""
        return jax.random.normal(key, self.noise_shape(batch_size), jnp.float32)

    def _check(self, noise: Array, style: Array | None) -> None:
        where = "musejax/gan/model.py: MultitrackGenerator"
        if self.mode not in MODES:
            raise ValueError(f"{where}: mode must be one of {MODES}, got {self.mode!r}")
        if self.n_pitches % PITCHES_PER_OCTAVE or self.n_pitches < PITCHES_PER_OCTAVE:
            raise ValueError(f"{where}: n_pitches must be a multiple of 12 (whole octaves), got {self.n_pitches}")
        if noise.ndim != 3 or noise.shape[1:] != (self.noise_rows, self.latent_dim):
            raise ValueError(f"{where}: noise must be (B, {self.noise_rows}, {self.latent_dim}) in mode "
                             f"{self.mode!r}, got {noise.shape}")
        if (style is None) != (self.n_styles == 0):
            raise ValueError(f"{where}: n_styles={self.n_styles}: pass style ids (B,) exactly when n_styles > 0")

    @nn.compact
    def __call__(self, noise: Array, style: Array | None = None, *, train: bool = False,
                 return_logits: bool = False) -> Array:
        self._check(noise, style)
        batch, tracks, bars, z = noise.shape[0], self.n_tracks, self.n_bars, self.latent_dim
        per_track = self.mode != "composer"
        groups = tracks if per_track else 1
        parts = []  # bar-generator inputs, each (groups, B, bars, ·)
        shared_rows = 0 if self.mode == "jamming" else 2
        if shared_rows:
            shared_temporal = TemporalGenerator(bars, z, self.temporal_hidden, name="shared_temporal")(
                noise[None, :, 1], train=train)
            parts += [jnp.broadcast_to(noise[None, :, None, 0], (groups, batch, bars, z)),
                      jnp.broadcast_to(shared_temporal, (groups, batch, bars, z))]
        if self.n_styles:
            condition = nn.Embed(self.n_styles, self.style_dim, name="style_embedding")(style)
            parts.append(jnp.broadcast_to(condition[None, :, None], (groups, batch, bars, self.style_dim)))
        if per_track:
            own = jnp.swapaxes(noise[:, shared_rows:shared_rows + tracks], 0, 1)  # (tracks, B, Z)
            own_temporal = TemporalGenerator(bars, z, self.temporal_hidden, groups=tracks, name="track_temporal")(
                jnp.swapaxes(noise[:, shared_rows + tracks:shared_rows + 2 * tracks], 0, 1), train=train)
            parts += [jnp.broadcast_to(own[:, :, None], (tracks, batch, bars, z)), own_temporal]
        bar_inputs = jnp.concatenate(parts, axis=-1).reshape(groups, batch * bars, -1)
        logits = BarGenerator(self.steps_per_bar, self.n_pitches, 1 if per_track else tracks,
                              tuple(self.bar_widths), groups, output_bias=_logit(self.initial_density),
                              name="bar_generator")(bar_inputs, train=train)
        # (groups, B * bars, steps, pitches, channels) -> (B, tracks, bars, steps, pitches)
        logits = logits.reshape(groups, batch, bars, self.steps_per_bar, self.n_pitches, -1)
        logits = jnp.moveaxis(logits, 5, 1).reshape(tracks, batch, bars, self.steps_per_bar, self.n_pitches)
        logits = jnp.swapaxes(logits, 0, 1)
        return logits if return_logits else nn.sigmoid(logits)


def minibatch_std(h: Array, group_size: int) -> Array:
    """(B, F) -> (B, 1): the features' standard deviation within each group of consecutive examples, averaged
    over features (Karras et al. 2018). A collapsed generator makes it ~0, which the discriminator sees: the
    usual remedy against mode collapse. Groups have `group_size` examples, or the largest divisor of B below
    it when B is not a multiple (a batch of 6 with group size 4: groups of 3)."""
    group = max(g for g in range(1, min(group_size, h.shape[0]) + 1) if h.shape[0] % g == 0)
    grouped = h.reshape(-1, group, h.shape[-1])
    std = jnp.sqrt(jnp.var(grouped, axis=1) + 1e-8).mean(axis=-1)  # (B / group,)
    return jnp.repeat(std, group)[:, None]


class MultitrackDiscriminator(nn.Module):
    """(B, n_tracks, n_bars, steps_per_bar, n_pitches) in [0, 1] [+ style ids (B,)] -> logits (B,).

    Convolutions (LeakyReLU 0.2) over (bar, step, pitch) with tracks as channels: per octave
    (kernel = stride = 12 pitches), per beat (kernel = stride = steps_per_beat), over each bar's beats and
    octaves, then over pairs of neighbouring bars; dense; one logit (plus the style projection).
    """
    steps_per_beat: int = 4
    channels: Sequence[int] = (64, 128, 256, 256)
    hidden: int = 512
    n_styles: int = 0
    minibatch_std_group: int = 4  # 0 = off; see `minibatch_std`

    @nn.compact
    def __call__(self, x: Array, style: Array | None = None) -> Array:
        where = "musejax/gan/model.py: MultitrackDiscriminator"
        if x.ndim != 5 or x.shape[-1] % PITCHES_PER_OCTAVE or x.shape[-2] % self.steps_per_beat:
            raise ValueError(f"{where}: expected (B, tracks, bars, steps, pitches) with whole octaves of pitches"
                             f" and whole beats of {self.steps_per_beat} steps, got {x.shape}")
        if (style is None) != (self.n_styles == 0):
            raise ValueError(f"{where}: n_styles={self.n_styles}: pass style ids (B,) exactly when n_styles > 0")
        batch, tracks, bars, steps, pitches = x.shape
        beats, octaves = steps // self.steps_per_beat, pitches // PITCHES_PER_OCTAVE
        act = lambda h: nn.leaky_relu(h, 0.2)  # noqa: E731
        h = x.astype(jnp.float32).reshape(batch, tracks, bars, beats, self.steps_per_beat, octaves,
                                          PITCHES_PER_OCTAVE)
        # (B, bars, beats, octaves, step-in-beat, pitch-in-octave x tracks): octave patches of every step
        h = h.transpose(0, 2, 3, 5, 4, 6, 1).reshape(batch, bars, beats, octaves, self.steps_per_beat, -1)
        h = act(nn.Dense(self.channels[0], name="octave_conv")(h))
        h = act(nn.Dense(self.channels[1], name="beat_conv")(h.reshape(batch, bars, beats, octaves, -1)))
        h = act(nn.Dense(self.channels[2], name="bar_conv")(h.reshape(batch, bars, -1)))  # (B, bars, c)
        if bars > 1:
            h = act(nn.Dense(self.channels[3], name="bar_pair_conv")(
                jnp.concatenate([h[:, :-1], h[:, 1:]], axis=-1)))  # (B, bars - 1, c)
        h = h.reshape(batch, -1)
        if self.minibatch_std_group:
            h = jnp.concatenate([h, minibatch_std(h, self.minibatch_std_group)], axis=-1)
        features = act(nn.Dense(self.hidden, name="dense")(h))
        logit = nn.Dense(1, name="logit")(features)[:, 0]
        if self.n_styles:
            embedding = nn.Embed(self.n_styles, self.hidden, name="style_projection")(style)
            logit = logit + jnp.sum(embedding * features, axis=-1)
        return logit
