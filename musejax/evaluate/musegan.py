"""The MuseGAN metric set on multitrack arrays (..., n_tracks, n_bars, steps_per_bar, n_pitches) of bools.

Dong, Hsiao, Yang & Yang, "MuseGAN: Multi-track sequential generative adversarial networks for symbolic music
generation and accompaniment", AAAI 2018, section "Objective metrics": EB (ratio of empty bars), UPC (number
of used pitch classes per bar, 0-12), QN (ratio of "qualified" notes: a note no shorter than three time steps
of their 24-steps-per-beat grid, i.e. a 32nd note) and TD (tonal distance between a pair of tracks, Harte,
Sandler & Gasser 2006). Arrays are the MultitrackEncoding's segments (track x bar x step x pitch, pitch index
i = MIDI pitch min_pitch + i); any leading batch axes are kept, every function is vectorised over them.

Where the paper leaves the protocol open we follow its evaluation code (salu133445/musegan): metrics per
track, UPC averaged over the track's non-empty bars, TD computed per beat and averaged over beats. We fold
pitches to pitch classes by MIDI pitch (their code's chroma reshape mixes neighbouring pitches), skip beats
where either track is silent (their code turns the whole bar into NaN), and count a note as a run of active
steps of one pitch across bar lines (as the encoding decodes it). Polyphony and pitch-class entropy per
track follow muspy's definitions (see metrics.py) so they agree with the per-piece values.
"""

from __future__ import annotations

import math

import numpy as np

# Harte et al. (2006) tonal centroid radii: circle of fifths, minor thirds, major thirds.
TONAL_RADII = (1.0, 1.0, 0.5)
MUSEGAN_STEPS_PER_BEAT = 24
MUSEGAN_QUALIFIED_STEPS = 3  # at 24 steps per beat: a 32nd note


def _check(segments: np.ndarray) -> np.ndarray:
    segments = np.asarray(segments)
    if segments.ndim < 4:
        raise ValueError(f"expected (..., n_tracks, n_bars, steps_per_bar, n_pitches) arrays, got {segments.shape}")
    return segments.astype(bool, copy=False)


def pitch_class_matrix(n_pitches: int, min_pitch: int) -> np.ndarray:
    """(n_pitches, 12) 0/1 matrix mapping pitch index i (MIDI min_pitch + i) to its pitch class."""
    classes = (min_pitch + np.arange(n_pitches)) % 12
    return (classes[:, None] == np.arange(12)[None, :]).astype(np.float64)


def tonal_matrix(radii: tuple[float, float, float] = TONAL_RADII) -> np.ndarray:
    """(6, 12) Harte et al. (2006) projection: pitch class l -> (r1 sin(7 pi l / 6), r1 cos(7 pi l / 6),
    r2 sin(3 pi l / 2), r2 cos(3 pi l / 2), r3 sin(2 pi l / 3), r3 cos(2 pi l / 3))."""
    l = np.arange(12)
    r1, r2, r3 = radii
    return np.stack([r1 * np.sin(l * 7 * np.pi / 6), r1 * np.cos(l * 7 * np.pi / 6),
                     r2 * np.sin(l * 3 * np.pi / 2), r2 * np.cos(l * 3 * np.pi / 2),
                     r3 * np.sin(l * 2 * np.pi / 3), r3 * np.cos(l * 2 * np.pi / 3)])


def _track_time_major(segments: np.ndarray) -> np.ndarray:
    """(..., n_tracks, n_bars * steps_per_bar, n_pitches): bars concatenated in time."""
    *lead, bars, steps, pitches = segments.shape
    return segments.reshape(*lead, bars * steps, pitches)


def _onsets(roll: np.ndarray) -> np.ndarray:
    """Note starts of (..., time, pitch) rolls: an active step whose previous step (same pitch) is silent."""
    previous = np.zeros_like(roll)
    previous[..., 1:, :] = roll[..., :-1, :]
    return roll & ~previous


def empty_bar_rate(segments: np.ndarray) -> np.ndarray:
    """EB, (..., n_tracks): the share of the segment's bars in which the track plays nothing."""
    segments = _check(segments)
    return (~segments.any(axis=(-2, -1))).mean(axis=-1)


def used_pitch_classes_per_bar(segments: np.ndarray, min_pitch: int = 24) -> np.ndarray:
    """UPC, (..., n_tracks): number of distinct pitch classes (0-12) a track uses in a bar, averaged over the
    track's non-empty bars; NaN for a track silent in every bar."""
    segments = _check(segments)
    active = segments.any(axis=-2).astype(np.float64)  # (..., tracks, bars, pitches)
    classes = (active @ pitch_class_matrix(segments.shape[-1], min_pitch)) > 0
    used = classes.sum(axis=-1).astype(float)
    nonempty = segments.any(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(nonempty, used, 0).sum(-1) / np.where(nonempty.any(-1), nonempty.sum(-1), np.nan)


def qualified_steps(steps_per_quarter: int) -> int:
    """MuseGAN's qualified-note threshold on a grid of `steps_per_quarter` steps: a 32nd note (3 of their 24
    steps per beat), i.e. ceil(steps_per_quarter / 8) steps, at least 1. On a 16th grid every note qualifies."""
    return max(1, math.ceil(MUSEGAN_QUALIFIED_STEPS * steps_per_quarter / MUSEGAN_STEPS_PER_BEAT))


def qualified_note_rate(segments: np.ndarray, steps_per_quarter: int = 4, min_steps: int | None = None) -> np.ndarray:
    """QN, (..., n_tracks): share of a track's notes lasting at least `min_steps` steps (default: a 32nd note,
    the paper's definition; see `qualified_steps`). A note is a maximal run of active steps of one pitch
    (across bar lines). NaN for a track without notes."""
    segments = _check(segments)
    threshold = qualified_steps(steps_per_quarter) if min_steps is None else int(min_steps)
    roll = _track_time_major(segments)
    onsets = _onsets(roll)
    long_enough = onsets.copy()
    for offset in range(1, threshold):
        ahead = np.zeros_like(roll)
        ahead[..., :-offset, :] = roll[..., offset:, :]
        long_enough &= ahead  # a run of active steps is one note, so this is the same note
    n_notes = onsets.sum(axis=(-2, -1)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_notes > 0, long_enough.sum(axis=(-2, -1)) / n_notes, np.nan)


def polyphony(segments: np.ndarray) -> np.ndarray:
    """(..., n_tracks): mean number of pitches on, over the track's steps where any is on (muspy); NaN if silent."""
    counts = _track_time_major(_check(segments)).sum(axis=-1)
    sounding = (counts > 0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sounding > 0, counts.sum(axis=-1) / sounding, np.nan)


def pitch_class_entropy(segments: np.ndarray, min_pitch: int = 24) -> np.ndarray:
    """(..., n_tracks): Shannon entropy (bits) of the track's note-count pitch-class histogram (muspy);
    notes as in `qualified_note_rate`. NaN for a track without notes."""
    segments = _check(segments)
    notes_per_pitch = _onsets(_track_time_major(segments)).sum(axis=-2).astype(np.float64)
    counts = notes_per_pitch @ pitch_class_matrix(segments.shape[-1], min_pitch)
    total = counts.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = counts / total
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
        return np.where(total[..., 0] > 0, terms.sum(axis=-1), np.nan) + 0.0


def tonal_centroids(segments: np.ndarray, min_pitch: int = 24, steps_per_beat: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (..., n_tracks, n_beats, 6), sounding (..., n_tracks, n_beats) bool) per beat: the
    track's chroma in the beat (active step-pitch cells per class) L1-normalised and projected by
    `tonal_matrix()`; a silent beat's centroid is 0 and `sounding` False."""
    segments = _check(segments)
    *lead, n_tracks, n_bars, steps_per_bar, n_pitches = segments.shape
    if steps_per_beat < 1 or steps_per_bar % steps_per_beat:
        raise ValueError(f"steps_per_bar={steps_per_bar} is not a whole number of beats of {steps_per_beat} steps")
    beats = segments.reshape(*lead, n_tracks, n_bars * steps_per_bar // steps_per_beat, steps_per_beat, n_pitches)
    chroma = beats.sum(axis=-2, dtype=np.float64) @ pitch_class_matrix(n_pitches, min_pitch)
    total = chroma.sum(axis=-1, keepdims=True)
    normalised = chroma / np.where(total > 0, total, 1.0)
    return normalised @ tonal_matrix().T, total[..., 0] > 0


def tonal_distance(segments: np.ndarray, min_pitch: int = 24, steps_per_beat: int = 4) -> np.ndarray:
    """TD, (..., n_tracks, n_tracks): Euclidean distance between two tracks' tonal centroids, averaged over the
    beats in which both tracks sound; NaN for a pair that never sounds together (diagonal: 0 if sounding)."""
    centroids, sounding = tonal_centroids(segments, min_pitch, steps_per_beat)
    difference = centroids[..., :, None, :, :] - centroids[..., None, :, :, :]
    distance = np.sqrt((difference ** 2).sum(axis=-1))  # (..., tracks, tracks, beats)
    both = sounding[..., :, None, :] & sounding[..., None, :, :]
    n_both = both.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_both > 0, np.where(both, distance, 0.0).sum(axis=-1) / n_both, np.nan)


def musegan_metrics(segments: np.ndarray, *, min_pitch: int = 24, steps_per_quarter: int = 4,
                    track_names: list[str] | None = None) -> dict[str, object]:
    """The MuseGAN table for a set of segments (N, tracks, bars, steps, pitches): per track the mean over
    segments (NaN-skipping) of EB, UPC, QN, polyphony and pitch-class entropy, and TD per pair of tracks."""
    segments = _check(segments)
    if segments.ndim != 5 or not len(segments):
        raise ValueError(f"expected a non-empty (N, tracks, bars, steps, pitches) set, got shape {segments.shape}")
    n_tracks = segments.shape[1]
    names = track_names or [f"track {t}" for t in range(n_tracks)]
    if len(names) != n_tracks:
        raise ValueError(f"{len(names)} track names for {n_tracks} tracks")

    def mean(values: np.ndarray) -> list[float | None]:
        counts = np.sum(~np.isnan(values), axis=0)
        sums = np.nansum(values, axis=0)
        return [float(s / c) if c else None for s, c in zip(sums, counts)]

    distances = tonal_distance(segments, min_pitch, steps_per_quarter)
    td = {}
    for a in range(n_tracks):
        for b in range(a + 1, n_tracks):
            values = distances[:, a, b]
            td[f"{names[a]} / {names[b]}"] = float(np.nanmean(values)) if np.any(~np.isnan(values)) else None
    return {
        "n_segments": int(len(segments)),
        "tracks": names,
        "EB": mean(empty_bar_rate(segments)),
        "UPC": mean(used_pitch_classes_per_bar(segments, min_pitch)),
        "QN": mean(qualified_note_rate(segments, steps_per_quarter)),
        "polyphony": mean(polyphony(segments)),
        "pitch_class_entropy": mean(pitch_class_entropy(segments, min_pitch)),
        "TD": td,
        "qualified_note_min_steps": qualified_steps(steps_per_quarter),
    }
