"""`musejax evaluate`: compare generated pieces with a reference corpus; write report.json, report.md, plots and
report.html (piano-rolls of the pieces, and players with --audio).

    musejax evaluate --samples runs/gru/samples --reference bach-chorales
    musejax evaluate --samples runs/gru --reference bach-chorales --lm runs/gru     # a run: its samples/ + NLL
    musejax evaluate --samples my_midis/ --reference my_corpus/ --out eval/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from musejax.errors import CommandError
from musejax.cli.audio_options import add_audio_arguments, renderer_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--samples", required=True, type=Path, metavar="DIR|RUN",
                        help="folder of generated MIDI/MusicXML/ABC files, or a run directory (uses its samples/)")
    parser.add_argument("--reference", required=True, metavar="CORPUS|DIR",
                        help="bundled corpus name (e.g. bach-chorales) or a folder of music files")
    parser.add_argument("--lm", default=None, metavar="RUN",
                        help="trained LM run: also report the NLL per step of both sets under it")
    parser.add_argument("--lm-style", default=None,
                        help="style name (one of the run's styles) to score with a style-conditioned --lm run")
    parser.add_argument("--style-model", default=None, metavar="RUN",
                        help="style classifier run: also report the Fréchet distance of the two sets' style embeddings")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <samples>/evaluation)")
    parser.add_argument("--steps-per-quarter", type=int, default=4, help="grid for the metrics (default 4: 16ths)")
    parser.add_argument("--max-compare-pieces", type=int, default=2000,
                        help="subsample larger sets to this many pieces for the distribution comparisons")
    parser.add_argument("--copy-bars", type=float, default=2.0,
                        help="a shared run spanning this many bars counts as a verbatim copy (default 2)")
    parser.add_argument("--no-originality", action="store_true", help="skip the originality index")
    parser.add_argument("--no-plots", action="store_true", help="write report.json and report.md only")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsampling")
    parser.add_argument("--cache-dir", default=None, help="corpus cache (default $MUSEJAX_CACHE or ~/.cache/musejax)")
    parser.add_argument("--workers", type=int, default=None, help="processes parsing the reference (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while parsing a corpus")
    parser.add_argument("--html-pieces", type=int, default=16, metavar="N",
                        help="generated pieces shown in report.html with their piano-roll (and player with --audio; "
                             "default 16)")
    add_audio_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from musejax.evaluate.inputs import read_reference, read_samples
    from musejax.evaluate.html import write_piece_media
    from musejax.evaluate.report import EvaluateOptions, evaluate_sets, write_report

    if args.steps_per_quarter < 1 or args.max_compare_pieces < 2 or args.copy_bars <= 0:
        raise CommandError("--steps-per-quarter must be >= 1, --max-compare-pieces >= 2 and --copy-bars > 0")
    if args.html_pieces < 0:
        raise CommandError(f"--html-pieces must be >= 0, got {args.html_pieces}")
    renderer = renderer_from_args(args)
    out = args.out if args.out is not None else args.samples / "evaluation"
    if args.lm is not None and not (Path(args.lm) / "config.json").is_file():
        raise CommandError(f"{args.lm}: not a run directory (no config.json) for --lm")
    if args.style_model is not None and not (Path(args.style_model) / "config.json").is_file():
        raise CommandError(f"{args.style_model}: not a classifier run directory (no config.json) for --style-model")
    try:
        generated = read_samples(args.samples, exclude=out)
        reference = read_reference(args.reference, cache_dir=args.cache_dir, workers=args.workers,
                                   progress=not args.no_progress)
        options = EvaluateOptions(steps_per_quarter=args.steps_per_quarter, max_compare_pieces=args.max_compare_pieces,
                                  seed=args.seed, originality=not args.no_originality, min_copy_bars=args.copy_bars,
                                  lm_run=str(args.lm) if args.lm else None, lm_style=args.lm_style,
                                  style_run=args.style_model)
        evaluation = evaluate_sets(generated, reference, options)
    except ValueError as err:  # unreadable inputs, unknown corpus, a run without checkpoints: the user's to fix
        raise CommandError(str(err)) from None
    pieces = write_piece_media(generated.sequences, out / "pieces", audio=renderer, limit=args.html_pieces)
    paths = write_report(evaluation, out, plots=not args.no_plots, pieces=pieces)
    report = evaluation.report
    print(f"generated: {report['generated']['n_evaluated']} pieces ({len(report['generated']['failures'])} skipped)"
          f"  reference: {report['reference']['n_evaluated']} pieces ({len(report['reference']['failures'])} skipped)")
    for name in ("pitch_class_entropy", "polyphony", "scale_consistency", "empty_beat_rate", "groove_consistency"):
        row = report["metrics"][name]
        print(f"  {name:<22} generated {_mean(row['generated'])}  reference {_mean(row['reference'])}"
              f"  overlap {_fmt(row['overlap_area'])}")
    if report.get("originality"):
        section = report["originality"]
        print(f"  copies >= {section['min_bars']:g} bars: {section['share_copying_min_bars']:.1%} of pieces;"
              f" longest shared run {section['longest_notes_max']} notes")
    if report.get("likelihood"):
        print("  NLL per step: " + ", ".join(f"{role} {_fmt(row['nll_per_step'])}"
                                            for role, row in report["likelihood"].items()))
    if report.get("frechet") and "frechet_distance" in report["frechet"]:
        print(f"  Fréchet distance of style embeddings: {_fmt(report['frechet']['frechet_distance'])}"
              f" (reference halves: {_fmt(report['frechet']['reference_halves_frechet_distance'])})")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    print(f"open the report: python -m webbrowser {paths['html'].resolve().as_uri()}")
    return 0


def _fmt(value) -> str:
    return "–" if value is None or value != value else f"{value:.3f}"


def _mean(summary: dict) -> str:
    return _fmt(summary["mean"])
