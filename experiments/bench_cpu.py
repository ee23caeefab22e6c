"""CPU benchmark: musejax GRU piano-roll LM vs PyTorch (and flax.linen.RNN) -- training and sampling.

Train step: B x T frames of F pitches -> GRU(H) -> Linear(F) -> sigmoid BCE -> Adam, same sizes everywhere:
  musejax                PianoRollLM(cell="gru", impl="xla"), jit train step with donated state, the batch split
                         over one CPU device per core, as `musejax train` runs it (musejax/host.py)
  musejax-1-device       the same on one CPU device (JAX's default)
  musejax-autodiff       the same maths with JAX autodiff through lax.scan (no custom VJP), split as musejax
  flax-linen-rnn         flax.linen.RNN(GRUCell) + Dense, same train step, one device (the issue's calibration)
  flax-linen-rnn-split   the same, split as musejax
  torch                  torch.nn.GRU + Linear + BCEWithLogitsLoss + torch.optim.Adam (eager, --torch-threads)
Sampling: B sequences x S steps of Bernoulli sampling, the library's sampler (musejax.lm.sample: `step` inside one
jit-compiled lax.scan, the sequences split over the CPU devices as `musejax sample` does; and on one device) vs
a PyTorch step loop (torch.nn.GRUCell + Linear, inference mode); both draw the uniform noise of all steps in one
call first. Rows are interleaved within each repetition and the medians over repetitions are reported, so
ratios come from the same machine state.

CPU devices: the script makes one per core before JAX starts, as the `musejax` command does; MUSEJAX_CPU_DEVICES=N
or XLA_FLAGS=--xla_force_host_platform_device_count=N choose another count.

Host allocator: XLA:CPU allocates each step's temporaries (tens of MB here) as one block; glibc serves blocks
over its mmap threshold (<= 32 MiB) with fresh mmaps, so every step page-faults the whole block again
(measured ~15-25% of a train step at the default sizes). Unless --no-tune-malloc, the script first calls
mallopt(M_MMAP_MAX=0, M_TRIM_THRESHOLD=1 GiB) so those blocks are reused; it applies to the whole process, torch
included. The same effect from outside: MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 in the environment.

  python experiments/bench_cpu.py [--batch 32 --steps 128 --hidden 256 --features 88] [--quick] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any, Callable

from musejax.host import tune_host_malloc, use_every_cpu_core

use_every_cpu_core()  # before JAX starts, as the `musejax` command does

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from flax import linen as nn  # noqa: E402
from jax.sharding import Mesh  # noqa: E402

from musejax.lm.model import PianoRollLM  # noqa: E402
from musejax.ops import gru as gru_ops  # noqa: E402
from musejax.timing import time_interleaved  # noqa: E402
from musejax.train.mesh import batch_sharding, data_parallel_devices, make_mesh, replicated  # noqa: E402

try:
    import torch
except ImportError:  # the torch rows are skipped
    torch = None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=128, help="sequence length T of a training window")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--features", type=int, default=88)
    parser.add_argument("--sample-steps", type=int, default=128)
    parser.add_argument("--reps", type=int, default=7, help="repetitions; medians are reported")
    parser.add_argument("--iters", type=int, default=10, help="train steps / sampling calls per repetition")
    parser.add_argument("--torch-threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 reps: a smoke test")
    parser.add_argument("--no-tune-malloc", dest="tune_malloc", action="store_false",
                        help="leave glibc's allocator settings alone (see the module docstring)")
    parser.add_argument("--out", type=Path, default=Path("experiments/results/bench_cpu.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.hidden, args.sample_steps, args.reps, args.iters = 4, 16, 32, 16, 2, 2
    return args


# ------------------------------------------------------------------------------------------------------------
# JAX contenders
# ------------------------------------------------------------------------------------------------------------
def _jax_train(loss_of: Callable, params: Any, rolls: np.ndarray, mesh: Mesh) -> Callable[[], jax.Array]:
    """Adam train step under jit: batch split over `mesh`, parameters and optimizer state replicated."""
    tx = optax.adam(1e-3)

    def train_step(state, batch):
        params, opt_state = state
        loss, grads = jax.value_and_grad(loss_of)(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    step = jax.jit(train_step, donate_argnums=0, out_shardings=replicated(mesh))
    batch = jax.device_put(jnp.asarray(rolls), batch_sharding(mesh))
    state = [jax.device_put((params, tx.init(params)), replicated(mesh))]

    def run() -> jax.Array:
        state[0], loss = step(state[0], batch)
        return loss
    return run


def _bce(logits: jax.Array, targets: jax.Array) -> jax.Array:
    return optax.sigmoid_binary_cross_entropy(logits, targets).mean()


def musejax_train(args: argparse.Namespace, rolls: np.ndarray, mesh: Mesh,
                  autodiff: bool = False) -> Callable[[], jax.Array]:
    model = PianoRollLM(features=args.features, hidden=args.hidden, cell="gru", impl="xla")
    params = model.init(jax.random.key(0), jnp.asarray(rolls[:, :-1]))["params"]

    def loss_model(p, b):
        return _bce(model.apply({"params": p}, b[:, :-1]), b[:, 1:])

    def loss_autodiff(p, b):  # identical maths, but the recurrence is differentiated by JAX through lax.scan
        layer = p["rnn"]["layer_0"]
        gx = jnp.dot(jnp.swapaxes(b[:, :-1], 0, 1), layer["w_x"]) + layer["b_x"]
        h0 = jnp.zeros((b.shape[0], args.hidden), jnp.float32)
        hs = gru_ops.gru_sequence_reference(gx, h0, layer["w_h"], layer["b_h"])
        logits = jnp.dot(hs, p["readout"]["kernel"]) + p["readout"]["bias"]
        return _bce(jnp.swapaxes(logits, 0, 1), b[:, 1:])

    return _jax_train(loss_autodiff if autodiff else loss_model, params, rolls, mesh)


class _FlaxRNNLM(nn.Module):
    hidden: int
    features: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.features)(nn.RNN(nn.GRUCell(self.hidden))(x))


def flax_rnn_train(args: argparse.Namespace, rolls: np.ndarray, mesh: Mesh) -> Callable[[], jax.Array]:
    model = _FlaxRNNLM(args.hidden, args.features)
    params = model.init(jax.random.key(0), jnp.asarray(rolls[:, :-1]))["params"]
    return _jax_train(lambda p, b: _bce(model.apply({"params": p}, b[:, :-1]), b[:, 1:]), params, rolls, mesh)


def musejax_sample(args: argparse.Namespace, mesh: Mesh | None) -> Callable[[], jax.Array]:
    """The library's sampler (`musejax.lm.sample`, what `musejax sample` runs): one jit-compiled lax.scan over
    `step`, Bernoulli draws against uniform noise drawn for all steps in one call before the scan; the sequences
    split over `mesh` (None: one device)."""
    from musejax.lm.sample import _generate

    model = PianoRollLM(features=args.features, hidden=args.hidden, cell="gru", impl="xla")
    params = model.init(jax.random.key(0), jnp.zeros((1, 2, args.features)))["params"]
    params = params if mesh is None else jax.device_put(params, replicated(mesh))
    start = jnp.zeros((1, args.features), jnp.float32)  # the all-zero first frame, as training

    def sample(key):
        return _generate(model, params, start, None, key, np.float32(1.0), np.float32(1.0), np.float32(0.5),
                         np.float32(1.0), n=args.batch, steps=args.sample_steps, mode="bernoulli-frames",
                         top_k=None, use_top_p=False, mesh=mesh)

    keys = iter(jax.random.split(jax.random.key(1), 10_000))
    return lambda: sample(next(keys))


# ------------------------------------------------------------------------------------------------------------
# PyTorch peer
# ------------------------------------------------------------------------------------------------------------
def torch_train(args: argparse.Namespace, rolls: np.ndarray) -> Callable[[], float]:
    gru = torch.nn.GRU(args.features, args.hidden)
    linear = torch.nn.Linear(args.hidden, args.features)
    opt = torch.optim.Adam(list(gru.parameters()) + list(linear.parameters()), lr=1e-3)
    bce = torch.nn.BCEWithLogitsLoss()
    seq = torch.from_numpy(np.ascontiguousarray(rolls.transpose(1, 0, 2)))  # time-major: nn.GRU's fastest layout
    inputs, targets = seq[:-1].contiguous(), seq[1:].contiguous()

    def run() -> float:
        opt.zero_grad(set_to_none=True)
        out, _ = gru(inputs)
        loss = bce(linear(out), targets)
        loss.backward()
        opt.step()
        return loss
    return run


def torch_sample(args: argparse.Namespace) -> Callable[[], object]:
    cell = torch.nn.GRUCell(args.features, args.hidden)
    linear = torch.nn.Linear(args.hidden, args.features)
    generator = torch.Generator().manual_seed(0)

    def run():  # the same work as musejax's: uniform noise for all steps drawn once, then the step loop
        with torch.inference_mode():
            noise = torch.rand(args.sample_steps, args.batch, args.features, generator=generator)
            h = torch.zeros(args.batch, args.hidden)
            frame = torch.zeros(args.batch, args.features)
            frames = []
            for step in range(args.sample_steps):
                h = cell(frame, h)
                frame = (noise[step] < torch.sigmoid(linear(h))).float()
                frames.append(frame)
            return torch.stack(frames)
    return run


# ------------------------------------------------------------------------------------------------------------
# Timing
# ------------------------------------------------------------------------------------------------------------
def summarize(task: str, seconds: dict[str, list[float]], peer: str) -> list[dict]:
    peer_median = statistics.median(seconds[peer]) if peer in seconds else None
    out = []
    for name, values in seconds.items():
        median = statistics.median(values)
        paired = [p / v for p, v in zip(seconds[peer], values)] if peer_median else None
        out.append({"task": task, "impl": name, "median_s": median, "per_s": 1.0 / median, "seconds": values,
                    "speedup_vs_torch": (peer_median / median) if peer_median else None,
                    "paired_speedup_median": statistics.median(paired) if paired else None})
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| task | implementation | median ms | per second | vs torch (ratio of medians) | vs torch (paired) |",
             "|---|---|---:|---:|---:|---:|"]
    for row in rows:
        ratio = "-" if row["speedup_vs_torch"] is None else f"{row['speedup_vs_torch']:.2f}x"
        paired = "-" if row["paired_speedup_median"] is None else f"{row['paired_speedup_median']:.2f}x"
        lines.append(f"| {row['task']} | {row['impl']} | {1000 * row['median_s']:.1f} | {row['per_s']:.2f} | "
                     f"{ratio} | {paired} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    malloc_tuned = tune_host_malloc() if args.tune_malloc else False  # before JAX or torch allocate anything
    rolls = (np.random.default_rng(0).random((args.batch, args.steps + 1, args.features)) < 0.1).astype(np.float32)
    split = make_mesh(data_parallel_devices((args.batch,)))  # as `musejax train` and `musejax sample` split
    one = make_mesh(jax.devices()[:1])
    train_rows: dict[str, Callable] = {"musejax": musejax_train(args, rolls, split),
                                       "musejax-1-device": musejax_train(args, rolls, one),
                                       "musejax-autodiff": musejax_train(args, rolls, split, autodiff=True),
                                       "flax-linen-rnn": flax_rnn_train(args, rolls, one),
                                       "flax-linen-rnn-split": flax_rnn_train(args, rolls, split)}
    sample_rows: dict[str, Callable] = {"musejax": musejax_sample(args, split if split.devices.size > 1 else None),
                                        "musejax-1-device": musejax_sample(args, None)}
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
        torch.manual_seed(0)
        train_rows["torch"] = torch_train(args, rolls)
        sample_rows["torch"] = torch_sample(args)
    else:
        print("bench_cpu: torch is not installed; torch rows skipped", file=sys.stderr)
    rows = summarize("train step", time_interleaved(train_rows, args.reps, args.iters), "torch")
    rows += summarize(f"sample {args.batch}x{args.sample_steps}", time_interleaved(sample_rows, args.reps, args.iters),
                      "torch")
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    env = {"jax": jax.__version__, "torch": getattr(torch, "__version__", None), "cpu_count": os.cpu_count(),
           "jax_devices_split": int(split.devices.size),
           "torch_threads": args.torch_threads, "machine": platform.machine(), "python": platform.python_version(),
           "jax_backend": jax.default_backend(), "malloc_tuned": malloc_tuned}
    print(f"B={args.batch} T={args.steps} H={args.hidden} F={args.features}, {args.reps} reps x {args.iters} "
          f"iters, torch threads {args.torch_threads}, JAX batch split over {split.devices.size} CPU device(s), "
          f"malloc tuned: {malloc_tuned}\n")
    print(markdown(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": config, "env": env, "rows": rows}, indent=2))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
