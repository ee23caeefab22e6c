"""`musejax evaluate` end to end on folders of MIDI files (one unparseable), a run directory, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from note_seq import sequence_proto_to_midi_file
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax import cli
from test_evaluate_likelihood import run_and_data  # noqa: F401  (module-scoped fixture: a tiny LM run)


def piece(voices: list[list[tuple[int, float]]], seconds_per_quarter: float = 0.5) -> NoteSequence:
    """voices: per instrument a list of (pitch, quarters); consecutive notes, 4/4 at 120 qpm."""
    ns = NoteSequence(ticks_per_quarter=220)
    ns.tempos.add(qpm=60 / seconds_per_quarter)
    ns.time_signatures.add(numerator=4, denominator=4)
    for instrument, notes in enumerate(voices):
        time = 0.0
        for pitch, quarters in notes:
            ns.notes.add(pitch=pitch, velocity=80, start_time=time * seconds_per_quarter,
                         end_time=(time + quarters) * seconds_per_quarter, instrument=instrument, program=0)
            time += quarters
    ns.total_time = max(n.end_time for n in ns.notes)
    return ns


def random_voices(rng, n_voices: int, bars: int = 4) -> list[list[tuple[int, float]]]:
    voices = []
    for v in range(n_voices):
        notes, time = [], 0.0
        while time < 4 * bars:
            length = float(rng.choice([0.5, 1.0, 1.0, 2.0]))
            notes.append((int(rng.integers(48 + 7 * v, 72 + 7 * v)), length))
            time += length
        voices.append(notes)
    return voices


def write(folder: Path, name: str, ns: NoteSequence) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sequence_proto_to_midi_file(ns, str(folder / name))
    return folder / name


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    reference, samples = tmp_path / "reference", tmp_path / "samples"
    reference_voices = [random_voices(rng, 3) for _ in range(5)]
    for i, voices in enumerate(reference_voices):
        write(reference, f"ref_{i}.mid", piece(voices))
    (reference / "broken.mid").write_bytes(b"MThd not really a midi file")
    for i in range(4):
        write(samples, f"sample_{i}.mid", piece(random_voices(rng, 2)))
    copied = [[(p + 2, q) for p, q in reference_voices[2][1]]]  # ref_2's second voice, a tone up
    write(samples, "copy.mid", piece(copied))
    (samples / "garbage.mid").write_bytes(b"\x00\x01 definitely not MIDI")
    (samples / "notes.txt").write_text("not music, ignored")
    return tmp_path, samples, reference, len(copied[0])


def evaluate(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(["evaluate", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_end_to_end_writes_report_markdown_and_plots(folders, capsys):
    tmp_path, samples, reference, n_copied = folders
    code, out, err = evaluate(capsys, "--samples", samples, "--reference", reference,
                              "--cache-dir", tmp_path / "cache", "--no-progress")
    assert code == 0, err
    out_dir = samples / "evaluation"
    report = json.loads((out_dir / "report.json").read_text())
    assert report["generated"]["n_files"] == 6 and report["generated"]["n_evaluated"] == 5
    assert [Path(f["path"]).name for f in report["generated"]["failures"]] == ["garbage.mid"]
    assert [Path(f["path"]).name for f in report["reference"]["failures"]] == ["broken.mid"]
    assert report["reference"]["n_evaluated"] == 5
    assert {row["id"] for row in report["per_piece"]} == {"copy.mid"} | {f"sample_{i}.mid" for i in range(4)}
    copy = next(row for row in report["per_piece"] if row["id"] == "copy.mid")
    assert copy["copies_min_bars"] and copy["copied_from"].endswith("ref_2.mid")
    assert copy["longest_copied_notes"] == n_copied  # the whole copied line, found transposed
    assert report["originality"]["copying_pieces"] == ["copy.mid"]
    assert set(report["metrics"]) >= {"polyphony", "pitch_class_entropy", "groove_consistency"}
    assert set(report["distributions"]) == {"pitch_class_histogram", "pitch_class_transition_matrix",
                                            "note_length_histogram", "inter_onset_interval", "pitch_interval"}
    assert report["musegan"]["generated"]["n_segments"] >= 4 and len(report["musegan"]["reference"]["EB"]) == 4
    assert report["likelihood"] is None
    markdown = (out_dir / "report.md").read_text()
    assert "garbage.mid" in markdown and "## Originality" in markdown and "| polyphony |" in markdown
    for name in ("pitch_class_histograms.png", "metric_distributions.png", "feature_distances.png"):
        assert (out_dir / name).read_bytes()[:4] == b"\x89PNG"
    assert "copies >= 2 bars: 20.0% of pieces" in out
    # a second run ignores the evaluation folder it wrote inside the samples folder
    code, _, err = evaluate(capsys, "--samples", samples, "--reference", reference, "--cache-dir", tmp_path / "cache",
                            "--no-progress", "--no-plots", "--no-originality")
    assert code == 0, err
    assert json.loads((out_dir / "report.json").read_text())["originality"] is None


def test_run_directory_samples_and_lm_likelihood(run_and_data, folders, tmp_path, capsys):  # noqa: F811
    run_dir, *_ = run_and_data
    _, samples, reference, _ = folders
    (run_dir / "samples").mkdir(exist_ok=True)
    for path in samples.glob("*.mid"):
        (run_dir / "samples" / path.name).write_bytes(path.read_bytes())
    code, out, err = evaluate(capsys, "--samples", run_dir, "--reference", reference, "--lm", run_dir,
                              "--out", tmp_path / "eval", "--cache-dir", tmp_path / "cache", "--no-progress",
                              "--no-plots")
    assert code == 0, err
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    likelihood = report["likelihood"]
    assert likelihood["generated"]["n_pieces"] == 5 and likelihood["reference"]["n_pieces"] == 5
    assert likelihood["generated"]["nll_per_step"] > 0
    assert "NLL per step" in out and "## Likelihood" in (tmp_path / "eval" / "report.md").read_text()


def test_clear_errors_for_bad_inputs(folders, tmp_path, capsys):
    _, samples, reference, _ = folders
    cache = ["--cache-dir", tmp_path / "cache", "--no-progress"]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = evaluate(capsys, "--samples", empty, "--reference", reference, *cache)
    assert code == 2 and f"{empty}: no generated pieces: no files with a music suffix" in err

    only_bad = tmp_path / "only_bad"
    only_bad.mkdir()
    (only_bad / "x.mid").write_bytes(b"junk")
    code, _, err = evaluate(capsys, "--samples", only_bad, "--reference", reference, *cache)
    assert code == 2 and "no generated pieces could be read from 1 files" in err

    code, _, err = evaluate(capsys, "--samples", tmp_path / "missing", "--reference", reference, *cache)
    assert code == 2 and "no such file or directory" in err

    code, _, err = evaluate(capsys, "--samples", samples, "--reference", "no-such-corpus", *cache)
    assert code == 2 and "unknown corpus 'no-such-corpus'" in err

    run_without_samples = tmp_path / "run"
    run_without_samples.mkdir()
    (run_without_samples / "config.json").write_text("{}")
    code, _, err = evaluate(capsys, "--samples", run_without_samples, "--reference", reference, *cache)
    assert code == 2 and "run has no samples/ folder" in err

    code, _, err = evaluate(capsys, "--samples", samples, "--reference", reference, "--lm", empty, *cache)
    assert code == 2 and "not a run directory" in err
