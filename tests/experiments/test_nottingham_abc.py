"""experiments/nottingham_abc.py: ABC tunes with chord symbols -> a Nottingham-like BL2012 file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from experiment_scripts import load_experiment

TUNE = """X:1
T:Test
M:4/4
L:1/4
K:G
"G"GABG|"D"F2 D2|"G"GABc|"D7"d2 "G"G2|
"""


@pytest.fixture(scope="module")
def nottingham_abc():
    return load_experiment("nottingham_abc")


def _keys(frame: np.ndarray) -> list[int]:
    return (np.flatnonzero(frame) + 21).tolist()


def test_a_tune_is_its_melody_over_held_chords_in_c_at_eighth_notes(nottingham_abc):
    roll = nottingham_abc.tune_roll(TUNE)
    assert roll.shape == (32, 88)  # 16 quarter notes, two frames each
    assert _keys(roll[0]) == _keys(roll[1]) == [60, 64, 67, 72]  # G major -> C: the C triad from C4 under C5
    assert _keys(roll[2]) == [60, 64, 67, 74]
    assert _keys(roll[8]) == [55, 59, 62, 71]  # D -> G, held under the melody's F# -> B
    assert _keys(roll[24]) == [55, 59, 62, 65, 79]  # D7 -> G7
    assert _keys(roll[28]) == _keys(roll[31]) == [60, 64, 67, 72]


def test_build_splits_every_readable_tune_and_reports_the_rest(nottingham_abc, tmp_path, capsys):
    import music21

    from musejax.data.bl2012 import load_bl2012

    folder = tmp_path / "abc"
    folder.mkdir()
    reels = Path(music21.__file__).parent / "corpus" / "nottingham-dataset" / "reelsa-c.abc"  # two tunes
    shutil.copy(reels, folder / "reels.abc")
    (folder / "book.abc").write_text(TUNE + "\nX:2\nT:No note length\nK:C\nzzzz|\n\nX:3\nT:Rests\nL:1/4\nK:C\nzzzz|\n")
    out = tmp_path / "nottingham.json"
    nottingham_abc.main([str(folder), "--out", str(out), "--workers", "1", "--no-progress"])
    splits = load_bl2012(out)
    assert sum(map(len, splits.values())) == 3 and all(len(v) for v in splits.values())
    for roll in (r for rolls in splits.values() for r in rolls):
        assert roll.shape[1] == 88 and roll.sum(1).max() >= 4  # a melody note over a triad
    captured = capsys.readouterr()
    assert f"skipped {folder / 'book.abc'} X:2: ABCHandlerException: no active default note length" in captured.err
    assert f"skipped {folder / 'book.abc'} X:3: ValueError: no notes" in captured.err
    assert "3 tunes; 2 skipped" in captured.out
    with pytest.raises(SystemExit):
        nottingham_abc.main([str(tmp_path / "missing"), "--out", str(out)])
    assert "missing: no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("body, quarters", [("|:CDEF|GABc:|\n|:cBAG|FEDC:|\n", 32),  # AABB
                                            ("CDEF|GABc:|\ncBAG|FEDC:|\n", 16)])  # music21: AABAAB; as written
def test_repeats_play_twice_at_most(nottingham_abc, body, quarters):
    roll = nottingham_abc.tune_roll('X:1\nT:t\nM:4/4\nL:1/4\nK:C\n"C"' + body)
    assert len(roll) == 2 * quarters
