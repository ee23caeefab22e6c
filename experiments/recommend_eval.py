"""Offline evaluation of recommendation: precision@k of same-style (and same-composer) neighbours for held-out
pieces, against a random ranking.

    python experiments/recommend_eval.py [--model runs/style] [--library all] [-k 10]

Queries are the library pieces in the classifier's test split (never seen in training). For each, the k nearest
other pieces of the whole library (cosine of L2-normalised style embeddings, the query itself excluded) are
retrieved; precision@k = share of them with the query's style label (composer: only for queries whose composer
is known and shared by another piece). Random baseline: the expected precision of k random other pieces,
(n_label - 1) / (N - 1) averaged over the queries (plus one seeded random ranking as a check). Writes
recommend_eval.json / .md into the model's run directory.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np


def precision_at_k(embeddings: np.ndarray, labels: list[str], queries: np.ndarray, k: int,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Per query: share of its k nearest other pieces (random other pieces with `rng`) sharing its label."""
    from musejax.style.recommend import top_k

    labels_array = np.asarray(labels)
    out = np.zeros(len(queries))
    for row, q in enumerate(queries):
        if rng is None:
            neighbours, _ = top_k(embeddings, embeddings[q], k, exclude=np.array([q]))
        else:
            others = np.delete(np.arange(len(labels)), q)
            neighbours = rng.choice(others, k, replace=False)
        out[row] = (labels_array[neighbours] == labels_array[q]).mean()
    return out


def expected_random(labels: list[str], queries: np.ndarray) -> float:
    counts = Counter(labels)
    return float(np.mean([(counts[labels[q]] - 1) / (len(labels) - 1) for q in queries]))


def main() -> None:
    from musejax.style.classify import load_style_run
    from musejax.data.splits import split_of
    from musejax.style.recommend import load_or_build_index
    from musejax.style.config import saved_style_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=Path("runs/style"))
    parser.add_argument("--library", default="all")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run = load_style_run(args.model)
    config = saved_style_config(args.model)
    started = time.perf_counter()
    index, path, built = load_or_build_index(run, args.library)
    index_seconds = time.perf_counter() - started
    fractions = (config.data.valid_fraction, config.data.test_fraction)
    queries = np.array([i for i, piece_id in enumerate(index.ids) if split_of(piece_id, *fractions) == "test"])
    rng = np.random.default_rng(args.seed)
    style = precision_at_k(index.embeddings, index.styles, queries, args.k)
    style_random = precision_at_k(index.embeddings, index.styles, queries, args.k, rng)
    per_style = {}
    for name in sorted(set(index.styles)):
        mine = np.array([index.styles[q] == name for q in queries])
        if mine.any():
            per_style[name] = {"queries": int(mine.sum()), "precision": float(style[mine].mean()),
                               "random": expected_random(index.styles, queries[mine])}
    composer_counts = Counter(c for c in index.composers if c)
    composer_queries = np.array([q for q in queries if index.composers[q] and composer_counts[index.composers[q]] > 1],
                                np.int64)
    composer = None
    if len(composer_queries):
        labels = [c or f"unknown-{i}" for i, c in enumerate(index.composers)]  # unknown composers match nothing
        composer = {"queries": int(len(composer_queries)),
                    "precision": float(precision_at_k(index.embeddings, labels, composer_queries, args.k).mean()),
                    "random": expected_random(labels, composer_queries),
                    "composers": dict(Counter(index.composers[q] for q in composer_queries).most_common())}
    # composers inside styles that have several (single-composer corpora make composer = style)
    composers_of_style: dict[str, set] = {}
    for s, c in zip(index.styles, index.composers):
        if c:
            composers_of_style.setdefault(s, set()).add(c)
    mixed = np.array([q for q in composer_queries if len(composers_of_style.get(index.styles[q], ())) > 1], np.int64)
    if composer is not None and len(mixed):
        labels = [c or f"unknown-{i}" for i, c in enumerate(index.composers)]
        composer["multi_composer_styles"] = {
            "queries": int(len(mixed)), "precision": float(precision_at_k(index.embeddings, labels, mixed, args.k).mean()),
            "random": expected_random(labels, mixed)}
    result = {"model": str(args.model), "library": args.library, "index": str(path), "index_built_now": built,
              "index_seconds": index_seconds, "n_library": len(index), "n_queries": int(len(queries)), "k": args.k,
              "style_precision": float(style.mean()), "style_random_expected": expected_random(index.styles, queries),
              "style_random_sampled": float(style_random.mean()), "per_style": per_style, "composer": composer}
    out = args.model / "recommend_eval.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Recommendation offline evaluation ({args.library}, {len(index)} pieces, {len(queries)} held-out "
             f"queries, k={args.k})", "",
             "| neighbours sharing the query's | precision@k | random (expected) | random (sampled) |", "|---|---|---|---|",
             f"| style | {result['style_precision']:.3f} | {result['style_random_expected']:.3f} | "
             f"{result['style_random_sampled']:.3f} |"]
    if composer:
        lines.append(f"| composer ({composer['queries']} queries with a known composer) | {composer['precision']:.3f} | "
                     f"{composer['random']:.3f} | – |")
    if composer and composer.get("multi_composer_styles"):
        mixed_row = composer["multi_composer_styles"]
        lines.append(f"| composer, only styles with several known composers ({mixed_row['queries']} queries) | "
                     f"{mixed_row['precision']:.3f} | {mixed_row['random']:.3f} | – |")
    lines += ["", "| style | queries | precision@k | random |", "|---|---|---|---|"]
    lines += [f"| {name} | {row['queries']} | {row['precision']:.3f} | {row['random']:.3f} |"
              for name, row in per_style.items()]
    lines += ["", f"index {'built' if built else 'loaded'} in {index_seconds:.1f} s: {path}"]
    (args.model / "recommend_eval.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
