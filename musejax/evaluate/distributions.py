"""Set-level comparison of generated and reference music after Yang & Lerch (2018).

Yang & Lerch, "On the evaluation of generative models in music", Neural Computing and Applications 32, 2020
(arXiv 2018): describe every piece by features, take the Euclidean distances between the pieces of one set
(intra-set) and between the two sets (inter-set), smooth each distance distribution with a Gaussian KDE and
compare them by overlap area (OA) and Kullback-Leibler divergence (KLD). If the generated pieces are as close
to the reference pieces as the reference pieces are to each other, intra(reference) and inter overlap (OA
near 1, KLD near 0). Features (Yang & Lerch's names in brackets):
  pitch_class_histogram [PCH]      12 shares of notes per pitch class;
  pitch_class_transition_matrix [PCTM]  144 shares of consecutive-note pitch-class pairs within note lines;
  note_length_histogram [NLH]      12 shares of notes per length class (whole, half, quarter, 8th, 16th, their
                                   dotted forms, half/quarter/8th triplets; nearest class in log duration);
  inter_onset_interval [IOI]       mean time between consecutive distinct onsets, in quarter notes;
  pitch_interval [PI]              mean absolute interval between consecutive notes of a note line, semitones.
KDEs use Scott's bandwidth (std * n^(-1/5), as scipy's gaussian_kde) evaluated by binning onto a 1024-point
grid and convolving with the Gaussian (exact to the grid, linear in the number of distances; scipy's
gaussian_kde is quadratic-time and fails on zero-variance samples such as identical pieces).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial.distance import cdist, pdist

from musejax.evaluate.pieces import GridPiece

NOTE_LENGTH_CLASSES_QUARTERS = np.array([4, 2, 1, 1 / 2, 1 / 4, 3, 3 / 2, 3 / 4, 3 / 8, 4 / 3, 2 / 3, 1 / 3])
FEATURES: dict[str, str] = {
    "pitch_class_histogram": "shares of notes per pitch class (12)",
    "pitch_class_transition_matrix": "shares of pitch-class pairs of consecutive notes in a line (144)",
    "note_length_histogram": "shares of notes per note-length class (12)",
    "inter_onset_interval": "mean time between consecutive onsets (quarter notes)",
    "pitch_interval": "mean absolute interval between consecutive notes in a line (semitones)",
}
GRID_POINTS = 1024


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(counts.shape)


def piece_features(piece: GridPiece) -> dict[str, np.ndarray]:
    """The Yang & Lerch features of one piece (see the module docstring), each a 1-D float array."""
    lines = piece.lines
    first, _, interval = lines.transitions()
    transitions = np.zeros(144)
    np.add.at(transitions, (lines.pitch[first] % 12) * 12 + lines.pitch[first + 1] % 12, 1)
    quarters = (piece.end - piece.start) / piece.steps_per_quarter
    nearest = np.argmin(np.abs(np.log2(quarters[:, None]) - np.log2(NOTE_LENGTH_CLASSES_QUARTERS)[None]), axis=1)
    onsets = np.unique(piece.start)
    ioi = np.diff(onsets).mean() / piece.steps_per_quarter if len(onsets) > 1 else 0.0
    return {
        "pitch_class_histogram": _shares(np.bincount(piece.pitch % 12, minlength=12).astype(float)),
        "pitch_class_transition_matrix": _shares(transitions),
        "note_length_histogram": _shares(np.bincount(nearest, minlength=12).astype(float)),
        "inter_onset_interval": np.array([ioi]),
        "pitch_interval": np.array([np.abs(interval).mean() if len(interval) else 0.0]),
    }


def feature_matrices(pieces: list[GridPiece]) -> dict[str, np.ndarray]:
    """feature name -> (n_pieces, dim) matrix over `pieces`."""
    rows = [piece_features(piece) for piece in pieces]
    return {name: np.stack([row[name] for row in rows]) if rows else np.zeros((0, 1)) for name in FEATURES}


def intra_set_distances(features: np.ndarray) -> np.ndarray:
    """Euclidean distances between all pairs i < j of one set's feature rows."""
    return pdist(np.asarray(features, float)) if len(features) > 1 else np.zeros(0)


def inter_set_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between every row of `a` and every row of `b`."""
    return cdist(np.asarray(a, float), np.asarray(b, float)).ravel()


def scott_bandwidth(samples: np.ndarray) -> float:
    """Scott's rule: sample standard deviation * n^(-1/5) (0 for fewer than two samples)."""
    return float(np.std(samples, ddof=1) * len(samples) ** (-0.2)) if len(samples) > 1 else 0.0


def kde_on_grid(samples: np.ndarray, grid: np.ndarray, bandwidth: float | None = None) -> np.ndarray:
    """Gaussian KDE of `samples` as probability masses on the evenly spaced `grid` (summing to 1).

    Samples are binned linearly onto the grid and convolved with the kernel; the bandwidth (default Scott's)
    is floored at half a grid spacing, so a point mass becomes a narrow bump instead of failing.
    """
    samples = np.asarray(samples, float)
    spacing = grid[1] - grid[0]
    h = max(scott_bandwidth(samples) if bandwidth is None else bandwidth, spacing / 2)
    position = np.clip((samples - grid[0]) / spacing, 0, len(grid) - 1)
    low = np.minimum(np.floor(position).astype(np.int64), len(grid) - 2)
    upper_weight = position - low
    mass = (np.bincount(low, 1 - upper_weight, minlength=len(grid))
            + np.bincount(low + 1, upper_weight, minlength=len(grid)))
    half_width = min(int(math.ceil(4 * h / spacing)), (len(grid) - 1) // 2)
    offsets = np.arange(-half_width, half_width + 1) * spacing
    kernel = np.exp(-0.5 * (offsets / h) ** 2)
    density = np.convolve(mass, kernel, mode="same")
    return density / density.sum()


def common_grid(a: np.ndarray, b: np.ndarray, points: int = GRID_POINTS) -> np.ndarray:
    """An evenly spaced grid covering both samples plus four bandwidths on either side."""
    both = np.concatenate([a, b])
    margin = 4 * max(scott_bandwidth(a), scott_bandwidth(b), 1e-9)
    low, high = both.min() - margin, both.max() + margin
    if high - low < 1e-6:
        low, high = low - 0.5, high + 0.5
    return np.linspace(low, high, points)


def overlap_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area under min(KDE_a, KDE_b): 1 for identical distributions, 0 for disjoint ones."""
    if not len(a) or not len(b):
        return math.nan
    grid = common_grid(a, b)
    return float(np.minimum(kde_on_grid(a, grid), kde_on_grid(b, grid)).sum())


def kl_divergence(a: np.ndarray, b: np.ndarray) -> float:
    """KL(KDE_a || KDE_b) in nats on the common grid, with KDE_b floored at 1e-12 (0 for identical samples)."""
    if not len(a) or not len(b):
        return math.nan
    grid = common_grid(a, b)
    p, q = kde_on_grid(a, grid), np.maximum(kde_on_grid(b, grid), 1e-12)
    mask = p > 0
    return float(max(0.0, np.sum(p[mask] * np.log(p[mask] / q[mask]))))


def _summary(values: np.ndarray) -> dict[str, float | int | None]:
    if not len(values):
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(values.mean()), "std": float(values.std()), "n": int(len(values))}


def feature_distances(generated: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """The three distance samples of one feature: intra_generated, intra_reference and inter."""
    return {"intra_generated": intra_set_distances(generated), "intra_reference": intra_set_distances(reference),
            "inter": inter_set_distances(generated, reference)}


def compare_distances(distances: dict[str, np.ndarray]) -> dict[str, object]:
    """Summaries of the three distance samples and how they compare.

    `overlap_area` / `kl_divergence` compare intra(reference) with inter (Yang & Lerch's main measure);
    `*_generated_intra` compare intra(generated) with inter (how the generated set sits inside itself).
    """
    intra_generated, intra_reference, inter = (distances[k] for k in ("intra_generated", "intra_reference", "inter"))
    return {
        "intra_generated": _summary(intra_generated),
        "intra_reference": _summary(intra_reference),
        "inter": _summary(inter),
        "overlap_area": overlap_area(intra_reference, inter),
        "kl_divergence": kl_divergence(intra_reference, inter),
        "overlap_area_generated_intra": overlap_area(intra_generated, inter),
        "kl_divergence_generated_intra": kl_divergence(intra_generated, inter),
    }


def compare_feature(generated: np.ndarray, reference: np.ndarray) -> dict[str, object]:
    """`compare_distances` of one feature's (n, dim) matrices for the generated and the reference set."""
    return compare_distances(feature_distances(generated, reference))


def compare_sets(generated: list[GridPiece], reference: list[GridPiece]) -> dict[str, dict[str, object]]:
    """`compare_feature` for every feature of `FEATURES` (each set needs at least two pieces)."""
    if len(generated) < 2 or len(reference) < 2:
        raise ValueError(f"set comparison needs at least two pieces per set, got {len(generated)} generated and "
                         f"{len(reference)} reference")
    gen, ref = feature_matrices(generated), feature_matrices(reference)
    return {name: compare_feature(gen[name], ref[name]) for name in FEATURES}


def compare_values(generated: np.ndarray, reference: np.ndarray) -> dict[str, object]:
    """Distribution of one scalar metric, generated vs reference: summaries, OA and KL(generated || reference)."""
    generated = np.asarray(generated, float)
    reference = np.asarray(reference, float)
    generated, reference = generated[~np.isnan(generated)], reference[~np.isnan(reference)]
    return {"generated": _summary(generated), "reference": _summary(reference),
            "overlap_area": overlap_area(generated, reference), "kl_divergence": kl_divergence(generated, reference)}
