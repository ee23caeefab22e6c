"""The `musejax` command. Thin: parses arguments and calls into the package.

Each sub-command lives in `musejax/commands/<name>.py` and exposes `add_arguments(parser)` and
`run(args) -> int`. Modules are imported only when their command runs, so `musejax --help` stays fast
(no JAX start-up).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from musejax.errors import CommandError
from musejax.host import use_every_cpu_core

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("musejax.commands.data", "list, build and inspect corpora"),
    "train": ("musejax.commands.train", "train a GRU/LSTM/RNN music language model"),
    "sample": ("musejax.commands.sample", "sample MIDI from a trained run (optionally continuing a primer)"),
    "edit": ("musejax.commands.edit", "edit a MIDI/MusicXML/ABC file: transpose, tempo, velocity, program, ..."),
    "evaluate": ("musejax.commands.evaluate", "compare generated pieces with a corpus: metrics, originality, NLL"),
    "gan": ("musejax.commands.gan", "train a multitrack bar GAN (MuseGAN) and sample MIDI from it"),
    "classify": ("musejax.commands.classify", "top styles of music files (or --train the style classifier)"),
    "recommend": ("musejax.commands.recommend", "recommend pieces from a library like the ones you liked"),
}


def _available() -> dict[str, tuple[str, str]]:
    return {name: spec for name, spec in COMMANDS.items() if importlib.util.find_spec(spec[0]) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="musejax", description="AI music creation in JAX.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in _available().items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = _available()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in commands:
        build_parser().parse_args(argv)  # prints help or a clear "invalid choice" error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(commands[name][0])
    parser = argparse.ArgumentParser(prog=f"musejax {name}", description=commands[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        use_every_cpu_core()  # before JAX starts: one CPU device per core for data parallelism
    except ValueError as err:
        print(f"musejax {name}: error: {err}", file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except CommandError as err:
        print(f"musejax {name}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"musejax {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
