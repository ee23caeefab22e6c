"""`musejax sample`: MIDI + piano-roll PNGs from a trained run, from scratch or continuing a primer.

    musejax sample --run runs/bach --n 4                 # whole pieces: lengths drawn from the corpus's pieces
    musejax sample --run runs/bach --bars 16 --primer my.mid   # continue my.mid by 16 bars
    musejax sample --run runs/melody --top-p 0.9 --temperature 0.8 --primer my_tune.mid
    musejax sample --run runs/styled --mix bach:0.5,irish:0.5 --out mixes/
"""

from __future__ import annotations

import argparse
from pathlib import Path

from musejax.errors import CommandError
from musejax.cli.audio_options import add_audio_arguments, renderer_from_args
from musejax.cli.run_options import join_distributed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, metavar="DIR", help="trained run directory")
    parser.add_argument("--n", type=int, default=4, help="number of samples (default 4)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None,
                        help="time steps (piano-roll, melody) or events (performance) to sample (default: the "
                             "length of a training piece drawn at random, so samples are whole pieces)")
    length.add_argument("--bars", type=int, default=None,
                        help="bars to sample (or to continue a --primer by), in the primer's metre or 4/4")
    parser.add_argument("--temperature", type=float, default=None,
                        help="softmax/sigmoid temperature; 0 = greedy (default: the run's config.sample.temperature)")
    parser.add_argument("--top-k", type=int, default=None, help="event models: keep the k most likely events")
    parser.add_argument("--top-p", type=float, default=None,
                        help="nucleus sampling, 0 < p <= 1: event models, and the note keys of a NADE that draws "
                             "its note count first (default: the run's config.sample.top_p)")
    parser.add_argument("--count-temperature", type=float, default=None,
                        help="a NADE that draws its note count first: the count's temperature, > 0 (higher: more "
                             "rests and thin or full chords; default: the run's config.sample.count_temperature)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="piano-roll models: a key sounds if p > threshold (default: Bernoulli sampling)")
    parser.add_argument("--max-copy-bars", type=float, default=None, metavar="BARS",
                        help="a sample that copies this many bars of a training piece is drawn again; 0 = no check "
                             "(default: the run's config.sample.max_copy_bars; continuations are not checked)")
    parser.add_argument("--seed", type=int, default=0, help="same seed and settings -> same samples")
    parser.add_argument("--primer", type=Path, default=None, metavar="FILE",
                        help="MIDI/MusicXML/ABC piece to continue from its end (output = primer + continuation)")
    parser.add_argument("--style", default=None, help="style name of a style-conditioned run")
    parser.add_argument("--mix", default=None, metavar="A:W,B:W", help="style mixture, e.g. bach:0.5,irish:0.5")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR", help="output folder (default RUN/samples)")
    parser.add_argument("--checkpoint", default="best", help="best (lowest valid NLL), latest, or a step number")
    parser.add_argument("--distributed", action="store_true",
                        help="multi-host job: call jax.distributed.initialize() (also done whenever "
                             "JAX_COORDINATOR_ADDRESS is set); the samples are split over every device, the "
                             "first process writes them")
    add_audio_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from musejax.lm import sample as sampling

    join_distributed(args.distributed)
    import jax

    renderer = renderer_from_args(args, announce=jax.process_index() == 0)
    checkpoint = args.checkpoint
    if checkpoint not in ("best", "latest") and not checkpoint.isdigit():
        raise CommandError(f"--checkpoint must be best, latest or a step number, got {checkpoint!r}")
    mix = sampling.parse_mix(args.mix) if args.mix is not None else None
    primer = _read_primer(args.primer) if args.primer is not None else None
    run_ = sampling.load_run(args.run, checkpoint if not checkpoint.isdigit() else int(checkpoint))
    out_dir = args.out or args.run / "samples"
    options = sampling.config_options(run_.config, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                                      threshold=args.threshold, count_temperature=args.count_temperature,
                                      max_copy_bars=args.max_copy_bars)
    report = sampling.CopyReport()
    paths = sampling.write_samples(run_, out_dir, n=args.n, steps=args.steps, bars=args.bars, seed=args.seed,
                                   primer=primer, style=args.style, mix=mix, audio=renderer, copy_report=report,
                                   **options)
    if jax.process_index() != 0:
        return 0
    kinds = "MIDI + PNG + WAV" if renderer is not None else "MIDI + PNG"
    print(f"wrote {len(paths)} samples ({kinds}) to {out_dir}: {paths[0].name} .. {paths[-1].name}")
    if report.max_bars:
        print(report.summary())
    if primer is not None:
        length = (f"{args.steps} steps" if args.steps else f"{args.bars} bars" if args.bars
                  else "to the length of a corpus piece")
        print(f"each sample is the primer {args.primer} followed by its continuation ({length}; "
              "the primer part is shaded in the PNGs and marked 'primer end' in the MIDI)")
    return 0


def _read_primer(path: Path):
    from musejax.data.readers import ReadError, read_piece

    if not path.is_file():
        raise CommandError(f"{path}: primer file not found")
    try:
        return read_piece(path)
    except ReadError as err:
        raise CommandError(f"primer {err}") from None
