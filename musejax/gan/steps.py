"""GAN state, losses and the pure discriminator / generator steps (jit-compiled once by the loop).

`GanState` holds both networks' parameters, the generator's BatchNorm statistics and two optax optimizer
states. `d_step` changes only the discriminator's parameters and optimizer state (the generator makes its fakes
in training mode, i.e. with batch statistics, but the updated running averages are dropped); `g_step` changes
only the generator's parameters, its optimizer state and its BatchNorm running averages. `train_step` is one
generator step: `n_critic` discriminator steps (a `lax.scan` over stacked real batches) then one generator step,
with noise from fold_in(rng, step). Metrics are per-step means added into running sums.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from musejax.train.mesh import replicated

Metrics = dict[str, jax.Array]
METRIC_KEYS = ("d_loss", "g_loss", "gradient_penalty", "d_real", "d_fake", "real_density", "fake_density", "steps")


@dataclasses.dataclass(frozen=True)
class GanLoss:
    """Static loss settings: kind "wgan-gp" | "minimax", gradient-penalty weight, critic steps per G step,
    and whether the discriminator sees the fakes binarised (p > 0.5 forward, straight-through gradient)."""

    kind: str = "wgan-gp"
    gp_weight: float = 10.0
    n_critic: int = 5
    binary_fakes: bool = False


class GanState(struct.PyTreeNode):
    """Everything a GAN step changes, plus the static modules, optimizers and loss settings."""

    step: jax.Array  # generator steps done
    g_params: Any
    g_batch_stats: Any
    d_params: Any
    g_opt_state: Any
    d_opt_state: Any
    generator: Any = struct.field(pytree_node=False)
    discriminator: Any = struct.field(pytree_node=False)
    g_tx: optax.GradientTransformation = struct.field(pytree_node=False)
    d_tx: optax.GradientTransformation = struct.field(pytree_node=False)
    loss: GanLoss = struct.field(pytree_node=False)

    def generate(self, noise: jax.Array, style: jax.Array | None, *, train: bool,
                 g_params: Any = None) -> tuple[jax.Array, Any]:
        """Fakes in [0, 1] and the BatchNorm statistics after this call (unchanged when not training)."""
        variables = {"params": self.g_params if g_params is None else g_params, "batch_stats": self.g_batch_stats}
        if not train:
            return self.generator.apply(variables, noise, style, train=False), self.g_batch_stats
        fake, updates = self.generator.apply(variables, noise, style, train=True, mutable=["batch_stats"])
        return fake, updates["batch_stats"]

    def discriminator_input(self, fake: jax.Array) -> jax.Array:
        """What D sees of the fakes: probabilities, or with `loss.binary_fakes` the binarised segments the
        samples will be (BinaryMuseGAN's deterministic binary neurons: gradient passed straight through)."""
        if not self.loss.binary_fakes:
            return fake
        return fake + jax.lax.stop_gradient((fake > 0.5).astype(fake.dtype) - fake)


# ------------------------------------------------------------------------------------------------ losses


def minimax_d_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """-log D(real) - log(1 - D(fake)), batch means (Goodfellow et al. 2014)."""
    return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def nonsaturating_g_loss(fake_logits: jax.Array) -> jax.Array:
    """-log D(G(z)): the generator side of the minimax game with non-vanishing gradients early on."""
    return jnp.mean(jax.nn.softplus(-fake_logits))


def wasserstein_d_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
    """E[D(fake)] - E[D(real)]: the critic's side of the Wasserstein GAN (without the penalty)."""
    return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_g_loss(fake_scores: jax.Array) -> jax.Array:
    return -jnp.mean(fake_scores)


def gradient_penalty(critic: Callable[[jax.Array], jax.Array], real: jax.Array, fake: jax.Array,
                     mix: jax.Array) -> jax.Array:
    """WGAN-GP penalty E[(||grad_x critic(x)||_2 - 1)^2] at x = mix * real + (1 - mix) * fake (Gulrajani et
    al. 2017); `mix` (B,) in [0, 1], one per example; `critic` maps (B, ...) to scores (B,)."""
    weights = mix.reshape((-1,) + (1,) * (real.ndim - 1))
    between = weights * real + (1.0 - weights) * fake
    grads = jax.grad(lambda x: jnp.sum(critic(x)))(between)
    norms = jnp.sqrt(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1) + 1e-12)
    return jnp.mean(jnp.square(norms - 1.0))


# ------------------------------------------------------------------------------------------------- steps


def _critic(state: GanState, d_params: Any, style: jax.Array | None) -> Callable[[jax.Array], jax.Array]:
    return lambda x: state.discriminator.apply({"params": d_params}, x, style)


def d_step(state: GanState, real: jax.Array, style: jax.Array | None, key: jax.Array) -> tuple[GanState, Metrics]:
    """One discriminator update on a real batch (B, tracks, bars, steps, pitches) and as many fakes."""
    noise_key, mix_key = jax.random.split(key)
    real = real.astype(jnp.float32)
    noise = state.generator.sample_noise(noise_key, real.shape[0])
    fake, _ = state.generate(noise, style, train=True)  # new running averages dropped: D step touches D only
    fake = jax.lax.stop_gradient(state.discriminator_input(fake))

    def loss_fn(d_params):
        critic = _critic(state, d_params, style)
        real_scores, fake_scores = critic(real), critic(fake)
        if state.loss.kind == "wgan-gp":
            penalty = gradient_penalty(critic, real, fake, jax.random.uniform(mix_key, (real.shape[0],)))
            loss = wasserstein_d_loss(real_scores, fake_scores) + state.loss.gp_weight * penalty
        else:
            penalty = jnp.zeros(())
            loss = minimax_d_loss(real_scores, fake_scores)
        return loss, (penalty, jnp.mean(real_scores), jnp.mean(fake_scores))

    (loss, (penalty, d_real, d_fake)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
    updates, d_opt_state = state.d_tx.update(grads, state.d_opt_state, state.d_params)
    state = state.replace(d_params=optax.apply_updates(state.d_params, updates), d_opt_state=d_opt_state)
    return state, {"d_loss": loss, "gradient_penalty": penalty, "d_real": d_real, "d_fake": d_fake,
                   "real_density": jnp.mean(real)}


def g_step(state: GanState, batch_size: int, style: jax.Array | None, key: jax.Array) -> tuple[GanState, Metrics]:
    """One generator update through the current discriminator; BatchNorm running averages advance."""
    noise = state.generator.sample_noise(key, batch_size)

    def loss_fn(g_params):
        fake, batch_stats = state.generate(noise, style, train=True, g_params=g_params)
        scores = state.discriminator.apply({"params": state.d_params}, state.discriminator_input(fake), style)
        loss = wasserstein_g_loss(scores) if state.loss.kind == "wgan-gp" else nonsaturating_g_loss(scores)
        return loss, (batch_stats, jnp.mean(fake))

    (loss, (batch_stats, density)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g_params)
    updates, g_opt_state = state.g_tx.update(grads, state.g_opt_state, state.g_params)
    state = state.replace(g_params=optax.apply_updates(state.g_params, updates), g_opt_state=g_opt_state,
                          g_batch_stats=batch_stats)
    return state, {"g_loss": loss, "fake_density": density}


def train_step(state: GanState, batch: dict[str, jax.Array], rng: jax.Array) -> tuple[GanState, Metrics]:
    """n_critic D steps on batch["real"] (n_critic, B, ...) [and batch["style"] (n_critic, B)], then one G step."""
    key = jax.random.fold_in(rng, state.step)
    styles = batch.get("style")

    def critic_step(current, inputs):
        index, real, style = inputs
        return d_step(current, real, style, jax.random.fold_in(key, index))

    n_critic = batch["real"].shape[0]
    state, d_metrics = jax.lax.scan(critic_step, state, (jnp.arange(n_critic), batch["real"], styles))
    last_style = None if styles is None else styles[-1]
    state, g_metrics = g_step(state, batch["real"].shape[1], last_style, jax.random.fold_in(key, n_critic))
    metrics = {name: jnp.mean(value) for name, value in d_metrics.items()}
    metrics.update(g_metrics, steps=jnp.ones((), jnp.float32))
    return state.replace(step=state.step + 1), metrics


def zero_metrics() -> Metrics:
    return {key: jnp.zeros((), jnp.float32) for key in METRIC_KEYS}


def summarize(sums: dict[str, Any]) -> dict[str, float]:
    """Host-side: running sums -> means per generator step (plus the critic's Wasserstein estimate)."""
    count = max(float(sums["steps"]), 1.0)
    out = {key: float(sums[key]) / count for key in METRIC_KEYS if key != "steps"}
    out["d_real_minus_fake"] = out["d_real"] - out["d_fake"]
    return out


# ---------------------------------------------------------------------------------------- initialisation


def _init_state(key: jax.Array, *, generator: Any, discriminator: Any, g_tx: Any, d_tx: Any, loss: GanLoss,
                n_styles: int) -> GanState:
    g_key, d_key = jax.random.split(key)
    noise = jnp.zeros(generator.noise_shape(2), jnp.float32)
    style = jnp.zeros((2,), jnp.int32) if n_styles else None
    g_variables = generator.init({"params": g_key}, noise, style, train=False)
    example = jnp.zeros((2, generator.n_tracks, generator.n_bars, generator.steps_per_bar, generator.n_pitches))
    d_params = discriminator.init({"params": d_key}, example, style)["params"]
    return GanState(step=jnp.zeros((), jnp.int32), g_params=g_variables["params"],
                    g_batch_stats=g_variables["batch_stats"], d_params=d_params,
                    g_opt_state=g_tx.init(g_variables["params"]), d_opt_state=d_tx.init(d_params),
                    generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx, loss=loss)


_STATIC = ("generator", "discriminator", "g_tx", "d_tx", "loss", "n_styles")


def run_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """(init key, step key) of a run. Parameters are drawn with JAX's "rbg" generator (the ~30 initialisers
    compile 3x faster than with threefry on CPU; its numbers may differ between backends, which only
    matters for a fresh init); the training noise uses the default threefry key, folded with the step."""
    return jax.random.key(seed, impl="rbg"), jax.random.fold_in(jax.random.key(seed), 1)


def abstract_gan_state(generator: Any, discriminator: Any, g_tx: Any, d_tx: Any, loss: GanLoss, n_styles: int,
                       mesh: Mesh) -> GanState:
    """Shapes, dtypes and (replicated) shardings of the state: the Orbax restore target."""
    init = functools.partial(_init_state, generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx,
                             loss=loss, n_styles=n_styles)
    abstract = jax.eval_shape(init, jax.random.key(0))
    sharding = replicated(mesh)
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)


def create_gan_state(generator: Any, discriminator: Any, g_tx: Any, d_tx: Any, loss: GanLoss, n_styles: int,
                     key: jax.Array, mesh: Mesh) -> tuple[GanState, GanState]:
    """(state, abstract state): eval_shape -> shardings -> jit(init, out_shardings). The networks and
    optimizers are static arguments of one module-level function, so equal configs share the compilation."""
    abstract = abstract_gan_state(generator, discriminator, g_tx, d_tx, loss, n_styles, mesh)
    init = jax.jit(_init_state, static_argnames=_STATIC, out_shardings=jax.tree.map(lambda a: a.sharding, abstract))
    state = init(key, generator=generator, discriminator=discriminator, g_tx=g_tx, d_tx=d_tx, loss=loss,
                 n_styles=n_styles)
    return state, abstract
