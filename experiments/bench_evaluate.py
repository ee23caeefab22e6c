"""Benchmark `musejax evaluate`: 1,000 synthetic generated pieces against the Bach chorales (target <= 60 s).

    python experiments/bench_evaluate.py                     # 1,000 pieces vs bach-chorales
    python experiments/bench_evaluate.py --n 200 --reference bach-chorales --out /tmp/bench

The generated set mixes random-walk melodies (one voice, 16th-note grid), chorale-like four-voice pieces
(quarter and eighth notes, S/A/T/B ranges, random walks in a random major key) and, as plagiarism the
originality index must find, 5% of four-voice pieces whose soprano copies four bars of a reference chorale
line transposed. They are written as MIDI files and evaluated exactly as the command does: read the samples,
load the reference through the corpus cache (the first, cold parse is timed separately and excluded from the
target, as it is a one-off cost shared with training), run every evaluation, write the report and plots.
Prints a markdown table of the stages and writes JSON (default experiments/results/bench_evaluate.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_SECONDS = 60.0
VOICE_RANGES = ((60, 79), (55, 74), (48, 67), (40, 60))  # S, A, T, B
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])


def random_walk_melody(rng: np.random.Generator, bars: int = 16):
    from note_seq.protobuf.music_pb2 import NoteSequence

    ns = NoteSequence(ticks_per_quarter=220)
    ns.tempos.add(qpm=120.0)
    ns.time_signatures.add(numerator=4, denominator=4)
    step, pitch = 0, int(rng.integers(60, 72))
    while step < bars * 16:
        length = int(rng.choice([1, 2, 2, 4, 4, 4, 8]))
        if rng.random() > 0.1:  # 10% rests
            ns.notes.add(pitch=pitch, velocity=90, start_time=step * 0.125, end_time=(step + length) * 0.125)
        pitch = int(np.clip(pitch + rng.integers(-4, 5), 48, 84))
        step += length
    ns.total_time = bars * 2.0
    return ns


def chorale_like(rng: np.random.Generator, bars: int = 12, soprano: list[tuple[int, float]] | None = None):
    """Four voices (one MIDI instrument each); `soprano` = [(pitch, quarters)] replaces the soprano's start."""
    from note_seq.protobuf.music_pb2 import NoteSequence

    ns = NoteSequence(ticks_per_quarter=220)
    ns.tempos.add(qpm=100.0)
    ns.time_signatures.add(numerator=4, denominator=4)
    tonic, seconds_per_quarter = int(rng.integers(0, 12)), 0.6
    scale = np.array([p for p in range(36, 84) if (p - tonic) % 12 in MAJOR])
    for voice, (low, high) in enumerate(VOICE_RANGES):
        quarters = 0.0
        if voice == 0 and soprano:
            for pitch, length in soprano:
                ns.notes.add(pitch=pitch, velocity=80, start_time=quarters * seconds_per_quarter,
                             end_time=(quarters + length) * seconds_per_quarter, instrument=0, program=52)
                quarters += length
        index = int(rng.integers(np.searchsorted(scale, low), np.searchsorted(scale, high)))
        while quarters < bars * 4:
            length = min(float(rng.choice([1.0, 1.0, 1.0, 0.5, 2.0])), bars * 4 - quarters)
            ns.notes.add(pitch=int(scale[index]), velocity=80, start_time=quarters * seconds_per_quarter,
                         end_time=(quarters + length) * seconds_per_quarter, instrument=voice, program=52)
            index = int(np.clip(index + rng.integers(-2, 3), np.searchsorted(scale, low),
                                np.searchsorted(scale, high) - 1))
            quarters += length
    ns.total_time = bars * 4 * seconds_per_quarter
    return ns


def copied_soprano(rng: np.random.Generator, reference) -> list[tuple[int, float]]:
    """[(pitch, quarters)]: the first four bars (16 quarters) of a reference chorale's soprano, transposed."""
    from musejax.evaluate.pieces import grid_piece

    for _ in range(100):
        piece = grid_piece(reference[int(rng.integers(len(reference)))], steps_per_quarter=4)
        soprano = piece.voice == 0
        start, end, pitch = piece.start[soprano], piece.end[soprano], piece.pitch[soprano]
        if len(start) > 20 and np.all(start[1:] == end[:-1]):  # no rests, so the copy keeps its rhythm
            shift = int(rng.integers(-5, 6))
            notes, total = [], 0
            for p, s, e in zip(pitch, start, end):
                if total >= 64:
                    break
                notes.append((int(p) + shift, (e - s) / 4))
                total += int(e - s)
            return notes
    raise RuntimeError("no reference soprano line without rests found")


def write_samples(out: Path, n: int, reference, seed: int) -> int:
    from note_seq import sequence_proto_to_midi_file

    rng = np.random.default_rng(seed)
    n_copies = 0
    for i in range(n):
        kind = i % 20
        if kind == 0:
            ns, n_copies = chorale_like(rng, soprano=copied_soprano(rng, reference)), n_copies + 1
        elif kind % 2:
            ns = random_walk_melody(rng)
        else:
            ns = chorale_like(rng)
        sequence_proto_to_midi_file(ns, str(out / f"sample_{i:04d}.mid"))
    return n_copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reference", default="bach-chorales")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("experiments/results/bench_evaluate.json"))
    args = parser.parse_args()

    from musejax.evaluate.inputs import read_reference, read_samples
    from musejax.evaluate.report import EvaluateOptions, evaluate_sets, write_report

    rows: list[tuple[str, float]] = []
    start = time.perf_counter()
    reference = read_reference(args.reference, progress=False)  # fills the corpus cache on a first run
    rows.append(("reference: first load (cache fill if cold; not in the total)", time.perf_counter() - start))
    with tempfile.TemporaryDirectory(prefix="musejax-bench-eval-") as tmp:
        samples = Path(tmp) / "samples"
        samples.mkdir()
        n_copies = write_samples(samples, args.n, reference.sequences, args.seed)
        clock = time.perf_counter()
        generated = read_samples(samples)
        rows.append((f"read {args.n} generated MIDI files", time.perf_counter() - clock))
        clock = time.perf_counter()
        reference = read_reference(args.reference, progress=False)
        rows.append((f"load reference ({len(reference.sequences)} pieces, cached)", time.perf_counter() - clock))
        evaluation = evaluate_sets(generated, reference, EvaluateOptions(seed=args.seed))
        rows += [(f"evaluate: {name}", seconds) for name, seconds in evaluation.report["timings_seconds"].items()]
        clock = time.perf_counter()
        write_report(evaluation, Path(tmp) / "evaluation")
        rows.append(("write report.json, report.md and plots", time.perf_counter() - clock))
    total = sum(seconds for _, seconds in rows[1:])
    found = evaluation.report["originality"]["share_copying_min_bars"] * len(evaluation.report["per_piece"])
    print("| stage | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")
    print(f"| **total (target <= {TARGET_SECONDS:g} s)** | **{total:.2f}** |")
    print(f"\nplagiarised pieces planted: {n_copies}, pieces found copying >= 2 bars: {found:.0f}")
    result = {"n_generated": args.n, "reference": args.reference, "n_reference": len(reference.sequences),
              "stages_seconds": dict(rows), "total_seconds": total, "target_seconds": TARGET_SECONDS,
              "planted_copies": n_copies, "found_copying_min_bars": int(round(found)),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count()}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
