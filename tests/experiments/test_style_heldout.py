"""experiments/style_heldout.py: the accompaniments it adds do what its doc says, and a run is scored on every
collection and accompaniment (the tiny classifier, a few tunes of each collection)."""
from __future__ import annotations

import json

import numpy as np
from note_seq.protobuf.music_pb2 import NoteSequence

from experiment_scripts import load_experiment
from style_fixtures import tiny_style_run


def tune() -> NoteSequence:
    """Two 4/4 bars of a C major tune in quarter notes at 120 qpm (a quarter = 0.5 s)."""
    ns = NoteSequence(id="tune")
    ns.tempos.add(time=0.0, qpm=120.0)
    ns.time_signatures.add(time=0.0, numerator=4, denominator=4)
    for i, pitch in enumerate([72, 76, 79, 76, 74, 71, 67, 72]):
        ns.notes.add(pitch=pitch, start_time=i * 0.5, end_time=(i + 1) * 0.5, velocity=80)
    ns.total_time = 4.0
    return ns


def test_held_out_accompaniments_and_a_scored_run(tmp_path):
    heldout = load_experiment("style_heldout")
    melody = {(n.pitch, n.start_time) for n in tune().notes}

    def added(kind):
        out = heldout.condition(tune(), kind, np.random.default_rng(0))
        assert melody <= {(n.pitch, n.start_time) for n in out.notes}  # the tune is kept
        return [n for n in out.notes if n.instrument == 1]  # the accompaniment's own track

    strum = added("strum")
    assert len(strum) == 6 * 8 and {round(n.end_time - n.start_time, 3) for n in strum} == {0.25}  # 6 strings a beat
    thirds = added("thirds")
    assert len(thirds) == 8 and all(3 <= m.pitch - n.pitch <= 4 for m, n in zip(tune().notes, thirds))
    alberti = added("alberti")
    assert len(alberti) == 32 and len({n.start_time for n in alberti}) == 32  # sixteenths, one note each
    pads = added("pads")
    assert {n.start_time for n in pads} == {0.0, 1.0, 2.0, 3.0} and len(pads) == 16  # 4 notes per half bar
    run, _, _ = tiny_style_run()
    results = heldout.main(["--run", f"tiny={run}", "--max-tunes", "3", "--out", str(tmp_path)])
    for collection in heldout.COLLECTIONS:
        block = results["collections"][collection]
        assert block["n_tunes"] == 3 and list(block["conditions"]) == list(heldout.CONDITIONS)
        score = block["conditions"]["strum"]["tiny"]
        assert score["n"] == 3 and 0.0 <= score["folk_accepted"] <= score["folk"] <= 1.0
    assert "| alberti * |" in (tmp_path / "style_heldout.md").read_text()
    assert json.loads((tmp_path / "style_heldout.json").read_text())["collections"]["misc-folk"]["n_tunes"] == 3
