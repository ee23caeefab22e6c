"""The options every training command shares (`musejax train`, `musejax gan train`, `musejax classify --train`):
the run directory, the config and its --config.GROUP.KEY=VALUE overrides, resume, progress and multi-host."""

from __future__ import annotations

import argparse
from pathlib import Path

from musejax.config import accept_config_overrides
from musejax.errors import CommandError

DISTRIBUTED_HELP = ("multi-host run: call jax.distributed.initialize() (SLURM, Open MPI, TPU pod slices; also done "
                    "whenever JAX_COORDINATOR_ADDRESS is set)")


def add_run_arguments(parser: argparse.ArgumentParser, *, config_help: str, workdir_help: str, epilog: str,
                      resume: bool = True, when: str = "", command_parser: argparse.ArgumentParser | None = None
                      ) -> None:
    """Add --workdir, --config, --resume (if `resume`), --no-progress, --distributed and the config overrides;
    `when` prefixes each help where the options only apply to one mode (e.g. "--train: "). The overrides are
    collected by `command_parser` (default `parser`): the parser that reads the command line, which for a
    sub-command's sub-parser (`musejax gan train`) is its parent."""
    parser.add_argument("--workdir", type=Path, default=None, help=when + workdir_help)
    parser.add_argument("--config", default=None, metavar="NAME[:ARG]", help=when + config_help)
    if resume:
        parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                            help="continue from the workdir's latest checkpoint (default: if it has one); "
                                 "--no-resume refuses to touch a workdir that has checkpoints")
    parser.add_argument("--no-progress", action="store_true", help=when + "no progress bar")
    parser.add_argument("--distributed", action="store_true", help=when + DISTRIBUTED_HELP)
    parser.epilog = epilog
    accept_config_overrides(command_parser or parser)


def join_distributed(force: bool, *, show_devices: bool = True) -> bool:
    """Join a multi-host job when `force` (--distributed) or when JAX_COORDINATOR_ADDRESS is set, and say so (with
    the devices joined if `show_devices`); a bad setting is a CommandError. It starts JAX: call it from `run`."""
    from musejax.train.mesh import describe_devices, initialize_distributed

    try:
        joined = initialize_distributed(force=force)
    except ValueError as err:
        raise CommandError(str(err)) from None
    if joined:
        print(f"joined a multi-host run: {describe_devices()}" if show_devices else "joined a multi-host run")
    return joined
