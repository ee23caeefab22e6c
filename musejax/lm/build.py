"""Config + data description -> the Flax LM and the two functions the trainer needs (init, apply).

`meta` (saved in every checkpoint) describes the data side without loading it: encoding name and options,
loss kind, frame shape or vocabulary size, and the style names. So `restore_run` rebuilds the exact model.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from musejax.config import ConfigError
from musejax.lm.config import Config
from musejax.lm.data import TEXTURE_LABELS, texture_shift_names
from musejax.data.encodings import get_encoding
from musejax.lm.model import NADE_COUNT_INPUTS, NADE_ORDERS, OUTPUTS, EventLM, PianoRollLM


@dataclasses.dataclass(frozen=True)
class LMFunctions:
    """model: the Flax module; init_params(key) -> params; apply_fn(params, batch, *, train, rng) -> logits."""

    model: Any
    init_params: Callable[[jax.Array], Any]
    apply_fn: Callable[..., jax.Array]
    conditioned: bool


def data_meta(data: Any) -> dict[str, Any]:
    """The JSON description of an `LMData` that `build_lm` and `encoding_from_meta` need."""
    encoding = data.encoding
    return {
        "encoding": {"name": encoding.name, **encoding.options()},
        "loss_kind": data.loss_kind,
        "feature_shape": list(data.feature_shape),
        "vocab_size": int(getattr(encoding, "vocab_size", 0) or 0) if data.loss_kind == "categorical" else 0,
        "styles": list(data.styles),
        "max_notes": data.max_notes,
        "piece_lengths": list(map(int, data.piece_lengths)),  # sampled pieces draw their length from these
        "piece_bars": [list(map(int, bar)) for bar in data.piece_bars],  # and their bars (phase, steps per bar)
        "unlabelled_train_windows": int((data.train.style < 0).sum()),
        "data": data.description,
    }


def encoding_from_meta(meta: dict[str, Any]) -> Any:

    options = dict(meta["encoding"])
    name = options.pop("name")
    return get_encoding(name, **options)


@dataclasses.dataclass(frozen=True)
class ApplyLM:
    """apply_fn(params, batch, *, train, rng) -> logits. Compares by value (the module and a flag), so equal
    configs give equal functions and jit caches are shared between runs in one process (tests, resumes)."""

    model: Any
    conditioned: bool
    weight_noise: float = 0.0
    input_flips: float = 0.0

    @property
    def loss_kind(self) -> str:
        """The LM's loss (lm/steps.py): "categorical" for an event LM, else "bernoulli" (piano-roll)."""
        return "categorical" if isinstance(self.model, EventLM) else "bernoulli"

    def __call__(self, params: Any, batch: dict[str, jax.Array], *, train: bool, rng: jax.Array | None) -> jax.Array:
        style = batch["style"] if self.conditioned else None
        targets = batch["targets"] if getattr(self.model, "output", "") == "nade" else None
        inputs = batch["inputs"]
        rngs = None
        if train and rng is not None:
            rngs = {"dropout": rng}
            if self.weight_noise > 0:
                params = add_weight_noise(params, jax.random.fold_in(rng, 1), self.weight_noise)
            if self.input_flips > 0:
                inputs = flip_keys(inputs, jax.random.fold_in(rng, 2), self.input_flips)
        transpose = batch.get("transpose") if getattr(self.model, "transpositions", 0) else None
        texture = batch.get("texture") if getattr(self.model, "textures", 0) else None
        end = batch.get("end") if getattr(self.model, "end_buckets", 0) else None
        bar = batch.get("bar") if getattr(self.model, "bar_lines", False) else None
        return self.model.apply({"params": params}, inputs, style, targets=targets, deterministic=not train,
                                rngs=rngs, transpose=transpose, texture=texture, end=end, bar=bar)


def covering(apply_fn: "ApplyLM", frames: Any) -> "ApplyLM":
    """`apply_fn` for scoring `frames` (..., *frame): a NADE model widened to their fullest frame if needed
    (the segment form is exact up to `nade_max_notes` sounding keys; the parameters are the same)."""
    model = apply_fn.model
    if getattr(model, "output", "") != "nade":
        return apply_fn
    most = int(np.asarray(frames).reshape(-1, model.features).sum(axis=-1).max(initial=0))
    if most <= model.nade_max_notes:
        return apply_fn
    return dataclasses.replace(apply_fn, model=model.clone(nade_max_notes=min(most, model.features)))


def flip_keys(frames: jax.Array, key: jax.Array, probability: float) -> jax.Array:
    """Piano-roll input frames with each key flipped (on <-> off) independently with `probability`: the model
    learns to shrug off a stray or missing note, as its own samples will have, instead of holding it."""
    flips = jax.random.bernoulli(key, probability, frames.shape)
    return jnp.where(flips, 1.0 - frames, frames)


def add_weight_noise(params: Any, key: jax.Array, std: float) -> Any:
    """params + N(0, std^2) noise, independent per scalar (one key per leaf, folded from `key`)."""
    leaves, treedef = jax.tree.flatten(params)
    noisy = [leaf + std * jax.random.normal(jax.random.fold_in(key, i), leaf.shape, leaf.dtype)
             for i, leaf in enumerate(leaves)]
    return jax.tree.unflatten(treedef, noisy)


@dataclasses.dataclass(frozen=True)
class InitLM:
    """init_params(key) -> params, from a tiny example input; compares by value like ApplyLM."""

    model: Any
    example_shape: tuple[int, ...]
    example_dtype: str
    conditioned: bool

    def __call__(self, key: jax.Array) -> Any:
        example = jnp.zeros(self.example_shape, self.example_dtype)
        style = jnp.zeros((self.example_shape[0],), jnp.int32) if self.conditioned else None
        targets = example if getattr(self.model, "output", "") == "nade" else None  # builds the NADE's layers
        return self.model.init({"params": key}, example, style, targets=targets)["params"]


def _position_period(config: Config) -> int:
    """config.model.position_period, checked against the window starts it counts from."""
    period, data = config.model.position_period, config.data
    if period < 0:
        raise ConfigError(f"config.model.position_period must be >= 0, got {period}")
    misaligned = {name: value for name, value in (("hop_steps", data.hop_steps or data.window_steps),
                                                  ("eval_window_steps", data.eval_window_steps))
                  if period and value % period}
    if misaligned:
        name, value = next(iter(misaligned.items()))
        raise ConfigError(f"config.model.position_period={period} counts the place in the bar from each window's "
                          f"start, so config.data.{name} ({value}) must be a multiple of it")
    return period


def build_lm(config: Config, meta: dict[str, Any]) -> LMFunctions:
    """PianoRollLM (loss "bernoulli") or EventLM ("categorical") as configured by config.model."""

    m = config.model
    conditioned = m.style_dim > 0
    n_styles = len(meta["styles"]) if conditioned else 0
    if conditioned and (n_styles == 0 or meta.get("unlabelled_train_windows", 0)):
        raise ConfigError(f"config.model.style_dim={m.style_dim} needs style labels on every piece; data "
                          f"{meta.get('data', '')!r} has styles {meta['styles']} and "
                          f"{meta.get('unlabelled_train_windows', 0)} unlabelled training windows")
    common = dict(cell=m.cell, hidden=m.hidden, layers=m.layers, dropout=m.dropout, impl=m.impl,
                  n_styles=n_styles, style_dim=max(m.style_dim, 1))
    feature_shape = tuple(meta["feature_shape"])
    if m.end_quarters < 0:
        raise ConfigError(f"config.model.end_quarters must be >= 0, got {m.end_quarters}")
    if meta.get("encoding", {}).get("name") != "performance":  # a grid: the place in the bar as an input
        common["position_period"] = _position_period(config)
        common["bar_lines"] = bool(m.bar_lines)
        if m.end_quarters:  # and the quarters left to the piece's end
            common.update(end_buckets=m.end_quarters, end_bucket_steps=max(int(config.data.steps_per_quarter), 1))
    if m.transpose_input:  # the augmentation's shift as an input (config.py)
        common["transpositions"] = max(int(config.data.transpose_semitones), 0)
    if texture_shift_names(config.data, meta["loss_kind"]):  # the texture label as an input (config.py)
        common["textures"] = TEXTURE_LABELS
    if (m.output not in OUTPUTS or m.nade_order not in NADE_ORDERS or m.nade_hidden < 1
            or m.nade_count_input not in NADE_COUNT_INPUTS):
        raise ConfigError(f"config.model.output must be one of {OUTPUTS} (got {m.output!r}), nade_order one of "
                          f"{NADE_ORDERS} (got {m.nade_order!r}), nade_hidden >= 1 (got {m.nade_hidden}) and "
                          f"nade_count_input one of {NADE_COUNT_INPUTS} (got {m.nade_count_input!r})")
    if meta["loss_kind"] == "bernoulli":
        features = math.prod(feature_shape)
        # the NADE's segment form covers the fullest frame of the data (`covering` widens it for other pieces)
        max_notes = min(features, max(int(meta.get("max_notes") or features), 1))
        model = PianoRollLM(features=features, output=m.output, nade_hidden=m.nade_hidden, nade_order=m.nade_order,
                            nade_max_notes=max_notes, nade_count=m.nade_count,
                            nade_count_input=m.nade_count_input, **common)
        init = InitLM(model, (1, 2, *feature_shape), "float32", conditioned)
    else:  # events: a softmax over the next event (config.model.output is about piano-roll frames)
        model = EventLM(vocab_size=meta["vocab_size"], embed_dim=m.embed_dim, **common)
        init = InitLM(model, (1, 2), "int32", conditioned)
    if m.weight_noise < 0:
        raise ConfigError(f"config.model.weight_noise must be >= 0, got {m.weight_noise}")
    if not 0 <= m.input_flips < 0.5:
        raise ConfigError(f"config.model.input_flips must be in [0, 0.5), got {m.input_flips}")
    input_flips = float(m.input_flips) if meta["loss_kind"] == "bernoulli" else 0.0  # piano-roll frames only
    apply_fn = ApplyLM(model, conditioned, float(m.weight_noise), input_flips)
    return LMFunctions(model=model, init_params=init, apply_fn=apply_fn,
                       conditioned=conditioned)
