"""Originality: transposed copies are found with their exact length and source, random pieces are not,
and the suffix-array index agrees with a brute-force longest-common-run search."""

from __future__ import annotations

import numpy as np
import pytest

from musejax.evaluate.originality import OriginalityIndex, find_copies, originality_summary
from musejax.evaluate.pieces import make_grid_piece


def random_line(rng, n, start=0, low=48, high=84):
    """A random melodic line: (pitch, start, end) with varied rhythm and independent random pitches."""
    steps = rng.choice([1, 2, 3, 4, 6, 8], n)
    onsets = start + np.concatenate([[0], np.cumsum(steps)[:-1]])
    pitch = rng.integers(low, high, n)
    return pitch, onsets, onsets + steps


def four_voice_piece(rng, n=48, id=""):
    parts = [random_line(rng, n) for _ in range(4)]
    pitch, start, end = (np.concatenate(x) for x in zip(*parts))
    return make_grid_piece(pitch, start, end, np.repeat(np.arange(4), n), id=id)


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    pieces = [four_voice_piece(rng, id=f"ref/{i}") for i in range(40)]
    return pieces, OriginalityIndex.build(pieces)


def test_transposed_copy_is_found_with_its_length_and_source(reference):
    pieces, index = reference
    source = pieces[7]
    alto = source.voice == 1
    first, n_copied = 10, 14
    pitch, start, end = (x[alto][first:first + n_copied] for x in (source.pitch, source.start, source.end))
    rng = np.random.default_rng(1)
    before = random_line(rng, 12)
    after = random_line(rng, 12, start=1000)
    offset = int(before[2][-1]) + 40 - int(start[0])  # long rests around the copy break the shared run
    copy = (pitch + 5, start + offset, end + offset)  # up a fourth, later in time
    notes = [np.concatenate(x) for x in zip(before, copy, after)]
    piece = make_grid_piece(*notes, id="generated/plagiarist")
    result = find_copies(index, [piece])[0]
    assert result.longest_notes == n_copied
    assert result.source_id == "ref/7"
    assert result.source_quarter == start[0] / 4
    assert result.longest_quarters == (start[-1] - start[0]) / 4
    span_bars = (start[-1] - start[0]) / 16
    assert result.max_span_bars == pytest.approx(span_bars) and result.copies_min_bars == (span_bars >= 2)


def test_copied_whole_voice_spanning_bars_is_flagged(reference):
    pieces, index = reference
    soprano = pieces[3].voice == 0
    piece = make_grid_piece(pieces[3].pitch[soprano] - 3, pieces[3].start[soprano], pieces[3].end[soprano])
    result = find_copies(index, [piece])[0]
    assert result.longest_notes == soprano.sum()
    assert result.copies_min_bars


def test_random_pieces_are_not_flagged(reference):
    _, index = reference
    rng = np.random.default_rng(2)
    generated = [four_voice_piece(rng, id=f"gen/{i}") for i in range(20)]
    results = find_copies(index, generated)
    assert all(not r.copies_min_bars for r in results)
    assert max(r.longest_notes for r in results) <= 4
    summary = originality_summary(results)
    assert summary["share_copying_min_bars"] == 0.0 and summary["n_pieces"] == 20


def naive_longest_run(query: list, corpus: list[list]) -> int:
    best = 0
    for line in corpus:
        for i in range(len(query)):
            for j in range(len(line)):
                k = 0
                while i + k < len(query) and j + k < len(line) and query[i + k] == line[j + k]:
                    k += 1
                best = max(best, k)
    return best


def symbols(piece) -> list[list]:
    lines = piece.lines
    first, ioi, interval = lines.transitions()
    line_of = lines.line[first]
    return [list(zip(ioi[line_of == i], interval[line_of == i])) for i in range(lines.n_lines)]


def test_index_agrees_with_brute_force_on_a_small_alphabet():
    rng = np.random.default_rng(3)

    def walk(n):  # few symbols, so long shared runs are common
        steps = rng.choice([2, 4], n)
        onsets = np.concatenate([[0], np.cumsum(steps)[:-1]])
        return make_grid_piece(60 + np.cumsum(rng.integers(-1, 2, n)), onsets, onsets + steps)

    reference = [walk(int(rng.integers(3, 40))) for _ in range(25)]
    generated = [walk(int(rng.integers(2, 30))) for _ in range(25)]
    results = find_copies(OriginalityIndex.build(reference), generated)
    corpus_lines = [line for piece in reference for line in symbols(piece)]
    for piece, result in zip(generated, results):
        expected = max(naive_longest_run(line, corpus_lines) for line in symbols(piece))
        assert result.longest_notes == expected + 1
    capped = find_copies(OriginalityIndex.build(reference, max_match=4), generated)
    assert [c.longest_notes for c in capped] == [min(r.longest_notes, 5) for r in results]


def test_index_save_and_load(tmp_path, reference):
    pieces, index = reference
    path = index.save(tmp_path / "index.npz")
    loaded = OriginalityIndex.load(path)
    queries = pieces[:3]
    assert find_copies(loaded, queries) == find_copies(index, queries)


def test_grid_mismatch_and_pieces_without_lines(reference):
    _, index = reference
    with pytest.raises(ValueError, match="steps per quarter"):
        find_copies(index, [make_grid_piece([60, 62], [0, 2], [2, 4], steps_per_quarter=12)])
    single_note = make_grid_piece([60], [0], [4], id="one")
    result = find_copies(index, [single_note])[0]
    assert result.longest_notes == 0 and not result.copies_min_bars
