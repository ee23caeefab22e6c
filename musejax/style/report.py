"""After classifier training: fit the per-style Gaussians of the out-of-style rule on the training embeddings
(with config.classify.shifted_copies, one per style and texture: the pieces as they are and their copies under
each texture shift),
calibrate its threshold on valid, score the test split, and write calibration.json / .npz, report.json,
report.md and confusion.png into the run directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from musejax.style.config import texture_shift_names
from musejax.style.data import shifted_split
from musejax.style.embeddings import (CALIBRATION_FILE, GAUSSIANS_FILE, calibrate_threshold, fit_style_gaussians,
                                      split_outputs, style_distance)
from musejax.evaluate.classification import (classification_scores, confusion_markdown, majority_baseline,
                                             plot_confusion, scores_markdown)

SHIFTED_PER_STYLE = 300  # pieces per style whose texture-shifted copies (one per shift) join the calibration


def final_report(model: Any, params: Any, data: Any, config: Any, run_dir: str | Path, best_step: int,
                 ) -> dict[str, Any]:
    """Scores of the best checkpoint: calibration on valid; accuracy, macro-F1, per-class P/R and the confusion
    on test, against the majority-class baseline. Returns the JSON report (also written to the run)."""
    run_dir = Path(run_dir)
    window, batch = config.data.window_steps, config.train.eval_batch_size
    train_embeddings, _ = split_outputs(model, params, data.train, window, batch)
    valid_embeddings, valid_probs = split_outputs(model, params, data.valid, window, batch)
    fit_embeddings, fit_labels = train_embeddings, data.train.labels
    valid_labels = data.valid.labels
    calibration_embeddings = valid_embeddings
    shifts = texture_shift_names(config.data.texture_shifts)
    if config.classify.shifted_copies and shifts:  # the Gaussians see each style in other textures too
        spq = config.data.steps_per_quarter
        # with the plain accompaniments whatever the training drew: varied ones widen the Gaussians, and the
        # out-of-style rule flags fewer outside pieces for no gain (docs/tuning/style.md)
        shifted_train = shifted_split(data.train, shifts, spq, config.train.seed, SHIFTED_PER_STYLE)
        shifted_valid = shifted_split(data.valid, shifts, spq, config.train.seed + 1, SHIFTED_PER_STYLE)
        fit_embeddings = np.concatenate([train_embeddings, split_outputs(model, params, shifted_train, window,
                                                                         batch)[0]])
        # one Gaussian per style and texture (as is, or under each shift): the nearest one sets the distance
        fit_labels = np.concatenate([data.train.labels, shifted_train.labels + len(data.styles) * np.array(
            [1 + shifts.index(i.rsplit("#", 1)[1]) for i in shifted_train.ids], np.int64)])
        calibration_embeddings = np.concatenate([valid_embeddings, split_outputs(model, params, shifted_valid,
                                                                                 window, batch)[0]])
        valid_labels = np.concatenate([data.valid.labels, shifted_valid.labels])
    means, precision, scales = fit_style_gaussians(fit_embeddings, fit_labels, int(fit_labels.max()) + 1)
    if not config.classify.scaled_distance:
        scales = np.ones_like(scales)  # saved as such: the classifier divides by 1
    valid_distances = style_distance(calibration_embeddings, means, precision, scales)
    threshold = calibrate_threshold(valid_distances, config.classify.coverage, valid_labels)
    calibration = {"rule": "mahalanobis", "threshold": threshold, "coverage": config.classify.coverage,
                   "n_valid": len(data.valid), "n_calibration": len(valid_distances),
                   "shifted_copies": int(config.classify.shifted_copies and bool(shifts)),
                   "scaled_distance": int(config.classify.scaled_distance),
                   "valid_accepted": float((valid_distances[:len(data.valid)] <= threshold).mean()),
                   "step": int(best_step)}
    test_embeddings, probs = split_outputs(model, params, data.test, window, batch)
    predicted = probs.argmax(-1)
    test = classification_scores(data.test.labels, predicted, data.styles)
    accepted = style_distance(test_embeddings, means, precision, scales) <= threshold
    test["accepted_share"] = float(accepted.mean())
    test["accuracy_accepted"] = float((predicted[accepted] == data.test.labels[accepted]).mean()) if accepted.any() else None
    valid = classification_scores(data.valid.labels, valid_probs.argmax(-1), data.styles)
    report = {
        "run_dir": str(run_dir), "best_step": int(best_step), "data": data.description, "styles": data.styles,
        "train_pieces_per_style": dict(zip(data.styles, data.train.counts(len(data.styles)).tolist())),
        "calibration": calibration,
        "valid": {"accuracy": valid["accuracy"], "macro_f1": valid["macro_f1"]},
        "test": test,
        "majority_baseline": majority_baseline(data.train.labels, data.test.labels, data.styles),
        "test_predictions": [{"id": i, "true": data.styles[t], "predicted": data.styles[p], "max_prob": float(m)}
                             for i, t, p, m in zip(data.test.ids, data.test.labels, predicted, probs.max(-1))],
    }
    if jax.process_index() != 0:  # a multi-host job: every process computes the report, the first one writes it
        return report
    np.savez(run_dir / GAUSSIANS_FILE, means=means, precision=precision, scales=scales)
    (run_dir / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=1) + "\n")
    (run_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (run_dir / "report.md").write_text(report_markdown(report))
    plot_confusion(np.asarray(test["confusion"]), data.styles, data.styles, run_dir / "confusion.png",
                   title=f"test pieces (accuracy {test['accuracy']:.3f}, macro-F1 {test['macro_f1']:.3f})")
    return report


def report_markdown(report: dict[str, Any]) -> str:
    test, base, cal = report["test"], report["majority_baseline"], report["calibration"]
    scaled = " over the median of its training pieces" if cal.get("scaled_distance", 1) else ""
    lines = [f"# Style classifier: {report['run_dir']} (step {report['best_step']})", "", f"Data: {report['data']}", "",
             "| | accuracy | macro-F1 |", "|---|---|---|",
             f"| test | {test['accuracy']:.3f} | {test['macro_f1']:.3f} |",
             f"| majority class ({base['predicts']}) | {base['accuracy']:.3f} | {base['macro_f1']:.3f} |",
             f"| valid | {report['valid']['accuracy']:.3f} | {report['valid']['macro_f1']:.3f} |", "",
             scores_markdown(test, "Test split per style"),
             "### Confusion (test pieces)", "", confusion_markdown(test["confusion"], report["styles"], report["styles"]),
             "### Low-confidence rule", "",
             f"A piece is reported as unknown style when its distance to the nearest style (squared Mahalanobis "
             f"distance to the style's mean{scaled}; Gaussians with a shared covariance "
             f"fitted to the training embeddings) exceeds {cal['threshold']:.2f}: the style-balanced "
             f"{cal['coverage']:.0%} quantile of the {cal['n_valid']} valid pieces' distances. "
             f"Test pieces accepted: {test['accepted_share']:.1%}"
             + (f" (accuracy on them {test['accuracy_accepted']:.3f})." if test["accuracy_accepted"] is not None else ".")]
    return "\n".join(lines) + "\n"
