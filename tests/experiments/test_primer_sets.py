"""experiments/primer_sets.py: out-of-corpus primer sets from the bundled music21 corpus, with their own baseline."""

from __future__ import annotations

import json

import numpy as np

from experiment_scripts import load_experiment


def test_primer_sets_write_melodies_lead_sheets_and_openings_with_what_follows_them(tmp_path, capsys):
    from musejax.data.encodings import PianoRollEncoding
    from musejax.data.readers import read_piece

    load_experiment("primer_sets").main(["--out", str(tmp_path), "--n", "2", "--bars", "2"])
    encoding = PianoRollEncoding()
    rolls = {}
    for name in ("folk-melody", "folk-chords", "openings"):
        files = sorted((tmp_path / name).glob("*.mid"))
        assert len(files) == 2, name
        rolls[name] = [encoding.encode(read_piece(path)) for path in files]
        baseline = json.loads((tmp_path / name / "baseline.json").read_text())
        assert baseline["n_pairs"] == 2 and 0.0 <= baseline["key_agreement"] <= 1.0
    for melody, lead_sheet in zip(rolls["folk-melody"], rolls["folk-chords"], strict=True):
        assert melody.sum(1).max() == 1 and lead_sheet.sum(1).max() >= 3  # one line; the same tune over triads
        top = np.array([row.nonzero()[0].max() if row.any() else -1 for row in lead_sheet])
        sounding = melody.any(1)
        np.testing.assert_array_equal(top[sounding], melody[sounding].argmax(1))  # the tune stays on top
    out = capsys.readouterr().out
    assert all(f"| {name} | 2 |" in out for name in rolls)  # the baseline table