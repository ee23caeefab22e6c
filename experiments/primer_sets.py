"""Primers from outside the LM's corpus, to test whether a continuation keeps its primer's texture, key and pace.

    python experiments/primer_sets.py          # writes experiments/results/primers/<set>/*.mid and baseline.json
    python experiments/sample_quality.py --run runs/<lm> --primers experiments/results/primers/folk-melody

The default LM learns from Bach's four-part chorales; a composer's primer is often something else. Three sets,
each the first --bars bars of pieces from the bundled music21 corpus that the default LM never sees (MIDI):
  folk-melody   German folk tunes (Essen ballads), the melody alone;
  folk-chords   the same tunes over chords, as a lead sheet is played (musejax/style/shifts.py
                `add_accompaniment`: the melody's diatonic triads per bar; the patterns block, beat and oom-pah
                taken in turn);
  openings      openings of keyboard pieces, songs and string quartets (Beethoven, Mozart, Haydn, Schumann,
                Chopin, Joplin, ...), and the two Nottingham-collection reels music21 ships, over chords as above
                (the ABC reader keeps notes, not chord symbols).
Only pieces at least 2 x --bars long are taken, so that each set has a baseline: what the real piece does in the
next --bars bars, against its first, through the default LM's piano roll (printed, and written to
<set>/baseline.json, which sample_quality.py reads). A file that cannot be read is skipped and reported.
Deterministic: the same files every run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musejax.data.readers import read_file  # noqa: E402
from musejax.data.encodings import PianoRollEncoding  # noqa: E402
from musejax.data.harmony import PATTERNS  # noqa: E402
from musejax.midi.meta import write_midi  # noqa: E402
from musejax.style.shifts import add_accompaniment, meter, melody_only  # noqa: E402
from musejax.evaluate.continuation import compare_passages, summarize_passages  # noqa: E402
from musejax.evaluate.pieces import grid_piece, slice_piece  # noqa: E402
from note_seq import sequences_lib  # noqa: E402  (after musejax, which quiets pydub's ffmpeg warning)


# keyboard, song and string-quartet openings in the music21 corpus (7 of 8 primers of the set; then 2 reels)
OPENINGS = ("mozart/k545/movement1_exposition.mxl", "beethoven/opus59no1/movement1.mxl", "mozart/k458/movement1.mxl",
            "haydn/opus74no1/movement1.mxl", "schumann_robert/dichterliebe_no2.xml", "chopin/mazurka06-2.krn",
            "joplin/maple_leaf_rag.mxl", "schubert/Lindenbaum.xml", "beach/prayer_of_a_tired_child.musicxml",
            "schumann_clara/polonaise_op1n1.mxl", "handel/rinaldo/Lascia_chio_pianga.mxl", "cpebach/h186.mxl",
            "haydn/opus1no1/movement1.mxl", "mozart/k80/movement1.mxl", "corelli/opus3no1/1grave.xml",
            "schumann_robert/opus41no1/movement1.mxl")
PER_TUNEBOOK = 3  # tunes taken from one ABC tunebook at most
STEPS_PER_QUARTER = 4  # the evaluation grid (as sample_quality.py)
BASELINE_ROWS = (("pitch_class_distance", "pitch-class distance"), ("polyphony_difference", "polyphony diff."),
                 ("density_difference", "density diff."), ("key_agreement", "same key"),
                 ("scale_agreement", "same or relative key"), ("polyphony_second", "polyphony"),
                 ("density_second", "density"))


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def first_bars(ns, bars: int):
    """The first `bars` bars (of its first time signature and tempo), or None when the piece is shorter."""
    end = bars * bar_seconds(ns)
    if ns.total_time < end - 1e-6:
        return None
    return sequences_lib.extract_subsequence(ns, 0.0, end)


def bar_seconds(ns) -> float:
    return meter(ns)[0] * 60.0 / (ns.tempos[0].qpm if ns.tempos else 120.0)


def pieces(paths, bars: int, wanted: int, failures: list[str]):
    """Up to `wanted` (id, first 2 x `bars` bars) of the pieces in `paths` long enough to have them (at most
    PER_TUNEBOOK tunes of a tunebook): the primer and, for the baseline, the bars that really follow it."""
    for path in paths if wanted > 0 else ():
        try:
            sequences, failed = read_file(path, root=corpus_root())
        except Exception as error:  # noqa: BLE001 - a bad file is reported and skipped
            failures.append(f"{path}: {error}")
            continue
        failures += [f"{f.path}{'' if f.tune is None else f'#{f.tune}'}: {f.reason}" for f in failed]
        cuts = ((ns.id, first_bars(ns, 2 * bars)) for ns in sequences)
        for name, cut in itertools.islice(((n, c) for n, c in cuts if c is not None and len(c.notes) >= 16),
                                          PER_TUNEBOOK):
            yield name, cut
            wanted -= 1
            if wanted == 0:
                return


def following_bars(ns, bars: int) -> dict:
    """`compare_passages` of bars bars+1..2 bars against bars 1..bars: what the real piece does next, seen as the
    default LM sees a primer and writes a continuation (a piano roll without onsets: repeated notes join)."""
    steps = int(round(bars * meter(ns)[0] * STEPS_PER_QUARTER))
    encoding = PianoRollEncoding(steps_per_quarter=STEPS_PER_QUARTER)
    piece = grid_piece(encoding.decode(encoding.encode(ns)), STEPS_PER_QUARTER)
    return compare_passages(slice_piece(piece, 0, steps), slice_piece(piece, steps, 2 * steps), steps, steps)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/primers"),
                        help="output folder (default experiments/results/primers)")
    parser.add_argument("--bars", type=int, default=8, help="bars per primer (default 8)")
    parser.add_argument("--n", type=int, default=16, help="primers per set (default 16)")
    args = parser.parse_args(argv)
    root, failures = corpus_root(), []
    folk = sorted((root / "essenFolksong").glob("ballad*.abc"))
    tunes = list(pieces(folk, args.bars, args.n, failures))
    openings = list(pieces([root / rel for rel in OPENINGS], args.bars, args.n - args.n // 8, failures))
    nottingham = sorted((root / "nottingham-dataset").rglob("*.abc"))
    openings += [(name, add_accompaniment(ns, "beats")) for name, ns in
                 pieces(nottingham, args.bars, max(args.n - len(openings), 0), failures)]
    sets = {"folk-melody": [(name, melody_only(ns)) for name, ns in tunes],
            "folk-chords": [(name, add_accompaniment(ns, PATTERNS[i % len(PATTERNS)]))
                            for i, (name, ns) in enumerate(tunes)],
            "openings": openings}
    lines = [f"Real continuations: bars {args.bars + 1}-{2 * args.bars} of each piece against its first {args.bars} "
             "(the baseline for `sample_quality.py --primers <set>`)", "",
             "| set | primers | " + " | ".join(label for _, label in BASELINE_ROWS) + " |",
             "|---|---|" + "---|" * len(BASELINE_ROWS)]
    for name, items in sets.items():
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.mid"):
            old.unlink()
        for i, (piece, ns) in enumerate(items):
            slug = "".join(c if c.isalnum() else "-" for c in "-".join(piece.split("/")[-2:]))[:48]
            write_midi(first_bars(ns, args.bars), folder / f"{i:02d}-{slug}.mid")
        baseline = summarize_passages([following_bars(ns, args.bars) for _, ns in items])
        (folder / "baseline.json").write_text(json.dumps(baseline, indent=1))
        print(f"{name:12s} {len(items):3d} primers of {args.bars} bars -> {folder}")
        lines.append(f"| {name} | {len(items)} | " + " | ".join(
            "-" if baseline[key] is None else f"{baseline[key]:.3f}" for key, _ in BASELINE_ROWS) + " |")
    print("\n" + "\n".join(lines))
    for failure in failures:
        print(f"skipped: {failure}", file=sys.stderr)


if __name__ == "__main__":
    main()
