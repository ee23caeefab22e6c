"""The sampler's copy check: a free sample that copies >= N bars of a training piece is drawn again.

A language model can reproduce a phrase of its training music note for note; a composer using its pieces would
not want that. Copying is judged exactly as `musejax evaluate` and experiments/sample_quality.py judge it
(evaluate/originality.py): a run of notes of one voice line, rhythm and intervals alike (so also transposed),
shared with a training piece and spanning >= N bars of the sample's own meter. The training pieces are those
the run trained on, decoded onto the evaluation grid: training writes their index into the run directory
(`INDEX_FILE`), so sampling needs no corpus; a run saved before the check builds it from its data config
(`run_pieces.run_split_arrays`) on first use.

A sample that copies is replaced by the sample at the same place in a fresh draw of the whole batch (the same
settings, style and length rule, another seed), up to `MAX_REDRAWS` times; one that still copies then is kept
as its shortest-copying draw and named in the report. The redraw seeds follow from the seed, so the result is
as reproducible as the sampler. A primer's continuation is not checked (its primer is the user's music).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

from musejax.data.atomic import atomic_write
from musejax.data.quantize import write_bars
from musejax.evaluate.originality import OriginalityIndex, PieceOriginality, find_copies
from musejax.evaluate.pieces import DEFAULT_STEPS_PER_QUARTER
from musejax.lm.run_pieces import decoded_pieces, grid_pieces
from musejax.lm.sample_inputs import DEFAULT_QPM, Run, SampleError

INDEX_FILE = "originality_index.npz"  # in the run directory: its training pieces' note lines
MAX_REDRAWS = 8

Drawn = tuple  # _draw's result: (arrays, primer array, style labels, textures, bars (n, 2) or None)


@dataclasses.dataclass
class CopyReport:
    """What the check did to one `sample` call; `sample(..., copy_report=CopyReport())` fills it in."""

    max_bars: float = 0.0  # 0: not checked
    n_checked: int = 0
    # the first draws that copied: {"index", "bars" (the longest copy), "source" (a training piece it is in)}
    copied: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    redraws: int = 0  # further draws of the batch
    still_copying: list[int] = dataclasses.field(default_factory=list)  # samples kept although they copy

    def summary(self) -> str:
        """One line for the user, e.g. 'copy check: 2 of 96 samples copied >= 2 bars of a training piece ...'."""
        if not self.max_bars:
            return "copy check: off"
        line = (f"copy check: {len(self.copied)} of {self.n_checked} samples copied >= {self.max_bars:g} bars of a "
                f"training piece")
        if self.copied:
            worst = max(self.copied, key=lambda c: c["bars"])
            line += (f" (longest {worst['bars']:.2f} bars, of {worst['source']}) and were drawn again "
                     f"({self.redraws} further draw{'s' * (self.redraws != 1)})")
        if self.still_copying:
            line += (f"; still copying after {MAX_REDRAWS} draws, kept: "
                     + ", ".join(f"sample {i}" for i in self.still_copying))
        return line


def build_index(encoding: Any, arrays: Sequence[np.ndarray], bars: Sequence[tuple[int, int]] | None,
                ids: Sequence[str]) -> OriginalityIndex:
    """The originality index of encoded pieces (bars: each one's (phase, steps per bar), as the cache keeps them)."""
    bars = bars if bars else [(0, 0)] * len(arrays)
    return OriginalityIndex.build(decoded_pieces(encoding, list(zip(ids, arrays, bars)), DEFAULT_STEPS_PER_QUARTER))


def write_index(index: OriginalityIndex, run_dir: str | Path) -> Path:
    """Write `index` into the run directory whole (a reader never sees half a file)."""
    path = Path(run_dir) / INDEX_FILE
    with atomic_write(path) as handle:
        index.save(handle)
    return path


def training_index(run: Run) -> OriginalityIndex:
    """The originality index of the run's training pieces: the one training wrote into the run directory, else
    built from the run's data config (a run saved before the copy check) and written there."""
    path = None if run.run_dir is None else Path(run.run_dir) / INDEX_FILE
    if path is not None and path.is_file():
        try:
            return OriginalityIndex.load(path)
        except (OSError, ValueError, KeyError) as err:
            raise SampleError(f"{path}: unreadable copy-check index ({err}); delete it to rebuild it from the "
                              "run's training pieces") from None
    from musejax.lm.run_pieces import run_split_arrays

    data = getattr(run.config, "data", None)
    if data is None:
        raise SampleError(f"run {run.name} has no data config: its samples cannot be checked for copies "
                          "(use --max-copy-bars 0)")
    try:
        items = run_split_arrays(data, run.encoding)["train"]
    except (OSError, ValueError, KeyError) as err:
        raise SampleError(f"run {run.name}: its training pieces ({data.corpus}) cannot be read to check samples for "
                          f"copies: {err} (use --max-copy-bars 0 to sample without the check)") from None
    ids, arrays, bars = zip(*items) if items else ((), (), ())
    index = build_index(run.encoding, arrays, bars, ids)
    if path is not None and jax.process_index() == 0:
        write_index(index, path.parent)
    return index


def copies(run: Run, index: OriginalityIndex, arrays: Sequence[np.ndarray], bars: np.ndarray | None,
           max_bars: float) -> list[PieceOriginality | None]:
    """Each sampled array's longest copy, decoded as `sample` decodes it (None: no notes, nothing to copy)."""
    per_quarter = getattr(run.encoding, "steps_per_quarter", 0)
    sequences = []
    for i, array in enumerate(arrays):
        ns = run.encoding.decode(array, qpm=DEFAULT_QPM)
        if bars is not None:
            write_bars(ns, *bars[i], per_quarter, DEFAULT_QPM)
        ns.id = str(i)
        sequences.append(ns)
    pieces, _ = grid_pieces(sequences, DEFAULT_STEPS_PER_QUARTER)
    found = dict(zip((p.id for p in pieces), find_copies(index, pieces, max_bars) if pieces else []))
    return [found.get(str(i)) for i in range(len(arrays))]


def redraw_seed(seed: int, redraw: int) -> int:
    """The seed of the redraw-th further draw for a call with `seed` (31 bits; never the seed itself)."""
    return int(np.random.SeedSequence([seed, redraw, 0x636F7079]).generate_state(1)[0] >> 1)


def redraw_copies(run: Run, drawn: Drawn, draw: Callable[[int], Drawn], seed: int, max_bars: float,
                  report: CopyReport | None = None) -> Drawn:
    """`drawn` with every sample that copies >= max_bars bars replaced by the same sample of `draw(seed')`."""
    arrays, primer_array, labels, textures, bars = drawn
    arrays, textures = list(arrays), list(textures)
    bars = None if bars is None else np.array(bars)
    index = training_index(run)
    found = copies(run, index, arrays, bars, max_bars)
    span = [f.max_span_bars if f else 0.0 for f in found]
    copying = [i for i, f in enumerate(found) if f and f.copies_min_bars]
    report = report if report is not None else CopyReport()
    report.max_bars, report.n_checked = max_bars, len(arrays)
    report.copied = [{"index": i, "bars": round(span[i], 3), "source": found[i].source_id} for i in copying]
    redraws = 0
    while copying and redraws < MAX_REDRAWS:
        redraws += 1
        again = draw(redraw_seed(seed, redraws))
        again_bars = None if again[4] is None else np.asarray(again[4])
        found = copies(run, index, [again[0][i] for i in copying], None if again_bars is None else again_bars[copying],
                       max_bars)
        for i, f in zip(copying, found):
            new_span = f.max_span_bars if f else 0.0
            if new_span < span[i]:  # the shortest-copying draw so far
                arrays[i], textures[i], span[i] = again[0][i], again[3][i], new_span
                if bars is not None:
                    bars[i] = again_bars[i]
        copying = [i for i in copying if span[i] >= max_bars]
    report.redraws, report.still_copying = redraws, copying
    return arrays, primer_array, labels, textures, bars
