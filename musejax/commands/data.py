"""`musejax data ...`: list and inspect corpora (`info`). Sub-commands register in ACTIONS."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from musejax.cli import CommandError


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


def _add_build_arguments(parser: argparse.ArgumentParser) -> None:
    from musejax.data.datasets import add_build_arguments

    add_build_arguments(parser)


def _run_build(args: argparse.Namespace) -> int:
    from musejax.data.datasets import run_build

    return run_build(args)


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
