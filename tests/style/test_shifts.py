"""Texture shifts (musejax/style/shifts.py, musejax/data/texture_shifts.py) and the texture description
(musejax/style/texture.py) on hand-made pieces: what each shift keeps and changes, on NoteSequences and on
piano-roll windows, and the training batches and calibration that use them."""

from __future__ import annotations

import numpy as np
import pytest
from note_seq.protobuf.music_pb2 import NoteSequence

from musejax.config import ConfigError
from musejax.data.encodings import PianoRollEncoding
from musejax.data import harmony, texture_shifts
from musejax.style import shifts
from musejax.style.config import StyleConfig, resolve_style_config
from musejax.config import to_dataclass, default_config
from musejax.style.data import BalancedWindows, StyleSplit, pack_roll, shifted_split
from musejax.style.texture import onset_grid, texture_of

ENCODING = PianoRollEncoding(steps_per_quarter=4, onsets=True)
# C major tune in eighths at 120 qpm (an eighth = 0.25 s), two bars: C-major arpeggio bar then a G-major one
TUNE = [60, 64, 67, 64, 72, 67, 64, 60, 67, 71, 74, 71, 67, 62, 71, 67]


def sequence(notes: list[tuple[int, float, float, int]], qpm: float = 120.0, meter: tuple[int, int] = (4, 4),
             ) -> NoteSequence:
    """(pitch, start s, end s, instrument) notes -> a NoteSequence with one tempo and one time signature."""
    ns = NoteSequence(id="piece")
    ns.tempos.add(time=0.0, qpm=qpm)
    ns.time_signatures.add(time=0.0, numerator=meter[0], denominator=meter[1])
    for pitch, start, end, instrument in notes:
        ns.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=80, instrument=instrument,
                     part=instrument, program=0)
    ns.total_time = max(n.end_time for n in ns.notes)
    return ns


def tune() -> NoteSequence:
    return sequence([(p, i * 0.25, (i + 1) * 0.25, 0) for i, p in enumerate(TUNE)])


def chorale() -> NoteSequence:
    """Four parts in half notes (1 s), the alto with passing eighths in the second half note."""
    soprano = [(72, 0.0, 1.0, 0), (71, 1.0, 2.0, 0)]
    alto = [(67, 0.0, 1.0, 1), (67, 1.0, 1.25, 1), (65, 1.25, 1.5, 1), (64, 1.5, 2.0, 1)]
    tenor = [(64, 0.0, 1.0, 2), (62, 1.0, 2.0, 2)]
    bass = [(48, 0.0, 1.0, 3), (43, 1.0, 2.0, 3)]
    return sequence(soprano + alto + tenor + bass)


def pitches_at(ns: NoteSequence, seconds: float) -> list[int]:
    return sorted(n.pitch for n in ns.notes if n.start_time <= seconds < n.end_time)


def test_skyline_keeps_the_top_line_and_held_notes():
    melody = shifts.melody_only(chorale())
    assert [(n.pitch, n.start_time, n.end_time) for n in melody.notes] == [(72, 0.0, 1.0), (71, 1.0, 2.0)]
    crossing = sequence([(72, 0.0, 1.0, 0), (60, 0.0, 2.0, 1), (74, 1.0, 1.5, 1), (71, 1.5, 2.0, 0)])
    line = shifts.melody_only(crossing)  # the top line passes from part 0 to part 1 and back: one part now
    assert [n.pitch for n in line.notes] == [72, 74, 71] and len({n.instrument for n in line.notes}) == 1
    assert texture_of(crossing).describe() == "homophonic, 2 voices, quarter grid"
    assert texture_of(line).describe() == "monophonic, 1 voice, quarter grid"
    # a lower onset under a held higher note does not cut it; a higher onset cuts the lower held note
    index, ends = harmony.skyline(np.array([60, 64, 67]), np.array([0.0, 1.0, 2.0]), np.array([4.0, 2.0, 3.0]))
    assert index.tolist() == [0, 1, 2] and ends.tolist() == [1.0, 2.0, 3.0]
    index, ends = harmony.skyline(np.array([72, 60]), np.array([0.0, 1.0]), np.array([4.0, 2.0]))
    assert index.tolist() == [0] and ends.tolist() == [4.0]


def test_accompaniment_follows_the_melody_harmony():
    scale = np.array([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])
    assert harmony.estimate_key(scale, np.arange(11.0), np.arange(1.0, 12.0)) == (0, False)
    assert harmony.estimate_key(scale - 3, np.arange(11.0), np.arange(1.0, 12.0)) == (9, False)  # A major
    accompanied = shifts.add_accompaniment(tune(), pattern="block")
    chords = [n for n in accompanied.notes if n.instrument == 1]
    assert len(accompanied.notes) == len(TUNE) + len(chords)  # the melody is kept as it was
    def chord_at(seconds: float) -> set[int]:
        return {n.pitch % 12 for n in chords if n.start_time <= seconds < n.end_time}

    assert chord_at(0.1) == {0, 4, 7} and chord_at(2.1) == {7, 11, 2}  # C major under the C arpeggio, then G
    assert all(n.pitch <= 62 for n in chords)  # voiced below the melody (its lowest note is 60, then 62)
    oompah = shifts.add_accompaniment(tune(), pattern="oompah")
    bass_beats = sorted(n.start_time for n in oompah.notes if n.instrument == 1 and n.pitch < 48)
    assert bass_beats == [0.0, 1.0, 2.0, 3.0]  # bass on beats 1 and 3 of each 4/4 bar (a beat = 0.5 s)
    assert texture_of(oompah).kind == "homophonic" and texture_of(tune()).kind == "monophonic"


def test_accompaniment_options_change_pattern_voicing_and_harmonic_rhythm():
    """The varied accompaniments (config.data.accompaniments="varied"): broken chords, no bass, an octave lower,
    four-note chords and a chord per half bar each do what they say; draws are reproducible."""
    pitch, start = np.array(TUNE), np.arange(16) * 0.5  # the tune in quarters: two 4/4 bars
    end = start + 0.5

    def notes(**options):
        return harmony.accompaniment_notes(pitch, start, end, **options)

    p, s, e = notes(pattern="arpeggio")
    assert np.allclose(s, np.arange(16) * 0.5) and np.allclose(e - s, 0.5)  # one note per eighth
    assert p[0] < 48 and set(p[:4] % 12) == {0, 4, 7}  # bass first, then the C major triad broken
    p, s, _ = notes(pattern="oompah", bass=False)
    assert sorted(set(s.tolist())) == [1.0, 3.0, 5.0, 7.0]  # after-beats only
    plain, _, _ = notes(pattern="block")
    p, s, _ = notes(pattern="block", bass=False, octave=-1, doubled_root=True, changes_per_bar=2)
    assert sorted(set(s.tolist())) == [0.0, 2.0, 4.0, 6.0]  # a chord per half bar
    first = p[s == 0.0]
    assert len(first) == 4 and max(first) < max(plain[:4]) and {q % 12 for q in first} == {0, 4, 7}
    with pytest.raises(ValueError, match="changes_per_bar"):
        notes(changes_per_bar=3)
    # an A major tune low enough that the chord comes down onto the bass (A2 = 45): the plain oom-pah keeps its
    # bass beats (as the LM's texture shifts always had them); the varied draws leave the doubled bass out
    low = np.array([57, 61, 64, 61, 57, 61, 64, 69])
    onsets = lambda **o: sorted(set(harmony.accompaniment_notes(low, np.arange(8.0), np.arange(1.0, 9.0),
                                                                 pattern="oompah", **o)[1].tolist()))
    assert onsets() == list(np.arange(8.0)) and onsets(skip_doubled_bass=True) == [1.0, 3.0, 5.0, 7.0]
    draws = [harmony.random_accompaniment(np.random.default_rng(k)) for k in range(40)]
    assert draws[3] == harmony.random_accompaniment(np.random.default_rng(3))
    assert {d["pattern"] for d in draws} == set(harmony.ALL_PATTERNS) and {d["bass"] for d in draws} == {True, False}
    window = ENCODING.encode(tune())
    varied = [texture_shifts.shift_roll(window, "accompaniment", np.random.default_rng(k), 4, varied=True)
              for k in range(6)]
    np.testing.assert_array_equal(varied[0], texture_shifts.shift_roll(window, "accompaniment",
                                                                       np.random.default_rng(0), 4, varied=True))
    assert len({v.tobytes() for v in varied}) > 1 and all(not (window[:, 0] & ~v[:, 0]).any() for v in varied)
    with pytest.raises(ConfigError, match="config.data.accompaniments"):
        resolve_style_config("style", ["--config.data.accompaniments=fancy"])


def test_chord_symbols_are_used_where_the_source_has_them():
    ns = tune()
    ns.text_annotations.add(time=0.0, text="Am", annotation_type=1)  # CHORD_SYMBOL
    accompanied = shifts.add_accompaniment(ns, pattern="block")
    assert {p % 12 for p in pitches_at(accompanied, 0.1) if p < 60} == {9, 0, 4}


def test_quarter_grid_turns_eighth_runs_into_quarters_not_chords():
    quarters = shifts.requantize_sequence(tune(), 1.0)
    onsets = [n.start_time for n in quarters.notes]
    assert onsets == sorted(set(onsets)) and np.allclose(onsets, np.arange(9) * 0.5)  # one note per quarter
    assert [n.pitch for n in quarters.notes] == TUNE[::2] + [TUNE[-1]]  # the on-beat notes (the last one rounds up)
    assert texture_of(quarters).describe() == "monophonic, 1 voice, quarter grid"
    grid = shifts.requantize_sequence(chorale(), 1.0)
    assert pitches_at(grid, 1.1) == [43, 62, 67, 71]  # the alto's passing notes gone, its beat note kept


def test_tempo_and_instrument_shifts_do_not_change_the_roll_but_stretch_does():
    roll = ENCODING.encode(chorale())
    for name in ("tempo_x0.5", "tempo_x2", "one_instrument", "many_instruments"):
        np.testing.assert_array_equal(ENCODING.encode(shifts.shift_sequence(chorale(), name)), roll)
    assert len({n.program for n in shifts.many_instruments(chorale()).notes}) == 4
    layers = shifts.many_instruments(shifts.one_instrument(chorale()))  # one track split into skyline layers
    assert len({n.instrument for n in layers.notes}) >= 4
    assert len(ENCODING.encode(shifts.stretch(chorale(), 2.0))) == 2 * len(roll)
    assert len(ENCODING.encode(shifts.stretch(chorale(), 0.5))) == len(roll) // 2
    moved = shifts.shift_sequence(chorale(), "transposed", np.random.default_rng(1))
    assert sorted(n.pitch for n in moved.notes) != sorted(n.pitch for n in chorale().notes)
    with pytest.raises(ValueError, match="unknown texture shift"):
        shifts.shift_sequence(chorale(), "louder")


@pytest.mark.parametrize("name", texture_shifts.ROLL_SHIFTS)
def test_roll_shifts_keep_the_shape_and_onsets_consistent(name):
    window = ENCODING.encode(chorale())
    out = texture_shifts.shift_roll(window, name, np.random.default_rng(0), 4, len(window), stretch_factor=0.5)
    assert out.shape == window.shape and out.dtype == bool
    assert not (out[:, 1] & ~out[:, 0]).any()  # every onset sounds
    assert out[:, 0].any()
    if name == "melody":
        assert out[:, 0].sum(axis=1).max() == 1
    if name == "accompaniment":
        assert out[:, 0].sum(axis=1).max() >= 3 and not (window[:, 0] & ~out[:, 0]).any()  # chords added
    if name == "melody_chords":  # the top line over bass and triad, the inner voices gone
        melody = texture_shifts.shift_roll(window, "melody", np.random.default_rng(0), 4)[:, 0]
        assert 3 <= out[:, 0].sum(axis=1).max() <= 5
        sounding = melody.any(axis=1)
        top = 87 - np.argmax(out[:, 0, ::-1], axis=1)
        np.testing.assert_array_equal(top[sounding], np.argmax(melody, axis=1)[sounding])


def test_texture_grid_and_voices():
    assert onset_grid(np.array([0.0, 1.0, 2.0])) == "quarter"
    assert onset_grid(np.array([0.0, 1 / 3, 2 / 3, 1.0])) == "eighth triplet"
    assert onset_grid(np.array([0.0, 0.1, 0.37])) == "none"
    texture = texture_of(chorale())
    assert (texture.kind, texture.voices, texture.parts) == ("homophonic", 4, 4)
    canon = sequence([(72, 0.0, 0.5, 0), (74, 0.5, 1.0, 0), (76, 1.0, 1.5, 0), (77, 1.5, 2.0, 0),
                      (60, 0.25, 0.75, 1), (62, 0.75, 1.25, 1), (64, 1.25, 1.75, 1), (65, 1.75, 2.25, 1)])
    assert texture_of(canon).kind == "polyphonic"


def test_balanced_windows_with_texture_shifts_are_deterministic():
    rolls = [pack_roll(ENCODING.encode(chorale())), pack_roll(ENCODING.encode(tune()))]
    split = StyleSplit(["a", "b"], np.array([0, 1], np.int32), rolls)
    sampler = BalancedWindows(split, 2, 16, 32, seed=3, shift_rate=1.0, shifts=texture_shifts.ROLL_SHIFTS)
    first, again = sampler.batch(5), sampler.batch(5)
    np.testing.assert_array_equal(first["x"], again["x"])
    assert first["x"].shape == (32, 16, 2, 88) and first["mask"].any(axis=1).all()
    plain = BalancedWindows(split, 2, 16, 32, seed=3).batch(5)
    assert not np.array_equal(plain["x"], first["x"])
    copies = shifted_split(split, texture_shifts.ROLL_SHIFTS, 4)
    assert copies.ids == [f"{p}#{s}" for p in "ab" for s in texture_shifts.ROLL_SHIFTS]
    assert copies.labels.tolist() == [0] * len(texture_shifts.ROLL_SHIFTS) + [1] * len(texture_shifts.ROLL_SHIFTS)
    assert len(shifted_split(split, ("melody",), 4, per_style=1)) == 2


def test_texture_shift_config_checks_and_old_runs_reload_without_them():
    with pytest.raises(ConfigError, match="config.data.texture_shifts"):
        resolve_style_config("style:tiny", ["--config.data.texture_shifts=melody,louder"])
    with pytest.raises(ConfigError, match="texture_shift_rate"):
        resolve_style_config("style:tiny", ["--config.data.texture_shift_rate=1.5"])
    saved = default_config(StyleConfig).to_dict()
    del saved["data"]["texture_shift_rate"], saved["data"]["texture_shifts"], saved["classify"]["shifted_copies"]
    old = to_dataclass(saved, StyleConfig)  # a run from before: trained and calibrated without the shifts
    assert old.data.texture_shift_rate == 0.0 and old.data.texture_shifts == "" and old.classify.shifted_copies == 0
