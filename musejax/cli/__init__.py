"""The `musejax` command. Thin: parses arguments and calls into the package.

Each sub-command lives in `musejax/cli/<name>.py` and exposes `add_arguments(parser)` and
`run(args) -> int`. Modules are imported only when their command runs, so `musejax --help` stays fast
(no JAX start-up).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback

from musejax.errors import UserError
from musejax.host import setup_host

# command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "data": ("musejax.cli.data", "list, build and inspect corpora"),
    "train": ("musejax.cli.train", "train a GRU/LSTM/RNN music language model"),
    "sample": ("musejax.cli.sample", "sample MIDI from a trained run (optionally continuing a primer)"),
    "edit": ("musejax.cli.edit", "edit a MIDI/MusicXML/ABC file: transpose, tempo, velocity, program, ..."),
    "evaluate": ("musejax.cli.evaluate", "compare generated pieces with a corpus: metrics, originality, NLL"),
    "gan": ("musejax.cli.gan", "train a multitrack bar GAN (MuseGAN) and sample MIDI from it"),
    "classify": ("musejax.cli.classify", "top styles of music files (or --train the style classifier)"),
    "recommend": ("musejax.cli.recommend", "recommend pieces from a library like the ones you liked"),
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
        setup_host()  # before JAX starts: one CPU device per core for data parallelism, malloc keeping blocks
    except ValueError as err:
        print(f"musejax {name}: error: {err}", file=sys.stderr)
        return 2
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # Orbax's informational warnings are not for users
    try:
        return int(module.run(args) or 0)
    except UserError as err:  # ConfigError, ReadError, a diverged run, ...: the user's to fix
        print(f"musejax {name}: error: {err}", file=sys.stderr)
        return _leave_job(2)
    except KeyboardInterrupt:
        print(f"musejax {name}: interrupted", file=sys.stderr)
        return _leave_job(130)
    except Exception as err:  # noqa: BLE001 - one process of a multi-host job failing must not hang the others
        if not _in_multihost_job():
            raise
        traceback.print_exc()
        print(f"musejax {name}: error: process {_process_index()} of this multi-host job stops: "
              f"{_peer_failure_hint(err)}", file=sys.stderr)
        return _leave_job(1)


def _in_multihost_job() -> bool:
    jax = sys.modules.get("jax")
    try:
        return jax is not None and jax.process_count() > 1
    except Exception:  # noqa: BLE001 - no backend: no job
        return False


def _process_index() -> str:
    jax = sys.modules["jax"]
    return f"{jax.process_index() + 1}"


def _peer_failure_hint(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    marks = ("Connection closed by peer", "Connection reset", "heartbeat", "UNAVAILABLE", "barrier")
    if any(mark.lower() in str(err).lower() for mark in marks):
        return (f"another process of the job died or was killed ({text}). Relaunch every process with the same "
                f"command: the run resumes from its latest checkpoint")
    return text


def _leave_job(code: int) -> int:
    """In a multi-host job, exit now: a normal exit waits in JAX's shutdown barrier for every other process,
    which hangs (until the heartbeat timeout) when one of them is dead or stuck in a collective."""
    if not _in_multihost_job():
        return code
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
