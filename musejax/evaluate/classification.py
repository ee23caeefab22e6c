"""Classification metrics for the style classifier: confusion matrix, accuracy, macro-F1, per-class precision
and recall, the majority-class baseline, a Markdown table and a confusion-matrix plot (numpy + Agg only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np


def confusion_matrix(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """counts[i, j] = pieces of class i predicted as j."""
    true, predicted = np.asarray(true, np.int64), np.asarray(predicted, np.int64)
    if true.shape != predicted.shape or (len(true) and (min(true.min(), predicted.min()) < 0 or
                                                        max(true.max(), predicted.max()) >= n_classes)):
        raise ValueError(f"labels must be equal-length ints in [0, {n_classes}); got {true.shape} / {predicted.shape}")
    counts = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(counts, (true, predicted), 1)
    return counts


def scores_from_confusion(counts: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 (mean over classes with support) and per-class precision/recall/F1/support.

    A class never predicted has precision 0 (and F1 0), the scikit-learn convention with zero_division=0.
    """
    counts = np.asarray(counts, np.float64)
    tp = np.diag(counts)
    support, predicted = counts.sum(axis=1), counts.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    total = counts.sum()
    return {
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "n": int(total),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(names)},
        "confusion": counts.astype(np.int64).tolist(),
        "classes": list(names),
    }


def classification_scores(true: np.ndarray, predicted: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """`scores_from_confusion` of the confusion of integer labels."""
    return scores_from_confusion(confusion_matrix(true, predicted, len(names)), names)


def majority_baseline(train_labels: np.ndarray, true: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Scores of always predicting the most frequent training class."""
    majority = int(np.bincount(np.asarray(train_labels), minlength=len(names)).argmax())
    scores = classification_scores(true, np.full(len(true), majority), names)
    scores["predicts"] = names[majority]
    return scores


def merge_classes(probs: np.ndarray, names: Sequence[str], groups: dict[str, str]) -> tuple[np.ndarray, list[str]]:
    """Sum the probabilities of classes mapped to one name (`groups`: old -> new) -> (probs, merged names)."""
    merged = sorted({groups.get(n, n) for n in names})
    out = np.zeros((len(probs), len(merged)))
    for i, name in enumerate(names):
        out[:, merged.index(groups.get(name, name))] += probs[:, i]
    return out, merged


def scores_markdown(scores: dict[str, Any], title: str = "") -> str:
    """Per-class table plus accuracy and macro-F1 lines."""
    lines = [f"### {title}", ""] if title else []
    lines += [f"- accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f} ({scores['n']} pieces)", "",
              "| style | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name, row in scores["per_class"].items():
        lines.append(f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |")
    return "\n".join(lines) + "\n"


def confusion_markdown(counts: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str],
                       corner: str = "true \\ predicted") -> str:
    lines = [f"| {corner} | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, row in zip(rows, counts):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def plot_confusion(counts: np.ndarray, rows: Sequence[str], columns: Sequence[str], path: str | Path,
                   title: str = "", xlabel: str = "predicted", ylabel: str = "true") -> Path:
    """Row-normalised confusion heat map with the counts written in the cells (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(counts, np.float64)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.5 + 0.62 * max(len(rows), len(columns))
    figure = Figure(figsize=(size + 1.2, size), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(columns)), list(columns), rotation=45, ha="right")
    axes.set_yticks(range(len(rows)), list(rows))
    for i in range(len(rows)):
        for j in range(len(columns)):
            axes.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                      color="white" if share[i, j] > 0.6 else "black")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if title:
        axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of row")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path
