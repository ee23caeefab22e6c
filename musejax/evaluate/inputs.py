"""The two piece sets an evaluation compares: generated samples (a folder or a run's samples/) and a reference
corpus (a bundled corpus name or a folder, read through the corpus cache). Unreadable files are recorded,
not fatal; a set with no readable piece is a ValueError naming the path and what was wrong."""

from __future__ import annotations

import collections
import dataclasses
import time
from pathlib import Path
from typing import Any

from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.data.readers import SUPPORTED_FORMATS, ReadFailure, read_file
from musejax.data.corpora import resolve_corpus
from musejax.data.datasets import load_sequences


@dataclasses.dataclass
class PieceSet:
    """Sequences of one side of the comparison, where they came from, and the files that could not be read."""

    role: str  # "generated" | "reference"
    source: str
    sequences: list[NoteSequence]
    n_files: int
    failures: list[dict[str, Any]]
    load_seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "n_files": self.n_files, "n_pieces": len(self.sequences),
                "n_failures": len(self.failures), "failures": self.failures,
                "load_seconds": round(self.load_seconds, 3)}


def failure_record(failure: ReadFailure) -> dict[str, Any]:
    return {"path": failure.path, "tune": failure.tune, "reason": failure.reason, "detail": failure.detail}


def music_files(root: Path, exclude: Path | None = None) -> list[Path]:
    """Every file under `root` with a readable suffix (sorted), except those under `exclude`."""
    exclude = exclude.resolve() if exclude is not None else None
    files = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() not in SUPPORTED_FORMATS or not path.is_file():
            continue
        if exclude is not None and path.resolve().is_relative_to(exclude):
            continue
        files.append(path)
    return files


def _no_pieces_error(role: str, source: str, n_files: int, failures: list[dict[str, Any]]) -> ValueError:
    if not n_files:
        return ValueError(f"{source}: no {role} pieces: no files with a music suffix "
                          f"({', '.join(sorted(SUPPORTED_FORMATS))})")
    reasons = collections.Counter(f["reason"] for f in failures)
    summary = ", ".join(f"{count} {reason}" for reason, count in reasons.most_common())
    return ValueError(f"{source}: no {role} pieces could be read from {n_files} files ({summary})")


def read_piece_dir(root: str | Path, *, role: str = "generated", exclude: Path | None = None) -> PieceSet:
    """Read every music file under `root`; piece ids are paths relative to `root`."""
    started = time.perf_counter()
    root = Path(root)
    if not root.exists():
        raise ValueError(f"{root}: no such file or directory")
    files = [root] if root.is_file() else music_files(root, exclude)
    sequences, failures = [], []
    for path in files:
        pieces, failed = read_file(path, root=root if root.is_dir() else root.parent)
        sequences.extend(pieces)
        failures.extend(failure_record(f) for f in failed)
    if not sequences:
        raise _no_pieces_error(role, str(root), len(files), failures)
    return PieceSet(role, str(root), sequences, len(files), failures, time.perf_counter() - started)


def samples_dir(path: str | Path) -> Path:
    """A samples folder, or a run directory (has config.json) whose samples/ it means."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such file or directory")
    if path.is_dir() and (path / "config.json").is_file():
        if not (path / "samples").is_dir():
            raise ValueError(f"{path}: run has no samples/ folder (write some with: musejax sample --run {path})")
        return path / "samples"
    return path


def read_samples(path: str | Path, *, exclude: Path | None = None) -> PieceSet:
    """The generated pieces of a samples folder or run directory."""
    return read_piece_dir(samples_dir(path), role="generated", exclude=exclude)


def read_reference(name_or_path: str, *, cache_dir: str | Path | None = None, workers: int | None = None,
                   progress: bool = False) -> PieceSet:
    """A bundled corpus name or a folder, parsed through the corpus cache (musejax.data.datasets)."""

    started = time.perf_counter()
    corpus = resolve_corpus(str(name_or_path))
    sequences, report, _ = load_sequences(corpus, cache_dir=cache_dir, workers=workers, progress=progress)
    failures = [failure_record(f) for f in report.failures]
    if not sequences:
        raise _no_pieces_error("reference", str(name_or_path), report.n_files, failures)
    return PieceSet("reference", str(name_or_path), list(sequences), report.n_files, failures,
                    time.perf_counter() - started)
