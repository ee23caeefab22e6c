"""The training input pipeline: the hand-written BatchIterator against Grain, and Grain with the batches grouped
by length (the default's `data.length_bucket_steps`), side by side in one run.

    python experiments/bench_input_pipeline.py [--config lm] [--batches 400] [--repeats 5] [--out DIR]

All read the default run's training windows (the bundled chorales, from the corpus cache) with its batch size
and transposition, and are timed producing `--batches` batches (median of `--repeats`, after one warm-up), and
feeding `--train-steps` steps of the config's jit-compiled train step (what a run sees: Grain reads ahead in
threads while the step runs; every batch length the timed steps meet is compiled before the clock starts; the
pipelines take turns, `--repeats` rounds, and the median round is reported). The
table gives each pipeline's mean batch length in steps. Exact resume: batches read from step k must equal those
of an uninterrupted stream from step 0 (k = 0, 1, one epoch, one epoch + 3), for each pipeline. Prints a table
and writes `<out>/input-pipeline.json` + `.md`.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musejax.data.windows import transpose_augmentation  # noqa: E402
import jax  # noqa: E402

from musejax.lm.build import build_lm, data_meta  # noqa: E402
from musejax.lm.config import resolve_config  # noqa: E402
from musejax.lm.data import lm_batch, load_lm_data  # noqa: E402
from musejax.lm.steps import train_step  # noqa: E402
from musejax.train.mesh import make_mesh, shard_batch  # noqa: E402
from musejax.train.state import create_train_state, make_optimizer  # noqa: E402
from musejax.train.input_pipeline import augment_fields, iterate, window_batches  # noqa: E402
from musejax.timing import time_interleaved  # noqa: E402


def batch_iterator_stream(data, batch_size: int, seed: int, semitones: int, start: int):
    """The peer: the hand-written iterator Grain replaced (musejax/data/windows.py before this change), in brief:
    each epoch a permutation seeded by (seed, epoch), whole batches, windows transposed by a generator seeded by
    (seed, epoch, batch); resume by (epoch, batch) = divmod(step, batches per epoch)."""
    augment = transpose_augmentation(data.encoding, semitones) if semitones else None
    arrays, masks, style = data.train.windows, data.train.mask, data.train.style
    per_epoch = len(arrays) // batch_size
    epoch, skip = divmod(start, per_epoch)
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(len(arrays))
        for batch in range(skip, per_epoch):
            index = order[batch * batch_size:(batch + 1) * batch_size]
            windows, mask = arrays[index], masks[index]
            if augment is not None:
                rng = np.random.default_rng([seed, epoch, batch])
                windows = np.stack([augment_fields(augment(a, m, rng))["array"] for a, m in zip(windows, mask)])
            yield {"array": windows, "mask": mask, "style": style[index]}
        epoch, skip = epoch + 1, 0


def grain_stream(data, batch_size: int, seed: int, semitones: int, start: int, length_bucket: int = 0):
    augment = transpose_augmentation(data.encoding, semitones) if semitones else None
    dataset = window_batches(data.train.windows, data.train.mask, {"style": data.train.style},
                             batch_size=batch_size, seed=seed, augment=augment, length_bucket=length_bucket)
    return iterate(dataset, start)


def pipelines(length_bucket: int) -> dict:
    """The pipelines compared: name -> stream(data, batch_size, seed, semitones, start)."""
    rows = {"BatchIterator (hand-written)": batch_iterator_stream, "Grain MapDataset": grain_stream}
    if length_bucket:
        grouped = functools.partial(grain_stream, length_bucket=length_bucket)
        rows[f"Grain, grouped by length ({length_bucket})"] = grouped
    return rows


def timed(make, n: int, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats + 1):
        begin = time.perf_counter()
        for _ in itertools.islice(make(), n):
            pass
        times.append(time.perf_counter() - begin)
    return times[1:]  # the first run warms caches and starts threads


def train_steppers(config, data, makers: dict, steps: int) -> dict:
    """name -> a call that runs one train step fed by that pipeline's stream (`makers[name]()`), each with its own
    train state; every batch length its first `steps` + 3 batches have is compiled first (one step each)."""
    lm = build_lm(config, data_meta(data))
    tx, _ = make_optimizer(config.optim, config.train.steps)
    mesh = make_mesh()
    step_fn = jax.jit(train_step, donate_argnums=0)
    rng = jax.random.key(1)

    def batches(stream):
        return (shard_batch(lm_batch(b["array"], b["mask"], b["style"], data.loss_kind), mesh) for b in stream)

    steppers = {}
    for name, make_stream in makers.items():
        state, _ = create_train_state(lm.init_params, lm.apply_fn, tx, jax.random.key(0), mesh)
        for batch in batches({b["array"].shape: b for b in itertools.islice(make_stream(), steps + 3)}.values()):
            state, _ = step_fn(state, batch, rng)
        holder, stream = {"state": state}, batches(make_stream())

        def one_step(holder=holder, stream=stream):
            holder["state"], metrics = step_fn(holder["state"], next(stream), rng)
            return metrics

        steppers[name] = one_step
    return steppers


def resumes_exactly(stream, per_epoch: int) -> bool:
    reference = list(itertools.islice(stream(0), per_epoch + 8))
    for start in (0, 1, per_epoch, per_epoch + 3):
        got = list(itertools.islice(stream(start), 5))
        if not all(all(np.array_equal(a[k], b[k]) for k in a) for a, b in zip(got, reference[start:start + 5])):
            return False
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="lm")
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=40, help="train steps timed per pipeline (0 = skip)")
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    args = parser.parse_args(argv)
    config = resolve_config(args.config)
    data = load_lm_data(config.data, progress=False)
    batch, seed, semitones = config.train.batch_size, config.train.seed, config.data.transpose_semitones
    per_epoch = len(data.train.windows) // batch
    rows = []
    streams = pipelines(config.data.length_bucket_steps)
    for name, stream in streams.items():
        times = timed(lambda: stream(data, batch, seed, semitones, 0), args.batches, args.repeats)
        ms = 1e3 * statistics.median(times) / args.batches
        exact = resumes_exactly(lambda start: stream(data, batch, seed, semitones, start), per_epoch)
        length = statistics.mean(b["array"].shape[1] for b in itertools.islice(stream(data, batch, seed, semitones, 0),
                                                                               args.batches))
        rows.append({"pipeline": name, "ms_per_batch": ms, "batches_per_second": 1e3 / ms,
                     "runs_seconds": times, "exact_resume": exact, "mean_batch_steps": length,
                     "train_ms_per_step": float("nan")})
    if args.train_steps:  # the pipelines take turns, so a noisy machine slows them alike
        makers = {name: functools.partial(stream, data, batch, seed, semitones, 0) for name, stream in streams.items()}
        iters = max(1, args.train_steps // args.repeats)
        seconds = time_interleaved(train_steppers(config, data, makers, args.repeats * iters + 3), args.repeats, iters,
                                   warmup=3)
        for row in rows:
            row["train_ms_per_step"] = 1e3 * statistics.median(seconds[row["pipeline"]])
            # the grouped batches' lengths vary from round to round: the mean over every timed step counts them all
            row["train_ms_per_step_mean"] = 1e3 * statistics.mean(seconds[row["pipeline"]])
            row["train_runs_seconds"] = seconds[row["pipeline"]]
    result = {"config": args.config, "train_steps": args.train_steps, "windows": len(data.train.windows), "batch_size": batch,
              "transpose_semitones": semitones, "batches": args.batches, "repeats": args.repeats, "rows": rows}
    lines = [f"# Input pipeline: {args.config} training windows ({len(data.train.windows)} windows, batch {batch}, "
             f"transposition +-{semitones})", "",
             "| pipeline | ms / batch (median) | batches / s | exact resume | mean batch length (steps) | "
             "train step fed by it (ms, median round) | (ms, mean of all rounds) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['pipeline']} | {r['ms_per_batch']:.3f} | {r['batches_per_second']:.0f} | "
              f"{'yes' if r['exact_resume'] else 'NO'} | {r['mean_batch_steps']:.1f} | {r['train_ms_per_step']:.1f} | "
              f"{r.get('train_ms_per_step_mean', float('nan')):.1f} |" for r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "input-pipeline.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "input-pipeline.md").write_text(text)
    return result


if __name__ == "__main__":
    main()
