"""`musejax classify`: the most likely styles of music files, or train the style classifier.

    musejax classify tune.abc chorale.mxl song.mid          # top styles per piece (runs/style by default)
    musejax classify --model runs/style --top 5 --json piece.mid
    musejax classify --train                                 # train runs/style on the eight bundled corpora
    musejax classify --train --config style:tiny --workdir runs/s --config.data.corpus=my_corpus/ \\
        --config.data.labels=folder

A piece far from every training style (Mahalanobis distance of its embedding to the nearest style, relative
to that style's typical piece, above the threshold calibrated on valid pieces; see musejax/style/classify.py) is reported as "unknown style"
instead of being forced into one of the training styles; its ranked styles are still printed. Beside them each
piece's texture as the classifier saw it (monophonic / homophonic / polyphonic, the number of voices, the onset
grid; musejax/style/texture.py), so an odd answer can be traced to the texture; --json gives it as "texture".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from musejax.errors import CommandError
from musejax.cli.run_options import add_run_arguments, join_distributed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE", help="MIDI / MusicXML / ABC / Humdrum files")
    parser.add_argument("--model", type=Path, default=None, metavar="RUN",
                        help="classifier run directory (default $MUSEJAX_STYLE_RUN or runs/style)")
    parser.add_argument("--top", type=int, default=3, help="styles printed per piece (default 3)")
    parser.add_argument("--json", action="store_true", help="one JSON object per piece instead of text")
    parser.add_argument("--train", action="store_true", help="train a classifier run (then FILEs are not allowed)")
    add_run_arguments(
        parser, when="--train: ", resume=False, config_help="config (default style)",
        workdir_help="run directory (default: --model or runs/style); an unfinished run is continued",
        epilog="With --train, override config values with --config.GROUP.KEY=VALUE (e.g. --config.train.steps=500).")


def run(args: argparse.Namespace) -> int:
    if args.train:
        if args.files:
            raise CommandError("--train takes no FILE arguments (classify them after training)")
        return _train(args)
    if args.config_overrides or args.config:
        raise CommandError("--config and --config.* overrides are for --train")
    if not args.files:
        raise CommandError("give at least one FILE to classify (or --train)")
    if args.top < 1:
        raise CommandError(f"--top must be >= 1, got {args.top}")
    return _classify(args)


def _train(args: argparse.Namespace) -> int:
    from musejax.style.classify import default_style_run
    from musejax.style.config import resolve_style_config, saved_style_config
    from musejax.style.task import train_classifier

    join_distributed(args.distributed)
    workdir = args.workdir or args.model or default_style_run()
    if args.config is None and (workdir / "config.json").exists():
        config = saved_style_config(workdir, args.config_overrides)
    else:
        config = resolve_style_config(args.config or "style", args.config_overrides)
    print(f"run directory: {workdir}")
    result = train_classifier(config, workdir, progress=not args.no_progress)
    import jax

    report = result.report
    if jax.process_index() != 0:  # a multi-host job: the first process reports
        return 0
    test, base = report["test"], report["majority_baseline"]
    print(f"test: accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f} ({test['n']} pieces); "
          f"majority class ({base['predicts']}): accuracy {base['accuracy']:.3f}, macro-F1 {base['macro_f1']:.3f}")
    print(f"out-of-style threshold: distance {report['calibration']['threshold']:.2f} (accepts "
          f"{report['calibration']['valid_accepted']:.0%} of valid pieces)")
    print(f"wrote {workdir / 'report.md'}, report.json, confusion.png, calibration.json")
    return 0


def _classify(args: argparse.Namespace) -> int:
    from musejax.style.classify import embed_sequences, load_style_run, predictions
    from musejax.data.readers import read_file
    from musejax.style.texture import texture_of

    style_run = load_style_run(args.model)
    sequences, names, problems = [], [], 0
    for path in args.files:
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        pieces, failures = read_file(path)
        for failure in failures:
            tune = f" (tune {failure.tune})" if failure.tune is not None else ""
            print(f"{path}{tune}: cannot read: {failure.reason}: {failure.detail}", file=sys.stderr)
            problems += 1
        for ns in pieces:
            sequences.append(ns)
            names.append(f"{path}#{ns.reference_number}" if ns.reference_number else str(path))
    embedded = embed_sequences(style_run, sequences)
    for position, name, reason in embedded.failures:
        print(f"{names[position]}: cannot classify: {reason}", file=sys.stderr)
        problems += 1
    results = predictions(style_run, [names[i] for i in embedded.kept], embedded)
    for position, result in zip(embedded.kept, results):
        texture = texture_of(sequences[position])
        top = result.ranked[:args.top]
        if args.json:
            print(json.dumps({"file": result.name, "style": result.style, "confident": result.confident,
                              "distance": round(result.distance, 3), "threshold": round(style_run.threshold, 3),
                              "top": [{"style": s, "probability": round(p, 4)} for s, p in top],
                              "texture": texture.to_dict()}))
            continue
        ranked = ", ".join(f"{s} {p:.2f}" for s, p in top)
        if result.confident:
            print(f"{result.name}: {ranked}  [texture: {texture.describe()}]")
        else:
            print(f"{result.name}: unknown style (distance {result.distance:.2f} to the nearest training style "
                  f"> threshold {style_run.threshold:.2f}); {ranked}  [texture: {texture.describe()}]")
    if not results:
        raise CommandError("no piece could be classified (see the messages above)")
    return 1 if problems else 0
