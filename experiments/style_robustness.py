"""Style recognition under texture shifts: the held-out TEST pieces of a classifier run, each shift of
musejax/style/shifts.py applied to them (melody only, accompaniment added, quarter-note grid, one instrument /
many, tempo x0.5 / x2, note values x2 / x0.5, transposed), and per shift and per style the accuracy (top style
= the label) and the "unknown" rate (the out-of-style rule rejects the piece), beside the unshifted figures;
also the unshifted test macro-F1 and the out-of-style AUROC (experiments/style_classifier.py's works by other
composers, its `auroc`). Several runs side by side (e.g. the old default and the new one):

    python experiments/style_robustness.py --run old=runs/style-old --run new=runs/style [--max-per-style 80]
    python experiments/style_robustness.py --run runs/style --train [--config style] [--config.train.steps=...]

--train trains a run that has no report first (as `musejax classify --train --workdir RUN`). The one- and
many-instrument and tempo shifts go through a MIDI file and back (as a user's file would), so what the MIDI
format changes is measured too. Targets: accuracy >= 0.90 under every shift, macro-F1 >= 0.95, AUROC >= 0.95.
Writes style_robustness.md / .json into --out (default experiments/results/).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

THROUGH_MIDI = ("one_instrument", "many_instruments", "tempo_x0.5", "tempo_x2")
TARGETS = {"accuracy": 0.90, "macro_f1": 0.95, "auroc": 0.95}


def split_sequences(config, max_per_style: int = 0, split: str = "test") -> tuple[list, list[str]]:
    """The labelled `split` NoteSequences of a run's corpora (the classifier's own split rule), with their
    style names after the run's relabelling; at most `max_per_style` per style (first by id) when > 0."""
    from musejax.data.corpora import resolve_corpus
    from musejax.data.datasets import expand_corpus_names, load_sequences
    from musejax.data.splits import split_of
    from musejax.style.data import parse_merge

    data = config.data
    merge = parse_merge(data.merge_styles)
    sequences, styles, taken = [], [], {}
    for name in expand_corpus_names([c.strip() for c in data.corpus.split(",") if c.strip()]):
        corpus = resolve_corpus(name, data.labels or None)
        parsed, _, _ = load_sequences(corpus, cache_dir=data.cache_dir or None, workers=data.workers or None,
                                      progress=False)
        for ns in parsed:
            if not ns.sequence_metadata.genre or split_of(ns.id, data.valid_fraction, data.test_fraction) != split:
                continue
            style = merge.get(ns.sequence_metadata.genre[0], ns.sequence_metadata.genre[0])
            if max_per_style and taken.get(style, 0) >= max_per_style:
                continue
            taken[style] = taken.get(style, 0) + 1
            sequences.append(ns)
            styles.append(style)
    return sequences, styles


def through_midi(ns, folder: Path):
    """The sequence written by the project's MIDI writer and read back by its reader, as a user's file would
    arrive (time signatures MIDI cannot hold, a denominator not a power of two, are dropped first)."""
    import copy

    from musejax.data.readers import read_file
    from musejax.midi.meta import write_midi

    out = copy.deepcopy(ns)
    kept = [t for t in out.time_signatures if t.denominator > 0 and t.denominator & (t.denominator - 1) == 0]
    del out.time_signatures[:]
    out.time_signatures.extend(kept)
    pieces, _ = read_file(write_midi(out, folder / "piece.mid"))
    back = pieces[0] if pieces else type(ns)()  # unreadable: an empty piece, counted as failed (wrong)
    back.id = ns.id
    return back


def shifted(sequences: list, shift: str, seed: int = 0) -> list:
    """Each sequence under `shift` ("none" = as is); the transposition is drawn per piece from `seed`."""
    from musejax.style.shifts import shift_sequence

    if shift == "none":
        return list(sequences)
    rng = np.random.default_rng(seed)
    out = [shift_sequence(ns, shift, rng) for ns in sequences]
    if shift in THROUGH_MIDI:
        with tempfile.TemporaryDirectory() as folder:
            out = [through_midi(ns, Path(folder)) for ns in out]
    return out


def score_shift(run, sequences: list, styles: list[str]) -> dict:
    """Accuracy, unknown rate and accuracy counting unknown as wrong, overall and per style; macro-F1."""
    from musejax.evaluate.classification import classification_scores
    from musejax.style.classify import embed_sequences

    embedded = embed_sequences(run, sequences)
    true = np.array([run.styles.index(styles[i]) for i in embedded.kept])
    predicted = embedded.probs.argmax(-1)
    unknown = embedded.distances > run.threshold
    correct = predicted == true
    failed = len(embedded.failures)  # pieces the shift left without notes on the keys: counted wrong
    n = len(true) + failed
    per_style = {}
    for index, style in enumerate(run.styles):
        rows = true == index
        if rows.any():
            per_style[style] = {"n": int(rows.sum()), "accuracy": float(correct[rows].mean()),
                                "unknown": float(unknown[rows].mean()),
                                "recognised": float((correct & ~unknown)[rows].mean())}
    scores = classification_scores(true, predicted, run.styles)
    return {"n": n, "failed": failed, "accuracy": float(correct.sum() / max(n, 1)),
            "unknown": float(unknown.sum() / max(n, 1)), "recognised": float((correct & ~unknown).sum() / max(n, 1)),
            "macro_f1": scores["macro_f1"], "per_style": per_style, "distances": embedded.distances}


def evaluate_run(run_dir: Path, shifts: list[str], max_per_style: int, ood: list | None, split: str = "test",
                 ) -> dict:
    from musejax.style.classify import embed_sequences, load_style_run
    from musejax.style.config import saved_style_config
    from style_classifier import auroc

    config = saved_style_config(run_dir)
    run = load_style_run(run_dir)
    sequences, styles = split_sequences(config, max_per_style, split)
    result = {"run": str(run_dir), "split": split, "threshold": run.threshold, "n_test": len(sequences), "shifts": {}}
    for shift in ["none", *shifts]:
        started = time.perf_counter()
        scores = score_shift(run, shifted(sequences, shift), styles)
        distances = scores.pop("distances")
        if shift == "none" and ood:
            ood_distances = embed_sequences(run, ood).distances
            result["auroc"] = auroc(-distances, -ood_distances)
            result["ood_flagged"] = float((ood_distances > run.threshold).mean())
            result["n_ood"] = len(ood_distances)
        scores["seconds"] = time.perf_counter() - started
        result["shifts"][shift] = scores
        print(f"{run_dir} {shift}: accuracy {scores['accuracy']:.3f} unknown {scores['unknown']:.3f} "
              f"({scores['seconds']:.0f} s)", flush=True)
    result["macro_f1"] = result["shifts"]["none"]["macro_f1"]
    result["worst_shift"] = min(shifts, key=lambda s: result["shifts"][s]["accuracy"]) if shifts else None
    return result


def markdown(results: dict[str, dict], shifts: list[str], split: str = "test") -> str:
    from musejax.style.shifts import SEQUENCE_SHIFTS

    names = list(results)
    lines = [f"# Style recognition under texture shifts ({split} split)", "",
             "accuracy = top style is the label; unknown = rejected by the out-of-style rule; recognised = both "
             "right and accepted. Targets: accuracy >= 0.90 under every shift, macro-F1 >= 0.95, AUROC >= 0.95.", "",
             f"| run | {split} pieces | macro-F1 (unshifted) | out-of-style AUROC | out-of-style flagged | worst shift |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        worst = r["worst_shift"]
        lines.append(f"| {name} | {r['n_test']} | {r['macro_f1']:.3f} | {r.get('auroc', float('nan')):.3f} | "
                     f"{r.get('ood_flagged', float('nan')):.0%} | {worst} {r['shifts'][worst]['accuracy']:.3f} |"
                     if worst else f"| {name} | {r['n_test']} | {r['macro_f1']:.3f} | | | |")
    head = " | ".join(f"{n} accuracy | {n} unknown | {n} recognised" for n in names)
    lines += ["", f"| shift | {head} |", "|---|" + "---|" * 3 * len(names)]
    for shift in ["none", *shifts]:
        cells = " | ".join(f"{r['shifts'][shift]['accuracy']:.3f} | {r['shifts'][shift]['unknown']:.3f} | "
                           f"{r['shifts'][shift]['recognised']:.3f}" for r in results.values())
        lines.append(f"| {shift} ({SEQUENCE_SHIFTS.get(shift, 'unshifted')}) | {cells} |")
    for name, r in results.items():
        styles = list(r["shifts"]["none"]["per_style"])
        lines += ["", f"### {name}: accuracy / unknown per style", "",
                  "| shift | " + " | ".join(styles) + " |", "|---|" + "---|" * len(styles)]
        for shift in ["none", *shifts]:
            per = r["shifts"][shift]["per_style"]
            lines.append(f"| {shift} | " + " | ".join(
                f"{per[s]['accuracy']:.2f} / {per[s]['unknown']:.2f}" if s in per else "" for s in styles) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    from musejax.style.shifts import SEQUENCE_SHIFTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], metavar="[NAME=]DIR",
                        help="classifier run (repeat for side by side; default runs/style)")
    parser.add_argument("--train", action="store_true", help="train a run that has no report.json first")
    parser.add_argument("--config", default="style")
    parser.add_argument("--shifts", default=",".join(SEQUENCE_SHIFTS), help="comma-separated shift names")
    parser.add_argument("--max-per-style", type=int, default=0, help="test pieces per style (0 = all)")
    parser.add_argument("--ood-pieces", type=int, default=40, help="out-of-style pieces for the AUROC (0 = none)")
    parser.add_argument("--split", default="test", choices=("test", "valid"),
                        help="the pieces shifted (valid: for choosing settings; test: the figures reported)")
    parser.add_argument("--out", type=Path, default=Path("experiments/results"))
    args, overrides = parser.parse_known_args(argv)
    shifts = [s.strip() for s in args.shifts.split(",") if s.strip()]
    unknown = [s for s in shifts if s not in SEQUENCE_SHIFTS]
    if unknown:
        parser.error(f"unknown shift {unknown[0]!r} (known: {', '.join(SEQUENCE_SHIFTS)})")
    runs = {}
    for spec in args.run or ["runs/style"]:
        name, sep, path = spec.partition("=")
        runs[name if sep else Path(spec).name] = Path(path if sep else spec)
    if args.train:
        from musejax.style.config import resolve_style_config, saved_style_config
        from musejax.style.task import train_classifier

        for path in runs.values():
            if not (path / "report.json").exists():
                config = (saved_style_config(path, overrides) if (path / "config.json").exists()
                          else resolve_style_config(args.config, overrides))
                train_classifier(config, path, progress=False)
    ood = None
    if args.ood_pieces:
        from style_classifier import OOD_COMPOSERS, ood_sequences

        # valid: a disjoint out-of-style set too (style_classifier.py), so a setting chosen here is not fitted to
        # the reported AUROC's pieces
        ood = ood_sequences(args.ood_pieces, per_composer=max(2, args.ood_pieces // len(OOD_COMPOSERS) + 1),
                            split=args.split)
    results = {name: evaluate_run(path, shifts, args.max_per_style, ood, args.split) for name, path in runs.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {"targets": TARGETS, "shifts": {s: SEQUENCE_SHIFTS[s] for s in shifts},
               "max_per_style": args.max_per_style, "runs": results}
    stem = "style_robustness" if args.split == "test" else f"style_robustness_{args.split}"
    (args.out / f"{stem}.json").write_text(json.dumps(payload, indent=1) + "\n")
    text = markdown(results, shifts, args.split)
    (args.out / f"{stem}.md").write_text(text)
    print(text)
    return payload


if __name__ == "__main__":
    main()
