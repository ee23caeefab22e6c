"""`musejax gan`: train the multitrack bar GAN (MuseGAN) and sample MIDI + piano-roll PNGs from it.

    musejax gan train                                   # default: hybrid MuseGAN on the Bach chorales (S/A/T/B)
    musejax gan train --config gan:tiny --workdir runs/g --config.train.steps=20
    musejax gan train --workdir runs/g                  # continue runs/g from its latest checkpoint
    musejax gan sample --run runs/g --n 8 [--bernoulli | --threshold 0.5] [--seed 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from musejax.errors import CommandError
from musejax.cli.audio_options import add_audio_arguments, renderer_from_args
from musejax.cli.run_options import add_run_arguments, join_distributed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    train = sub.add_parser("train", help="train a GAN into a run directory (resumable)")
    add_run_arguments(
        train, command_parser=parser, workdir_help="run directory (default: runs/<config>-<timestamp>); an existing run is continued",
        config_help="gan (default) or gan:tiny; when continuing a run, defaults to its config.json",
        epilog="Override any config value with --config.GROUP.KEY=VALUE, e.g. --config.loss.kind=minimax "
               "--config.train.steps=2000 (groups: data, model, loss, g_optim, d_optim, train, sample, ckpt).")
    sample = sub.add_parser("sample", help="write N binarised samples of a trained GAN as MIDI + PNG")
    sample.add_argument("--run", type=Path, required=True, metavar="DIR", help="trained GAN run directory")
    sample.add_argument("--n", type=int, default=8, help="number of samples (default 8)")
    binarise = sample.add_mutually_exclusive_group()
    binarise.add_argument("--threshold", type=float, default=None,
                          help="a cell sounds if p > threshold (default: the run's config.sample.threshold)")
    binarise.add_argument("--bernoulli", action="store_true",
                          help="draw every cell with probability p (a run trained with loss.binary_fakes, the "
                               "default, learns through the 0.5 threshold: its p are not calibrated and Bernoulli "
                               "samples come out about 3x denser than the music)")
    sample.add_argument("--seed", type=int, default=0, help="same seed and settings -> same samples")
    sample.add_argument("--style", default=None, help="style name of a conditional run")
    sample.add_argument("--checkpoint", default="latest", help="latest or a step number")
    sample.add_argument("--out", type=Path, default=None, metavar="DIR", help="output folder (default RUN/samples)")
    add_audio_arguments(sample)


def run(args: argparse.Namespace) -> int:
    if args.action == "train":
        return _train(args)
    if getattr(args, "config_overrides", []):
        raise CommandError("--config.* overrides are for `musejax gan train`")
    return _sample(args)


def _resolve(args: argparse.Namespace):
    from musejax.gan.config import resolve_gan_config, saved_gan_config

    overrides = getattr(args, "config_overrides", [])
    saved = args.workdir / "config.json" if args.workdir is not None else None
    if args.config is None and args.resume is not False and saved is not None and saved.exists():
        return saved_gan_config(args.workdir, overrides)
    return resolve_gan_config(args.config or "gan", overrides)


def _train(args: argparse.Namespace) -> int:
    import jax

    from musejax.gan.data import load_gan_data
    from musejax.gan.task import final_samples, train_gan
    from musejax.train.fit import load_corpus
    from musejax.lm.task import default_run_dir
    from musejax.train.mesh import describe_devices

    started = time.perf_counter()
    join_distributed(args.distributed, show_devices=False)
    config = _resolve(args)
    # The data first: a cold build parses in worker processes, forked before JAX starts its threads.
    data = load_corpus(load_gan_data, config.data, progress=not args.no_progress)
    print(describe_devices())
    workdir = args.workdir or default_run_dir(config.name)
    has_checkpoints = (workdir / "checkpoints").is_dir() and any(
        p.name.isdigit() for p in (workdir / "checkpoints").iterdir())
    if args.resume is False and has_checkpoints:
        raise CommandError(f"{workdir}: already has checkpoints; drop --no-resume to continue it or choose "
                           f"another --workdir")
    print(f"run directory: {workdir}")
    print(data.description)
    result = train_gan(config, workdir, resume=args.resume is not False, progress=not args.no_progress, data=data)
    if result.finished and jax.process_count() > 1:  # sampling restores on one process: after the job
        paths = []
        if jax.process_index() == 0:
            print(f"sample it (one process): musejax gan sample --run {workdir}")
    else:
        paths = final_samples(workdir, config) if result.finished else []
    if paths:
        print(f"wrote {len(paths)} samples (MIDI + PNG) to {workdir / 'samples'}")
    print(f"done in {time.perf_counter() - started:.0f} s ({result.step} generator steps): {workdir}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from musejax.gan.run import restore_gan
    from musejax.gan.sample import generate_segments, write_segments

    checkpoint = args.checkpoint
    if checkpoint != "latest" and not checkpoint.isdigit():
        raise CommandError(f"--checkpoint must be latest or a step number, got {checkpoint!r}")
    if args.n < 1:
        raise CommandError(f"--n must be >= 1, got {args.n}")
    if args.threshold is not None and not 0.0 <= args.threshold < 1.0:
        raise CommandError(f"--threshold must be in [0, 1), got {args.threshold}")
    renderer = renderer_from_args(args)
    restored = restore_gan(args.run, checkpoint)
    style = None
    if restored.generator.n_styles:
        if args.style is None or args.style not in restored.styles:
            raise CommandError(f"{args.run}: a conditional run needs --style, one of {', '.join(restored.styles)}")
        style = restored.styles.index(args.style)
    elif args.style is not None:
        raise CommandError(f"{args.run}: the run is not style-conditioned; drop --style")
    threshold = None if args.bernoulli else (args.threshold if args.threshold is not None
                                             else restored.config.sample.threshold)
    segments = generate_segments(restored.generator, restored.variables, args.n, seed=args.seed,
                                 threshold=threshold, style=style)
    out_dir = args.out or args.run / "samples"
    paths = write_segments(segments, restored.encoding, out_dir, qpm=restored.config.sample.qpm, audio=renderer)
    how = "Bernoulli draws" if threshold is None else f"p > {threshold:g}"
    kinds = "MIDI + PNG + WAV" if renderer is not None else "MIDI + PNG"
    print(f"wrote {len(paths)} samples ({how}, step {restored.step}) as {kinds} to {out_dir}: "
          f"{paths[0].name} .. {paths[-1].name}, sample_grid.png, sample_all.mid")
    return 0
