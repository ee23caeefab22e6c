"""Evaluation figures (bare Agg canvases, no pyplot): pitch-class histograms, per-piece metric distributions
and the Yang & Lerch distance distributions, generated against reference."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from musejax.evaluate.distributions import common_grid, kde_on_grid

PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
COLOURS = {"generated": "#e07b1a", "reference": "#1f5fa8", "inter": "#4a9a3a"}


def _figure(n_panels: int, columns: int, panel_size: tuple[float, float] = (3.4, 2.4)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = max(1, math.ceil(n_panels / columns))
    figure = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for extra in axes[n_panels:]:
        extra.set_visible(False)
    return figure, axes


def _save(figure, path: Path) -> Path:
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.93, wspace=0.3, hspace=0.55)
    figure.savefig(path)
    return path


def plot_pitch_class_histograms(histograms: dict[str, list[float]], path: Path) -> Path:
    """Grouped bars: share of notes per pitch class, generated vs reference."""
    figure, (axes,) = _figure(1, 1, (7.0, 3.2))
    x = np.arange(12)
    for offset, role in ((-0.2, "generated"), (0.2, "reference")):
        axes.bar(x + offset, histograms[role], width=0.4, color=COLOURS[role], label=role)
    axes.set_xticks(x, PITCH_CLASS_NAMES)
    axes.set_ylabel("share of notes")
    axes.set_title("pitch-class histogram")
    axes.legend(fontsize=8)
    return _save(figure, path)


def _density_panel(axes, samples: dict[str, np.ndarray], title: str) -> None:
    usable = {k: np.asarray(v, float)[~np.isnan(np.asarray(v, float))] for k, v in samples.items()}
    usable = {k: v for k, v in usable.items() if len(v)}
    if not usable:
        axes.set_title(f"{title} (no values)", fontsize=8)
        return
    values = list(usable.values())
    grid = common_grid(values[0], np.concatenate(values))
    for role, v in usable.items():
        density = kde_on_grid(v, grid) / (grid[1] - grid[0])
        colour = COLOURS.get(role.split()[-1], "black")  # "intra generated" -> the generated colour
        axes.plot(grid, density, color=colour, label=role, linewidth=1.2)
        axes.fill_between(grid, density, color=colour, alpha=0.15, linewidth=0)
    axes.set_title(title, fontsize=8)
    axes.tick_params(labelsize=7)


def plot_metric_distributions(metric_values: dict[str, dict[str, np.ndarray]], path: Path) -> Path:
    """One KDE panel per per-piece metric: generated vs reference."""
    names = list(metric_values["generated"])
    figure, axes = _figure(len(names), 4)
    for panel, name in zip(axes, names):
        _density_panel(panel, {role: metric_values[role][name] for role in ("generated", "reference")}, name)
    axes[0].legend(fontsize=7)
    return _save(figure, path)


def plot_feature_distances(distances: dict[str, dict[str, np.ndarray]], path: Path, max_points: int = 200_000) -> Path:
    """One panel per Yang & Lerch feature: KDEs of intra-generated, intra-reference and inter-set distances."""
    rng = np.random.default_rng(0)
    figure, axes = _figure(len(distances), 3)
    for panel, (name, kinds) in zip(axes, distances.items()):
        samples = {}
        for kind, role in (("intra_generated", "intra generated"), ("intra_reference", "intra reference"),
                           ("inter", "inter")):
            values = kinds[kind]
            samples[role] = values if len(values) <= max_points else rng.choice(values, max_points, replace=False)
        _density_panel(panel, samples, f"{name} distances")
    axes[0].legend(fontsize=7)
    return _save(figure, path)


def write_plots(evaluation: Any, out_dir: Path) -> dict[str, Path]:
    """All figures of an `Evaluation` into `out_dir`."""
    return {
        "pitch_class_histograms": plot_pitch_class_histograms(evaluation.report["pitch_class_histogram"],
                                                              out_dir / "pitch_class_histograms.png"),
        "metric_distributions": plot_metric_distributions(evaluation.metric_values, out_dir / "metric_distributions.png"),
        "feature_distances": plot_feature_distances(evaluation.distances, out_dir / "feature_distances.png"),
    }
