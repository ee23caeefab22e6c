"""A Nottingham-like BL2012 file from ABC tunes with chord symbols, for experiments/polyphonic.py (issue 14).

BL2012's Nottingham set is the Nottingham Music Database's folk tunes as MIDI: the melody over the chords its
ABC names, every piece transposed to C major / C minor and sampled every eighth note, 694 / 173 / 170 tunes.
Where that file is not at hand but the database's ABC is (or any ABC tunebooks with "G"-style chord symbols),
this builds a file of the same kind:

    python experiments/nottingham_abc.py ABC_cleaned/ --out nottingham-abc.json
    python experiments/polyphonic.py --data nottingham-abc.json --out runs/poly-nottingham-abc

Each tune is read by music21 (repeats expanded, as a MIDI rendering plays them; as written where the expansion
would more than double it). The melody stays as written; each chord symbol becomes a block chord held until the
next symbol: its pitch classes in root position from the root in MIDI 48..59, and a slash chord's bass note an
octave lower. The tune is transposed by -6..+5 semitones so
that its key (Krumhansl-Schmuckler on the melody) is C major or C minor, then sampled every eighth note (what
sounds on each eighth's onset). The tunes are shuffled with --seed and split in BL2012's Nottingham proportions.
It is not BL2012's file: their MIDI voices the chords in its own way, so NLLs on this file are near theirs, not
equal to them. A tune that cannot be read is skipped and listed (file, X: number, reason), never dropped silently.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import random
import sys
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from musejax.data.bl2012 import save_bl2012  # noqa: E402
from musejax.data.bl2012_corpus import data_stats  # noqa: E402
from musejax.data.harmony import estimate_key  # noqa: E402
from musejax.data.piano import PIANO_HIGH_PITCH, PIANO_KEYS, PIANO_LOW_PITCH  # noqa: E402
from musejax.data.readers import decode_text, split_abc_tunebook  # noqa: E402

FRAMES_PER_QUARTER = 2  # eighth notes, as BL2012's Nottingham
CHORD_ROOT_LOW = 48  # C3: chord roots in 48..59, a slash chord's bass in 36..47
MAX_REPEAT_GROWTH = 2.0  # an expanded tune is at most twice as long as written
NOTTINGHAM_SPLIT = {"train": 694, "valid": 173, "test": 170}  # BL2012's Nottingham, of 1037 tunes


def tune_roll(abc: str) -> np.ndarray:
    """One ABC tune (header fields included) -> its (T, 88) bool piano-roll: melody plus held chord symbols,
    in C major / C minor, one frame per eighth note. ValueError when the tune has no notes."""
    from music21 import chord, converter, harmony, note

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # music21's ABC warnings on unusual but readable tunes
        score = converter.parseData(abc, format="abc")
        written = float(score.highestTime)
        try:
            expanded = score.expandRepeats()
        except Exception:  # noqa: BLE001 - music21 raises several kinds on repeats it cannot expand: play as written
            expanded = score
        # Each section plays at most twice; music21 expands chains of :|: sections many times over (a 54-bar reel
        # became 1,008 bars): play such a tune as written
        if float(expanded.highestTime) <= MAX_REPEAT_GROWTH * written + 1e-6:
            score = expanded
    melody, symbols = [], []
    for element in score.flatten().notesAndRests:
        start, end = float(element.offset), float(element.offset + element.duration.quarterLength)
        if isinstance(element, harmony.ChordSymbol):  # a subclass of Chord: test it first
            symbols.append(element)
        elif isinstance(element, note.Note) and end > start:
            melody.append((element.pitch.midi, start, end))
        elif isinstance(element, chord.Chord) and end > start:
            melody.extend((p.midi, start, end) for p in element.pitches)
    if not melody:
        raise ValueError("no notes")
    length = max(end for _, _, end in melody)
    notes = list(melody)
    symbols.sort(key=lambda s: float(s.offset))
    for index, symbol in enumerate(symbols):
        start = float(symbol.offset)
        end = float(symbols[index + 1].offset) if index + 1 < len(symbols) else length
        if end <= start or not symbol.pitches:
            continue
        root = symbol.root().midi % 12
        notes.extend((CHORD_ROOT_LOW + root + (p.midi - root) % 12, start, end) for p in symbol.pitches)
        bass = symbol.bass()
        if bass is not None and bass.midi % 12 != root:
            notes.append((CHORD_ROOT_LOW - 12 + bass.midi % 12, start, end))
    tonic, _ = estimate_key(*(np.array(column) for column in zip(*melody)))
    shift = (6 - tonic) % 12 - 6  # -6..+5: the tonic onto C

    def frame(quarters: float) -> int:  # the first frame at or after a time
        return int(math.ceil(quarters * FRAMES_PER_QUARTER - 1e-6))

    roll = np.zeros((frame(length), PIANO_KEYS), bool)
    for pitch, start, end in notes:
        if PIANO_LOW_PITCH <= pitch + shift <= PIANO_HIGH_PITCH:
            roll[frame(start):frame(end), pitch + shift - PIANO_LOW_PITCH] = True
    return roll


def _read(job: tuple[str, int, str]) -> tuple[str, int, np.ndarray | None, str]:
    path, number, abc = job
    try:
        roll = tune_roll(abc)
    except Exception as error:  # noqa: BLE001 - any parse failure is one skipped, reported tune
        return path, number, None, f"{type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''}"
    return path, number, roll, "" if roll.any() else "no notes"


def abc_files(paths: Sequence[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() == ".abc"))
        elif path.is_file():
            files.append(path)
        else:
            raise ValueError(f"{path}: no such file or folder")
    if not files:
        raise ValueError(f"no .abc files in {', '.join(map(str, paths))}")
    return files


def build(paths: Sequence[Path], out: Path, seed: int = 0, workers: int = 2,
          progress: bool = False) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """Read every tune of the ABC files, split and write the BL2012 file; -> (rolls per split, failures)."""
    jobs = []
    for file in abc_files(paths):
        header, tunes, _ = split_abc_tunebook(decode_text(file.read_bytes()))
        jobs.extend((str(file), tune.number, "\n".join(header + tune.lines) + "\n") for tune in tunes)
    rolls, failures = [], []
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers))
            results = pool.imap(_read, jobs, chunksize=8)
        else:
            results = map(_read, jobs)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(jobs), desc="tunes", unit="tune")
        for path, number, roll, reason in results:
            if reason:
                failures.append(f"{path} X:{number}: {reason}")
            else:
                rolls.append(roll)
    if len(rolls) < len(NOTTINGHAM_SPLIT):
        raise ValueError(f"{len(rolls)} readable tunes in {len(jobs)}: too few to split into train, valid and test")
    random.Random(seed).shuffle(rolls)
    total = sum(NOTTINGHAM_SPLIT.values())
    n_test = max(1, round(len(rolls) * NOTTINGHAM_SPLIT["test"] / total))
    n_valid = max(1, round(len(rolls) * NOTTINGHAM_SPLIT["valid"] / total))
    splits = {"train": rolls[n_test + n_valid:], "valid": rolls[n_test:n_test + n_valid], "test": rolls[:n_test]}
    save_bl2012(out, splits)
    return splits, failures


def main(argv: Sequence[str] | None = None) -> dict[str, list[np.ndarray]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("abc", nargs="+", type=Path, help="ABC files or folders of them")
    parser.add_argument("--out", type=Path, required=True, help="the BL2012 file to write (.json, .pickle or .pkl)")
    parser.add_argument("--seed", type=int, default=0, help="shuffle before the split (default 0)")
    parser.add_argument("--workers", type=int, default=2, help="reading processes (default 2; 1: in this process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        splits, failures = build(args.abc, args.out, args.seed, args.workers,
                                 progress=not args.no_progress and sys.stderr.isatty())
    except ValueError as error:
        print(f"nottingham_abc.py: error: {error}", file=sys.stderr)
        raise SystemExit(2)
    for failure in failures:
        print(f"skipped {failure}", file=sys.stderr)
    for split, stats in data_stats(splits).items():
        print(f"{split}: {stats['pieces']} tunes, {stats['steps']} steps, {stats['mean_keys_per_step']} keys per step, "
              f"longest {stats['max_piece_steps']}")
    print(f"wrote {args.out} ({sum(map(len, splits.values()))} tunes; {len(failures)} skipped)")
    return splits


if __name__ == "__main__":
    main()
