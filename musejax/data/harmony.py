"""The melody and harmony of a note list, for the texture shifts (musejax/data/texture_shifts.py): the skyline
(top line), the key (Krumhansl-Kessler profiles; also `musejax evaluate`'s key), the diatonic triad that best
covers each bar (or half bar), and an accompaniment voicing those chords below the melody: one of three plain
patterns, or (`random_accompaniment`) a pattern, voicing and harmonic rhythm drawn at random."""

from __future__ import annotations

from typing import Sequence

import numpy as np

_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
PATTERNS = ("block", "beats", "oompah")  # the plain accompaniments (the LM's texture shifts, the primer sets)
ALL_PATTERNS = PATTERNS + ("arpeggio",)
# Krumhansl & Kessler (1982) probe-tone profiles, tonic first.
KRUMHANSL_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KRUMHANSL_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
KEY_PROFILES = np.concatenate([[np.roll(profile, root) for root in range(12)]
                               for profile in (KRUMHANSL_MAJOR, KRUMHANSL_MINOR)])  # (24, 12): row r = root r % 12


def krumhansl_key(pitch: np.ndarray, durations: np.ndarray) -> tuple[int, bool]:
    """(root pitch class, minor) by Krumhansl-Schmuckler: the rotated Krumhansl-Kessler profile with the highest
    Pearson correlation to the duration-weighted pitch-class distribution of notes `pitch` (MIDI) lasting
    `durations` (ties: lowest root, major first; C major for an empty or flat distribution)."""
    weights = np.bincount(np.asarray(pitch) % 12, weights=np.asarray(durations, float), minlength=12)
    centred = weights - weights.mean()
    if not np.any(centred):
        return 0, False
    profiles = KEY_PROFILES - KEY_PROFILES.mean(axis=1, keepdims=True)
    correlation = (profiles @ centred) / (np.linalg.norm(profiles, axis=1) * np.linalg.norm(centred))
    best = int(np.argmax(correlation))
    return best % 12, best >= 12


def skyline(pitch: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The top line of notes: (indices kept, their new ends). At each onset the highest starting note is kept
    unless a higher kept note still sounds; the kept note before it is cut at its onset."""
    order = np.lexsort((-pitch, start))
    kept: list[int] = []
    ends: list[float] = []
    last_onset = None
    for i in order.tolist():
        if start[i] == last_onset:
            continue  # a lower note at an onset already decided
        last_onset = start[i]
        if kept and ends[-1] > start[i] and pitch[kept[-1]] > pitch[i]:
            continue  # a higher note is held over this onset
        if kept and ends[-1] > start[i]:
            ends[-1] = float(start[i])
        kept.append(i)
        ends.append(float(end[i]))
    return np.asarray(kept, np.int64), np.asarray(ends, np.float64)


def estimate_key(pitch: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[int, bool]:
    """(tonic pitch class, minor) of a note list: the Krumhansl-Schmuckler key of `musejax evaluate`
    (`krumhansl_key`), each note weighted by its duration."""
    return krumhansl_key(pitch, np.maximum(end - start, 1e-3))


def diatonic_triads(tonic: int, minor: bool) -> list[tuple[int, tuple[int, int, int], float]]:
    """(root pitch class, chord pitch classes, preference) of the key's major and minor triads (diminished ones
    left out; in minor the dominant is major); tonic, subdominant and dominant are preferred."""
    scale = _MINOR if minor else _MAJOR
    chords = []
    for degree in range(7):
        root, third, fifth = (scale[(degree + k) % 7] for k in (0, 2, 4))
        if minor and degree == 4:
            third = (root + 4) % 12  # harmonic minor's major dominant
        if (fifth - root) % 12 != 7:
            continue  # diminished
        preference = 0.15 if degree in (0, 3, 4) else 0.0
        chords.append(((tonic + root) % 12, tuple((tonic + p) % 12 for p in (root, third, fifth)), preference))
    return chords


def _overlap(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0.0, None)


def choose_chords(pitch: np.ndarray, start: np.ndarray, end: np.ndarray, bar_starts: np.ndarray,
                  bar_quarters: float) -> list[tuple[int, tuple[int, ...]] | None]:
    """Per bar the diatonic triad covering most of the melody sounding in it (None for an empty bar before the
    first chord; an empty bar later repeats the last chord)."""
    tonic, minor = estimate_key(pitch, start, end)
    triads = diatonic_triads(tonic, minor)
    chords, previous = [], None
    for lo in bar_starts:
        weight = _overlap(start, end, lo, lo + bar_quarters)
        weight = weight + 0.5 * weight * (np.abs(start - lo) < 1e-6)  # the downbeat note counts more
        if weight.sum() <= 0:
            chords.append(previous)
            continue
        histogram = np.bincount(pitch % 12, weights=weight, minlength=12) / weight.sum()
        scored = [(histogram[list(pcs)].sum() + pref + (0.05 if previous and previous[0] == root else 0.0), root, pcs)
                  for root, pcs, pref in triads]
        _, root, pcs = max(scored, key=lambda s: s[0])
        previous = (root, pcs)
        chords.append(previous)
    return chords


def _voicing(root: int, pcs: Sequence[int], below: float, octave: int = 0, doubled_root: bool = False,
             ) -> tuple[int, list[int]]:
    """(bass pitch in MIDI 36..47, close-position chord pitches whose top lies below `below` when the register
    allows, never under MIDI 45), both moved by `octave` octaves (bass kept >= MIDI 28, chord >= 36); with
    `doubled_root` the chord's root again an octave above its lowest root (a four-note chord)."""
    bass = 36 + (root - 36) % 12
    chord_root = 48 + (root - 48) % 12
    chord = sorted(chord_root + (pc - root) % 12 for pc in pcs)
    while chord[-1] >= below and chord[0] - 12 >= 45:
        chord = [p - 12 for p in chord]
    if doubled_root:
        chord = sorted(chord + [min(p for p in chord if (p - root) % 12 == 0) + 12])
    if octave:
        bass = max(bass + 12 * octave, 28 + (root - 28) % 12)
        shifted = [p + 12 * octave for p in chord]
        chord = shifted if min(shifted) >= 36 else chord
    return bass, chord


def accompaniment_notes(pitch: np.ndarray, start: np.ndarray, end: np.ndarray, *, bar_quarters: float = 4.0,
                        beat_quarters: float = 1.0, first_bar: float = 0.0, pattern: str = "oompah",
                        chords: list[tuple[int, tuple[int, ...]] | None] | None = None, bass: bool = True,
                        octave: int = 0, doubled_root: bool = False, changes_per_bar: int = 1,
                        skip_doubled_bass: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chord notes (pitch, start, end in quarters) accompanying a melody: per bar from `first_bar` on (per half
    bar with `changes_per_bar` 2), the chord of `choose_chords` (or the given `chords`, one per bar) voiced below
    the melody in `pattern`: "block" (bass + triad held), "beats" (bass held, triad on every beat), "oompah" (bass
    on the first beat and the middle one of a bar, the triad on the others) or "arpeggio" (bass, then the chord
    broken up and down, in eighths). Without `bass` there is no bass note: "oompah" leaves its bass beats silent
    (after-beats) and "arpeggio" breaks the chord alone. `octave` and `doubled_root`: see `_voicing`.
    `skip_doubled_bass`: no bass note where the chord already has that pitch (the varied accompaniments; the plain
    ones keep the doubled note, as they always did)."""
    if pattern not in ALL_PATTERNS:
        raise ValueError(f"accompaniment pattern must be one of {ALL_PATTERNS}, got {pattern!r}")
    if changes_per_bar not in (1, 2) or (chords is not None and changes_per_bar != 1):
        raise ValueError(f"changes_per_bar must be 1, or 2 without given chords; got {changes_per_bar}")
    if not len(pitch):
        return (np.zeros(0, np.int64),) + (np.zeros(0),) * 2
    last = float(np.max(end))
    bar_starts = np.arange(first_bar, last, bar_quarters)
    if first_bar > 0:
        bar_starts = np.concatenate([[first_bar - bar_quarters], bar_starts])
    segment = bar_quarters / changes_per_bar  # how long a chord lasts
    if changes_per_bar > 1:
        bar_starts = (bar_starts[:, None] + segment * np.arange(changes_per_bar)).ravel()
    if chords is None:
        chords = choose_chords(pitch, start, end, bar_starts, segment)
    out_pitch, out_start, out_end = [], [], []

    def add(pitches: Sequence[int], lo: float, hi: float) -> None:
        lo, hi = max(lo, 0.0), min(hi, last)
        if hi - lo > 1e-6:
            out_pitch.extend(pitches)
            out_start.extend([lo] * len(pitches))
            out_end.extend([hi] * len(pitches))

    beats = max(1, int(round(segment / beat_quarters)))
    bass_beats = {0, beats // 2} if beats * changes_per_bar >= 4 and changes_per_bar == 1 else {0}
    for lo, chord in zip(bar_starts, chords):
        if chord is None:
            continue
        sounding = _overlap(start, end, lo, lo + segment) > 0
        below = float(pitch[sounding].min()) if sounding.any() else 72.0
        low, triad = _voicing(chord[0], chord[1], below, octave, doubled_root)
        basses = [low] if bass and not (skip_doubled_bass and low in triad) else []
        if pattern == "block":
            add([*basses, *triad], lo, lo + segment)
            continue
        if pattern == "arpeggio":
            figure = basses + triad + triad[-2:0:-1]
            step = beat_quarters / (3 if beat_quarters == 1.5 else 2)  # eighths, also in compound time
            for k in range(max(1, int(round(segment / step)))):
                add([figure[k % len(figure)]], lo + k * step, lo + (k + 1) * step)
            continue
        if pattern == "beats":
            add(basses, lo, lo + segment)
        for beat in range(beats):
            at = lo + beat * beat_quarters
            if pattern == "beats":
                add(triad, at, at + beat_quarters)
            elif beat in bass_beats:
                add(basses, at, at + beat_quarters)
            else:
                add(triad, at, at + beat_quarters)
    return np.asarray(out_pitch, np.int64), np.asarray(out_start, np.float64), np.asarray(out_end, np.float64)


def random_accompaniment(rng: np.random.Generator) -> dict[str, object]:
    """Keyword arguments of `accompaniment_notes` for an accompaniment drawn at random: its pattern (any of
    ALL_PATTERNS), with or without a bass, an octave lower one time in three, a four-note chord one time in three,
    and a chord per bar or per half bar."""
    return {"pattern": ALL_PATTERNS[rng.integers(len(ALL_PATTERNS))], "bass": bool(rng.random() < 0.7),
            "octave": -1 if rng.random() < 1 / 3 else 0, "doubled_root": bool(rng.random() < 1 / 3),
            "changes_per_bar": 2 if rng.random() < 0.4 else 1, "skip_doubled_bass": True}
