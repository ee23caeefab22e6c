"""Texture shifts of piano-roll windows: pure transforms that change how a passage is scored (one line or
several, the rhythmic grid, the note values) but not its style, for training augmentation (the style classifier,
musejax/style/data.py) and for the whole-sequence shifts of musejax/style/shifts.py. Times are in quarter notes:
  melody          the skyline: at each onset the highest starting note, unless a higher note still sounds.
  accompaniment   a block chord, a chord per beat or bass-and-chord ("oom-pah") added under the melody (the
                  other notes kept): per bar the diatonic triad that covers most of the bar's melody
                  (musejax/data/harmony.py); `varied` also draws broken chords, no bass, other registers and
                  voicings, and a chord per half bar.
  melody_chords   the melody alone over that accompaniment (a lead sheet's texture).
  grid            onsets and ends snapped to a coarser grid (a quarter note: 1.0); notes of one part that land on
                  the same onset keep the longest one (a run of eighths becomes quarters, not chords).
  stretch         note values multiplied (as a tempo change reads from a file without a tempo map).
"""

from __future__ import annotations

import numpy as np

from musejax.data.harmony import PATTERNS, accompaniment_notes, random_accompaniment, skyline
from musejax.data.piano import PIANO_KEYS, PIANO_LOW_PITCH
from musejax.data.quantize import notes_to_roll, roll_to_notes

# the shifts of training windows (config.data.texture_shifts)
ROLL_SHIFTS = ("melody", "accompaniment", "melody_chords", "grid", "stretch")


# ------------------------------------------------------------------------------------------- note level


def requantize(start: np.ndarray, end: np.ndarray, part: np.ndarray, grid: float,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Snap onsets and ends to multiples of `grid` quarters: (indices kept, new starts, new ends). Notes of one
    part that land on the same onset keep those that started with the longest of them (of equal ones, the nearest
    to the onset); a kept note that ended by
    the next onset of its part before still does."""
    snapped_start = np.floor(start / grid + 0.5) * grid
    snapped_end = np.maximum(np.floor(end / grid + 0.5) * grid, snapped_start + grid)
    keep = np.zeros(len(start), bool)
    for p in np.unique(part):
        members = np.flatnonzero(part == p)
        onsets = np.unique(snapped_start[members])
        for k, onset in enumerate(onsets):
            group = members[snapped_start[members] == onset]
            longest = group[np.argmax(end[group] - start[group] - 1e-3 * np.abs(start[group] - onset))]
            chosen = group[start[group] == start[longest]]
            keep[chosen] = True
            if k + 1 < len(onsets):
                following = members[snapped_start[members] == onsets[k + 1]]
                legato = end[chosen] <= start[following].min() + 1e-6
                snapped_end[chosen[legato]] = np.minimum(snapped_end[chosen[legato]], onsets[k + 1])
    index = np.flatnonzero(keep)
    return index, snapped_start[index], snapped_end[index]


# ------------------------------------------------------------------------------------------- piano-roll windows


def shift_roll(window: np.ndarray, shift: str, rng: np.random.Generator, steps_per_quarter: int,
               n_steps: int | None = None, stretch_factor: float = 2.0,
               bar_quarters: float | None = None, varied: bool = False) -> np.ndarray:
    """A texture shift of a piano-roll window ((T, 88) or (T, 2, 88) with onsets; bool) -> a roll of `n_steps`
    (default T) steps. `shift` is one of ROLL_SHIFTS; "stretch" multiplies the note values by `stretch_factor`
    (the caller cuts the source window to fit). Random choices (accompaniment pattern and meter, grid) come
    from `rng`; with `bar_quarters` the accompaniment's bars are that long, a beat a quarter, and the window
    starts on a downbeat (for a model that reads its place in the bar) instead of a random meter and offset.
    `varied`: the accompaniment's pattern, voicing and chord rate drawn by `harmony.random_accompaniment` (else one
    of the three plain patterns)."""
    roll = np.asarray(window, bool)
    onsets_channel = roll.ndim == 3
    n_steps = len(roll) if n_steps is None else n_steps
    sounding, onsets = (roll[:, 0], roll[:, 1]) if onsets_channel else (roll, None)
    keys, start_step, end_step = roll_to_notes(sounding, onsets)
    if not len(keys):
        return np.zeros((n_steps, *roll.shape[1:]), bool)
    pitch = keys + PIANO_LOW_PITCH
    start, end = start_step / steps_per_quarter, end_step / steps_per_quarter
    if shift == "melody":
        index, new_end = skyline(pitch, start, end)
        pitch, start, end = pitch[index], start[index], new_end
    elif shift in ("accompaniment", "melody_chords"):
        index, new_end = skyline(pitch, start, end)
        if bar_quarters is None:
            meter = rng.choice(3, p=[0.6, 0.25, 0.15])  # 4/4, 3/4, 6/8
            bar, beat = ((4.0, 1.0), (3.0, 1.0), (3.0, 1.5))[meter]
            first_bar = float(rng.integers(0, int(bar * steps_per_quarter))) / steps_per_quarter
        else:
            bar, beat, first_bar = float(bar_quarters), 1.0, 0.0
        style = random_accompaniment(rng) if varied else {"pattern": PATTERNS[rng.integers(len(PATTERNS))]}
        extra = accompaniment_notes(pitch[index], start[index], new_end, bar_quarters=bar, beat_quarters=beat,
                                    first_bar=first_bar, **style)
        if shift == "melody_chords":
            pitch, start, end = pitch[index], start[index], new_end
        pitch, start, end = (np.concatenate([a, b]) for a, b in zip((pitch, start, end), extra))
    elif shift == "grid":
        grid = 1.0 if rng.random() < 0.6 else 0.5
        index, start, end = requantize(start, end, np.zeros(len(start), np.int64), grid)
        pitch = pitch[index]
    elif shift == "stretch":
        start, end = start * stretch_factor, end * stretch_factor
    else:
        raise ValueError(f"unknown texture shift {shift!r} (choose from {', '.join(ROLL_SHIFTS)})")
    return notes_to_window(pitch, start, end, steps_per_quarter, n_steps, onsets_channel)


def notes_to_window(pitch: np.ndarray, start: np.ndarray, end: np.ndarray, steps_per_quarter: int, n_steps: int,
                    onsets: bool) -> np.ndarray:
    """Notes (times in quarters) -> a (n_steps, [2,] 88) roll; notes outside the keys or the window left out."""
    start_step = np.floor(start * steps_per_quarter + 0.5).astype(np.int64)
    end_step = np.maximum(np.floor(end * steps_per_quarter + 0.5).astype(np.int64), start_step + 1)
    key = np.asarray(pitch) - PIANO_LOW_PITCH
    inside = (key >= 0) & (key < PIANO_KEYS) & (start_step < n_steps) & (start_step >= 0)
    sounding, onset = notes_to_roll(key[inside], start_step[inside], np.minimum(end_step[inside], n_steps), n_steps,
                                    PIANO_KEYS)
    return np.stack([sounding, onset], axis=1) if onsets else sounding
