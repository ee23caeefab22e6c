"""experiments/style_robustness.py on the tiny classifier run: every shift scored per style, md + JSON written."""
from __future__ import annotations

import json

import pytest

from experiment_scripts import load_experiment
from style_fixtures import tiny_style_run


def test_every_shift_is_scored_beside_the_unshifted_figures(tmp_path):
    robustness = load_experiment("style_robustness")
    run, _, _ = tiny_style_run()
    payload = robustness.main(["--run", f"tiny={run}", "--run", str(run), "--ood-pieces", "0", "--out",
                               str(tmp_path), "--shifts", "melody_only,accompaniment,one_instrument,tempo_x2"])
    result = payload["runs"]["tiny"]
    assert list(result["shifts"]) == ["none", "melody_only", "accompaniment", "one_instrument", "tempo_x2"]
    none = result["shifts"]["none"]
    assert none["n"] == result["n_test"] > 0 and set(none["per_style"]) == {"chords", "scales"}
    # through a MIDI file and back, at another tempo or merged into one track, the tiny classifier sees the same
    for shift in ("one_instrument", "tempo_x2"):
        assert result["shifts"][shift]["accuracy"] == none["accuracy"]
    assert 0.0 <= result["shifts"]["melody_only"]["unknown"] <= 1.0
    text = (tmp_path / "style_robustness.md").read_text()
    assert "| melody_only (the top line (skyline) alone) |" in text and "### tiny: accuracy / unknown per style" in text
    assert json.loads((tmp_path / "style_robustness.json").read_text())["runs"]["run"]["n_test"] == result["n_test"]


@pytest.mark.slow  # parses about twenty music21 corpus works
def test_the_valid_out_of_style_set_shares_no_work_with_the_reported_one():
    classifier = load_experiment("style_classifier")
    test = {ns.id for ns in classifier.ood_sequences(40, 1)}
    valid = {ns.id for ns in classifier.ood_sequences(40, 1, split="valid")}
    assert len(test) >= 5 and len(valid) >= 8 and not test & valid
    # besides composers of its own, further works of the reported set's composers
    assert {i.split("/")[0] for i in valid} & {i.split("/")[0] for i in test}
