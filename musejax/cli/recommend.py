"""`musejax recommend`: pieces of a library that sound like the ones you liked (style-embedding search).

    musejax recommend --liked a.mid b.mid --disliked c.mid --library oneills-irish -k 10
    musejax recommend --history plays.txt --library my_music/ --model runs/style
    musejax recommend --liked tune.abc --library all --json

The library's index (one embedding per piece) is built on first use and saved (default under
$MUSEJAX_CACHE/recommend/, or --index FILE); later calls load it. A history file lists one path per line,
optionally `#N` (tune N of a tunebook) and a play count: `songs/a.mid 12`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from musejax.errors import CommandError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--liked", nargs="+", type=Path, default=[], metavar="FILE", help="pieces you liked")
    parser.add_argument("--disliked", nargs="+", type=Path, default=[], metavar="FILE", help="pieces to steer away from")
    parser.add_argument("--history", type=Path, default=None, metavar="FILE",
                        help="listening history: one path per line, optional play count (weights 1 + ln count)")
    parser.add_argument("--library", required=True, metavar="CORPUS|DIR",
                        help="bundled corpus name(s) (',' separated, 'all') or a folder of music files")
    parser.add_argument("-k", type=int, default=10, help="number of recommendations (default 10)")
    parser.add_argument("--model", type=Path, default=None, metavar="RUN",
                        help="style classifier run (default $MUSEJAX_STYLE_RUN or runs/style)")
    parser.add_argument("--index", type=Path, default=None, metavar="FILE", help="index file to use / create")
    parser.add_argument("--rebuild-index", action="store_true", help="rebuild the index even if one matches")
    parser.add_argument("--dislike-weight", type=float, default=0.5, help="how strongly dislikes push away (0.5)")
    parser.add_argument("--json", action="store_true", help="print the ranking as JSON")
    parser.add_argument("--cache-dir", default=None, help="corpus/index cache (default $MUSEJAX_CACHE or ~/.cache/musejax)")
    parser.add_argument("--workers", type=int, default=None, help="processes parsing an uncached library")


def _read(path: Path, tune: int, role: str):
    from musejax.data.readers import ReadError, read_file

    if not path.is_file():
        raise CommandError(f"{path}: {role} file not found")
    try:
        pieces, failures = read_file(path, tunes=[tune] if tune else None)
    except ReadError as err:
        raise CommandError(f"{role} {err}") from None
    if not pieces:
        reason = f"{failures[0].reason}: {failures[0].detail}" if failures else "no pieces"
        raise CommandError(f"{path}{f'#{tune}' if tune else ''}: {role} file has no readable piece ({reason})")
    return pieces


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from musejax.style import recommend as rec
    from musejax.style.classify import embed_sequences, load_style_run

    if not args.liked and args.history is None:
        raise CommandError("give --liked FILE... and/or --history FILE")
    if args.k < 1 or args.dislike_weight < 0:
        raise CommandError("-k must be >= 1 and --dislike-weight >= 0")
    entries = [(path, 0, 1.0) for path in args.liked]
    if args.history is not None:
        entries += rec.parse_history(args.history)
    liked, weights = [], []
    for path, tune, count in entries:
        pieces = _read(path, tune, "liked")
        liked += pieces
        weights += [rec.play_count_weight(count)] * len(pieces)
    disliked = [ns for path in args.disliked for ns in _read(path, 0, "disliked")]
    style_run = load_style_run(args.model)
    embedded = embed_sequences(style_run, liked + disliked)
    for position, name, reason in embedded.failures:
        print(f"{name}: left out of the profile: {reason}", file=sys.stderr)
    kept = np.asarray(embedded.kept, np.int64)
    is_liked = kept < len(liked)
    if not is_liked.any():
        raise CommandError("none of the liked pieces has notes on the piano keys")
    index, index_path, built = rec.load_or_build_index(
        style_run, args.library, index_path=args.index, rebuild=args.rebuild_index, cache_dir=args.cache_dir,
        workers=args.workers, progress=sys.stderr.isatty())
    exclude = [rec.piece_key(ns.filename, ns.reference_number) for ns in liked + disliked]
    results = rec.recommend(index, embedded.embeddings[is_liked], weights=np.asarray(weights)[kept[is_liked]],
                            disliked=embedded.embeddings[~is_liked], exclude_keys=exclude, k=args.k,
                            dislike_weight=args.dislike_weight)
    if args.json:
        print(json.dumps([vars(r) for r in results], indent=1))
        return 0
    print(f"{len(results)} recommendations from {args.library} ({len(index)} pieces; index {index_path}, "
          f"{'built now' if built else 'loaded'}) for {int(is_liked.sum())} liked / {int((~is_liked).sum())} disliked")
    for r in results:
        label = r.title or Path(r.path).name
        print(f"{r.rank:>3}  {r.score:6.3f}  {r.style or '-':<13} {r.id}  {label}")
    return 0
