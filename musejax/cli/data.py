"""`musejax data ...`: list and inspect corpora (`info`). Sub-commands register in ACTIONS."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from musejax.errors import CommandError


def _table(header: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = []
    for row in [header, ["-" * w for w in widths], *rows]:
        cells = [f"{cell:>{w}}" if i in right else f"{cell:<{w}}" for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _run_info(args: argparse.Namespace) -> int:
    from musejax.data.corpora import BUNDLED_CORPORA, resolve_corpus

    if args.corpus is None:
        rows = []
        for name, spec in BUNDLED_CORPORA.items():
            corpus = resolve_corpus(name)
            rows.append([name, str(corpus.n_pieces), str(len(corpus.files)), spec.style, spec.description])
        print(_table(["corpus", "pieces", "files", "style", "description"], rows, right={1, 2}))
        print("\nA user corpus is any directory of .mid/.midi, .xml/.mxl/.musicxml, .abc and .krn files: "
              "musejax data info PATH [--labels folder|FILE.csv|FILE.json]")
        return 0
    try:
        corpus = resolve_corpus(args.corpus, labels=args.labels)
    except ValueError as error:
        raise CommandError(str(error)) from None
    print(f"corpus       {corpus.name}")
    print(f"description  {corpus.description}")
    print(f"root         {corpus.root}")
    print(f"files        {len(corpus.files)}" + (f" (+{len(corpus.unsupported)} unsupported, skipped)"
                                                 if corpus.unsupported else ""))
    print(f"pieces       {corpus.n_pieces}")
    print(f"fingerprint  {corpus.fingerprint()}")
    for note in corpus.notes:
        print(f"note         {note}")
    styles = sorted(corpus.styles().items(), key=lambda item: (-item[1], str(item[0])))
    print()
    print(_table(["style", "pieces"], [[str(style or "(none)"), str(count)] for style, count in styles], right={1}))
    return 0


# action name -> (handler, add-arguments function, one-line help).
def _add_info_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", nargs="?", help="a bundled corpus name or a directory/file (default: list all)")
    parser.add_argument("--labels", default=None,
                        help='style labels of a directory corpus: "folder" (first sub-folder) or a CSV/JSON '
                             "file mapping relative paths (files or folders) to labels")


# ---------------------------------------------------------------- `musejax data build`

_ENCODING_FLAGS = {  # flag -> (type, help); passed to get_encoding only when given
    "steps_per_quarter": (int, "grid resolution of pianoroll/melody (default 4)"),
    "onsets": (None, "pianoroll: add an onset channel ((T, 2, 88))"),
    "min_pitch": (int, "melody/multitrack: lowest pitch"), "max_pitch": (int, "melody: highest pitch"),
    "velocity_bins": (int, "performance: velocity bins"), "steps_per_second": (int, "performance: time resolution"),
    "max_shift_steps": (int, "performance: longest time shift"), "n_tracks": (int, "multitrack: tracks"),
    "n_bars": (int, "multitrack: bars per segment"), "steps_per_bar": (int, "multitrack: steps per bar"),
    "n_pitches": (int, "multitrack: pitches"),
}


def format_build_report(dataset: Any, max_listed: int = 10) -> str:
    """The text `musejax data build` prints: per-corpus loaded/failed, failures by reason, split sizes."""
    width = max(len(name) for name in dataset.corpus_reports) if dataset.corpus_reports else 6
    lines = [f"{'corpus':<{width}}  {'files':>6}  {'loaded':>7}  {'failed':>6}  cache"]
    for name, r in dataset.corpus_reports.items():
        lines.append(f"{name:<{width}}  {r.n_files:>6}  {r.n_loaded:>7}  {r.n_failed:>6}  "
                     f"{dataset.cache_status.get(name, '-')}")
    lines += ["", dataset.report.summary(max_listed=max_listed), ""]
    sizes = ", ".join(f"{split} {len(pieces)}" for split, pieces in dataset.splits.items())
    lines.append(f"pieces per split: {sizes}; styles: {', '.join(dataset.styles) or 'none'}")
    return "\n".join(lines)


def _add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `musejax data build` (an argparse parser)."""
    parser.add_argument("--corpus", action="append", required=True, metavar="NAME|PATH",
                        help="bundled corpus name, folder or file; repeat to combine; 'all' = every bundled corpus")
    parser.add_argument("--encoding", required=True, choices=["pianoroll", "melody", "performance", "multitrack"])
    for option, (kind, help_text) in _ENCODING_FLAGS.items():
        flag = "--" + option.replace("_", "-")
        if kind is None:
            parser.add_argument(flag, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=None, metavar="N", help=help_text)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the splits, report and summary")
    parser.add_argument("--cache-dir", default=None, help="cache folder (default $MUSEJAX_CACHE or ~/.cache/musejax)")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="parse processes (default: all cores)")
    parser.add_argument("--labels", default=None, help="style labels of a folder corpus: 'folder' or a CSV/JSON file")
    parser.add_argument("--valid-fraction", type=float, default=0.1, metavar="F")
    parser.add_argument("--test-fraction", type=float, default=0.1, metavar="F")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run_build(args: argparse.Namespace) -> int:
    """Build (or load from the cache) the dataset, write it to --out and print the build report."""
    from musejax.data.datasets import build_dataset, write_dataset
    from musejax.data.encodings import get_encoding

    options = {k: getattr(args, k) for k in _ENCODING_FLAGS if getattr(args, k, None) is not None}
    try:
        encoding = get_encoding(args.encoding, **options)
        start = time.perf_counter()
        dataset = build_dataset(args.corpus, encoding, cache_dir=args.cache_dir, workers=args.workers,
                                progress=not args.no_progress, labels=args.labels,
                                valid_fraction=args.valid_fraction, test_fraction=args.test_fraction)
    except ValueError as err:  # unknown corpus / option, bad labels file, bad fractions
        raise CommandError(str(err)) from None
    seconds = time.perf_counter() - start
    summary = write_dataset(dataset, args.out)
    print(format_build_report(dataset))
    print(f"built in {seconds:.1f} s; wrote {', '.join(sorted(summary['splits']))} splits, report.json, "
          f"failed_files.txt and summary.json to {args.out}")
    return 0


ACTIONS: dict[str, tuple[Callable[[argparse.Namespace], int], Callable[[argparse.ArgumentParser], None], str]] = {
    "info": (_run_info, _add_info_arguments, "list the bundled corpora, or describe one corpus"),
    "build": (_run_build, _add_build_arguments,
              "parse and encode corpora into train/valid/test arrays (cached), with a build report"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    for name, (_, add, help_text) in ACTIONS.items():
        add(actions.add_parser(name, help=help_text, description=help_text))


def run(args: argparse.Namespace) -> int:
    return ACTIONS[args.action][0](args)
