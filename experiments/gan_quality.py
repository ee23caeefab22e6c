"""How close does a trained multitrack GAN come to its training data? MuseGAN metrics and mode collapse.

    python experiments/gan_quality.py --run runs/gan-...   [--n 1000] [--seed 0] [--out DIR]
    python experiments/gan_quality.py --run runs/wgan runs/minimax     # + a table comparing the runs

Compares four sets of 4-bar segments: the training data, held-out data (valid + test pieces: how far real
music of the same corpus is), the run's generator at step 0 (untrained: same init as the run) and the
trained generator (latest checkpoint), all binarised the way the run samples (config.sample.threshold).
Metrics (musejax/evaluate/musegan.py): EB, UPC, QN, TD, polyphony, pitch-class entropy, per track (TD per
pair of tracks), averaged over segments; a metric's distance to the training data is the mean over tracks
(pairs) of |value - training value|. QN counts notes of at least 2 steps (an eighth note): on a 16th-note grid
the paper's 32nd-note threshold is one step, which every note passes, so it would say nothing.
Mode collapse: mean pairwise Jaccard distance between segments (1 - shared cells / cells in either) within
each set, the share of distinct segments, and the mean Jaccard distance from each segment to its nearest
training segment (memorisation: small values mean copies).
Writes gan_quality.md and gan_quality.json to --out (default <run>/quality) and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

QN_MIN_STEPS = 2
SETS = ("training", "held-out", "untrained", "trained")


def _track_means(values: np.ndarray) -> list[float | None]:
    """(N, k) per-segment values (NaN where undefined) -> k NaN-skipping means."""
    with np.errstate(invalid="ignore"):
        means = np.nanmean(values, axis=0) if len(values) else np.full(values.shape[1:], np.nan)
    return [None if math.isnan(m) else float(m) for m in np.atleast_1d(means)]


def segment_metrics(segments: np.ndarray, min_pitch: int, steps_per_quarter: int) -> dict[str, list[float | None]]:
    """Per-track (TD: per-pair) means of the MuseGAN metrics over a set of segments."""
    import warnings

    from musejax.evaluate import musegan

    n_tracks = segments.shape[1]
    pairs = [(a, b) for a in range(n_tracks) for b in range(a + 1, n_tracks)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are reported as None
        distance = musegan.tonal_distance(segments, min_pitch, steps_per_quarter)
        return {
            "EB": _track_means(musegan.empty_bar_rate(segments)),
            "UPC": _track_means(musegan.used_pitch_classes_per_bar(segments, min_pitch)),
            "QN": _track_means(musegan.qualified_note_rate(segments, steps_per_quarter, min_steps=QN_MIN_STEPS)),
            "polyphony": _track_means(musegan.polyphony(segments)),
            "pitch_class_entropy": _track_means(musegan.pitch_class_entropy(segments, min_pitch)),
            "TD": _track_means(np.stack([distance[:, a, b] for a, b in pairs], axis=1)),
        }


def _distance(values: list[float | None], reference: list[float | None]) -> float:
    """Mean over tracks of |value - reference|; a track undefined in one set but not the other counts as
    the reference's magnitude (e.g. a generator that never plays a track is off by the whole value)."""
    gaps = []
    for value, ref in zip(values, reference):
        if value is None and ref is None:
            continue
        gaps.append(abs(ref) if value is None else abs(value) if ref is None else abs(value - ref))
    return float(np.mean(gaps)) if gaps else 0.0


def diversity(segments: np.ndarray, training: np.ndarray, rng: np.random.Generator, n_pairs_max: int = 500,
              exclude_self: bool = False) -> dict[str, float]:
    """Mean pairwise Jaccard distance within a subset, share of distinct segments, mean nearest-training distance."""
    from musejax.gan.sample import jaccard_distances

    subset = segments[rng.permutation(len(segments))[:n_pairs_max]]
    within = jaccard_distances(subset, subset)
    upper = within[np.triu_indices(len(subset), k=1)]
    to_train = jaccard_distances(subset, training)
    if exclude_self:  # training segments are their own nearest neighbours
        to_train = np.where(to_train == 0, np.inf, to_train)
    distinct = len({s.tobytes() for s in np.packbits(segments.reshape(len(segments), -1), axis=1)})
    return {"mean_pairwise_jaccard": float(upper.mean()) if len(upper) else 0.0,
            "distinct_share": distinct / len(segments),
            "mean_nearest_training_jaccard": float(np.mean(np.min(to_train, axis=1)))}


def untrained_variables(config: Any, generator: Any, discriminator: Any, n_styles: int) -> dict[str, Any]:
    """The run's generator at step 0: the same initialisation `train_gan` starts from."""
    import jax

    from musejax.gan.run import gan_loss, make_optimizers
    from musejax.gan.steps import create_gan_state, run_keys
    from musejax.train.mesh import make_mesh

    g_tx, d_tx = make_optimizers(config)
    init_rng, _ = run_keys(config.train.seed)
    state, _ = create_gan_state(generator, discriminator, g_tx, d_tx, gan_loss(config), n_styles, init_rng,
                                make_mesh(jax.devices()[:1]))
    return {"params": state.g_params, "batch_stats": state.g_batch_stats}


def evaluate_run(run_dir: Path, n: int, seed: int) -> dict[str, Any]:
    """The comparison table's data (JSON-ready) for a run's latest checkpoint."""
    from musejax.gan.data import load_gan_data
    from musejax.gan.run import restore_gan
    from musejax.gan.sample import _track_names, generate_segments

    restored = restore_gan(run_dir)
    config, encoding, generator = restored.config, restored.encoding, restored.generator
    data = load_gan_data(config.data, progress=False)
    style = 0 if generator.n_styles else None
    threshold = config.sample.threshold
    untrained = untrained_variables(config, generator, restored.state.discriminator, generator.n_styles)
    sets = {"training": data.train, "held-out": data.heldout,
            "untrained": generate_segments(generator, untrained, n, seed=seed, threshold=threshold, style=style),
            "trained": generate_segments(generator, restored.variables, n, seed=seed, threshold=threshold, style=style)}
    metrics = {name: segment_metrics(segments, encoding.min_pitch, encoding.steps_per_quarter)
               for name, segments in sets.items() if len(segments)}
    summary = {}
    for metric in metrics["training"]:
        reference = metrics["training"][metric]
        row = {name: _mean(values[metric]) for name, values in metrics.items()}
        row.update({f"distance_{name}": _distance(metrics[name][metric], reference)
                    for name in metrics if name != "training"})
        row["trained_closer"] = row["distance_trained"] < row["distance_untrained"]
        row["trained_vs_untrained_distance"] = (row["distance_trained"] / row["distance_untrained"]
                                                if row["distance_untrained"] > 0 else None)
        summary[metric] = row
    rng = np.random.default_rng(seed)
    collapse = {name: diversity(segments, data.train, rng, exclude_self=name == "training")
                for name, segments in sets.items() if len(segments)}
    densities = {name: float(segments.mean()) for name, segments in sets.items() if len(segments)}
    return {"run": str(run_dir), "step": restored.step, "config": config.name, "loss": config.loss.kind,
            "mode": config.model.mode, "n_generated": n, "threshold": threshold, "seed": seed,
            "n_segments": {name: int(len(s)) for name, s in sets.items()}, "tracks": _track_names(encoding.n_tracks),
            "qn_min_steps": QN_MIN_STEPS, "per_track": metrics, "summary": summary, "mode_collapse": collapse,
            "cell_density": densities,
            "all_closer": all(row["trained_closer"] for row in summary.values())}


def _mean(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return f"{value:.{digits}f}"


def to_markdown(result: dict[str, Any]) -> str:
    names = [name for name in SETS if name in result["per_track"]]
    lines = [f"## GAN quality: {result['run']} (step {result['step']}, {result['loss']}, {result['mode']})", "",
             "Segments: " + ", ".join(f"{k} {v}" for k, v in result["n_segments"].items())
             + f"; generated with threshold {result['threshold']}, seed {result['seed']}.", "",
             "| metric | " + " | ".join(names) + " | dist. untrained | dist. trained | trained/untrained | closer |",
             "|---" * (len(names) + 5) + "|"]
    for metric, row in result["summary"].items():
        label = f"QN (>= {result['qn_min_steps']} steps)" if metric == "QN" else metric
        lines.append(f"| {label} | " + " | ".join(_fmt(row[n]) for n in names)
                     + f" | {_fmt(row['distance_untrained'])} | {_fmt(row['distance_trained'])}"
                     f" | {_fmt(row['trained_vs_untrained_distance'], 2)} | {_fmt(row['trained_closer'])} |")
    lines += ["", "Metric values are means over tracks (TD: over track pairs); distances are mean |value - training|"
              " per track. Held-out = valid + test pieces (real music the GAN never saw).", "",
              "Per track (training / held-out / untrained / trained):", "",
              "| metric | " + " | ".join(result["tracks"]) + " |", "|---" * (len(result["tracks"]) + 1) + "|"]
    for metric in ("EB", "UPC", "QN", "polyphony", "pitch_class_entropy"):
        cells = [" / ".join(_fmt(result["per_track"][n][metric][t], 2) for n in names)
                 for t in range(len(result["tracks"]))]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    lines += ["", "Mode collapse (Jaccard distance between segments' note cells):", "",
              "| set | mean pairwise distance | distinct share | mean distance to nearest training segment | "
              "cell density |", "|---|---|---|---|---|"]
    for name, row in result["mode_collapse"].items():
        lines.append(f"| {name} | {_fmt(row['mean_pairwise_jaccard'])} | {_fmt(row['distinct_share'])} | "
                     f"{_fmt(row['mean_nearest_training_jaccard'])} | {_fmt(result['cell_density'][name], 4)} |")
    lines += ["", f"Trained generator closer to the training data than the untrained one on every metric: "
              f"{_fmt(result['all_closer'])}"]
    return "\n".join(lines) + "\n"


def comparison_markdown(results: list[dict[str, Any]]) -> str:
    """One row per run: distance to the training data per metric, diversity, and whether it beats its own
    untrained generator everywhere (the table that picks the default loss)."""
    metrics = list(results[0]["summary"])
    lines = ["## Runs compared (distance of the trained generator to the training data; lower is closer)", "",
             "| run | loss | steps | " + " | ".join(metrics) + " | mean pairwise Jaccard (training "
             f"{_fmt(results[0]['mode_collapse']['training']['mean_pairwise_jaccard'])}) | distinct | "
             "closer on every metric |", "|---" * (len(metrics) + 6) + "|"]
    for result in results:
        collapse = result["mode_collapse"]["trained"]
        lines.append(f"| {result['run']} | {result['loss']} | {result['step']} | "
                     + " | ".join(_fmt(result["summary"][m]["distance_trained"]) for m in metrics)
                     + f" | {_fmt(collapse['mean_pairwise_jaccard'])} | {_fmt(collapse['distinct_share'])} | "
                     f"{_fmt(result['all_closer'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, nargs="+",
                        help="trained GAN run directory; several: also a table comparing them (e.g. two losses)")
    parser.add_argument("--n", type=int, default=1000, help="segments to generate per generator (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default <run>/quality; with several runs, the first run's)")
    args = parser.parse_args(argv)
    results = []
    for run in args.run:
        result = evaluate_run(run, args.n, args.seed)
        out = args.out if args.out and len(args.run) == 1 else run / "quality"
        out.mkdir(parents=True, exist_ok=True)
        markdown = to_markdown(result)
        (out / "gan_quality.md").write_text(markdown)
        (out / "gan_quality.json").write_text(json.dumps(result, indent=2) + "\n")
        print(markdown)
        print(f"wrote {out / 'gan_quality.md'} and {out / 'gan_quality.json'}")
        results.append(result)
    if len(results) > 1:
        out = args.out or args.run[0] / "quality"
        out.mkdir(parents=True, exist_ok=True)
        table = comparison_markdown(results)
        (out / "gan_comparison.md").write_text(table)
        print(table)
        print(f"wrote {out / 'gan_comparison.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
