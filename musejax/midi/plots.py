"""Piano-roll pictures of NoteSequences: pitch (note names) against time in bars and beats.

Drawn on a bare Agg canvas (no pyplot, no global backend switch), so it works headless and inside notebooks.
A sampled continuation of a primer is told apart by a shaded primer region and a second note colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from note_seq import NoteSequence

from musejax.data.piano import PIANO_LOW_PITCH
from musejax.data.quantize import downbeat_quarters, main_meter
from musejax.midi.meta import primer_end_seconds

_PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_BLACK_KEYS = {1, 3, 6, 8, 10}


def pitch_name(pitch: int) -> str:
    """MIDI pitch -> scientific pitch name (60 -> "C4")."""
    return f"{_PITCH_NAMES[pitch % 12]}{pitch // 12 - 1}"


def seconds_to_quarters(sequence: NoteSequence, seconds: np.ndarray) -> np.ndarray:
    """Convert times in seconds to quarter notes through the sequence's tempo map (120 qpm if none)."""
    tempos = sorted(((t.time, t.qpm) for t in sequence.tempos), key=lambda tq: tq[0]) or [(0.0, 120.0)]
    if tempos[0][0] > 0:
        tempos.insert(0, (0.0, tempos[0][1]))
    seconds = np.asarray(seconds, dtype=np.float64)
    quarters = np.zeros_like(seconds)
    quarters_at_change = 0.0
    for i, (start, qpm) in enumerate(tempos):
        end = tempos[i + 1][0] if i + 1 < len(tempos) else np.inf
        inside = (seconds >= start) & (seconds < end)
        quarters[inside] = quarters_at_change + (seconds[inside] - start) * qpm / 60.0
        if np.isfinite(end):
            quarters_at_change += (end - start) * qpm / 60.0
    return quarters


def roll_to_notes(roll: np.ndarray, steps_per_quarter: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 88) or (T, 2, 88) bool piano-roll -> (start_quarters, end_quarters, pitches) of its notes.

    With an onset channel ([:, 1]) a new note starts at every onset; otherwise at every rising edge.
    """
    roll = np.asarray(roll, dtype=bool)
    if roll.ndim == 3:
        sounding, onsets = roll[:, 0] | roll[:, 1], roll[:, 1]
    elif roll.ndim == 2:
        sounding, onsets = roll, None
    else:
        raise ValueError(f"piano-roll must be (T, 88) or (T, 2, 88), got shape {roll.shape}")
    starts, ends, pitches = [], [], []
    for key in range(sounding.shape[1]):
        start = None
        for step in range(sounding.shape[0] + 1):
            on = step < sounding.shape[0] and sounding[step, key]
            new = on and (start is None or (onsets is not None and onsets[step, key]))
            if start is not None and (not on or new):
                starts.append(start), ends.append(step), pitches.append(key + PIANO_LOW_PITCH)
                start = None
            if new:
                start = step
    scale = 1.0 / steps_per_quarter
    return np.asarray(starts) * scale, np.asarray(ends) * scale, np.asarray(pitches, dtype=int)


def plot_pianoroll(
    sequence_or_roll: NoteSequence | np.ndarray,
    path_png: str | Path,
    *,
    primer_end: float | None = None,
    steps_per_quarter: int = 4,
    title: str | None = None,
) -> Path:
    """Write a piano-roll PNG: notes as bars, pitch names on y, bars/beats on x, primer part shaded.

    `primer_end` is in seconds for a NoteSequence (default: its primer-end annotation) and in steps for a roll.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PatchCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle

    numerator, denominator, first_bar = 4, 4, 0.0
    if isinstance(sequence_or_roll, NoteSequence):
        sequence = sequence_or_roll
        notes = sorted(sequence.notes, key=lambda n: (n.start_time, n.pitch))
        starts = seconds_to_quarters(sequence, np.array([n.start_time for n in notes]))
        ends = seconds_to_quarters(sequence, np.array([n.end_time for n in notes]))
        pitches = np.array([n.pitch for n in notes], dtype=int)
        end_seconds = primer_end if primer_end is not None else primer_end_seconds(sequence)
        primer_quarters = None if end_seconds is None else float(seconds_to_quarters(sequence, [end_seconds])[0])
        numerator, denominator = main_meter(sequence)  # not a pickup's meter
        first_bar = downbeat_quarters(sequence)
        title = title if title is not None else (sequence.sequence_metadata.title or sequence.id or None)
        total_quarters = float(seconds_to_quarters(sequence, [sequence.total_time])[0]) if notes else 0.0
    else:
        roll = np.asarray(sequence_or_roll)
        starts, ends, pitches = roll_to_notes(roll, steps_per_quarter)
        primer_quarters = None if primer_end is None else primer_end / steps_per_quarter
        total_quarters = roll.shape[0] / steps_per_quarter

    quarters_per_beat = 4.0 / denominator
    quarters_per_bar = numerator * quarters_per_beat
    total_quarters = max(total_quarters, float(ends.max()) if len(ends) else 0.0, primer_quarters or 0.0, quarters_per_bar)
    first_bar %= quarters_per_bar  # a pickup's length: the bar lines after it (the pickup is bar 0)
    n_bars = int(np.ceil((total_quarters - first_bar) / quarters_per_bar - 1e-9)) + (first_bar > 0)
    low, high = (int(pitches.min()) - 2, int(pitches.max()) + 2) if len(pitches) else (58, 72)

    figure = Figure(figsize=(min(4 + 1.2 * n_bars, 40), min(2 + 0.12 * (high - low), 12)), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for pitch in range(low, high + 1):
        if pitch % 12 in _BLACK_KEYS:
            axes.axhspan(pitch - 0.5, pitch + 0.5, color="0.93", zorder=0, linewidth=0)
    legend = []
    if primer_quarters is not None:
        axes.axvspan(0, primer_quarters, color="#cfe0f1", alpha=0.6, zorder=0.5, linewidth=0)
        axes.axvline(primer_quarters, color="#1f5fa8", linewidth=1.2, zorder=3)
    in_primer = starts < (primer_quarters if primer_quarters is not None else -1.0)
    for mask, colour, label in ((in_primer, "#1f5fa8", "primer"), (~in_primer, "#e07b1a", "sampled")):
        boxes = [Rectangle((s, p - 0.4), max(e - s, 1e-3), 0.8) for s, e, p in zip(starts[mask], ends[mask], pitches[mask])]
        if boxes:
            axes.add_collection(PatchCollection(boxes, facecolor=colour, edgecolor="black", linewidth=0.3, zorder=2))
            if primer_quarters is not None:
                legend.append(Patch(facecolor=colour, label=label))

    origin = first_bar - quarters_per_bar if first_bar > 0 else 0.0  # where bar 0 (the pickup's) would start
    axes.set_xlim(0, origin + n_bars * quarters_per_bar)
    axes.set_ylim(low - 0.5, high + 0.5)
    first_label = 0 if first_bar > 0 else 1
    bar_lines = origin + np.arange(n_bars + 1) * quarters_per_bar
    axes.set_xticks(bar_lines[bar_lines >= 0], [str(first_label + b) for b in range(n_bars + 1) if bar_lines[b] >= 0])
    beats = origin + np.arange(0, n_bars * quarters_per_bar + 1e-9, quarters_per_beat)
    axes.set_xticks(beats[beats >= -1e-9], minor=True)
    axes.grid(axis="x", which="major", color="0.45", linewidth=0.8)
    axes.grid(axis="x", which="minor", color="0.8", linewidth=0.4)
    label_every = 1 if high - low <= 24 else 12
    ticks = [p for p in range(low, high + 1) if (p % 12 == 0 if label_every == 12 else p % 12 not in _BLACK_KEYS)]
    axes.set_yticks(ticks, [pitch_name(p) for p in ticks], fontsize=7)
    axes.set_xlabel(f"bar (time signature {numerator}/{denominator}; minor ticks = beats)")
    axes.set_ylabel("pitch")
    if title:
        axes.set_title(title, fontsize=9)
    if legend:
        axes.legend(handles=legend, loc="upper right", fontsize=7)
    figure.tight_layout()
    path_png = Path(path_png)
    path_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path_png)
    return path_png


def pianoroll_image(sequence: NoteSequence, *, pixels_per_second: int = 32, pixels_per_pitch: int = 3,
                    max_width: int = 1200) -> np.ndarray:
    """A small (H, W, 3) uint8 piano-roll picture of `sequence` (high pitches on top, one colour per track),
    drawn in numpy for TensorBoard: no axes, no matplotlib."""
    notes = [n for n in sequence.notes if n.end_time > n.start_time]
    low, high = (min(n.pitch for n in notes) - 2, max(n.pitch for n in notes) + 2) if notes else (58, 72)
    seconds = max([sequence.total_time, 1.0] + [n.end_time for n in notes])
    scale = min(pixels_per_second, max_width / seconds)
    width, height = max(1, int(np.ceil(seconds * scale))), (high - low + 1) * pixels_per_pitch
    image = np.full((height, width, 3), 250, np.uint8)
    for pitch in range(low, high + 1):
        if pitch % 12 in _BLACK_KEYS:
            row = (high - pitch) * pixels_per_pitch
            image[row:row + pixels_per_pitch] = 236
    colours = np.array([[224, 123, 26], [31, 95, 168], [74, 154, 58], [170, 60, 140], [120, 120, 120]], np.uint8)
    tracks = sorted({(n.instrument, n.program, n.is_drum) for n in notes})
    for note in notes:
        row = (high - note.pitch) * pixels_per_pitch
        start = int(note.start_time * scale)
        end = max(start + 1, int(note.end_time * scale) - 1)  # a pixel's gap between repeated notes
        colour = colours[tracks.index((note.instrument, note.program, note.is_drum)) % len(colours)]
        image[row:row + pixels_per_pitch - 1, start:end] = colour
    return image
