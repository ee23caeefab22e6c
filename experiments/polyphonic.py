"""Polyphonic music benchmark: RNN-NADE or a Bernoulli GRU on a BL2012 data set, NLL per step (issue 14).

Trains on a Boulanger-Lewandowski (2012) data set and reports the NLL per time step of whole pieces, test
at the best valid step.

    python experiments/polyphonic.py                                          # bundled chorales, RNN-NADE
    python experiments/polyphonic.py --data "JSB Chorales.pickle" --out runs/poly-jsb
    python experiments/polyphonic.py --data Nottingham.mat --model bernoulli --config.train.steps=20000
    python experiments/polyphonic.py --corpus my_midi/ --frames-per-quarter 2  # your folder, eighth-note frames
    python experiments/polyphonic.py --quick                                  # a few hundred steps, sanity only

--data takes the BL2012 pickle, JSON ({"train": [[[pitches of step 0], ...], ...], "valid": ..., "test": ...})
or the .mat layout (cell arrays traindata / validdata / testdata of T x 88 binary matrices, column 0 = MIDI 21);
see musejax/data/bl2012.py. Without --data the bundled Bach chorales are rebuilt in that format into --out as
experiments/chung2014.py does (quarter-note frames, transposed to end on C, 20% valid / 20% test by piece;
musejax/data/bl2012_corpus.py); --corpus FOLDER builds it from your own files, and --frames-per-quarter 2 samples
every eighth note, as BL2012's Nottingham, MuseData and Piano-midi.de files do (experiments/nottingham_abc.py builds
a Nottingham-like file from ABC tunes with chord symbols). The model trains with musejax/configs/polyphonic.py
(`polyphonic:nade` or `polyphonic:bernoulli`; `--config.a.b=v` overrides it) into --out/<model> (--quick:
<model>-quick), and the best-valid checkpoint is scored on whole train, valid and test pieces with
musejax.evaluate.likelihood (the loop's own valid/test numbers must agree). Writes --out/results.json
({"data", "model", "params", "train_nll", "valid_nll", "test_nll", ...}; nats per time step) and results.md,
a table beside RNN-NADE's published test NLL and issue 14's target for the data sets it recognises by file
name (JSB, Nottingham, MuseData, Piano-midi). A --data file that is not a BL2012 file is a one-line error
(exit code 2).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from musejax.data.bl2012_corpus import add_bl2012_source_arguments, bl2012_source, data_stats

MODELS = ("nade", "bernoulli")
# Negative log-likelihood per time step on the test split: RNN-NADE in Boulanger-Lewandowski et al. 2012
# (Table 1, log-likelihoods -5.56 / -2.31 / -5.60 / -7.05), and the targets of issue 14.
PUBLISHED = {"JSB Chorales": {"rnn_nade": 5.56, "target": 5.50}, "Nottingham": {"rnn_nade": 2.31, "target": 2.30},
             "MuseData": {"rnn_nade": 5.60, "target": 5.55}, "Piano-midi.de": {"rnn_nade": 7.05, "target": 7.00}}
# Data set <- a word in the file name, lower-cased, letters and digits only ("JSB Chorales.pickle", "jsb_chorales.mat")
FILE_NAME_WORDS = {"jsb": "JSB Chorales", "nottingham": "Nottingham", "musedata": "MuseData",
                   "pianomidi": "Piano-midi.de"}
QUICK_OVERRIDES = ("--config.train.steps=300", "--config.train.eval_every_steps=50",
                   "--config.train.log_every_steps=50")
NLL_TOLERANCE = 1e-4  # relative: our whole-piece valid/test NLL against the training loop's own evaluation


def dataset_of(path: str | Path) -> str:
    """The BL2012 data set a file's name points to ("JSB Chorales", ...), else "unknown"."""
    name = re.sub(r"[^a-z0-9]", "", Path(path).name.lower())
    return next((dataset for word, dataset in FILE_NAME_WORDS.items() if word in name), "unknown")


# ---------------------------------------------------------------------------------------------- training


def _scored_rolls(rolls: list[np.ndarray], max_pieces: int) -> list[np.ndarray]:
    """The pieces the training loop uses for a split (musejax/lm/data.py): non-empty, at most max_pieces."""
    rolls = [np.asarray(r, bool) for r in rolls if len(r)]
    return rolls[:max_pieces] if max_pieces else rolls


def train_and_score(spec: str, data_path: Path, run_dir: Path, overrides: Sequence[str],
                    rolls: dict[str, list[np.ndarray]], progress: bool) -> dict[str, Any]:
    """Train config `spec` on the BL2012 file, then score its best-valid checkpoint on whole pieces."""
    import jax

    from musejax.lm.config import resolve_config
    from musejax.evaluate.likelihood import arrays_nll
    from musejax.lm.restore import restore_run
    from musejax.lm.task import train
    from musejax.train.metrics import read_metrics

    config = resolve_config(spec, [f"--config.data.corpus={data_path}", *overrides])
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
    nll = {}
    for split in ("train", "valid", "test"):
        sums, steps = arrays_nll(run, _scored_rolls(rolls[split], config.data.max_pieces),
                                 batch_size=config.train.eval_batch_size)
        nll[split] = float(sums.sum() / steps.sum())
    for split in ("valid", "test"):  # the loop's own evaluation of the same checkpoint must agree
        if not math.isclose(nll[split], result.final[f"{split}_nll"], rel_tol=NLL_TOLERANCE):
            raise RuntimeError(f"{run_dir}: {split} NLL {nll[split]:.5f} differs from the training loop's "
                               f"{result.final[f'{split}_nll']:.5f}")
    return {"model": config.model.output, "params": int(sum(np.size(x) for x in jax.tree.leaves(run.params))),
            "train_nll": nll["train"], "valid_nll": nll["valid"], "test_nll": nll["test"], "best_step": best_step,
            "steps": config.train.steps, "train_windows": result.final["n_train_windows"],
            "train_seconds": round(seconds, 1), "devices": f"{result.devices} {jax.default_backend()} device(s)",
            "run_dir": str(run_dir), "valid_curve": valid_curve,
            "config": config.to_dict()}


# ----------------------------------------------------------------------------------------------- report


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def markdown_report(results: dict[str, Any]) -> str:
    """The results table (one row) plus data and setup lines, as markdown."""
    r = results
    reference = r["reference"]
    published = PUBLISHED.get(reference, {})
    label = r["dataset"] if reference == r["dataset"] else f"{r['dataset']}; reference: {reference}"
    lines = ["| data | model | params | train NLL | valid NLL | test NLL | best step | RNN-NADE test (BL2012) "
             "| target test |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|",
             f"| {r['data']} ({label}) | {r['model']} | {r['params']:,} | {r['train_nll']:.3f} | "
             f"{r['valid_nll']:.3f} | **{r['test_nll']:.3f}** | {r['best_step']} of {r['steps']} | "
             f"{_number(published.get('rnn_nade'))} | {_number(published.get('target'))} |"]
    splits = ", ".join(f"{k} {v['pieces']} pieces / {v['steps']} steps ({v['mean_keys_per_step']} keys/step)"
                       for k, v in r["splits"].items())
    lines += ["", "NLL per time step (nats), whole pieces, at the best-valid checkpoint; the published column is "
              "RNN-NADE in Boulanger-Lewandowski et al. 2012, Table 1, the target issue 14's.",
              f"Data: {r['data_file']} ({r['data_source']}): {splits}."]
    if reference != r["dataset"]:
        lines.append(f"The reference columns are for {reference}: this data is another edition and split of the "
                     "chorales than BL2012's, so compare levels, not decimals.")
    shift = r["config"]["data"]["transpose_semitones"]
    augment = (f"training windows randomly transposed by up to {shift} semitones each way (BL2012 trained without)"
               if shift else "no augmentation")
    lines.append(f"Training: {r['train_seconds']:.0f} s ({r['devices']}), {augment}; overrides: "
                 f"{' '.join(r['overrides']) or 'none'}.")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from musejax.config import accept_config_overrides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="--config.GROUP.KEY=VALUE overrides musejax/configs/polyphonic.py.")
    add_bl2012_source_arguments(parser)
    parser.add_argument("--model", choices=MODELS, default="nade", help="frame distribution (default: nade)")
    parser.add_argument("--out", type=Path, default=Path("runs/polyphonic"),
                        help="output directory: results.json, results.md, the run in <out>/<model> "
                             "(default runs/polyphonic)")
    parser.add_argument("--seed", type=int, default=0, help="init and data-order seed (config.train.seed)")
    parser.add_argument("--quick", action="store_true", help=f"short sanity run: {' '.join(QUICK_OVERRIDES)}")
    parser.add_argument("--config", dest="config_spec", default=None, metavar="NAME[:ARG]",
                        help="another config than polyphonic:<model> (tests use polyphonic:tiny)")
    accept_config_overrides(parser)
    return parser.parse_args(argv)


def _fail(message: str) -> None:
    print(f"polyphonic.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Build or load the data, train, score, print and write the table; returns the results dict."""
    from musejax.host import setup_host

    args = parse_args(argv)
    try:
        setup_host()  # before JAX starts, as the `musejax` command does: one CPU device per core
    except ValueError as err:
        _fail(str(err))
    from absl import logging as absl_logging

    from musejax.config import ConfigError
    from musejax.data.bl2012 import load_bl2012

    absl_logging.set_verbosity(absl_logging.ERROR)
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        data_path, source = bl2012_source(args, args.out, progress=progress)
    except ValueError as err:  # an unknown corpus or one too small to split
        _fail(str(err))
    try:
        rolls = load_bl2012(data_path)
    except ValueError as err:
        _fail(str(err))
    dataset = dataset_of(data_path)
    # the bundled chorales at quarter notes stand in for BL2012's JSB (at eighth notes they are another data set)
    built_chorales = args.data is None and Path(args.corpus).name == "bach-chorales" and args.frames_per_quarter == 1
    reference = "JSB Chorales" if built_chorales else dataset
    spec = args.config_spec or f"polyphonic:{args.model}"
    overrides = [*(QUICK_OVERRIDES if args.quick else ()), f"--config.train.seed={args.seed}", *args.config_overrides]
    print(f"training {spec} on {data_path} ...", flush=True)
    try:
        run_dir = args.out / (f"{args.model}-quick" if args.quick else args.model)
        row = train_and_score(spec, data_path, run_dir, overrides, rolls, progress)
    except ConfigError as err:  # a bad override, a run dir holding another config: the user's to fix
        _fail(str(err))
    published = PUBLISHED.get(reference, {})
    results = {"data": data_path.name, **{k: row[k] for k in ("model", "params", "train_nll", "valid_nll", "test_nll")},
               "experiment": "polyphonic", "dataset": dataset, "reference": reference,
               "published_rnn_nade_test_nll": published.get("rnn_nade"), "target_test_nll": published.get("target"),
               "data_file": str(data_path), "data_source": source, "splits": data_stats(rolls),
               "nll_unit": "nats per time step, whole pieces", "test_at": "best valid step",
               "command": " ".join(["python", "experiments/polyphonic.py", *(sys.argv[1:] if argv is None else argv)]),
               "config_spec": spec, "quick": args.quick, "seed": row["config"]["train"]["seed"], "overrides": overrides,
               **{k: v for k, v in row.items() if k not in ("model", "params", "train_nll", "valid_nll", "test_nll")},
               "wall_seconds": round(time.perf_counter() - started, 1)}
    report = markdown_report(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (args.out / "results.md").write_text(f"# Polyphonic benchmark ({args.out})\n\n{report}\n\n"
                                         f"Command: `{results['command']}` ({results['wall_seconds']:.0f} s)\n")
    print(report)
    print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'} ({results['wall_seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
