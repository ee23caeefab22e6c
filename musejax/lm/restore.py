"""`restore_run`: a trained language-model run loaded back from its directory, for everything that uses one
(sampling, likelihood, evaluation)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from musejax.config import ConfigError, to_dataclass
from musejax.lm.build import build_lm, encoding_from_meta
from musejax.lm.config import Config, load_config_json
from musejax.train.checkpoint import open_checkpoint, restore_meta, restore_state
from musejax.train.mesh import make_mesh
from musejax.train.state import abstract_train_state, make_optimizer


@dataclasses.dataclass
class RestoredRun:
    """A trained run loaded back: what sampling and evaluation need.

    `params` is the model's parameter pytree (`state.params`); `apply_fn(params, batch, train=False, rng=None)`
    returns logits for a batch dict {"inputs", "style"} as in training; `model` is the Flax module itself
    (`model.apply({"params": params}, ..., method="step")` for step-by-step decoding); `encoding` decodes
    arrays to NoteSequences; `styles[i]` is style index i (pass `style` only if config.model.style_dim > 0).
    Training conventions (musejax/lm/data.py): a piano-roll LM ("bernoulli") reads an all-zero frame first
    and predicts frame 0 from it; an event LM ("categorical") is given event 0 and predicts events 1...
    """

    run_dir: Path
    config: Config
    step: int
    state: Any
    params: Any
    model: Any
    apply_fn: Any
    encoding: Any
    loss_kind: str
    styles: list[str]
    meta: dict[str, Any]


def restore_run(run_dir: str | Path, which: str | int = "best") -> RestoredRun:
    """Load a run directory's config and a checkpoint: "best" (lowest valid NLL), "latest" or a step number.

    Raises ConfigError (a ValueError) naming the run dir if it has no config.json or no checkpoint.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ConfigError(f"{run_dir}: not a run directory (no config.json)")
    config = load_config_json(run_dir / "config.json")
    manager, step = open_checkpoint(run_dir, config.ckpt, which, "musejax train")
    try:
        meta = restore_meta(manager, step)
        saved_config = manager.restore(step, args=ocp.args.Composite(config=ocp.args.JsonRestore()))["config"]
        config = to_dataclass(saved_config, Config)
        encoding = encoding_from_meta(meta)
        lm = build_lm(config, meta)
        tx, _ = make_optimizer(config.optim, config.train.steps)
        # one device; in a multi-host job (`musejax sample` on N processes) replicated over all of them
        mesh = make_mesh(jax.devices()[:1] if jax.process_count() == 1 else None)
        abstract = abstract_train_state(lm.init_params, lm.apply_fn, tx, mesh)
        state = restore_state(manager, step, abstract)
    finally:
        manager.close()
    return RestoredRun(run_dir=run_dir, config=config, step=int(step), state=state, params=state.params,
                       model=lm.model, apply_fn=lm.apply_fn, encoding=encoding, loss_kind=meta["loss_kind"],
                       styles=list(meta["styles"]), meta=meta)
