"""Shared fixtures of the style tests: a tiny labelled MIDI corpus and a tiny classifier trained on it once per
test process (tests/style/test_style.py and tests/style/test_recommend.py both use it)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from conftest import write_midi


def write_notes(path: Path, notes: list[tuple[int, float, float]]) -> Path:
    """A one-track MIDI file of (pitch, start s, end s) notes at 120 qpm."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(velocity=80, pitch=p, start=s, end=e) for p, s, e in notes]
    midi.instruments.append(piano)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


def scale_piece(rng: np.random.Generator, n_notes: int = 48) -> list[tuple[int, float, float]]:
    """Monophonic eighth-note random walk."""
    pitch, notes = int(60 + rng.integers(-5, 6)), []
    for i in range(n_notes):
        notes.append((pitch, i * 0.25, (i + 1) * 0.25))
        pitch = int(np.clip(pitch + rng.choice([-2, -1, 1, 2]), 40, 90))
    return notes


def chord_piece(rng: np.random.Generator, n_chords: int = 12) -> list[tuple[int, float, float]]:
    """Four-note block chords, one per bar (2 s)."""
    base, notes = int(48 + rng.integers(0, 12)), []
    for i in range(n_chords):
        root = base + int(rng.choice([0, 5, 7, 9]))
        notes += [(p, i * 2.0, (i + 1) * 2.0) for p in (root, root + 4, root + 7, root + 12)]
    return notes


def labelled_corpus(root: Path, n_per_style: int = 12, seed: int = 0) -> Path:
    """root/scales/*.mid and root/chords/*.mid: two styles told apart by texture (labels = folder)."""
    rng = np.random.default_rng(seed)
    for i in range(n_per_style):
        write_notes(root / "scales" / f"s{i:02d}.mid", scale_piece(rng))
        write_notes(root / "chords" / f"c{i:02d}.mid", chord_piece(rng))
    return root


def train_args(corpus: Path, cache: Path, workdir: Path, steps: int = 30) -> list[str]:
    return ["classify", "--train", "--config", "style:tiny", "--workdir", str(workdir), "--no-progress",
            f"--config.data.corpus={corpus}", "--config.data.labels=folder", f"--config.data.cache_dir={cache}",
            "--config.data.workers=1", f"--config.train.steps={steps}"]


@functools.lru_cache(maxsize=1)
def tiny_style_run() -> tuple[Path, Path, Path]:
    """(run dir, corpus dir, cache dir) of a tiny classifier trained through the CLI, once per process."""
    from musejax.cli import main

    root = Path(tempfile.mkdtemp(prefix="musejax-style-"))
    atexit.register(shutil.rmtree, root, True)
    corpus, cache, run = labelled_corpus(root / "corpus"), root / "cache", root / "run"
    assert main(train_args(corpus, cache, run)) == 0
    return run, corpus, cache


__all__ = ["write_midi", "write_notes", "labelled_corpus", "tiny_style_run", "train_args"]
