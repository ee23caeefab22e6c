"""Evaluation of a training run's own samples against its validation pieces: the scalars TensorBoard plots
during training and the report.html written at its end. The numbers are `musejax evaluate`'s (`evaluate_sets`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from note_seq import NoteSequence

from musejax.evaluate.inputs import PieceSet
from musejax.evaluate.report import evaluate_sets, EvaluateOptions, Evaluation, write_report
from musejax.data.readers import read_piece
from musejax.evaluate.html import PieceMedia, write_html
from musejax.lm.data import load_lm_data
from musejax.midi.audio import Renderer
from musejax.midi.plots import pianoroll_image

BOARD_SAMPLE_RATE = 16_000  # TensorBoard audio: small event files
REPORT_DIR = "evaluation"  # <run>/evaluation: where `musejax evaluate --samples RUN` writes by default too


def decode_windows(encoding: Any, windows: np.ndarray, mask: np.ndarray, limit: int | None = None,
                   name: str = "valid") -> list[NoteSequence]:
    """The (masked) windows of a split as NoteSequences (at most `limit`), named <name>_000 ..."""
    sequences = []
    for index in range(len(windows) if limit is None else min(limit, len(windows))):
        ns = encoding.decode(np.asarray(windows[index])[np.asarray(mask[index], bool)])
        ns.id = f"{name}_{index:03d}"
        sequences.append(ns)
    return sequences


def compare(generated: Sequence[NoteSequence], reference: Sequence[NoteSequence], *, originality: bool = True,
            source: str = "samples", reference_source: str = "validation pieces") -> Evaluation:
    """`evaluate_sets` of two in-memory sets (ValueError with fewer than two pieces with notes in either)."""
    options = EvaluateOptions(originality=originality, musegan=False)
    return evaluate_sets(PieceSet("generated", source, list(generated), len(generated), []),
                         PieceSet("reference", reference_source, list(reference), len(reference), []), options)


def sample_scalars(evaluation: Evaluation) -> dict[str, float]:
    """Per metric: the samples' mean (`<metric>`) and its overlap with the reference (`<metric>_overlap`)."""
    out = {}
    for name, row in evaluation.report["metrics"].items():
        for key, value in ((name, row["generated"]["mean"]), (f"{name}_overlap", row["overlap_area"])):
            if value is not None and math.isfinite(float(value)):
                out[key] = float(value)
    return out


def write_run_report(midi_paths: Sequence[Path], reference: Sequence[NoteSequence], out_dir: str | Path,
                     *, source: str = "samples") -> Path:
    """report.html (+ json, md, plots) of a run's written samples against `reference`, showing each sample's
    PNG and WAV written beside its MIDI. With fewer than two samples the page shows them without the tables."""

    pieces = []
    sequences = []
    for path in midi_paths:
        path = Path(path)
        sequences.append(read_piece(path))
        sequences[-1].id = path.name
        png, wav = path.with_suffix(".png"), path.with_suffix(".wav")
        pieces.append(PieceMedia(path.name, png if png.is_file() else None, wav if wav.is_file() else None))
    out_dir = Path(out_dir)
    try:
        evaluation = compare(sequences, reference, source=source)
    except ValueError as err:  # too few pieces with notes for the set comparison
        note = f"# Samples of `{source}`\n\nNo metric tables: {err}. Sample at least two pieces to compare them.\n"
        out_dir.mkdir(parents=True, exist_ok=True)
        return write_html(note, out_dir, pieces=pieces)
    return write_report(evaluation, out_dir, pieces=pieces)["html"]


def lm_validation_pieces(config: Any, limit: int = 64) -> list[NoteSequence]:
    """A language-model run's validation pieces (from the corpus cache), decoded from its encoding."""

    data = load_lm_data(config.data, progress=False)
    return decode_windows(data.encoding, data.valid.windows, data.valid.mask, limit)


def log_samples(writer: Any, sequences: Sequence[NoteSequence], reference: Sequence[NoteSequence], step: int, *,
                with_metrics: bool) -> dict[str, float]:
    """Each sample as a piano-roll image and audio (built-in synthesizer, 16 kHz) in TensorBoard under
    samples/; `with_metrics`: also the metrics against `reference` (split "samples", returned)."""

    renderer = Renderer("builtin", sample_rate=BOARD_SAMPLE_RATE)
    for index, sequence in enumerate(sequences):
        writer.image(f"samples/pianoroll_{index}", pianoroll_image(sequence), step)
        writer.audio(f"samples/audio_{index}", renderer.samples(sequence).astype(np.float32), BOARD_SAMPLE_RATE, step)
    if not with_metrics:
        return {}
    try:
        scalars = sample_scalars(compare(sequences, reference, originality=False))
    except ValueError:  # fewer than two samples with notes: no set to compare yet
        return {}
    writer.write(step, "samples", scalars)
    return scalars
