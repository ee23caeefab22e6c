"""The texture of a piece as the classifier sees it, said in words: monophonic / homophonic / polyphonic, the
number of voices, and the rhythmic grid its onsets lie on (`musejax classify` prints it beside the styles, so a
surprising answer can be traced to the texture). Numpy only.

  voices      the number of notes sounding together at the 90th percentile of sounding time, or the number of
              parts with notes when that is more (a one-track piano piece has no parts to count).
  monophonic  at most one note sounds during 95% of the sounding time.
  homophonic  the lower notes start with the top line: of the notes starting below the top one, at least 60%
              start on an onset of the top line (chorales, melody and chords); else polyphonic (independent lines).
  grid        the coarsest of quarter, eighth, eighth triplet, sixteenth, sixteenth triplet, thirty-second on
              which 98% of the onsets lie (through the tempo map); "none" otherwise (unquantised playing).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.quantize import seconds_to_quarters

GRIDS = (("quarter", 1.0), ("eighth", 0.5), ("eighth triplet", 1 / 3), ("sixteenth", 0.25),
         ("sixteenth triplet", 1 / 6), ("thirty-second", 0.125))


@dataclasses.dataclass(frozen=True)
class Texture:
    kind: str  # "monophonic" | "homophonic" | "polyphonic"
    voices: int
    grid: str  # a name of GRIDS or "none"
    parts: int  # tracks/parts with notes

    def describe(self) -> str:
        voices = "1 voice" if self.voices == 1 else f"{self.voices} voices"
        grid = "no regular grid" if self.grid == "none" else f"{self.grid} grid"
        return f"{self.kind}, {voices}, {grid}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def onset_grid(onsets_quarters: np.ndarray, share: float = 0.98, tolerance: float = 0.02) -> str:
    """The coarsest grid of GRIDS holding `share` of the onsets (times in quarter notes), else "none"."""
    onsets = np.asarray(onsets_quarters, np.float64)
    if not len(onsets):
        return "none"
    for name, step in GRIDS:
        off = np.abs(onsets / step - np.round(onsets / step)) * step
        if (off <= tolerance).mean() >= share:
            return name
    return "none"


def texture_of(ns: NoteSequence) -> Texture:
    """The texture of a sequence's pitched notes (see the module docstring)."""
    notes = [n for n in ns.notes if not n.is_drum]
    if not notes:
        return Texture("monophonic", 0, "none", 0)
    pitch = np.array([n.pitch for n in notes])
    times = seconds_to_quarters(ns, np.array([[n.start_time, n.end_time] for n in notes]).reshape(-1), "texture")
    start, end = times[0::2], np.maximum(times[1::2], times[0::2] + 1e-3)
    parts = len({(n.instrument, n.part) for n in notes})
    # notes sounding together, weighted by time, from the sorted note boundaries
    edges = np.unique(np.concatenate([start, end]))
    counts = (np.searchsorted(np.sort(start), edges[:-1], side="right")
              - np.searchsorted(np.sort(end), edges[:-1], side="right"))  # notes sounding from each edge to the next
    lengths = np.diff(edges)
    sounding = counts > 0
    if sounding.any():
        order = np.argsort(counts[sounding])
        cumulative = np.cumsum(lengths[sounding][order]) / lengths[sounding].sum()
        def quantile(q: float) -> int:
            return int(counts[sounding][order][min(np.searchsorted(cumulative, q), len(order) - 1)])
        monophonic = quantile(0.95) <= 1
        polyphony = quantile(0.90)
    else:
        monophonic, polyphony = True, 1
    voices = max(parts, polyphony, 1)
    grid = onset_grid(start)
    if monophonic:
        return Texture("monophonic", 1, grid, parts)  # one line, even when it passes between parts
    # onsets under the top line: do they fall on the top line's onsets?
    top_onsets = set()
    for onset in np.unique(np.round(start, 4)):
        sounding_now = (np.round(start, 4) <= onset) & (end > onset + 1e-6)
        starting = np.round(start, 4) == onset
        if pitch[starting].max() >= pitch[sounding_now].max():
            top_onsets.add(onset)
    lower = []
    for onset in np.unique(np.round(start, 4)):
        starting = np.round(start, 4) == onset
        sounding_now = (np.round(start, 4) <= onset) & (end > onset + 1e-6)
        lower += [onset in top_onsets] * int((pitch[starting] < pitch[sounding_now].max()).sum())
    together = float(np.mean(lower)) if lower else 1.0
    return Texture("homophonic" if together >= 0.6 else "polyphonic", voices, grid, parts)
