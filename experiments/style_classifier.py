"""Style classifier on the bundled corpora: test accuracy / macro-F1 vs the majority class, the confusion, and how
the low-confidence rule treats pieces of styles never trained on.

    python experiments/style_classifier.py [--run runs/style] [--config style] [--config.train.steps=...]

The default config trains the seven styles the issue names (O'Neill's Irish and Ryan's fiddle tunes are one
"irish-fiddle" style); with --config.data.merge_styles= they are two and the table adds the merged view.
Trains the run first if it has no report (same as `musejax classify --train --workdir RUN`). Out-of-style
pieces: music21 corpus works by composers outside the training styles (Beethoven, Mozart, Haydn, Schumann,
Joplin, Schoenberg, ...), at most --ood-pieces of them. Writes experiment.json / experiment.md into the run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

OOD_COMPOSERS = ("beethoven", "mozart", "haydn", "schumann", "joplin", "schoenberg", "chopin", "handel", "verdi")
IRISH_FIDDLE = {"irish": "irish/fiddle", "fiddle": "irish/fiddle"}


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counted half."""
    positive, negative = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float((positive > negative).mean() + 0.5 * (positive == negative).mean())


# For choosing settings (style_robustness.py --split valid), never reported: works the reported set above never
# takes, by composers outside it and outside the training styles, and its own composers' works after their first
# 2 x per_composer (it takes at most per_composer of those)
VALID_OOD_COMPOSERS = ("beach", "corelli", "cpebach", "johnson_j_r", "liliuokalani", "schubert", "weber", "webern")


def ood_sequences(limit: int, per_composer: int, split: str = "test") -> list:
    """Out-of-style pieces from the music21 corpus: up to `per_composer` per composer, `limit` in all; `split`
    "test" is the reported set, "valid" a disjoint one for choosing settings."""
    from music21 import corpus

    from musejax.data.readers import read_file

    sequences = []
    composers = OOD_COMPOSERS if split == "test" else (*VALID_OOD_COMPOSERS, *OOD_COMPOSERS)
    for composer in composers:
        paths = sorted(p for p in corpus.getComposer(composer) if str(p).endswith((".mxl", ".xml", ".krn", ".mid")))
        if split == "valid" and composer in OOD_COMPOSERS:
            paths = paths[2 * per_composer:]
        taken = 0
        for path in paths:
            if taken >= per_composer or len(sequences) >= limit:
                break
            pieces, _ = read_file(path)
            if pieces:
                pieces[0].id = _corpus_id(Path(path))
                sequences.append(pieces[0])
                taken += 1
    return sequences


def _corpus_id(path: Path) -> str:
    """A music21 corpus file's path under the corpus folder, e.g. "mozart/k155/movement1.mxl" (names repeat)."""
    parts = path.parts
    return "/".join(parts[parts.index("corpus") + 1:]) if "corpus" in parts else path.name


def main() -> None:
    from musejax.style.classify import embed_sequences, load_style_run, style_distance
    from musejax.evaluate.classification import (classification_scores, confusion_markdown, merge_classes,
                                                 plot_confusion, scores_markdown)
    from musejax.style.embeddings import split_outputs
    from musejax.style.config import resolve_style_config, saved_style_config
    from musejax.style.task import train_classifier
    from musejax.style.data import load_style_data

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/style"))
    parser.add_argument("--config", default="style")
    parser.add_argument("--ood-pieces", type=int, default=40)
    args, overrides = parser.parse_known_args()
    started = time.perf_counter()
    if not (args.run / "report.json").exists():
        config = (saved_style_config(args.run, overrides) if (args.run / "config.json").exists()
                  else resolve_style_config(args.config, overrides))
        train_classifier(config, args.run, progress=False)
    train_seconds = time.perf_counter() - started
    config = saved_style_config(args.run)
    report = json.loads((args.run / "report.json").read_text())
    run = load_style_run(args.run)
    data = load_style_data(config.data, progress=False)
    _, probs = split_outputs(run.model, run.params, data.test, config.data.window_steps, config.train.eval_batch_size)
    merged = None
    if set(IRISH_FIDDLE) <= set(data.styles):  # a run trained with the two apart (--config.data.merge_styles=)
        merged_probs, merged_names = merge_classes(probs, data.styles, IRISH_FIDDLE)
        merged_true = np.array([merged_names.index(IRISH_FIDDLE.get(data.styles[t], data.styles[t]))
                                for t in data.test.labels])
        merged = classification_scores(merged_true, merged_probs.argmax(-1), merged_names)
        plot_confusion(np.asarray(merged["confusion"]), merged_names, merged_names,
                       args.run / "confusion_merged.png",
                       title=f"test, Irish/fiddle merged (macro-F1 {merged['macro_f1']:.3f})")

    ood = ood_sequences(args.ood_pieces, per_composer=max(2, args.ood_pieces // len(OOD_COMPOSERS) + 1))
    embedded = embed_sequences(run, ood)
    test_embeddings, _ = split_outputs(run.model, run.params, data.test, config.data.window_steps,
                                       config.train.eval_batch_size)
    valid_embeddings, valid_probs = split_outputs(run.model, run.params, data.valid, config.data.window_steps,
                                                  config.train.eval_batch_size)
    in_distance = style_distance(test_embeddings, run.means, run.precision, run.scales)
    ood_max, in_max = embedded.probs.max(-1), probs.max(-1)
    max_prob_threshold = float(np.quantile(valid_probs.max(-1), 1 - config.classify.coverage))
    ood_rows = [{"id": ood[i].id, "top": run.styles[int(p.argmax())], "max_prob": float(p.max()), "distance": float(d),
                 "flagged": bool(d > run.threshold), "flagged_by_max_prob": bool(p.max() < max_prob_threshold)}
                for i, p, d in zip(embedded.kept, embedded.probs, embedded.distances)]
    result = {
        "run": str(args.run), "train_and_report_seconds": train_seconds, "test": {k: report["test"][k] for k in (
            "accuracy", "macro_f1", "n", "per_class", "confusion", "classes")},
        "majority_baseline": {k: report["majority_baseline"][k] for k in ("accuracy", "macro_f1", "predicts")},
        "irish_fiddle_merged": merged, "threshold": run.threshold, "max_prob_threshold": max_prob_threshold,
        "in_style_test_flagged": float((in_distance > run.threshold).mean()),
        "in_style_test_flagged_by_max_prob": float((in_max < max_prob_threshold).mean()),
        "out_of_style": {"n": len(ood_rows),
                         "flagged": float(np.mean([r["flagged"] for r in ood_rows])) if ood_rows else None,
                         "flagged_by_max_prob": float(np.mean([r["flagged_by_max_prob"] for r in ood_rows]))
                         if ood_rows else None,
                         "auroc_distance": auroc(-in_distance, -embedded.distances) if ood_rows else None,
                         "auroc_max_prob": auroc(in_max, ood_max) if ood_rows else None, "pieces": ood_rows},
    }
    (args.run / "experiment.json").write_text(json.dumps(result, indent=1) + "\n")
    base = result["majority_baseline"]
    lines = [f"# Style classifier experiment ({args.run})", "",
             "| | accuracy | macro-F1 |", "|---|---|---|",
             f"| test, {len(data.styles)} styles | {report['test']['accuracy']:.3f} | {report['test']['macro_f1']:.3f} |",
             *([f"| test, Irish/fiddle merged after training ({len(merged['classes'])}) | {merged['accuracy']:.3f} | "
                f"{merged['macro_f1']:.3f} |"] if merged else []),
             f"| majority class ({base['predicts']}) | {base['accuracy']:.3f} | {base['macro_f1']:.3f} |", "",
             scores_markdown(report["test"], "Per style (test)"), "### Confusion (test)", "",
             confusion_markdown(report["test"]["confusion"], data.styles, data.styles), "",
             "### Low-confidence rule", "",
             f"Out-of-style pieces: music21 works by {', '.join(OOD_COMPOSERS)} ({len(ood_rows)} pieces). Both rules "
             f"are calibrated to keep {config.classify.coverage:.0%} of the valid pieces.", "",
             "| rule | in-style test pieces flagged | out-of-style pieces flagged | AUROC in vs out |", "|---|---|---|---|",
             f"| Mahalanobis distance to the nearest style (used; threshold {run.threshold:.1f}) | "
             f"{result['in_style_test_flagged']:.1%} | {result['out_of_style']['flagged'] or 0:.1%} | "
             f"{result['out_of_style']['auroc_distance'] or float('nan'):.3f} |",
             f"| top softmax probability (threshold {max_prob_threshold:.3f}) | "
             f"{result['in_style_test_flagged_by_max_prob']:.1%} | {result['out_of_style']['flagged_by_max_prob'] or 0:.1%} | "
             f"{result['out_of_style']['auroc_max_prob'] or float('nan'):.3f} |"]
    (args.run / "experiment.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
