"""Chung, Gulcehre, Cho & Bengio (2014), polyphonic music: tanh vs GRU vs LSTM RNNs of ~20k parameters each,
NLL per time step on a Boulanger-Lewandowski (2012) piano-roll dataset, test taken at the best valid step.

    python experiments/chung2014.py                          # bundled Bach chorales -> BL2012 pickle, 3 cells
    python experiments/chung2014.py --data "JSB Chorales.pickle" --out runs/jsb
    python experiments/chung2014.py --cells gru --seed 1 --config.optim.weight_decay=0.3
    python experiments/chung2014.py --quick                  # a short sanity run (fewer steps; not the table)

Without --data the chorales are encoded on a sixteenth-note grid and sampled on every beat (the pitches
sounding at each quarter-note onset, as in BL2012's JSB Chorales), transposed to end on C (BL2012's pieces
are in C major / C minor; --keep-keys does not), split by piece with `split_of` (20% valid, 20% test: the
proportions of BL2012's JSB split, 229 / 76 / 77), and written into the out dir
(`musejax.data.bl2012_corpus.build_bl2012_from_corpus`); every cell then trains with `musejax/configs/chung2014.py`
on that file (`musejax train --config chung2014:gru --config.data.corpus=FILE` reproduces one row).
NLL per step = Bernoulli NLL summed over the 88 keys, averaged over all steps of all whole pieces.
Writes results.json and results.md (and one run directory per cell) under --out.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from musejax.data.bl2012_corpus import add_bl2012_source_arguments, bl2012_source, data_stats

CELLS = ("tanh", "gru", "lstm")
# Chung et al. (2014), Table 2, JSB Chorales, NLL per time step. tanh test: sources quote 9.10 and 9.19.
PAPER_JSB = {"tanh": {"train": 8.82, "test": None}, "gru": {"train": 6.94, "test": 8.54},
             "lstm": {"train": 8.15, "test": 8.67}}
PAPER_NOTE = ("paper: Chung et al. 2014, Table 2, JSB Chorales (BL2012 split; RMSProp + weight noise); "
              "tanh test is left out: copies of the table disagree (9.10 / 9.19)")
QUICK_OVERRIDES = ("--config.train.steps=300", "--config.train.eval_every_steps=50", "--config.train.log_every_steps=50")


# ---------------------------------------------------------------------------------------------- training


def param_count(params: Any) -> int:
    """Number of scalars in a parameter pytree."""
    import jax

    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


def whole_piece_nll(state: Any, rolls: Sequence[np.ndarray], batch_size: int, length: int | None = None) -> float:
    """NLL per step of `state`'s model over whole pieces (each from the all-zero start frame), padded to
    `length` steps (default: the longest piece; one length for every split means one compilation)."""
    import jax

    from musejax.data.windows import make_windows
    from musejax.lm.data import WindowSplit, eval_batches
    from musejax.lm.steps import eval_step, summarize

    length = length or max(len(r) for r in rolls)
    windows, mask, _ = make_windows([np.asarray(r, bool) for r in rolls], length, length)
    if windows.shape[0] != len(rolls):
        raise ValueError(f"whole_piece_nll: a piece is longer than length={length}")
    split = WindowSplit(windows, mask, np.full(len(windows), -1, np.int32))
    step = jax.jit(eval_step)
    total = None
    for batch in eval_batches(split, batch_size, state.apply_fn.loss_kind):
        sums = jax.device_get(step(state, batch))
        total = sums if total is None else {k: total[k] + sums[k] for k in sums}
    return summarize(total)["nll"]


def run_cell(cell: str, data_path: Path, run_dir: Path, seed: int, overrides: Sequence[str],
             rolls: dict[str, list[np.ndarray]], progress: bool) -> dict[str, Any]:
    """Train one cell on the BL2012 file, then score its best-valid checkpoint on whole train/valid/test pieces."""
    from musejax.lm.config import resolve_config
    from musejax.lm.restore import restore_run
    from musejax.lm.task import train
    from musejax.train.metrics import read_metrics

    config = resolve_config(f"chung2014:{cell}", [f"--config.data.corpus={data_path}", f"--config.train.seed={seed}",
                                                  *overrides])
    started = time.perf_counter()
    result = train(config, run_dir, progress=progress)
    seconds = time.perf_counter() - started
    if result.final is None:
        raise RuntimeError(f"{run_dir}: training stopped before config.train.steps={config.train.steps}")
    valid_curve = [(r["step"], r["nll"]) for r in read_metrics(run_dir, "valid")]
    best_step = int(result.final["best_step"])
    run = restore_run(run_dir, "best")
    if run.step != best_step or best_step != min(valid_curve, key=lambda sn: sn[1])[0]:
        raise RuntimeError(f"{run_dir}: best checkpoint {run.step} / reported {best_step} is not the step of "
                           f"the lowest valid NLL in metrics.jsonl")
    batch = config.train.eval_batch_size
    length = max(len(r) for split_rolls in rolls.values() for r in split_rolls)
    nll = {split: whole_piece_nll(run.state, rolls[split], batch, length) for split in ("train", "valid", "test")}
    for split in ("valid", "test"):  # the loop's own final evaluation must agree with ours
        if not math.isclose(nll[split], result.final[f"{split}_nll"], rel_tol=1e-4):
            raise RuntimeError(f"{run_dir}: {split} NLL {nll[split]:.5f} differs from the loop's "
                               f"{result.final[f'{split}_nll']:.5f}")
    steps_per_epoch = max(1, result.final["n_train_windows"] // config.train.batch_size)
    return {"cell": cell, "model_cell": config.model.cell, "units": config.model.hidden,
            "params": param_count(run.params), "train_nll": nll["train"], "valid_nll": nll["valid"],
            "test_nll": nll["test"], "best_step": best_step, "best_epoch": round(best_step / steps_per_epoch, 1),
            "steps": config.train.steps, "train_seconds": round(seconds, 1), "run_dir": str(run_dir),
            "valid_curve": valid_curve, "config": config.to_dict()}


# ----------------------------------------------------------------------------------------------- report


def _paper(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown_report(rows: list[dict[str, Any]], data: dict[str, Any], built: bool) -> str:
    """The results table (plus data and setup lines) as markdown."""
    lines = ["| cell | units | params | train NLL | valid NLL | test NLL | best step (epoch) "
             "| paper train (JSB) | paper test (JSB) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        paper = PAPER_JSB[r["cell"]]
        lines.append(f"| {r['cell']} | {r['units']} | {r['params']:,} | {r['train_nll']:.3f} | {r['valid_nll']:.3f} | "
                     f"**{r['test_nll']:.3f}** | {r['best_step']} ({r['best_epoch']}) | {_paper(paper['train'])} | "
                     f"{_paper(paper['test'])} |")
    splits = ", ".join(f"{k} {v['pieces']} pieces / {v['steps']} steps ({v['mean_keys_per_step']} keys/step)"
                       for k, v in data["splits"].items())
    lines += ["", "NLL per time step (nats, Bernoulli summed over 88 keys), whole pieces, at the best-valid checkpoint.",
              f"Data: {data['file']} ({data['source']}): {splits}.", PAPER_NOTE + "."]
    if built:
        lines.append("This data is another edition (music21's) and split of the chorales than BL2012's JSB "
                     "Chorales: compare levels and tendencies, not decimals.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from musejax.config import accept_config_overrides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="--config.GROUP.KEY=VALUE overrides apply to every cell.")
    add_bl2012_source_arguments(parser)
    parser.add_argument("--keep-keys", action="store_true",
                        help="keep each piece's key (default: transpose so it ends on C, as BL2012's JSB Chorales)")
    parser.add_argument("--out", type=Path, default=None, help="output directory (default runs/chung2014-<timestamp>)")
    parser.add_argument("--cells", default=",".join(CELLS), help="comma-separated subset of tanh,gru,lstm")
    parser.add_argument("--seed", type=int, default=0, help="init and data-order seed (config.train.seed)")
    parser.add_argument("--quick", action="store_true", help=f"short sanity run: {' '.join(QUICK_OVERRIDES)}")
    accept_config_overrides(parser)
    args = parser.parse_args(argv)
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    unknown = [c for c in cells if c not in CELLS]
    if unknown or not cells:
        parser.error(f"--cells: unknown {', '.join(unknown) or '(none given)'}; use a subset of {','.join(CELLS)}")
    args.cells = cells
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Build or load the data, train each cell, print and write the table; returns the results dict."""
    from absl import logging as absl_logging

    from musejax.data.bl2012 import load_bl2012
    from musejax.lm.task import default_run_dir

    args = parse_args(argv)
    absl_logging.set_verbosity(absl_logging.ERROR)
    started = time.perf_counter()
    out = args.out or default_run_dir("chung2014")
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress and sys.stderr.isatty()
    data_path, source = bl2012_source(args, out, to_c=not args.keep_keys, progress=progress)
    rolls = load_bl2012(data_path)
    data = {"file": str(data_path), "source": source, "splits": data_stats(rolls)}
    overrides = [*(QUICK_OVERRIDES if args.quick else ()), *args.config_overrides]
    rows = []
    for cell in args.cells:
        print(f"training {cell} ...", flush=True)
        rows.append(run_cell(cell, data_path, out / cell, args.seed, overrides, rolls, progress))
        r = rows[-1]
        print(f"{cell}: {r['params']} params, best step {r['best_step']}: train {r['train_nll']:.3f}  valid "
              f"{r['valid_nll']:.3f}  test {r['test_nll']:.3f}  ({r['train_seconds']:.0f} s)", flush=True)
    report = markdown_report(rows, data, built=args.data is None)
    results = {"experiment": "chung2014", "command": " ".join(["python", "experiments/chung2014.py",
                                                               *(sys.argv[1:] if argv is None else argv)]),
               "quick": args.quick, "seed": args.seed, "overrides": overrides, "data": data,
               "nll_unit": "nats per time step (sum over 88 keys), whole pieces",
               "test_at": "best valid step", "paper_jsb": PAPER_JSB, "paper_note": PAPER_NOTE,
               "results": rows, "wall_seconds": round(time.perf_counter() - started, 1)}
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "results.md").write_text(f"# Chung et al. 2014, polyphonic music ({out})\n\n{report}\n\n"
                                    f"Command: `{results['command']}` ({results['wall_seconds']:.0f} s)\n")
    print(report)
    print(f"wrote {out / 'results.json'} and {out / 'results.md'} ({results['wall_seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
