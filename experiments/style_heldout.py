"""Folk tunes from collections the classifier never saw, as melodies and over chords it was never shown.

    python experiments/style_heldout.py --run old=runs/style-old --run new=runs/style [--max-tunes 300]

The collections are music21's own (installed with it, no download) and none of them is a bundled training
corpus: Aird's Airs (1782, six books of Scotch, English and Irish airs; about 1,180 tunes) and its miscFolk
tune books (American fife tunes, Northumbrian minstrelsy; about 185). Each tune is classified as written and
with an accompaniment added under its melody (the melody's diatonic triads, musejax/data/harmony.py):
  plain     block chords, a chord per beat or oom-pah (the accompaniments the first texture-shift default trained on);
  varied    one drawn per tune by harmony.random_accompaniment (what `config.data.accompaniments="varied"` trains on);
  pads      four-note chords held per half bar, an octave lower, no bass (inside the varied family, not the plain one);
and three accompaniments neither family makes, for a classifier's reach beyond its training:
  strum     an open guitar voicing (six notes from the bass up) struck on every beat, an eighth long;
  thirds    a second voice a diatonic third below the melody (two lines, no chords);
  alberti   sixteenths of root-fifth-third-fifth under the melody.
Per run and condition: the share whose top style is a folk style (german-folk, irish-fiddle, chinese-folk, or
any style named folk/irish/fiddle), the share the out-of-style rule calls "unknown style", and the share both
folk and accepted (what a user sees as a folk answer). Writes style_heldout.md / .json into --out.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

COLLECTIONS = {"airds-airs": "airdsAirs/*.abc", "misc-folk": "miscFolk/*.abc"}
CONDITIONS = ("as written", "plain", "varied", "pads", "strum", "thirds", "alberti")
HELD_OUT = ("strum", "thirds", "alberti")
FOLK_WORDS = ("folk", "irish", "fiddle")


def collection_tunes(pattern: str, max_tunes: int = 0) -> list:
    """The NoteSequences (more than 8 notes) of a music21 corpus folder's ABC tune books, read by musejax's reader;
    with `max_tunes`, about that many spread evenly over each book (only those are parsed)."""
    import music21

    from musejax.data.readers import read_file

    root = Path(os.path.dirname(music21.__file__)) / "corpus"
    books = sorted(glob.glob(str(root / pattern)))
    tunes = []
    for path in books:
        chosen = None
        if max_tunes:
            numbers = [int(x) for x in re.findall(r"^X:\s*(\d+)", Path(path).read_text(errors="replace"), re.M)]
            take = -(-max_tunes // len(books))
            chosen = {numbers[i] for i in np.linspace(0, len(numbers) - 1, min(take, len(numbers))).astype(int)}
        sequences, _ = read_file(path, tunes=chosen)
        tunes += [ns for ns in sequences if len(ns.notes) > 8]
    return tunes[:max_tunes] if max_tunes else tunes


def held_out_accompaniment(ns, kind: str):
    """The tune with one of the HELD_OUT accompaniments (or "pads") added below its melody."""
    from musejax.data.harmony import choose_chords, estimate_key
    from musejax.style.shifts import add_accompaniment, melody_notes, meter, with_added_notes

    if kind == "pads":
        return add_accompaniment(ns, "block", bass=False, octave=-1, doubled_root=True, changes_per_bar=2)
    pitch, start, end = melody_notes(ns)
    bar, beat = meter(ns)
    last = float(end.max(initial=0.0))
    out_pitch, out_start, out_end = [], [], []

    def add(pitches, lo, hi):
        hi = min(hi, last)
        if hi - lo > 1e-6:
            out_pitch.extend(pitches)
            out_start.extend([lo] * len(pitches))
            out_end.extend([hi] * len(pitches))

    if kind == "thirds":  # each melody note with the scale tone a third below it
        tonic, minor = estimate_key(pitch, start, end)
        scale = [(tonic + p) % 12 for p in ((0, 2, 3, 5, 7, 8, 10) if minor else (0, 2, 4, 5, 7, 9, 11))]
        for p, lo, hi in zip(pitch, start, end):
            below = [q for q in range(p - 4, p - 2) if q % 12 in scale]
            add([below[-1] if below else p - 3], lo, hi)
        return with_added_notes(ns, (np.array(out_pitch, np.int64), np.array(out_start), np.array(out_end)))
    bar_starts = np.arange(0.0, last, bar)
    for lo, chord in zip(bar_starts, choose_chords(pitch, start, end, bar_starts, bar)):
        if chord is None:
            continue
        root, pcs = chord
        third, fifth = (pcs[1] - root) % 12, (pcs[2] - root) % 12
        bass = 40 + (root - 40) % 12  # E2..D#3
        if kind == "strum":  # root, fifth, root, third, fifth, root: a guitar's open-position spread
            voicing = [bass, bass + fifth, bass + 12, bass + 12 + third, bass + 12 + fifth, bass + 24]
            for k in range(int(round(bar / beat))):
                add(voicing, lo + k * beat, lo + k * beat + 0.5)
        elif kind == "alberti":
            figure = [bass + 12, bass + 12 + fifth, bass + 12 + third, bass + 12 + fifth]
            for k in range(int(round(bar / 0.25))):
                add([figure[k % 4]], lo + k * 0.25, lo + (k + 1) * 0.25)
        else:
            raise ValueError(f"unknown accompaniment {kind!r}")
    return with_added_notes(ns, (np.array(out_pitch, np.int64), np.array(out_start), np.array(out_end)))


def condition(ns, name: str, rng: np.random.Generator):
    from musejax.data.harmony import PATTERNS, random_accompaniment
    from musejax.style.shifts import add_accompaniment

    if name == "as written":
        return ns
    if name == "plain":
        return add_accompaniment(ns, PATTERNS[rng.integers(len(PATTERNS))])
    if name == "varied":
        options = random_accompaniment(rng)
        return add_accompaniment(ns, options.pop("pattern"), **options)
    return held_out_accompaniment(ns, name)


def score(run, sequences) -> dict[str, float]:
    from musejax.style.classify import embed_sequences, predictions

    embedded = embed_sequences(run, sequences)
    ranked = predictions(run, [str(i) for i in embedded.kept], embedded)
    folk = np.array([any(w in p.ranked[0][0] for w in FOLK_WORDS) for p in ranked])
    unknown = np.array([not p.confident for p in ranked])
    others = Counter(p.ranked[0][0] for p, is_folk in zip(ranked, folk) if not is_folk)
    return {"n": len(ranked), "folk": float(folk.mean()), "unknown": float(unknown.mean()),
            "folk_accepted": float((folk & ~unknown).mean()), "median_distance": float(np.median(embedded.distances)),
            "threshold": float(run.threshold), "top_other": others.most_common(1)[0][0] if others else "-"}


def main(argv: list[str] | None = None) -> dict:
    from musejax.style.classify import load_style_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", required=True, metavar="[NAME=]DIR",
                        help="a classifier run (repeatable; NAME labels its column)")
    parser.add_argument("--max-tunes", type=int, default=0, help="at most N tunes per collection (0 = all)")
    parser.add_argument("--seed", type=int, default=0, help="draws of the plain and varied accompaniments")
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    runs = {}
    for spec in args.run:
        name, _, path = spec.rpartition("=")
        runs[name or Path(path).name] = load_style_run(path)
    results: dict = {"runs": {k: str(v) for k, v in zip(runs, (s.rpartition("=")[2] for s in args.run))},
                     "max_tunes": args.max_tunes, "seed": args.seed, "collections": {}}
    for collection, pattern in COLLECTIONS.items():
        tunes = collection_tunes(pattern, args.max_tunes)
        rows = {}
        for name in CONDITIONS:
            rng = np.random.default_rng([args.seed, CONDITIONS.index(name)])
            shifted = [condition(ns, name, rng) for ns in tunes]
            rows[name] = {run_name: score(run, shifted) for run_name, run in runs.items()}
            print(f"{collection} / {name}: " + "; ".join(f"{r} folk {v['folk']:.3f}, unknown {v['unknown']:.3f}"
                                                           for r, v in rows[name].items()), flush=True)
        results["collections"][collection] = {"n_tunes": len(tunes), "conditions": rows}
    results["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "style_heldout.json").write_text(json.dumps(results, indent=1) + "\n")
    names = list(runs)
    lines = ["# Folk tunes from collections never trained on, as written and over chords", "",
             "Share classified as a folk style / share called unknown style / share both folk and accepted "
             f"(runs: {', '.join(f'{k} = {v}' for k, v in results['runs'].items())}). Accompaniments marked * are "
             "made by neither training family.", ""]
    for collection, block in results["collections"].items():
        lines += [f"## {collection} ({block['n_tunes']} tunes)", "",
                  "| accompaniment | " + " | ".join(f"{n}: folk / unknown / folk and accepted" for n in names) + " |",
                  "|---|" + "---|" * len(names)]
        for name, row in block["conditions"].items():
            label = f"{name} *" if name in HELD_OUT else name
            lines.append(f"| {label} | " + " | ".join(
                f"{row[n]['folk']:.3f} / {row[n]['unknown']:.3f} / {row[n]['folk_accepted']:.3f}" for n in names) + " |")
        lines.append("")
    lines.append(f"Command: `python {' '.join(['experiments/style_heldout.py'] + [f'--run {s}' for s in args.run])}"
                 f"{f' --max-tunes {args.max_tunes}' if args.max_tunes else ''}` ({results['seconds']:.0f} s)")
    (args.out / "style_heldout.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return results


if __name__ == "__main__":
    main()
