"""Run every evaluation on a generated and a reference piece set; write report.json, report.md, plots, report.html.

`evaluate_sets` returns one JSON-able dict: per-piece metrics (generated vs reference distributions), the
Yang & Lerch set comparison, the MuseGAN table on multitrack segments, originality against the whole
reference, and optionally the NLL of both sets under a trained LM. Reference pieces beyond
`max_compare_pieces` are subsampled (seeded) for the distribution parts; originality always indexes all.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from musejax.data.quantize import EncodingError, piece_name
from musejax.evaluate import distributions, metrics, musegan, originality
from musejax.evaluate.inputs import PieceSet
from musejax.evaluate.pieces import DEFAULT_STEPS_PER_QUARTER, GridPiece, grid_piece
from musejax.data.encodings import MultitrackEncoding
from musejax.evaluate.likelihood import sequences_nll
from musejax.lm.restore import restore_run
from musejax.evaluate.html import write_html


@dataclasses.dataclass(frozen=True)
class EvaluateOptions:
    """Settings of one evaluation (all have defaults the command uses)."""

    steps_per_quarter: int = DEFAULT_STEPS_PER_QUARTER
    max_compare_pieces: int = 2000
    seed: int = 0
    originality: bool = True
    min_copy_bars: float = 2.0
    musegan: bool = True
    lm_run: str | None = None
    lm_style: str | None = None
    lm_checkpoint: str = "best"
    style_run: str | None = None  # style classifier run: Fréchet distance of the embedding sets (frechet.py)


def to_grid(pieces: PieceSet, steps_per_quarter: int) -> tuple[list[GridPiece], list[dict[str, Any]]]:
    """Quantise a set; pieces that cannot be (no non-drum notes, bad times) become failure records."""
    grids, failures = [], []
    for ns in pieces.sequences:
        try:
            grids.append(grid_piece(ns, steps_per_quarter))
        except EncodingError as err:
            failures.append({"path": ns.filename or piece_name(ns), "tune": None, "reason": "no-notes",
                             "detail": str(err)})
    return grids, failures


def _subsample(items: list, limit: int, seed: int) -> list:
    if len(items) <= limit:
        return items
    keep = np.sort(np.random.default_rng(seed).choice(len(items), limit, replace=False))
    return [items[i] for i in keep]


def pitch_class_histogram(pieces: list[GridPiece]) -> list[float]:
    """Share of all notes of a set per pitch class (C..B)."""
    counts = sum((np.bincount(p.pitch % 12, minlength=12) for p in pieces), np.zeros(12))
    return (counts / max(counts.sum(), 1)).tolist()


def _musegan_section(generated: PieceSet, reference: PieceSet, seed: int, limit: int) -> dict[str, Any]:

    encoding = MultitrackEncoding()
    out: dict[str, Any] = {"encoding": encoding.options()}
    for pieces in (generated, reference):
        segments = []
        for ns in _subsample(pieces.sequences, limit, seed):
            try:
                segments.append(encoding.encode(ns))
            except EncodingError:
                continue  # not 4/4 or no four whole bars: this piece has no MuseGAN segment
        if not segments:
            out[pieces.role] = {"skipped": "no piece has 4 consecutive 4/4 bars in the multitrack range"}
            continue
        out[pieces.role] = musegan.musegan_metrics(np.concatenate(segments), min_pitch=encoding.min_pitch,
                                                   steps_per_quarter=encoding.steps_per_quarter)
    return out


def _likelihood_section(generated: PieceSet, reference: PieceSet, options: EvaluateOptions) -> dict[str, Any]:

    run = restore_run(options.lm_run, options.lm_checkpoint)
    out: dict[str, Any] = {}
    for pieces in (generated, reference):
        sequences = _subsample(pieces.sequences, options.max_compare_pieces, options.seed)
        out[pieces.role] = sequences_nll(run, sequences, style=options.lm_style).to_dict()
    return out


@dataclasses.dataclass
class Evaluation:
    """`report`: the JSON-able results; `metric_values[role][metric]` and `distances[feature][kind]`: the
    samples behind the distribution comparisons (for plots)."""

    report: dict[str, Any]
    metric_values: dict[str, dict[str, np.ndarray]]
    distances: dict[str, dict[str, np.ndarray]]


def evaluate_sets(generated: PieceSet, reference: PieceSet, options: EvaluateOptions = EvaluateOptions(),
                  ) -> Evaluation:
    """Every evaluation of `generated` against `reference` (see the module docstring)."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    gen_grid, gen_failed = to_grid(generated, options.steps_per_quarter)
    ref_all, ref_failed = to_grid(reference, options.steps_per_quarter)
    if len(gen_grid) < 2 or len(ref_all) < 2:
        raise ValueError(f"need at least two pieces with notes per set; got {len(gen_grid)} generated "
                         f"({generated.source}) and {len(ref_all)} reference ({reference.source})")
    gen_compare = _subsample(gen_grid, options.max_compare_pieces, options.seed)
    ref_compare = _subsample(ref_all, options.max_compare_pieces, options.seed)
    lap("quantize")
    gen_table, ref_table = metrics.metrics_table(gen_grid), metrics.metrics_table(ref_compare)
    metric_section = {name: dict(description=metrics.METRICS[name],
                                 **distributions.compare_values(gen_table[name], ref_table[name]))
                      for name in metrics.METRICS}
    lap("metrics")
    report: dict[str, Any] = {
        "generated": dict(generated.describe(), n_evaluated=len(gen_grid), failures=generated.failures + gen_failed),
        "reference": dict(reference.describe(), n_evaluated=len(ref_all), n_compared=len(ref_compare),
                          failures=reference.failures + ref_failed),
        "options": dataclasses.asdict(options),
        "metrics": metric_section,
        "pitch_class_histogram": {"generated": pitch_class_histogram(gen_grid),
                                  "reference": pitch_class_histogram(ref_compare)},
    }
    gen_features = distributions.feature_matrices(gen_compare)
    ref_features = distributions.feature_matrices(ref_compare)
    distances = {name: distributions.feature_distances(gen_features[name], ref_features[name])
                 for name in distributions.FEATURES}
    report["distributions"] = {name: dict(description=distributions.FEATURES[name],
                                          **distributions.compare_distances(distances[name]))
                               for name in distributions.FEATURES}
    lap("distributions")
    report["musegan"] = (_musegan_section(generated, reference, options.seed, options.max_compare_pieces)
                         if options.musegan else None)
    lap("musegan")
    per_piece = [dict(id=p.id, **{name: gen_table[name][i] for name in metrics.METRICS}) for i, p in enumerate(gen_grid)]
    report["originality"] = None
    if options.originality:
        index = originality.OriginalityIndex.build(ref_all)
        copies = originality.find_copies(index, gen_grid, options.min_copy_bars)
        report["originality"] = dict(originality.originality_summary(copies, options.min_copy_bars),
                                     n_reference_pieces=len(ref_all), n_reference_symbols=index.n_symbols)
        for row, copy in zip(per_piece, copies):
            row.update(longest_copied_notes=copy.longest_notes, longest_copied_quarters=copy.longest_quarters,
                       copied_from=copy.source_id, copied_from_quarter=copy.source_quarter,
                       max_copied_bars=copy.max_span_bars, copies_min_bars=copy.copies_min_bars)
        lap("originality")
    report["likelihood"] = _likelihood_section(generated, reference, options) if options.lm_run else None
    if options.lm_run:
        lap("likelihood")
    if options.style_run:
        from musejax.evaluate.frechet import frechet_section  # lazy: the classifier loads JAX; only with a style run

        report["frechet"] = frechet_section(generated, reference, options.style_run,
                                            max_pieces=options.max_compare_pieces, seed=options.seed)
        lap("frechet")
    report["per_piece"] = per_piece
    report["timings_seconds"] = timings
    return Evaluation(report, {"generated": gen_table, "reference": ref_table}, distances)


def json_ready(value: Any) -> Any:
    """Numpy scalars/arrays -> Python, NaN/inf -> None (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _mean_std(summary: dict[str, Any]) -> str:
    return "–" if summary["mean"] is None else f"{summary['mean']:.3f} ± {summary['std']:.3f}"


def markdown_report(report: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    gen, ref = report["generated"], report["reference"]
    lines = [f"# Evaluation of `{gen['source']}` against `{ref['source']}`", "",
             f"- generated: {gen['n_evaluated']} pieces from {gen['n_files']} files ({len(gen['failures'])} unreadable)",
             f"- reference: {ref['n_evaluated']} pieces from {ref['n_files']} files ({len(ref['failures'])} unreadable);"
             f" {ref['n_compared']} compared", "",
             "## Per-piece metrics", "", "| metric | generated | reference | overlap area | KL(gen‖ref) |",
             "|---|---|---|---|---|"]
    for name, row in report["metrics"].items():
        lines.append(f"| {name} | {_mean_std(row['generated'])} | {_mean_std(row['reference'])} | "
                     f"{_number(row['overlap_area'])} | {_number(row['kl_divergence'])} |")
    lines += ["", "## Set comparison (Yang & Lerch 2018)", "",
              "Distances between pieces' features; OA / KLD compare intra(reference) with inter-set distances.", "",
              "| feature | intra generated | intra reference | inter | OA | KLD |", "|---|---|---|---|---|---|"]
    for name, row in report["distributions"].items():
        lines.append(f"| {name} | {_mean_std(row['intra_generated'])} | {_mean_std(row['intra_reference'])} | "
                     f"{_mean_std(row['inter'])} | {_number(row['overlap_area'])} | {_number(row['kl_divergence'])} |")
    lines += _musegan_markdown(report.get("musegan"))
    lines += _originality_markdown(report.get("originality"), report["per_piece"])
    if report.get("frechet"):
        from musejax.evaluate.frechet import frechet_markdown  # lazy: as frechet_section

        lines += frechet_markdown(report["frechet"])
    if report.get("likelihood"):
        lines += ["", "## Likelihood", "", "| set | NLL per step (nats) | pieces | steps |", "|---|---|---|---|"]
        for role, row in report["likelihood"].items():
            lines.append(f"| {role} | {_number(row['nll_per_step'], 4)} | {row['n_pieces']} | {row['n_steps']} |")
    failures = [dict(f, role=role) for role in ("generated", "reference") for f in report[role]["failures"]]
    if failures:
        lines += ["", "## Unreadable pieces (skipped)", "", "| set | file | reason | detail |", "|---|---|---|---|"]
        for f in failures:
            detail = str(f["detail"]).replace("|", "/").replace("\n", " ")[:160]
            lines.append(f"| {f['role']} | {f['path']} | {f['reason']} | {detail} |")
    return "\n".join(lines) + "\n"


def _musegan_markdown(section: dict[str, Any] | None) -> list[str]:
    if not section:
        return []
    lines = ["", "## MuseGAN metrics (4-bar multitrack segments)", ""]
    usable = {role: section[role] for role in ("generated", "reference")
              if "skipped" not in section.get(role, {"skipped": "not computed"})}
    for role in ("generated", "reference"):
        if role not in usable:
            lines.append(f"- {role}: skipped ({section.get(role, {}).get('skipped', 'not computed')})")
    if not usable:
        return lines
    any_set = next(iter(usable.values()))
    columns = [f"{m} {role[:3]}" for m in ("EB", "UPC", "QN", "polyphony") for role in usable]
    lines += ["| track | " + " | ".join(columns) + " |",
              "|---|" + "---|" * (4 * len(usable))]
    for t, track in enumerate(any_set["tracks"]):
        cells = [_number(usable[role][m][t]) for m in ("EB", "UPC", "QN", "polyphony") for role in usable]
        lines.append(f"| {track} | " + " | ".join(cells) + " |")
    lines += ["", "| tracks | " + " | ".join(f"TD {role[:3]}" for role in usable) + " |", "|---|" + "---|" * len(usable)]
    for pair in any_set["TD"]:
        lines.append(f"| {pair} | " + " | ".join(_number(usable[role]["TD"].get(pair)) for role in usable) + " |")
    return lines


def _originality_markdown(section: dict[str, Any] | None, per_piece: list[dict[str, Any]]) -> list[str]:
    if not section:
        return []
    lines = ["", "## Originality", "",
             f"- pieces copying >= {section['min_bars']:g} bars of a reference line verbatim (transposition-invariant):"
             f" {section['share_copying_min_bars']:.1%}",
             f"- longest shared run of notes: median {section['longest_notes_median']:g},"
             f" max {section['longest_notes_max']}", "",
             "| piece | longest shared run (notes) | span (quarters) | found in | at quarter |", "|---|---|---|---|---|"]
    for row in sorted(per_piece, key=lambda r: -r["longest_copied_notes"])[:10]:
        lines.append(f"| {row['id']} | {row['longest_copied_notes']} | {_number(row['longest_copied_quarters'], 2)} | "
                     f"{row['copied_from'] or '–'} | {_number(row['copied_from_quarter'], 2)} |")
    return lines


def write_report(evaluation: Evaluation, out_dir: str | Path, *, plots: bool = True,
                 pieces: Sequence[Any] = ()) -> dict[str, Path]:
    """Write report.json, report.md, (with `plots`) the PNG figures and report.html into `out_dir`; returns the
    paths. `pieces` (`html.PieceMedia`) are the generated pieces the page shows with piano-roll and player."""

    report = evaluation.report
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "report.json", "markdown": out_dir / "report.md"}
    paths["json"].write_text(json.dumps(json_ready(report), indent=1, allow_nan=False) + "\n")
    markdown = markdown_report(json_ready(report))
    paths["markdown"].write_text(markdown)
    figures = {}
    if plots:
        from musejax.evaluate.plots import write_plots  # lazy: matplotlib, only when plotting

        figures = write_plots(evaluation, out_dir)
        paths.update(figures)
    paths["html"] = write_html(markdown, out_dir, figures, pieces)
    return paths
