"""Originality: the longest run of notes a generated piece shares with the training corpus, and verbatim copies.

Every piece is reduced to note lines (pieces.py: the top line of each voice, plus the bottom line of a
chordal voice). A line of notes n_0..n_k becomes symbols s_i = (IOI_i, interval_i) for consecutive notes:
IOI_i = onset(n_i+1) - onset(n_i) in grid steps (capped at 127: longer gaps compare equal) and interval_i =
pitch(n_i+1) - pitch(n_i) in semitones. Equal symbol runs are therefore transposition-invariant note runs
with identical rhythm: m equal symbols = m + 1 shared notes. Rests count through the IOI; the last note's
length is not compared.

The index is a suffix array over all reference lines' symbols (lines separated by a symbol no query line
contains), sorted on the first `max_match` symbols by prefix doubling in numpy: O(N log max_match) to build,
O(N) memory. For a query position the longest shared run starting there is the longer common prefix with
its two neighbours at the binary-search insertion point, so all query positions are answered together in
O(log N) vectorised rounds. Exact (no hashing), and it scales to 10^5 pieces (~10^7 symbols: seconds to
minutes to build, ~10 bytes per symbol); `save`/`load` keep a built index.

A piece "copies >= B bars" when some shared run reaches from a note to a note at least B bars later (onset to
onset, bars of the generated piece's meter).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import IO, Sequence

import numpy as np

from musejax.evaluate.pieces import GridPiece

IOI_CAP_STEPS = 127
CORPUS_SEPARATOR = 0xFFFF
QUERY_SEPARATOR = 0xFFFE
DEFAULT_MAX_MATCH = 256  # symbols compared at most: longer shared runs are reported as this length
COMPARE_BLOCK = 16


@dataclasses.dataclass(frozen=True)
class LineText:
    """Symbols of many pieces' lines, concatenated with a separator after every line."""

    text: np.ndarray  # (L,) uint16
    piece: np.ndarray  # (L,) int32 piece index of each position (separators: the piece of the line before)
    note: np.ndarray  # (L,) int64 index into `onset` of the first note of the transition (separators: -1)
    onset: np.ndarray  # (M,) onsets in steps of all line notes, concatenated


def line_text(pieces: Sequence[GridPiece], separator: int) -> LineText:
    """Build the symbol text of `pieces` (see the module docstring)."""
    texts, piece_ids, notes, onsets = [], [], [], []
    note_offset = 0
    for index, piece in enumerate(pieces):
        lines = piece.lines
        first, ioi, interval = lines.transitions()
        if len(first):
            symbols = np.minimum(ioi, IOI_CAP_STEPS) * 256 + (interval + 128)
            line_of = lines.line[first]
            is_last = np.append(line_of[1:] != line_of[:-1], True)
            slot = np.arange(len(first)) + np.concatenate([[0], np.cumsum(is_last)[:-1]])
            text = np.full(len(first) + int(is_last.sum()), separator, np.uint16)
            text[slot] = symbols
            note = np.full(len(text), -1, np.int64)
            note[slot] = first + note_offset
            texts.append(text)
            notes.append(note)
            piece_ids.append(np.full(len(text), index, np.int32))
        onsets.append(lines.onset)
        note_offset += len(lines.onset)

    def joined(parts: list[np.ndarray], dtype) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    return LineText(joined(texts, np.uint16), joined(piece_ids, np.int32), joined(notes, np.int64),
                    joined(onsets, np.int64))


def build_suffix_array(text: np.ndarray, depth: int) -> np.ndarray:
    """Start positions of `text`'s suffixes sorted by their first `depth` (or more) symbols (prefix doubling)."""
    n = len(text)
    if not n:
        return np.zeros(0, np.int64)
    rank = np.unique(text, return_inverse=True)[1].astype(np.int64)
    order = np.argsort(rank, kind="stable")
    width = 1
    while width < depth and rank.max() < n - 1:
        n_ranks = int(rank.max()) + 1
        second = np.full(n, n_ranks, np.int64)  # past the end sorts after every symbol, as the padding does
        second[: n - width] = rank[width:]
        key = rank * (n_ranks + 1) + second
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        rank = np.empty(n, np.int64)
        rank[order] = np.concatenate([[0], np.cumsum(sorted_key[1:] != sorted_key[:-1])])
        width *= 2
    return order.astype(np.int32 if n < 2**31 else np.int64)


@dataclasses.dataclass
class OriginalityIndex:
    """Suffix-array index of reference note lines; `longest_matches` answers many query positions at once."""

    text: np.ndarray  # corpus symbols, padded with max_match separators
    suffix_array: np.ndarray
    piece: np.ndarray  # piece index per text position
    onset_steps: np.ndarray  # onset (steps) of the first note of each position's transition (-1: separator)
    piece_ids: list[str]
    steps_per_quarter: int
    max_match: int = DEFAULT_MAX_MATCH

    @classmethod
    def build(cls, pieces: Sequence[GridPiece], max_match: int = DEFAULT_MAX_MATCH) -> OriginalityIndex:
        """Index the note lines of the reference `pieces` (all on one grid)."""
        spq = {piece.steps_per_quarter for piece in pieces}
        if len(spq) > 1:
            raise ValueError(f"reference pieces use different grids: steps_per_quarter {sorted(spq)}")
        lines = line_text(pieces, CORPUS_SEPARATOR)
        onset = np.where(lines.note >= 0, lines.onset[np.maximum(lines.note, 0)] if len(lines.onset) else 0, -1)
        text = np.concatenate([lines.text, np.full(max_match, CORPUS_SEPARATOR, np.uint16)])
        return cls(text=text, suffix_array=build_suffix_array(lines.text, max_match), piece=lines.piece,
                   onset_steps=onset, piece_ids=[piece.id for piece in pieces],
                   steps_per_quarter=spq.pop() if spq else 4, max_match=max_match)

    @property
    def n_symbols(self) -> int:
        return len(self.suffix_array)

    def save(self, path: str | Path | IO[bytes]) -> Path | IO[bytes]:
        """Write the index as one .npz file (a path, or a binary file open for writing)."""
        path = path if hasattr(path, "write") else Path(path)
        np.savez(path, text=self.text, suffix_array=self.suffix_array, piece=self.piece, onset_steps=self.onset_steps,
                 meta=np.array(json.dumps({"piece_ids": self.piece_ids, "steps_per_quarter": self.steps_per_quarter,
                                           "max_match": self.max_match})))
        return path

    @classmethod
    def load(cls, path: str | Path) -> OriginalityIndex:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(text=data["text"], suffix_array=data["suffix_array"], piece=data["piece"],
                       onset_steps=data["onset_steps"], **meta)

    def _compare(self, query: np.ndarray, query_pos: np.ndarray, corpus_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(common prefix length capped at max_match, query suffix < corpus suffix) for position pairs."""
        lcp = np.zeros(len(query_pos), np.int64)
        less = np.zeros(len(query_pos), bool)
        undecided = np.arange(len(query_pos))
        for offset in range(0, self.max_match, COMPARE_BLOCK):
            if not len(undecided):
                break
            columns = offset + np.arange(min(COMPARE_BLOCK, self.max_match - offset))
            a = query[query_pos[undecided, None] + columns]
            b = self.text[corpus_pos[undecided, None] + columns]
            differ = a != b
            decided = differ.any(axis=1)
            first = differ.argmax(axis=1)
            lcp[undecided] = offset + np.where(decided, first, len(columns))
            rows = np.flatnonzero(decided)
            less[undecided[rows]] = a[rows, first[rows]] < b[rows, first[rows]]
            undecided = undecided[~decided]
        return lcp, less

    def longest_matches(self, query_text: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For every non-separator position of `query_text` (uint16, lines ended by QUERY_SEPARATOR):
        (positions, longest shared run in symbols starting there, a corpus text position where it occurs)."""
        positions = np.flatnonzero(query_text != QUERY_SEPARATOR)
        query = np.concatenate([query_text, np.full(self.max_match, QUERY_SEPARATOR, np.uint16)])
        n = self.n_symbols
        best = np.zeros(len(positions), np.int64)
        source = np.full(len(positions), -1, np.int64)
        if not n or not len(positions):
            return positions, best, source
        low, high = np.zeros(len(positions), np.int64), np.full(len(positions), n, np.int64)
        for _ in range(int(math.ceil(math.log2(n + 1))) + 1):
            active = np.flatnonzero(low < high)
            if not len(active):
                break
            middle = (low[active] + high[active]) // 2
            lcp, less = self._compare(query, positions[active], self.suffix_array[middle].astype(np.int64))
            go_right = ~less & (lcp < self.max_match)  # corpus suffix < query: the answer lies to the right
            low[active[go_right]] = middle[go_right] + 1
            high[active[~go_right]] = middle[~go_right]
        for neighbour in (low - 1, low):
            valid = np.flatnonzero((neighbour >= 0) & (neighbour < n))
            corpus_pos = self.suffix_array[neighbour[valid]].astype(np.int64)
            lcp, _ = self._compare(query, positions[valid], corpus_pos)
            better = lcp > best[valid]
            best[valid[better]] = lcp[better]
            source[valid[better]] = corpus_pos[better]
        return positions, best, source


@dataclasses.dataclass(frozen=True)
class PieceOriginality:
    """The longest note run a generated piece shares with the reference, and whether it copies >= min_bars."""

    id: str
    longest_notes: int  # notes in the longest shared run (0: the piece has no note line)
    longest_quarters: float  # onset-to-onset span of that run
    source_id: str | None  # a reference piece containing it
    source_quarter: float | None  # where the run starts there
    max_span_bars: float  # largest onset-to-onset span of any shared run, in the piece's bars
    copies_min_bars: bool


def find_copies(index: OriginalityIndex, pieces: Sequence[GridPiece], min_bars: float = 2.0) -> list[PieceOriginality]:
    """Longest shared run and >= `min_bars` verbatim copy for each generated piece (see the module docstring)."""
    for piece in pieces:
        if piece.steps_per_quarter != index.steps_per_quarter:
            raise ValueError(f"{piece.id}: grid of {piece.steps_per_quarter} steps per quarter, the index uses "
                             f"{index.steps_per_quarter}")
    query = line_text(pieces, QUERY_SEPARATOR)
    positions, lengths, source = index.longest_matches(query.text)
    first_note = query.note[positions]
    span = query.onset[first_note + lengths] - query.onset[first_note]
    owner = query.piece[positions]
    results = []
    for i, piece in enumerate(pieces):
        mine = np.flatnonzero(owner == i)
        if not len(mine):
            results.append(PieceOriginality(piece.id, 0, 0.0, None, None, 0.0, False))
            continue
        top = mine[np.lexsort((-span[mine], -lengths[mine]))[0]]
        spq = piece.steps_per_quarter
        max_span_bars = float(span[mine].max() / piece.typical_bar_steps)
        found = source[top] >= 0
        results.append(PieceOriginality(
            id=piece.id, longest_notes=int(lengths[top]) + 1, longest_quarters=float(span[top] / spq),
            source_id=index.piece_ids[index.piece[source[top]]] if found else None,
            source_quarter=float(index.onset_steps[source[top]] / spq) if found else None,
            max_span_bars=max_span_bars, copies_min_bars=bool(max_span_bars >= min_bars)))
    return results


def originality_summary(results: Sequence[PieceOriginality], min_bars: float = 2.0) -> dict[str, object]:
    """Set-level numbers: share of pieces copying >= min_bars, longest shared runs (mean, median, max)."""
    longest = np.array([r.longest_notes for r in results], float)
    copying = [r for r in results if r.copies_min_bars]
    return {
        "min_bars": min_bars,
        "n_pieces": len(results),
        "share_copying_min_bars": float(len(copying) / len(results)) if results else math.nan,
        "longest_notes_mean": float(longest.mean()) if len(longest) else math.nan,
        "longest_notes_median": float(np.median(longest)) if len(longest) else math.nan,
        "longest_notes_max": int(longest.max()) if len(longest) else 0,
        "copying_pieces": [r.id for r in copying],
    }
