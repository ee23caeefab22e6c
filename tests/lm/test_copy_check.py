"""The sampler's copy check (musejax/lm/copy_check.py): samples that copy >= N bars of a training piece are drawn
again; the index of the training pieces is kept in the run directory."""

from __future__ import annotations

import numpy as np
import pytest

from musejax.data.encodings import PianoRollEncoding
from musejax.lm import copy_check
from musejax.lm.copy_check import CopyReport, redraw_copies
from musejax.lm.sample_inputs import Run

ENCODING = PianoRollEncoding(steps_per_quarter=4)
TUNE = [60 + (5 * i) % 12 for i in range(32)]  # 8 bars of quarter notes, every interval a fourth up or a fifth down


def roll(pitches, step_length: int = 4, transpose: int = 0) -> np.ndarray:
    """A one-line piano roll: each pitch held `step_length` sixteenths."""
    frames = np.zeros((len(pitches) * step_length, 88), bool)
    for i, pitch in enumerate(pitches):
        frames[i * step_length:(i + 1) * step_length, pitch + transpose - 21] = True
    return frames


def copy_of(n_notes: int) -> np.ndarray:
    """n_notes of the tune from its 5th note, a tone higher: n_notes - 1 quarters from first to last onset."""
    return roll(TUNE[4:4 + n_notes], transpose=2)


NOVEL = roll([62, 65, 69, 74, 71], step_length=16)  # whole notes: nothing in the tune lasts a bar


@pytest.fixture
def run(tmp_path) -> Run:
    index = copy_check.build_index(ENCODING, [roll(TUNE)], [(0, 16)], ["corpus/tune"])
    copy_check.write_index(index, tmp_path)
    return Run(model=None, params=None, encoding=ENCODING, run_dir=tmp_path)


def scripted(draws: list[list[np.ndarray]], seeds: list[int]):
    """A stand-in for the sampler's batch draw: the next scripted batch, whatever the seed (recorded)."""
    def draw(seed: int):
        seeds.append(seed)
        arrays = draws[len(seeds) - 1]
        return arrays, None, ["", ""], [None, None], None
    return draw


def test_a_copying_sample_is_drawn_again_until_it_does_not_copy(run):
    first = ([copy_of(16), NOVEL], None, ["", ""], [None, None], None)  # sample 0 copies 15 quarters: 3.75 bars
    seeds: list[int] = []
    report = CopyReport()
    arrays, _, _, _, _ = redraw_copies(run, first, scripted([[copy_of(10), NOVEL], [NOVEL, copy_of(16)]], seeds),
                                       seed=3, max_bars=2.0, report=report)
    assert arrays[0] is not first[0][0] and arrays[0].tolist() == NOVEL.tolist()  # the second redraw's
    assert arrays[1] is first[0][1]  # never copied: kept from the first draw
    assert len(seeds) == 2 == report.redraws and len(set(seeds)) == 2 and 3 not in seeds
    assert seeds == [copy_check.redraw_seed(3, 1), copy_check.redraw_seed(3, 2)]  # reproducible
    assert report.copied == [{"index": 0, "bars": 3.75, "source": "corpus/tune"}] and report.still_copying == []
    assert "1 of 2 samples copied >= 2 bars" in report.summary() and "corpus/tune" in report.summary()
    # the run directory's index is what the check read; under the threshold nothing is drawn again
    assert (run.run_dir / copy_check.INDEX_FILE).is_file()
    report = CopyReport()
    redraw_copies(run, first, scripted([], seeds), seed=3, max_bars=4.0, report=report)
    assert report.copied == [] and report.redraws == 0


def test_a_sample_that_always_copies_is_kept_at_its_shortest_copy_and_named(run):
    lengths = [14, 12, 9, 13, 10, 16, 11, 15]  # the third redraw copies least (8 quarters: 2 bars)
    draws = [[copy_of(n), NOVEL] for n in lengths]
    report = CopyReport()
    arrays = redraw_copies(run, ([copy_of(16), NOVEL], None, ["", ""], [None, None], None),
                           scripted(draws, []), seed=0, max_bars=2.0, report=report)[0]
    assert report.redraws == copy_check.MAX_REDRAWS and report.still_copying == [0]
    assert arrays[0].tolist() == copy_of(9).tolist()
    assert "still copying" in report.summary() and "sample 0" in report.summary()


def test_a_run_without_its_pieces_or_data_says_how_to_sample_without_the_check(tmp_path):
    from musejax.lm.sample_inputs import SampleError

    with pytest.raises(SampleError, match="--max-copy-bars 0"):
        copy_check.training_index(Run(model=None, params=None, encoding=ENCODING, run_dir=tmp_path))
