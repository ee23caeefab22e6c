"""`musejax train`: train a music language model into a run directory (resumable), then write a few samples
(MIDI, PNG, WAV) and report.html, the samples against the validation pieces.

    musejax train                                  # default config (GRU piano-roll LM on the Bach chorales)
    musejax train --config lm:tiny --workdir runs/t --config.train.steps=50
    musejax train --workdir runs/t                 # continue runs/t from its latest checkpoint
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from musejax.errors import CommandError
from musejax.cli.run_options import add_run_arguments, join_distributed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(
        parser, workdir_help="run directory (default: runs/<config>-<timestamp>); an existing run is continued",
        config_help="config in musejax/configs, e.g. lm (default), lm:tiny, chung2014:gru; when continuing a run, "
                    "defaults to the run's config.json",
        epilog="Override any config value with --config.GROUP.KEY=VALUE, e.g. --config.model.hidden=512 "
               "--config.train.steps=5000 (groups: data, model, optim, train, sample, ckpt).")


def _has_checkpoint(workdir: Path | None) -> bool:
    return workdir is not None and (workdir / "checkpoints").is_dir() and any(
        p.name.isdigit() for p in (workdir / "checkpoints").iterdir())


def _resolve(args: argparse.Namespace):
    """The config: --config (default lm) with overrides; when continuing a run without --config, the run's
    saved config.json with the overrides on top."""
    from musejax.config import saved_config_dict, to_dataclass
    from musejax.lm.config import Config, resolve_config

    overrides = getattr(args, "config_overrides", [])
    saved = args.workdir / "config.json" if args.workdir is not None else None
    if args.config is None and args.resume is not False and saved is not None and saved.exists():
        return to_dataclass(saved_config_dict(args.workdir, Config, "language-model", overrides,
                                              hint="; train it with its own command"), Config)
    return resolve_config(args.config or "lm", overrides)


def run(args: argparse.Namespace) -> int:
    import jax

    from musejax.evaluate.runs import REPORT_DIR, lm_validation_pieces, write_run_report
    from musejax.lm.sample import CopyReport, SampleError, write_run_samples
    from musejax.lm.task import default_run_dir, train
    from musejax.midi.audio import make_renderer
    from musejax.train.mesh import describe_devices

    started = time.perf_counter()
    join_distributed(args.distributed, show_devices=False)
    print(describe_devices())
    config = _resolve(args)
    if args.resume is False and _has_checkpoint(args.workdir):
        raise CommandError(f"{args.workdir}: already has checkpoints; drop --no-resume to continue it "
                           f"or choose another --workdir")
    if args.workdir is None and jax.process_count() > 1:
        raise CommandError("a multi-host run needs --workdir (the same shared directory on every host)")
    workdir = args.workdir or default_run_dir(config.name)
    print(f"run directory: {workdir}")
    result = train(config, workdir, resume=args.resume is not False, progress=not args.no_progress)
    final = result.final or {}
    print(f"best step {final.get('best_step')}: valid NLL {final.get('valid_nll', float('nan')):.4f}, "
          f"test NLL {final.get('test_nll', float('nan')):.4f} (nats per time step)")
    report = None
    if config.sample.n > 0 and result.final is not None:
        is_main = jax.process_index() == 0
        renderer = make_renderer()
        if renderer.notice and is_main:
            print(renderer.notice)
        # a multi-host job: every process samples, the first one writes
        copies = CopyReport()
        try:
            paths = write_run_samples(workdir, config, audio=renderer, copy_report=copies)
        except SampleError as err:
            raise CommandError(f"{workdir}: config.sample: {err}") from None
        if is_main:
            print(f"wrote {len(paths)} samples to {workdir / 'samples'}: {paths[0].name} .. {paths[-1].name} "
                  f"(MIDI, piano-roll PNG and WAV audio: {paths[0].with_suffix('.wav')})")
            if copies.max_bars:
                print(copies.summary())
            report = write_run_report(paths, lm_validation_pieces(config), workdir / REPORT_DIR)
    print(f"done in {time.perf_counter() - started:.0f} s: {workdir}")
    if report is not None:
        print(f"open the report (tables, piano-rolls, players): python -m webbrowser {report.resolve().as_uri()}")
    return 0
