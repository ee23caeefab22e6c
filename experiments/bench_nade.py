"""CPU benchmark of the RNN-NADE piano-roll LM (issue 14): NADE vs Bernoulli output, and vs a PyTorch GRU-NADE.

Sizes: B sequences of T frames of 88 keys -> GRU(H), one layer -> NADE of `nade_hidden` units (default: the lm
config's model.nade_hidden) whose training form covers frames of up to `max_notes` sounding keys (default 5, the
bundled chorales' fullest frame). Targets are random frames of 3-5 sounding keys (mean 4), capped at max_notes.

Rows, timed side by side in one run (interleaved within each repetition; medians over repetitions):
  train   musejax-nade / musejax-nade-count / musejax-bernoulli: the real train step of `musejax train` -- the
          lm config with model.output = nade (nade_count off / on) | bernoulli (dropout, weight noise and input flips off, as in the peer), built by
          musejax.lm.build.build_lm + create_train_state, the loop's jit-compiled `accumulating(train_step)`
          (train_step + metric sums) with the carry donated, the batch split over one CPU device per core
          (musejax/host.py, musejax/train/mesh.py), the config's optimizer (AdamW + global-norm clipping).
          torch-nade: torch.nn.GRU + Linear heads + a NADE written plainly -- the dense cumulative-sum form over
          all keys ((T, B, keys, nade_hidden) tensors) -- BCE-with-logits, torch.optim.Adam; float32, eager.
  sample  musejax-nade / musejax-nade-count / musejax-bernoulli: musejax.lm.sample.sample_arrays (what `musejax sample` runs) of
          `sample_n` pieces x `sample_steps` sixteenths (32 whole chorales of 220 steps), Bernoulli draws; the
          counting NADE's count head biased to the batch's note counts, as trained (`musejax_sample`).
          musejax-nade-count-top-p: the same with each note's key from the lm config's nucleus (sample.top_p, the
          default sampler of `musejax sample` since 2026-12-06).
          torch-nade: a GRUCell step loop with the NADE drawn key by key, uniform noise drawn once up front.
torch runs at the machine's core count of threads (--torch-threads). Before timing, the torch model gets
musejax's initial NADE weights and both compute the batch's NLL (`peer_check` in the JSON): the peer computes
the same model.

Goals (issue 14): NADE train step <= 2x the Bernoulli step; NADE sampling <= 4x the Bernoulli sampler; musejax
NADE >= 1.3x torch's train steps/s and sampling speed. Verdicts use the ratio of medians; the median of the
per-repetition ratios ("paired") is reported beside it.

  python experiments/bench_nade.py [--batch 32 --steps 128 --hidden 256 --nade-hidden N --max-notes 5]
                                   [--reps 7] [--out experiments/results/bench-nade.json]
  python experiments/bench_nade.py --dry-run     # tiny sizes, 1 rep: checks the plumbing, not speed
Writes <out> (JSON) and <out>.md (the table and the goals, also printed). Run it on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

from musejax.host import cpu_core_count, use_every_cpu_core

use_every_cpu_core()  # before JAX starts, as the `musejax` command does

import jax  # noqa: E402
import numpy as np  # noqa: E402

from musejax.config import to_dataclass
from musejax.lm.config import Config  # noqa: E402
from musejax.configs.lm import get_config  # noqa: E402
from musejax.data.encodings import get_encoding  # noqa: E402
from musejax.lm.sample import Run, sample_arrays  # noqa: E402
from musejax.timing import time_interleaved  # noqa: E402
from musejax.lm.data import lm_batch  # noqa: E402
from musejax.train.mesh import data_parallel_devices, make_mesh, replicated, shard_batch  # noqa: E402
from musejax.lm.build import LMFunctions, build_lm  # noqa: E402
from musejax.train.state import create_train_state, make_optimizer  # noqa: E402
from musejax.lm.steps import train_step, zero_train_metrics  # noqa: E402
from musejax.train.fit import accumulating  # noqa: E402

try:
    import torch
except ImportError:  # the torch rows and the peer check are skipped
    torch = None

KEYS = 88  # the piano-roll encoding's frame: sample_arrays starts from an all-zero 88-key frame


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=128, help="frames per training window")
    parser.add_argument("--hidden", type=int, default=256, help="GRU units (one layer)")
    parser.add_argument("--nade-hidden", type=int, default=get_config().model.nade_hidden,
                        help="NADE hidden units (default: the lm config's model.nade_hidden)")
    parser.add_argument("--max-notes", type=int, default=5,
                        help="model.nade_max_notes: the fullest frame the NADE's training form covers")
    parser.add_argument("--sample-n", type=int, default=32, help="pieces sampled per call")
    parser.add_argument("--sample-steps", type=int, default=220, help="sixteenths per sampled piece")
    parser.add_argument("--reps", type=int, default=7, help="repetitions; medians are reported")
    parser.add_argument("--train-iters", type=int, default=3, help="train steps per repetition and row")
    parser.add_argument("--sample-iters", type=int, default=1, help="sampling calls per repetition and row")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls per row first (compilation)")
    parser.add_argument("--torch-threads", type=int, default=cpu_core_count())
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes, 1 rep: checks the plumbing, not speed")
    parser.add_argument("--out", type=Path, default=Path("experiments/results/bench-nade.json"))
    args = parser.parse_args(argv)
    if args.dry_run:
        args.batch, args.steps, args.hidden, args.nade_hidden, args.max_notes = 4, 8, 16, 8, 3
        args.sample_n, args.sample_steps, args.reps, args.train_iters, args.sample_iters, args.warmup = 4, 8, 1, 1, 1, 1
    return args


# ------------------------------------------------------------------------------------------------------------
# Data and musejax contenders
# ------------------------------------------------------------------------------------------------------------
def random_batch(batch: int, steps: int, max_notes: int, seed: int = 0, keys: int = KEYS) -> dict[str, np.ndarray]:
    """A training batch as `musejax train` builds it (`lm_batch`) from random frames of 3-5 sounding keys (mean 4),
    at most `max_notes`."""
    rng = np.random.default_rng(seed)
    counts = np.minimum(rng.integers(3, 6, size=(batch, steps)), min(max_notes, keys))
    ranks = rng.random((batch, steps, keys)).argsort(-1).argsort(-1)  # a random order of the keys per frame
    frames = ranks < counts[..., None]
    return lm_batch(frames, np.ones((batch, steps), bool), np.zeros(batch, np.int32), "bernoulli")


def lm_model(output: str, args: argparse.Namespace) -> tuple[Config, LMFunctions]:
    """The lm config (GRU, one layer, the benchmark's sizes) with model.output = `output` ("nade-count": a NADE
    that draws the note count first, model.nade_count), built as the loop does."""
    config = get_config()
    # no dropout, weight noise, input flips, place in the bar, transposition, texture or end input, and the keys low
    # to high: as the torch peer (the peer check compares the first step's NLL; the key order does not change the cost)
    config.model.update(cell="gru", layers=1, hidden=args.hidden, output=output.split("-")[0],
                        nade_count=output == "nade-count", nade_hidden=args.nade_hidden, dropout=0.0,
                        weight_noise=0.0, input_flips=0.0, nade_order="low-high", position_period=0,
                        transpose_input=False, end_quarters=0)
    config.data.texture_shift_rate = 0.0
    config.train.batch_size = args.batch
    config = to_dataclass(config, Config)
    meta = {"loss_kind": "bernoulli", "feature_shape": [KEYS], "vocab_size": 0, "styles": [],
            "max_notes": args.max_notes}
    return config, build_lm(config, meta)


def musejax_train(config: Config, lm: LMFunctions, batch: dict[str, np.ndarray], mesh: Any) -> tuple[Callable, Any]:
    """(one train step as `musejax train` runs it, returning the running metric sums; the initial parameters)."""
    tx, _ = make_optimizer(config.optim, config.train.steps)
    init_rng, step_rng = jax.random.split(jax.random.key(config.train.seed))
    state, _ = create_train_state(lm.init_params, lm.apply_fn, tx, init_rng, mesh)
    params = jax.device_get(state.params)
    carry = [jax.device_put((state, zero_train_metrics()), replicated(mesh))]
    step_fn = jax.jit(accumulating(train_step), donate_argnums=0,
                      out_shardings=jax.tree.map(lambda _: replicated(mesh), carry[0]))
    device_batch = shard_batch(batch, mesh)
    step_rng = jax.device_put(step_rng, replicated(mesh))

    def run() -> Any:
        carry[0] = step_fn(carry[0], device_batch, step_rng)
        return carry[0][1]
    return run, params


def musejax_sample(lm: LMFunctions, params: Any, args: argparse.Namespace, batch: dict[str, np.ndarray],
                   top_p: float | None = None) -> Callable:
    """`musejax.lm.sample.sample_arrays` of sample_n pieces x sample_steps frames (new seed per call; a counting
    NADE's keys from the `top_p` nucleus when given).

    A counting NADE places its notes one at a time, so its sampling cost grows with the note counts it draws. Its
    untrained count head would draw about 44 notes a frame (uniform over 0..88); as a trained one, it gets the
    training batch's note counts as the count readout's bias (log frequencies), so it draws frames of 3-5 notes."""
    if "count_readout" in params:
        counts = np.bincount(batch["targets"].sum(-1).astype(int).ravel(), minlength=KEYS + 1)
        bias = np.log(np.maximum(counts / counts.sum(), 1e-9)).astype(np.float32)
        params = {**params, "count_readout": {**params["count_readout"], "bias": bias}}
    run = Run(model=lm.model, params=params, encoding=get_encoding("pianoroll", steps_per_quarter=4))
    seeds = iter(range(1 << 30))
    return lambda: sample_arrays(run, args.sample_n, args.sample_steps, seed=next(seeds), top_p=top_p)


# ------------------------------------------------------------------------------------------------------------
# PyTorch peer
# ------------------------------------------------------------------------------------------------------------
def torch_gru_nade(keys: int, hidden: int, nade_hidden: int) -> "torch.nn.Module":
    """torch.nn.GRU -> NADE biases (Linear heads) -> NADE over the keys (low to high), written plainly."""

    class GRUNADE(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(keys, hidden)
            self.readout = torch.nn.Linear(hidden, keys)  # visible biases c_t
            self.hidden_bias = torch.nn.Linear(hidden, nade_hidden)  # hidden biases b_t
            self.w = torch.nn.Parameter(0.01 * torch.randn(keys, nade_hidden))
            self.v = torch.nn.Parameter(0.01 * torch.randn(keys, nade_hidden))

        def logits(self, inputs: "torch.Tensor", targets: "torch.Tensor") -> "torch.Tensor":
            """Time-major inputs, targets (T, B, keys) -> the targets' NADE conditional logits (T, B, keys):
            c_i + V_i . sigmoid(b + sum_{j<i} v_j W_j), the hidden pre-activations by an exclusive cumsum."""
            states, _ = self.gru(inputs)
            contributions = targets.unsqueeze(-1) * self.w  # (T, B, keys, nade_hidden)
            pre = self.hidden_bias(states).unsqueeze(-2) + torch.cumsum(contributions, dim=-2) - contributions
            return self.readout(states) + torch.einsum("tbkh,kh->tbk", torch.sigmoid(pre), self.v)

        def nll(self, inputs: "torch.Tensor", targets: "torch.Tensor") -> "torch.Tensor":
            """Mean NLL per frame (summed over the keys), as musejax's loss."""
            logits = self.logits(inputs, targets)
            total = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
            return total / (targets.shape[0] * targets.shape[1])

        def draw_frame(self, visible_bias: "torch.Tensor", hidden_bias: "torch.Tensor",
                       noise: "torch.Tensor") -> "torch.Tensor":
            """One frame (B, keys) drawn key by key: key i sounds if noise_i < p(v_i = 1 | v_<i)."""
            frame = torch.zeros_like(visible_bias)
            pre = hidden_bias.clone()
            for i in range(frame.shape[1]):
                p = torch.sigmoid(visible_bias[:, i] + torch.mv(torch.sigmoid(pre), self.v[i]))
                on = (noise[:, i] < p).to(pre.dtype)
                pre += on.unsqueeze(1) * self.w[i]
                frame[:, i] = on
            return frame

    return GRUNADE()


def torch_weights_from_musejax(model: "torch.nn.Module", params: Any) -> None:
    """Copy a musejax NADE PianoRollLM's parameters (one GRU layer) into the torch peer."""
    from musejax.nn.torch_interop import dense_params_to_torch, rnn_params_to_torch

    state = {**rnn_params_to_torch(params["rnn"], prefix="gru."),
             **dense_params_to_torch(params["readout"], prefix="readout."),
             **dense_params_to_torch(params["nade_hidden_bias"], prefix="hidden_bias."),
             "w": np.asarray(params["nade_w"]), "v": np.asarray(params["nade_v"])}
    model.load_state_dict({k: torch.from_numpy(np.array(v, np.float32)) for k, v in state.items()})


def _time_major(batch: dict[str, np.ndarray]) -> tuple["torch.Tensor", "torch.Tensor"]:
    return tuple(torch.from_numpy(np.ascontiguousarray(batch[k].transpose(1, 0, 2))) for k in ("inputs", "targets"))


def torch_nll(model: "torch.nn.Module", batch: dict[str, np.ndarray]) -> float:
    with torch.inference_mode():
        return float(model.nll(*_time_major(batch)))


def torch_train(model: "torch.nn.Module", batch: dict[str, np.ndarray]) -> Callable:
    inputs, targets = _time_major(batch)  # time-major: nn.GRU's fastest layout
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        model.nll(inputs, targets).backward()
        optimizer.step()
    return run


def torch_sample(model: "torch.nn.Module", args: argparse.Namespace) -> Callable:
    cell = torch.nn.GRUCell(KEYS, args.hidden)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):  # the GRU's own parameters, shared
        setattr(cell, name, getattr(model.gru, f"{name}_l0"))
    generator = torch.Generator().manual_seed(0)

    def run() -> "torch.Tensor":
        with torch.inference_mode():
            noise = torch.rand(args.sample_steps, args.sample_n, KEYS, generator=generator)
            h = torch.zeros(args.sample_n, args.hidden)
            frame = torch.zeros(args.sample_n, KEYS)
            frames = []
            for step in range(args.sample_steps):
                h = cell(frame, h)
                frame = model.draw_frame(model.readout(h), model.hidden_bias(h), noise[step])
                frames.append(frame)
            return torch.stack(frames)
    return run


# ------------------------------------------------------------------------------------------------------------
# Timing, ratios, goals
# ------------------------------------------------------------------------------------------------------------
class Goal(NamedTuple):
    """ratio = time of `numerator` / time of `denominator` (rows of `task`); met when within `bound` of target."""
    label: str
    task: str
    numerator: str
    denominator: str
    bound: str  # "at most" | "at least"
    target: float


GOALS = (
    Goal("NADE train step / Bernoulli train step", "train", "musejax-nade", "musejax-bernoulli", "at most", 2.0),
    Goal("NADE sampling / Bernoulli sampling", "sample", "musejax-nade", "musejax-bernoulli", "at most", 4.0),
    Goal("counting NADE train step / Bernoulli", "train", "musejax-nade-count", "musejax-bernoulli", "at most", 2.0),
    Goal("counting NADE sampling / Bernoulli", "sample", "musejax-nade-count", "musejax-bernoulli", "at most", 4.0),
    Goal("counting NADE sampling, key nucleus (the default) / Bernoulli", "sample", "musejax-nade-count-top-p",
         "musejax-bernoulli", "at most", 4.0),
    Goal("torch / musejax NADE train step (musejax's speed-up)", "train", "torch-nade", "musejax-nade", "at least",
         1.3),
    Goal("torch / musejax NADE sampling (musejax's speed-up)", "sample", "torch-nade", "musejax-nade", "at least",
         1.3),
)


def make_rows(task: str, seconds: dict[str, list[float]]) -> list[dict]:
    return [{"task": task, "impl": impl, "median_s": statistics.median(values),
             "per_s": 1.0 / statistics.median(values), "seconds": values} for impl, values in seconds.items()]


def goal_report(rows: list[dict]) -> list[dict]:
    """Each goal's ratio of medians, median of paired per-repetition ratios, and verdict (met / missed / not
    measured when a row is missing)."""
    by_key = {(r["task"], r["impl"]): r for r in rows}
    goals = []
    for goal in GOALS:
        num, den = by_key.get((goal.task, goal.numerator)), by_key.get((goal.task, goal.denominator))
        ratio = paired = None
        verdict = "not measured"
        if num is not None and den is not None:
            ratio = num["median_s"] / den["median_s"]
            paired = statistics.median(a / b for a, b in zip(num["seconds"], den["seconds"]))
            met = ratio <= goal.target if goal.bound == "at most" else ratio >= goal.target
            verdict = "met" if met else "missed"
        goals.append({**goal._asdict(), "ratio": ratio, "paired_ratio": paired, "verdict": verdict})
    return goals


def markdown(rows: list[dict], goals: list[dict], header: str) -> str:
    units = {"train": "per train step", "sample": "per sample batch"}
    lines = [header, "", "| task | implementation | median ms | min ms | max ms | per second |",
             "|---|---|---:|---:|---:|---:|"]
    lines += [f"| {r['task']} | {r['impl']} | {1e3 * r['median_s']:.1f} | {1e3 * min(r['seconds']):.1f} | "
              f"{1e3 * max(r['seconds']):.1f} | {r['per_s']:.2f} |" for r in rows]
    lines += ["", f"ms are {units['train']} / {units['sample']}.", "",
              "| goal | ratio (medians) | ratio (paired) | target | verdict |", "|---|---:|---:|---|---|"]
    for g in goals:
        shown = ["-" if x is None else f"{x:.2f}x" for x in (g["ratio"], g["paired_ratio"])]
        lines.append(f"| {g['label']} | {shown[0]} | {shown[1]} | {g['bound']} {g['target']}x | {g['verdict']} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
FAST_COMPILE = "jax_disable_most_optimizations"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.dry_run:
        return benchmark(args)
    optimizing = jax.config.read(FAST_COMPILE)
    jax.config.update(FAST_COMPILE, True)  # the dry run times nothing: XLA compiles without optimizing, 2-3x faster
    try:
        return benchmark(args)
    finally:
        jax.config.update(FAST_COMPILE, optimizing)


def benchmark(args: argparse.Namespace) -> int:
    batch = random_batch(args.batch, args.steps, args.max_notes)
    mesh = make_mesh(data_parallel_devices((args.batch,)))  # as `musejax train` splits the batch on the CPU
    train_rows: dict[str, Callable] = {}
    sample_rows: dict[str, Callable] = {}
    models, first_nll = {}, {}
    for output in ("nade", "nade-count", "bernoulli"):
        config, lm = lm_model(output, args)
        train_rows[f"musejax-{output}"], params = musejax_train(config, lm, batch, mesh)
        sums = jax.device_get(train_rows[f"musejax-{output}"]())  # compiles; the first step's loss: initial params
        first_nll[output] = float(sums["nll_sum"] / sums["steps"])
        sample_rows[f"musejax-{output}"] = musejax_sample(lm, params, args, batch)
        if output == "nade-count":
            sample_rows["musejax-nade-count-top-p"] = musejax_sample(lm, params, args, batch, config.sample.top_p)
        models[output] = (config, params)
    peer_check = None
    if torch is not None:
        torch.set_num_threads(args.torch_threads)
        torch.manual_seed(0)
        peer = torch_gru_nade(KEYS, args.hidden, args.nade_hidden)
        torch_weights_from_musejax(peer, models["nade"][1])  # the same initial model: both must give the same NLL
        nll_torch = torch_nll(peer, batch)
        peer_check = {"nll_musejax": first_nll["nade"], "nll_torch": nll_torch,
                      "relative_difference": abs(nll_torch - first_nll["nade"]) / abs(first_nll["nade"])}
        if peer_check["relative_difference"] > 1e-4:
            print(f"bench_nade: the torch peer's NLL {nll_torch} differs from musejax's {first_nll['nade']}",
                  file=sys.stderr)
        train_rows["torch-nade"] = torch_train(peer, batch)
        sample_rows["torch-nade"] = torch_sample(peer, args)
    else:
        print("bench_nade: torch is not installed; torch rows skipped", file=sys.stderr)
    rows = make_rows("train", time_interleaved(train_rows, args.reps, args.train_iters, args.warmup))
    rows += make_rows("sample", time_interleaved(sample_rows, args.reps, args.sample_iters, args.warmup))
    goals = goal_report(rows)
    notes_per_frame = float(batch["targets"].sum(-1).mean())
    header = (f"B={args.batch} T={args.steps} H={args.hidden} (GRU, 1 layer), {KEYS} keys, NADE hidden "
              f"{args.nade_hidden}, max notes {args.max_notes} ({notes_per_frame:.2f} per frame); sampling "
              f"{args.sample_n} x {args.sample_steps} steps; {args.reps} reps; JAX batch split over "
              f"{mesh.devices.size} CPU device(s); torch threads {args.torch_threads}")
    if args.dry_run:
        header = ("Dry run: tiny sizes, 1 rep, XLA optimizations off; the numbers say nothing about speed.\n\n"
                  + header)
    report = markdown(rows, goals, header)
    print(report)
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    env = {"jax": jax.__version__, "torch": getattr(torch, "__version__", None), "cpu_cores": cpu_core_count(),
           "jax_devices_split": int(mesh.devices.size), "machine": platform.machine(),
           "python": platform.python_version(), "jax_backend": jax.default_backend(),
           "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}
    result = {"config": config, "lm_model_config": dataclasses.asdict(models["nade"][0].model),
              "optimizer": dataclasses.asdict(models["nade"][0].optim), "notes_per_frame": notes_per_frame,
              "first_step_nll": first_nll, "env": env, "peer_check": peer_check, "rows": rows, "goals": goals}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(report + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
