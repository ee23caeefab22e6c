"""The Boulanger-Lewandowski et al. (2012) polyphonic datasets (JSB Chorales, Nottingham, MuseData,
Piano-midi.de): a dict with "train", "valid" and "test", each a list of pieces, each piece a list of
time steps, each step the MIDI pitches (21..108) sounding. Stored as a (latin-1) pickle or as JSON, or in the
.mat layout some repositories ship: cell arrays traindata, validdata, testdata of T x 88 binary matrices,
column 0 = MIDI 21.

Loaded as-is into (T, 88) bool piano-rolls, column 0 = MIDI 21 (A0). Every split must hold a piece with at
least one time step: a benchmark file with an empty split is a broken or wrong file, not a data set.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np

from musejax.data.piano import PIANO_HIGH_PITCH, PIANO_KEYS, PIANO_LOW_PITCH
from musejax.data.splits import SPLITS

SUFFIXES = (".pickle", ".pkl", ".json", ".mat")
MAT_VARIABLES = {split: f"{split}data" for split in SPLITS}  # traindata, validdata, testdata
_MAT_LAYOUT = (f"cell arrays {', '.join(MAT_VARIABLES.values())} of T x {PIANO_KEYS} binary matrices "
               f"(column 0 = MIDI {PIANO_LOW_PITCH})")

# The original pickles hold plain lists; allow numpy scalars/arrays too, and nothing else (no code).
_ALLOWED_GLOBALS = {
    ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
    ("builtins", "set"), ("builtins", "frozenset"), ("__builtin__", "set"),
}


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is allowed")
        return super().find_class(module, name)


def _read_raw(path: Path) -> object:
    """A .json / .pickle / .pkl file's contents (plain data only)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        if suffix in (".pickle", ".pkl"):
            with open(path, "rb") as handle:
                return _DataOnlyUnpickler(handle, encoding="latin1").load()
    except Exception as error:  # a damaged file makes the parser raise almost anything (pickle: also
        # AttributeError, TypeError, MemoryError on a bogus length): each is the file's fault, one line naming it
        raise ValueError(f"{path}: not a readable BL2012 {suffix[1:]} file: {type(error).__name__}: "
                         f"{_one_line(error)}") from None
    raise ValueError(f"{path}: unknown BL2012 file type {suffix!r} (expected {', '.join(SUFFIXES)})")


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


def _read_mat(path: Path) -> dict[str, list[np.ndarray]]:
    """A .mat file's traindata / validdata / testdata cell arrays -> split -> list of (T, 88) bool rolls."""
    import scipy.io

    try:
        raw = scipy.io.loadmat(path, squeeze_me=False)
    except Exception as error:  # MatReadError, NotImplementedError (v7.3), OSError; damaged bytes: also zlib.error
        # from a compressed variable, IndexError from a short header
        raise ValueError(f"{path}: not a readable BL2012 mat file: {type(error).__name__}: "
                         f"{_one_line(error)}") from None
    names = [name for name in raw if not name.startswith("__")]
    missing = [name for name in MAT_VARIABLES.values() if name not in raw]
    if missing:
        raise ValueError(f"{path}: not a BL2012 .mat file: missing {', '.join(missing)} (has: "
                         f"{', '.join(names) or 'no variables'}); expected {_MAT_LAYOUT}")
    splits = {}
    for split, name in MAT_VARIABLES.items():
        cells = raw[name]
        if not isinstance(cells, np.ndarray) or cells.dtype != object:
            raise ValueError(f"{path}: {name} is a {getattr(cells, 'dtype', type(cells).__name__)} array, not a cell "
                             f"array; expected {_MAT_LAYOUT}")
        splits[split] = [_matrix_to_roll(path, f"{name} cell {index}", matrix)
                         for index, matrix in enumerate(cells.ravel(order="F"))]
    return splits


def _matrix_to_roll(path: Path, where: str, matrix: object) -> np.ndarray:
    if hasattr(matrix, "toarray"):  # a sparse matrix
        matrix = matrix.toarray()
    if not isinstance(matrix, np.ndarray) or matrix.dtype == object or not (
            np.issubdtype(matrix.dtype, np.number) or matrix.dtype == bool):
        raise ValueError(f"{path}: {where}: expected a T x {PIANO_KEYS} binary matrix, got "
                         f"{getattr(matrix, 'dtype', type(matrix).__name__)}")
    if matrix.ndim != 2 or matrix.shape[1] != PIANO_KEYS:
        raise ValueError(f"{path}: {where}: expected a T x {PIANO_KEYS} matrix (MIDI {PIANO_LOW_PITCH}..{PIANO_HIGH_PITCH}), "
                         f"got {' x '.join(map(str, matrix.shape))}")
    binary = (matrix == 0) | (matrix == 1)
    if not binary.all():
        step, key = np.argwhere(~binary)[0]
        raise ValueError(f"{path}: {where}: expected a binary (0/1) matrix, got {matrix[step, key].item()!r} at step "
                         f"{step}, key {key}")
    return matrix.astype(bool)


def _piece_to_roll(path: Path, split: str, index: int, piece: object) -> np.ndarray:
    where = f"{path}: split {split!r} piece {index}"
    if not isinstance(piece, (list, tuple, np.ndarray)):
        raise ValueError(f"{where}: expected a list of time steps, got {type(piece).__name__}")
    roll = np.zeros((len(piece), PIANO_KEYS), dtype=bool)
    for step_index, step in enumerate(piece):
        if not isinstance(step, (list, tuple, set, frozenset, np.ndarray)):
            raise ValueError(f"{where} step {step_index}: expected a list of pitches, got {type(step).__name__}")
        for pitch in step:
            if isinstance(pitch, bool) or not isinstance(pitch, (int, float, np.integer, np.floating)) \
                    or not float(pitch).is_integer():
                raise ValueError(f"{where} step {step_index}: pitch {pitch!r} is not a whole MIDI number")
            if not PIANO_LOW_PITCH <= pitch <= PIANO_HIGH_PITCH:
                raise ValueError(f"{where} step {step_index}: pitch {int(pitch)} is outside "
                                 f"{PIANO_LOW_PITCH}..{PIANO_HIGH_PITCH}")
            roll[step_index, int(pitch) - PIANO_LOW_PITCH] = True
    return roll


def _pitch_lists_to_rolls(path: Path, raw: object) -> dict[str, list[np.ndarray]]:
    """The pickle / JSON layout (split -> pieces -> steps -> pitches) -> split -> list of (T, 88) bool rolls."""
    layout = (f"a dict with keys {', '.join(SPLITS)}, each a list of pieces, each a list of time steps, each a "
              f"list of MIDI pitches {PIANO_LOW_PITCH}..{PIANO_HIGH_PITCH}")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a BL2012 file: expected {layout}, got {type(raw).__name__}")
    missing = [split for split in SPLITS if split not in raw]
    if missing:
        raise ValueError(f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(map(str, raw))}); "
                         f"expected {layout}")
    splits = {}
    for split in SPLITS:
        if not isinstance(raw[split], (list, tuple)):
            raise ValueError(f"{path}: split {split!r} must be a list of pieces, got {type(raw[split]).__name__}")
        splits[split] = [_piece_to_roll(path, split, i, piece) for i, piece in enumerate(raw[split])]
    return splits


def load_bl2012(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Load a BL2012 .pickle/.pkl/.json/.mat file: split -> list of (T, 88) bool piano-rolls (MIDI 21..108).

    ValueError (one line, naming the file and what was expected) for anything else: another layout, an empty
    split, a pitch outside 21..108, a .mat matrix that is not T x 88 or not 0/1.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such BL2012 file")
    if path.suffix.lower() == ".mat":
        splits = _read_mat(path)
    else:
        splits = _pitch_lists_to_rolls(path, _read_raw(path))
    empty = [split for split in SPLITS if not any(len(roll) for roll in splits[split])]
    if empty:
        raise ValueError(f"{path}: empty split(s) {', '.join(empty)}: expected at least one piece with at least one "
                         f"time step in each of {', '.join(SPLITS)}")
    return splits


def save_bl2012(path: str | os.PathLike, splits: dict[str, list[np.ndarray]]) -> None:
    """Write (T, 88) piano-rolls per split in the BL2012 nested-list format (.pickle/.pkl or .json)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".pickle", ".pkl", ".json"):
        raise ValueError(f"{path}: BL2012 files are .pickle, .pkl or .json, not {suffix!r}")
    missing = [split for split in SPLITS if split not in splits]
    if missing:
        raise ValueError(f"{path}: splits must have keys {', '.join(SPLITS)}; missing {', '.join(missing)}")
    data: dict[str, list[list[list[int]]]] = {}
    for split in SPLITS:
        pieces = []
        for index, roll in enumerate(splits[split]):
            roll = np.asarray(roll)
            if roll.ndim != 2 or roll.shape[1] != PIANO_KEYS:
                raise ValueError(f"{path}: split {split!r} piece {index}: expected shape (T, {PIANO_KEYS}), "
                                 f"got {roll.shape}")
            if roll.dtype != bool and not np.isin(roll, (0, 1)).all():
                raise ValueError(f"{path}: split {split!r} piece {index}: a piano-roll holds only 0/1 or bools")
            pieces.append([(np.flatnonzero(step) + PIANO_LOW_PITCH).tolist() for step in roll])
        data[split] = pieces
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    else:
        with open(path, "wb") as handle:
            pickle.dump(data, handle, protocol=2)  # protocol 2: readable by the Python 2 era tools too
