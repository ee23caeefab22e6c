"""How close are a piano-roll LM's whole sampled pieces to held-out music? Bernoulli and NADE outputs side by side.

    python experiments/sample_quality.py                                  # train lm with both outputs, evaluate
    python experiments/sample_quality.py --model nade --config.train.steps=4000
    python experiments/sample_quality.py --run runs/lm-a --run runs/lm-b --primers test --bars 8
    python experiments/sample_quality.py --run runs/lm-a --primers my_primers/ --n 64

Without --run it trains `--config` (default `lm`, what `musejax train` trains) once per `--model` output
(`--config.model.output=bernoulli|nade`) into <out>/<output>; a finished run there is reused. Each run then
samples --n whole pieces (lengths drawn from its training pieces, settings from its config.sample) and
everything is compared with the TEST pieces of the run's own split (rebuilt from its config.data as training
built it). Both sides are the run's encoded arrays decoded with its encoding, so samples and real pieces look
alike (one merged part; a piano-roll without onsets joins repeated notes; each barred as its score, or as the
sample was drawn: meter and pickup) and differ only in their music.
  - Quality: every per-piece metric's overlap area (musejax/evaluate/metrics.py, `compare_values`) and every
    Yang & Lerch feature's OA (distributions.py), as `musejax evaluate` computes them. The real-vs-real
    baseline compares random subsets of the TRAINING pieces, as many as samples, with the same test pieces
    (mean over --baseline-draws subsets); ratio = sample OA / baseline OA; target ratio >= 0.80. Calibration:
    one more random subset of training pieces, as many as samples, scored as if it were the samples (what the
    target asks of real music at that size).
  - Quarters ("the end as good as the start"): each piece is cut at the bar lines nearest to 1/4, 1/2 and 3/4
    of its length (evaluate/pieces.py `split_piece`); quarter q of the samples (and of the baseline subsets)
    is compared with quarter q of the test pieces, so a sample's end is held to real endings (cadences), not
    to real openings.
  - Copying: the longest span (bars) any sample shares with a training piece (evaluate/originality.py:
    transposition-invariant note runs of the top and bottom lines); target: none >= 2 bars. Beside it, the
    test pieces against the same training pieces (chorales share melodies: real music "copies" too).
  - Continuations (--primers DIR, or `test` for the first halves of the test pieces): each primer is
    continued --bars bars (--continuations per primer) and each continuation compared with its own primer:
    pitch-class histogram distance (total variation, 0..1), polyphony and note density (notes per quarter)
    differences, and whether the estimated keys (Krumhansl-Schmuckler, metrics.estimate_key) agree. Baseline:
    the second half of each test piece against its first half (cut at the bar line nearest the middle).
Writes sample_quality.md and sample_quality.json to --out (and the samples as MIDI) and prints the markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm

from musejax.lm.run_pieces import decoded, decoded_pieces, grid_pieces, run_split_arrays

MODELS = ("bernoulli", "nade")
TARGET_RATIO = 0.80
COPY_BARS = 2.0
QUARTERS = 4
BASELINE_DRAWS = 5
LOW_BASELINE_OA = 0.2  # below it the markdown says the ratio says little
CONTINUATION_ROWS = (("pitch_class_distance", "pitch-class histogram distance (TV)"),
                     ("polyphony_difference", "abs. polyphony difference"),
                     ("density_difference", "abs. density difference (notes / quarter)"),
                     ("key_agreement", "estimated key agrees (share)"),
                     ("scale_agreement", "same key or its relative major/minor (share)"),
                     ("polyphony_second", "polyphony of the continuation / second half"),
                     ("density_second", "density of the continuation / second half"),
                     ("read_as_melody", "primer read as a melody (share of continuations)"),
                     ("read_as_melody_chords", "primer read as a melody over chords (share)"))
PRIMER_BASELINE = "baseline.json"  # in a --primers folder: what its pieces really do next (primer_sets.py)


# --------------------------------------------------------------------------------------------- set quality


def set_overlaps(generated: Sequence[Any], reference: Sequence[Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per-metric OA (with both sets' means) and Yang & Lerch OA of `generated` against `reference`, computed
    as musejax/evaluate/report.py `evaluate_sets` does."""
    import warnings

    from musejax.evaluate import distributions, metrics

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # metrics undefined on a whole set become NaN
        gen_table, ref_table = metrics.metrics_table(list(generated)), metrics.metrics_table(list(reference))
        per_metric = {name: distributions.compare_values(gen_table[name], ref_table[name]) for name in metrics.METRICS}
        features = distributions.compare_sets(list(generated), list(reference))
    return {"metrics": {name: {"overlap_area": row["overlap_area"], "generated_mean": row["generated"]["mean"],
                               "reference_mean": row["reference"]["mean"]} for name, row in per_metric.items()},
            "distributions": {name: {"overlap_area": row["overlap_area"]} for name, row in features.items()}}


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def ratio_section(samples: dict[str, Any], baselines: Sequence[dict[str, Any]],
                  target: float = TARGET_RATIO) -> dict[str, Any]:
    """Sample OA, baseline OA (mean and std over the baseline draws) and their ratio for every metric and
    feature of `set_overlaps` results, plus a summary: how many meet ratio >= target, the smallest ratio."""
    out: dict[str, Any] = {}
    ratios: list[tuple[float, str]] = []
    n_undefined = 0
    for group in ("metrics", "distributions"):
        out[group] = {}
        for name, row in samples[group].items():
            draws = np.array([b[group][name]["overlap_area"] for b in baselines], float)
            draws = draws[np.isfinite(draws)]
            baseline = float(draws.mean()) if len(draws) else None
            sample = _finite(row["overlap_area"])
            ratio = sample / baseline if sample is not None and baseline else None
            entry = {"sample": sample, "baseline": baseline,
                     "baseline_std": float(draws.std()) if len(draws) else None, "ratio": ratio,
                     "meets_target": None if ratio is None else bool(ratio >= target)}
            if group == "metrics":
                means = np.array([b[group][name]["generated_mean"] for b in baselines], float)
                entry.update(sample_mean=_finite(row["generated_mean"]), test_mean=_finite(row["reference_mean"]),
                             baseline_mean=_finite(np.nanmean(means)) if np.isfinite(means).any() else None)
            out[group][name] = entry
            if ratio is None:
                n_undefined += 1
            else:
                ratios.append((ratio, name))
    smallest = min(ratios) if ratios else (None, None)
    n_meeting = sum(r >= target for r, _ in ratios)
    out["summary"] = {"target_ratio": target, "n_compared": len(ratios), "n_meeting_target": n_meeting,
                      "n_undefined": n_undefined, "min_ratio": smallest[0], "min_ratio_of": smallest[1],
                      "all_meet_target": bool(ratios) and n_meeting == len(ratios) and not n_undefined}
    return out


def baseline_subsets(n_train: int, size: int, draws: int, seed: int) -> list[np.ndarray]:
    """`draws` random subsets (indices) of `size` training pieces (all of them if there are fewer)."""
    rng = np.random.default_rng([seed, 2])
    size = min(size, n_train)
    return [np.sort(rng.choice(n_train, size, replace=False)) for _ in range(draws)]


def baseline_overlaps(train: Sequence[Any], test: Sequence[Any], subsets: Sequence[np.ndarray]) -> list[dict[str, Any]]:
    """`set_overlaps` of each training subset against the test pieces: the real-vs-real baseline."""
    return [set_overlaps([train[i] for i in subset], test) for subset in subsets]


def quality(samples: Sequence[Any], train: Sequence[Any], test: Sequence[Any], subsets: Sequence[np.ndarray],
            target: float = TARGET_RATIO, baselines: Sequence[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`ratio_section` of the samples against the test pieces, with the training subsets as the baseline
    (`baselines`: their `baseline_overlaps`, when already computed)."""
    if baselines is None:
        baselines = baseline_overlaps(train, test, subsets)
    return ratio_section(set_overlaps(samples, test), baselines, target)


def real_as_samples(train: Sequence[Any], test: Sequence[Any], subsets: Sequence[np.ndarray], size: int, seed: int,
                    target: float = TARGET_RATIO, baselines: Sequence[dict[str, Any]] | None = None
                    ) -> dict[str, Any]:
    """The target's calibration: one more random subset of `size` training pieces (drawn independently of the
    baseline subsets) scored exactly as the samples are. Whether real music of the samples' number meets the target
    says how noisy the ratios are at that size, so a sample set's miss can be read against it. Returns the
    section's summary and the names that missed."""
    rng = np.random.default_rng([seed, 3])
    picked = np.sort(rng.choice(len(train), min(size, len(train)), replace=False))
    section = quality([train[i] for i in picked], train, test, subsets, target, baselines)
    missed = [name for group in ("metrics", "distributions") for name, entry in section[group].items()
              if entry["meets_target"] is False]
    return {"n": len(picked), "summary": section["summary"], "missed": missed}


def quarter_quality(samples: Sequence[Any], train: Sequence[Any], test: Sequence[Any], subsets: Sequence[np.ndarray],
                    target: float = TARGET_RATIO, parts: int = QUARTERS) -> list[dict[str, Any]]:
    """`quality` of each of the `parts` passages: passage q of every piece against passage q of the test pieces."""
    from musejax.evaluate.pieces import split_piece

    used = sorted({int(i) for subset in subsets for i in subset})
    train_parts = {i: split_piece(train[i], parts) for i in used}
    sample_parts = [split_piece(p, parts) for p in samples]
    test_parts = [split_piece(p, parts) for p in test]
    sections = []
    for q in range(parts):
        train_q = {i: pieces[q] for i, pieces in train_parts.items()}
        baselines = [set_overlaps([train_q[int(i)] for i in subset], [p[q] for p in test_parts]) for subset in subsets]
        section = ratio_section(set_overlaps([p[q] for p in sample_parts], [p[q] for p in test_parts]), baselines,
                                target)
        sections.append(dict(quarter=q + 1, **section))
    return sections


def copying(samples: Sequence[Any], train: Sequence[Any], test: Sequence[Any], min_bars: float = COPY_BARS
            ) -> dict[str, Any]:
    """Longest span (bars) any sample shares with a training piece, and the same for the test pieces."""
    from musejax.evaluate import originality

    index = originality.OriginalityIndex.build(list(train))

    def summary(pieces: Sequence[Any]) -> dict[str, Any]:
        found = originality.find_copies(index, list(pieces), min_bars)
        top = max(found, key=lambda r: (r.max_span_bars, r.longest_notes), default=None)
        return dict(originality.originality_summary(found, min_bars),
                    longest_span_bars=top.max_span_bars if top else 0.0, longest_span_piece=top.id if top else None,
                    longest_span_source=top.source_id if top else None,
                    meets_target=not any(r.copies_min_bars for r in found))

    return {"min_bars": min_bars, "n_training_pieces": len(train), "samples": summary(samples),
            "test_pieces": summary(test)}


# ----------------------------------------------------------------------------------------- continuations


def halves(piece: Any) -> dict[str, Any]:
    """`compare_passages` of a real piece's second half with its first (cut at the bar nearest the middle)."""
    from musejax.evaluate.continuation import compare_passages
    from musejax.evaluate.pieces import slice_piece, split_points

    _, middle, end = (int(x) for x in split_points(piece, 2))
    return dict(id=piece.id, **compare_passages(slice_piece(piece, 0, middle), slice_piece(piece, middle, end),
                                                middle, end - middle))


def continuations(run: Any, primers: Sequence[Any], bars: int, per_primer: int, seed: int, steps_per_quarter: int,
                  options: dict[str, Any], progress: bool = False
                  ) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Continue each primer NoteSequence `per_primer` times by `bars` bars (sampling `options`: temperature,
    top_p, ...); `compare_passages` of each continuation with its primer. Returns (rows, failures)."""
    from musejax.evaluate.continuation import compare_passages
    from musejax.evaluate.pieces import grid_piece, slice_piece
    from musejax.midi.meta import primer_end_seconds
    from musejax.midi.plots import seconds_to_quarters
    from musejax.lm.sample import TEXTURE_READINGS, SampleError, sample

    rows, failures = [], []
    for index, primer in enumerate(tqdm(primers, desc=f"continue ({run.name})", disable=not progress, leave=False)):
        name = primer.id or primer.filename or f"primer {index}"
        try:
            sequences = sample(run, per_primer, bars=bars, seed=seed + index, primer=primer, **options)
        except SampleError as err:
            failures.append({"primer": name, "reason": str(err)})
            continue
        for k, ns in enumerate(sequences):
            piece = grid_piece(ns, steps_per_quarter)
            quarters = seconds_to_quarters(ns, [primer_end_seconds(ns), ns.total_time])
            end, total = (int(round(float(q) * steps_per_quarter)) for q in quarters)
            read_as = [shift for shift, words in TEXTURE_READINGS.items()
                       if ns.sequence_metadata.title.endswith(f" {words}")]
            passages = compare_passages(slice_piece(piece, 0, end), slice_piece(piece, end, max(total, end)), end,
                                        total - end)
            rows.append(dict(primer=name, continuation=k, read_as=read_as[0] if read_as else "as written", **passages))
    return rows, failures


def first_half_primers(encoding: Any, test_items: Sequence[tuple[str, np.ndarray, tuple[int, int]]],
                       test: Sequence[Any]) -> list[Any]:
    """`--primers test`: the first half of every test piece (cut where `halves` cuts it), as NoteSequences."""
    from musejax.evaluate.pieces import split_points

    items = {piece_id: (array, bar) for piece_id, array, bar in test_items}
    primers = []
    for piece in test:
        middle_quarters = int(split_points(piece, 2)[1]) / piece.steps_per_quarter
        array, bar = items[piece.id]
        primers.append(decoded(encoding, array[: int(round(middle_quarters * encoding.steps_per_quarter))], bar,
                               f"{piece.id} (first half)"))
    return primers


# ------------------------------------------------------------------------------------------------- one run


def evaluate_run(run: Any, args: argparse.Namespace, out: Path, label: str) -> dict[str, Any]:
    """Sample the run (a musejax.lm.sample.Run), evaluate against its test pieces, continue the primers."""
    from musejax.evaluate.continuation import summarize_passages
    from musejax.midi.meta import write_midi
    from musejax.lm.sample import CopyReport, sample
    from musejax.lm.sample_inputs import config_options

    progress, run_dir, spq = args.progress, run.run_dir, args.steps_per_quarter
    items = run_split_arrays(run.config.data, run.encoding, progress=progress)
    held_out = items[args.against]  # "test" to report, "valid" to tune (sampling options) without the test split
    test = decoded_pieces(run.encoding, held_out, spq, desc=f"{args.against} pieces", progress=progress)
    train = decoded_pieces(run.encoding, items["train"], spq, desc="training pieces", progress=progress)
    options = config_options(run.config, temperature=args.temperature, top_p=args.top_p,
                             count_temperature=args.count_temperature, max_copy_bars=args.max_copy_bars)
    started = time.perf_counter()
    copy_check = CopyReport()
    sequences = sample(run, args.n, seed=args.seed, copy_report=copy_check, **options)
    sample_seconds = time.perf_counter() - started
    for index, ns in enumerate(sequences):
        write_midi(ns, out / f"samples-{label}" / f"sample_{index:03d}.mid")
    samples, empty = grid_pieces(sequences, spq, desc="samples", progress=progress)
    if len(samples) < 2 or len(test) < 2:
        raise SystemExit(f"{run_dir}: need two samples and two {args.against} pieces with notes; got {len(samples)} "
                         f"samples ({len(empty)} silent) and {len(test)} {args.against} pieces")
    subsets = baseline_subsets(len(train), len(samples), args.baseline_draws, args.seed)
    primers = read_primers(args.primers, run.encoding, held_out, test)
    result: dict[str, Any] = {
        "label": label, "run": str(run_dir), "step": run.step,
        "output": getattr(run.config.model, "output", "bernoulli"),
        "config": run.config.name, "data": {"corpus": run.config.data.corpus, "against": args.against,
                                            "n_train": len(train),
                                            "n_test": len(test), "n_baseline": len(subsets[0]),
                                            "baseline_draws": len(subsets)},
        "sampling": dict(options, n=args.n, seed=args.seed, seconds=round(sample_seconds, 1)),
        "copy_check": dict(dataclasses.asdict(copy_check), summary=copy_check.summary()),
        "samples": {"n": len(sequences), "n_evaluated": len(samples), "silent": empty,
                    "length_quarters": [p.n_steps / spq for p in samples]},
    }
    with tqdm(total=3 + bool(primers), desc=f"evaluate ({label})", disable=not progress, leave=False) as bar:
        baselines = baseline_overlaps(train, test, subsets)
        result["whole"] = quality(samples, train, test, subsets, args.target, baselines)
        result["real_as_samples"] = real_as_samples(train, test, subsets, len(samples), args.seed, args.target,
                                                    baselines)
        bar.update()
        result["quarters"] = quarter_quality(samples, train, test, subsets, args.target)
        bar.update()
        result["copying"] = copying(samples, train, test, args.copy_bars)
        bar.update()
        result["continuation"] = None
        if primers:
            rows, failures = continuations(run, primers, args.bars, args.continuations, args.seed, spq,
                                           options, progress)
            summary = summarize_passages(rows)
            if getattr(run.model, "textures", 0) and rows:  # the texture the model read each primer in (lm/sample.py)
                for shift in ("melody", "melody_chords"):
                    summary[f"read_as_{shift}"] = float(np.mean([row["read_as"] == shift for row in rows]))
            own_baseline = Path(args.primers) / PRIMER_BASELINE if args.primers != "test" else None
            if own_baseline is not None and own_baseline.is_file():  # the primers' own next bars
                baseline, baseline_summary = [], json.loads(own_baseline.read_text())
                baseline_name = f"the bars that follow each primer ({own_baseline})"
            else:
                baseline = [halves(p) for p in test]
                baseline_summary = summarize_passages(baseline)
                baseline_name = "second against first half of each test piece"
            result["continuation"] = {"bars": args.bars, "per_primer": args.continuations, "n_primers": len(primers),
                                      "failures": failures, "summary": summary, "baseline": baseline_summary,
                                      "baseline_name": baseline_name, "pairs": rows, "baseline_pairs": baseline}
            bar.update()
    return result


# ---------------------------------------------------------------------------------------------- markdown


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _ratio(entry: dict[str, Any]) -> str:
    text = _fmt(entry["ratio"], 2)
    return f"**{text}**" if entry["meets_target"] is False else text


def _settings(sampling: dict[str, Any]) -> str:
    """A model's sampling options as the report names them, e.g. "temperature 1, top-p 0.9, count temperature 1.1"."""
    names = {"temperature": "temperature", "top_k": "top-k", "top_p": "top-p", "threshold": "threshold",
             "count_temperature": "count temperature", "max_copy_bars": "copy check (bars)"}
    return ", ".join(f"{label} {sampling[key]:g}" for key, label in names.items() if sampling.get(key) is not None)


def to_markdown(result: dict[str, Any]) -> str:
    """The report: quality table (whole pieces), quarters, copying, continuations; models side by side."""
    models = result["models"]
    labels = list(models)
    first = models[labels[0]]
    data, target = first["data"], result["target_ratio"]
    split = data.get("against", "test")
    whole = {m: models[m]["whole"] for m in labels}
    runs = ", ".join(f"{m} ({models[m]['run']}, step {models[m]['step']})" for m in labels)
    lines = [f"## Sample quality: {runs}", "",
             f"{result['n']} sampled whole pieces per model (seed {result['seed']}) against the {data['n_test']} {split} "
             f"pieces of {data['corpus']}; baseline: {data['n_baseline']} training pieces against the same {split} pieces "
             f"(mean of {data['baseline_draws']} random subsets). OA = overlap area; ratio = sample OA / baseline OA, "
             f"target >= {target:.2f} (**bold**: missed).", "",
             "Sampling: " + "; ".join(f"{m}: {_settings(models[m].get('sampling', {}))}" for m in labels) + ".", "",
             "### Whole pieces", "",
             "| metric | " + " | ".join(f"{m} OA | baseline | ratio" for m in labels) + " |",
             "|---" * (1 + 3 * len(labels)) + "|"]
    names = [(group, name) for group in ("metrics", "distributions") for name in first["whole"][group]]
    label_of = {"metrics": "", "distributions": "Y&L "}
    for group, name in names:
        cells = [whole[m][group][name] for m in labels]
        lines.append(f"| {label_of[group]}{name} | " + " | ".join(
            f"{_fmt(e['sample'])} | {_fmt(e['baseline'])} | {_ratio(e)}" for e in cells) + " |")

    def met(summary: dict[str, Any]) -> str:
        undefined = f" ({summary['n_undefined']} n/a)" if summary["n_undefined"] else ""
        return f"{summary['n_meeting_target']}/{summary['n_compared']}{undefined}"

    lines.append("| **meets target** | " + " | ".join(f" | | {met(whole[m]['summary'])}" for m in labels) + " |")
    shared = all(models[m]["data"] == data for m in labels)  # one split and baseline: one calibration line
    for m in labels[:1] if shared else labels:
        real = models[m]["real_as_samples"]
        lines += ["", f"Calibration{'' if shared else f' ({m})'}: a further random set of {real['n']} training pieces, "
                  f"scored as if it were the samples, meets {met(real['summary'])} (smallest ratio "
                  f"{_fmt(real['summary']['min_ratio'], 2)}, {real['summary']['min_ratio_of']}): what the target asks "
                  "of real music of the samples' number."]
    near_constant = sorted({name for m in labels for group, name in names
                            if (whole[m][group][name]["baseline"] or 1.0) < LOW_BASELINE_OA})
    if near_constant:
        lines += ["", f"Baseline OA < {LOW_BASELINE_OA} ({', '.join(near_constant)}): the real values are nearly "
                  "constant (e.g. no empty bar), and the KDE overlap of such near point masses is small for any two "
                  "sets; there the ratio says little."]
    lines += ["", f"Means per piece ({split} pieces; training subsets; samples):", "",
              f"| metric | {split} | training | " + " | ".join(labels) + " |", "|---" * (3 + len(labels)) + "|"]
    for name, entry in first["whole"]["metrics"].items():
        lines.append(f"| {name} | {_fmt(entry['test_mean'])} | {_fmt(entry['baseline_mean'])} | "
                     + " | ".join(_fmt(whole[m]["metrics"][name]["sample_mean"]) for m in labels) + " |")
    quarters = [(m, section) for m in labels for section in models[m]["quarters"]]
    lines += ["", f"### Quarters (quarter q of the samples against quarter q of the {split} pieces; ratios)", "",
              "| metric | " + " | ".join(f"{m} Q{s['quarter']}" for m, s in quarters) + " |",
              "|---" * (1 + len(quarters)) + "|"]
    for group, name in names:
        lines.append(f"| {label_of[group]}{name} | " + " | ".join(_ratio(s[group][name]) for _, s in quarters) + " |")
    lines.append("| **meets target** | " + " | ".join(met(s["summary"]) for _, s in quarters) + " |")
    lines.append("| smallest ratio | " + " | ".join(_fmt(s["summary"]["min_ratio"], 2) for _, s in quarters) + " |")
    copy_bars = first["copying"]["min_bars"]
    lines += ["", f"### Copying (longest span shared with one of the {first['copying']['n_training_pieces']} "
              f"training pieces; target: no sample copies >= {copy_bars:g} bars)", "",
              f"| set | longest shared span (bars) | longest run (notes) | share copying >= {copy_bars:g} bars | "
              "none copies |", "|---|---|---|---|---|"]
    rows = [(f"{m} samples", models[m]["copying"]["samples"]) for m in labels]
    rows += [(f"{split} pieces ({m}'s split)" if len(labels) > 1 else f"{split} pieces",
              models[m]["copying"]["test_pieces"])
             for m in labels if m == labels[0] or models[m]["data"] != data]
    for name, row in rows:
        lines.append(f"| {name} | {_fmt(row['longest_span_bars'], 2)} | {row['longest_notes_max']} | "
                     f"{_fmt(row['share_copying_min_bars'])} | {_fmt(row['meets_target'])} |")
    lines += [""] + [f"- {m}, the sampler's {models[m]['copy_check']['summary']}" for m in labels
                     if models[m].get("copy_check")]
    continued = [m for m in labels if models[m]["continuation"]]
    if continued:
        section = models[continued[0]]["continuation"]
        lines += ["", f"### Continuations ({section['n_primers']} primers x {section['per_primer']}, "
                  f"{section['bars']} bars each) against their own primer; baseline: {section['baseline_name']}", "",
                  "| measure | baseline | " + " | ".join(continued) + " |",
                  "|---" * (2 + len(continued)) + "|"]
        for key, name in CONTINUATION_ROWS:
            values = [models[m]["continuation"]["summary"].get(key) for m in continued]
            if key in section["baseline"] or any(v is not None for v in values):
                lines.append(f"| {name} | {_fmt(section['baseline'].get(key))} | "
                             + " | ".join(_fmt(v) for v in values) + " |")
        lines += [f"- {m}: primer {f['primer']} skipped: {f['reason']}" for m in continued
                  for f in models[m]["continuation"]["failures"]]
    verdicts = []
    for m in labels:
        summary, copies = whole[m]["summary"], models[m]["copying"]["samples"]
        verdicts.append(f"{m}: {'every' if summary['all_meet_target'] else 'not every'} OA >= {target:.0%} of "
                        f"real-vs-real (smallest ratio {_fmt(summary['min_ratio'], 2)}, {summary['min_ratio_of']}), "
                        f"{'no sample copies' if copies['meets_target'] else 'samples copy'} >= {copy_bars:g} bars")
    lines += ["", "Verdict: " + "; ".join(verdicts) + ".", "",
              f"Command: `{result['command']}` ({result['wall_seconds']:.0f} s)"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from musejax.config import accept_config_overrides

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="--config.GROUP.KEY=VALUE overrides apply to every model trained.")
    parser.add_argument("--run", type=Path, action="append", default=None,
                        help="trained piano-roll LM run directory (repeat: one per model); default: train")
    parser.add_argument("--model", choices=(*MODELS, "both"), default=None,
                        help="outputs to train without --run (default both)")
    parser.add_argument("--config", default="lm", help="config to train without --run (default lm)")
    parser.add_argument("--n", type=int, default=32, help="whole pieces sampled per model (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="sampling and baseline-subset seed")
    parser.add_argument("--temperature", type=float, default=None, help="default: the run's config.sample.temperature")
    parser.add_argument("--top-p", type=float, default=None,
                        help="nucleus over each note's key (a counting NADE; default: the run's config.sample.top_p)")
    parser.add_argument("--count-temperature", type=float, default=None,
                        help="temperature of a counting NADE's note count (default: the run's "
                             "config.sample.count_temperature; runs saved before it: 1)")
    parser.add_argument("--max-copy-bars", type=float, default=None,
                        help="the sampler draws again a sample that copies this many bars of a training piece; 0 = "
                             "off (default: the run's config.sample.max_copy_bars; runs saved before it: off)")
    parser.add_argument("--baseline-draws", type=int, default=BASELINE_DRAWS,
                        help=f"random training subsets averaged for the baseline (default {BASELINE_DRAWS})")
    parser.add_argument("--target", type=float, default=TARGET_RATIO, help="target OA ratio (default 0.80)")
    parser.add_argument("--copy-bars", type=float, default=COPY_BARS, help="a copy spans this many bars (default 2)")
    parser.add_argument("--against", choices=("test", "valid"), default="test",
                        help="held-out split the samples are judged against (default test; tune on valid)")
    parser.add_argument("--primers", default=None, metavar="DIR|test",
                        help="folder of MIDI/MusicXML/ABC primers to continue, or `test`: the first halves of "
                        "the test pieces")
    parser.add_argument("--bars", type=int, default=8, help="bars to continue each primer (default 8)")
    parser.add_argument("--continuations", type=int, default=None,
                        help="continuations per primer (default 4; 1 with --primers test)")
    parser.add_argument("--steps-per-quarter", type=int, default=4, help="evaluation grid (default 4, as evaluate)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/sample-quality-<time>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    accept_config_overrides(parser)
    args = parser.parse_args(argv)
    if args.continuations is None:
        args.continuations = 1 if args.primers == "test" else 4
    if args.n < 2 or args.baseline_draws < 1 or args.bars < 1 or args.continuations < 1 or args.steps_per_quarter < 1:
        parser.error("--n must be >= 2 and --baseline-draws, --bars, --continuations, --steps-per-quarter >= 1")
    if args.run and (args.model or args.config_overrides):
        parser.error("--model and --config.* overrides train new runs; drop them with --run")
    args.progress = not args.no_progress and sys.stderr.isatty()
    return args


def train_runs(args: argparse.Namespace, out: Path) -> list[Path]:
    """Train (or reuse, when finished) one run per requested output into out/<output>."""
    from musejax.lm.config import resolve_config
    from musejax.lm.task import train

    runs = []
    for output in MODELS if args.model in (None, "both") else (args.model,):
        config = resolve_config(args.config, [f"--config.model.output={output}", *args.config_overrides])
        print(f"training {args.config} with output={output} into {out / output} ...", flush=True)
        started = time.perf_counter()
        train(config, out / output, progress=args.progress)
        print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
        runs.append(out / output)
    return runs


def read_primers(primers: str | None, encoding: Any, test_items: Sequence[tuple[str, np.ndarray, tuple[int, int]]],
                 test: Sequence[Any]) -> list[Any] | None:
    """The primer NoteSequences of --primers: a folder's pieces, or (`test`) the first halves of the test pieces."""
    if primers is None:
        return None
    if primers != "test":
        from musejax.evaluate.inputs import read_piece_dir

        try:
            return list(read_piece_dir(primers, role="primer").sequences)
        except ValueError as err:  # no such folder, no readable piece: the message names it
            raise SystemExit(f"--primers: {err}") from None
    if not getattr(encoding, "steps_per_quarter", None):
        raise SystemExit(f"--primers test needs a grid encoding, not {encoding.name} events")
    return first_half_primers(encoding, test_items, test)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train or load the runs, evaluate each, print and write the report; returns the JSON-ready result."""
    from absl import logging as absl_logging

    from musejax.evaluate.report import json_ready
    from musejax.host import setup_host
    from musejax.lm.sample import load_run

    setup_host()  # as the `musejax` command: one CPU device per core (no-op once JAX has started)
    args = parse_args(argv)
    absl_logging.set_verbosity(absl_logging.ERROR)
    started = time.perf_counter()
    out = args.out or Path("runs") / time.strftime("sample-quality-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    runs = args.run or train_runs(args, out)
    models: dict[str, Any] = {}
    for run_dir in runs:
        run = load_run(run_dir)
        if run.loss_kind != "bernoulli":
            raise SystemExit(f"{run_dir}: a {run.encoding.name} event LM; this experiment compares piano-roll LMs")
        output = getattr(run.config.model, "output", "bernoulli")
        label = output if output not in models else f"{output}-{run_dir.name}"
        print(f"evaluating {run_dir} ({label}) ...", flush=True)
        models[label] = evaluate_run(run, args, out, label)
    result = {"experiment": "sample_quality",
              "command": " ".join(["python", "experiments/sample_quality.py",
                                   *(sys.argv[1:] if argv is None else argv)]),
              "n": args.n, "seed": args.seed, "target_ratio": args.target, "steps_per_quarter": args.steps_per_quarter,
              "quarters": QUARTERS, "quarters_against": "the same quarter of the test pieces",
              "models": models, "wall_seconds": round(time.perf_counter() - started, 1)}
    result = json_ready(result)
    markdown = to_markdown(result)
    (out / "sample_quality.md").write_text(markdown)
    (out / "sample_quality.json").write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")
    print(markdown)
    print(f"wrote {out / 'sample_quality.md'} and {out / 'sample_quality.json'} ({result['wall_seconds']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
