"""A run's own pieces, as its training saw them, decoded onto the evaluation grid.

`run_split_arrays` rebuilds the encoded pieces of each split from the run's config.data (the corpus, cache and
fractions training used); `decoded_pieces` turns them back into NoteSequences barred as their scores and then
into `evaluate.pieces.GridPiece`s, the form the evaluation and the originality index compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm.auto import tqdm


def run_split_arrays(data: Any, encoding: Any, *, progress: bool = False
                     ) -> dict[str, list[tuple[str, np.ndarray, tuple[int, int]]]]:
    """(piece id, encoded array, bars: (phase, steps per bar), (0, 0) if not known) per split, exactly the pieces
    training used (musejax/lm/data.py: build_dataset with config.data's corpus, cache and fractions, then the
    first data.max_pieces per split)."""
    from musejax.data.bl2012 import SUFFIXES, load_bl2012

    if data.corpus.endswith(SUFFIXES):  # a BL2012 file (.pickle / .json / .mat), as load_lm_data reads it
        name = Path(data.corpus).name
        splits = {split: [(f"{name}/{split}/{i}", np.asarray(r, bool), (0, 0)) for i, r in enumerate(rolls) if len(r)]
                  for split, rolls in load_bl2012(data.corpus).items()}
    else:
        from musejax.data.datasets import build_dataset

        corpora = [name.strip() for name in data.corpus.split(",") if name.strip()]
        dataset = build_dataset(corpora, encoding, cache_dir=data.cache_dir or None, progress=progress,
                                valid_fraction=data.valid_fraction, test_fraction=data.test_fraction)
        splits = {split: [(p.id, p.array, p.bar) for p in pieces] for split, pieces in dataset.splits.items()}
    return {split: items[: data.max_pieces] if data.max_pieces else items for split, items in splits.items()}


def grid_pieces(sequences: Sequence[Any], steps_per_quarter: int, *, desc: str = "",
                progress: bool = False) -> tuple[list[Any], list[str]]:
    """NoteSequences -> (GridPieces, ids of those without notes)."""
    from musejax.data.quantize import EncodingError, piece_name
    from musejax.evaluate.pieces import grid_piece

    pieces, empty = [], []
    for ns in tqdm(sequences, desc=desc, disable=not progress, leave=False):
        try:
            pieces.append(grid_piece(ns, steps_per_quarter))
        except EncodingError:
            empty.append(piece_name(ns))
    return pieces, empty


def decoded(encoding: Any, array: np.ndarray, bar: tuple[int, int], piece_id: str) -> Any:
    """An encoded piece decoded with `encoding`, its bar lines where the score has them (as a sample's)."""
    from musejax.data.quantize import write_bars

    ns = encoding.decode(array)
    write_bars(ns, *bar, getattr(encoding, "steps_per_quarter", 0), ns.tempos[0].qpm if ns.tempos else 120.0)
    ns.id = piece_id
    return ns


def decoded_pieces(encoding: Any, items: Sequence[tuple[str, np.ndarray, tuple[int, int]]], steps_per_quarter: int,
                   *, desc: str = "", progress: bool = False) -> list[Any]:
    """Encoded (id, array, bars) decoded with `encoding` onto the evaluation grid (pieces without notes left out)."""
    sequences = [decoded(encoding, array, bar, piece_id) for piece_id, array, bar in items]
    return grid_pieces(sequences, steps_per_quarter, desc=desc, progress=progress)[0]
