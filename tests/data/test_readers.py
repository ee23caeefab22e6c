"""Readers: every format into NoteSequences with ids/labels, ABC fallback, and every bad-input case."""

from __future__ import annotations

import time

import pytest

from conftest import write_midi
from musejax.data import music21_convert, readers
from musejax.data.readers import ReadError, ReadFailure, read_file, read_piece


def _notes(ns):
    return sorted((n.pitch, round(n.start_time, 6), round(n.end_time, 6), n.part) for n in ns.notes)


def test_midi(music_files):
    ns = read_piece(music_files["midi"])
    assert _notes(ns) == [(60, 0.0, 0.5, 0), (64, 0.5, 1.0, 0), (67, 1.0, 1.5, 0)]
    assert ns.id == "melody.mid" and ns.filename == str(music_files["midi"]) and ns.reference_number == 0


def test_musicxml_ties_chords_tempo_parts(music_files):
    ns = read_piece(music_files["musicxml"])
    # quarter = 1 s (bare <sound tempo="60"/>); the tied C5 is one 3 s note; the chord is two notes.
    assert _notes(ns) == [(55, 3.0, 4.0, 1), (60, 0.0, 2.0, 1), (64, 0.0, 2.0, 1), (72, 0.0, 3.0, 0),
                          (74, 3.0, 4.0, 0)]
    assert all(n.instrument == n.part for n in ns.notes)
    assert [(p.part, p.name) for p in ns.part_infos] == [(0, "Upper"), (1, "Lower")]
    assert [t.qpm for t in ns.tempos] == [60.0]
    assert [(t.numerator, t.denominator) for t in ns.time_signatures] == [(2, 4)]
    assert ns.sequence_metadata.title == "Tiny Duet"
    assert list(ns.sequence_metadata.composers) == ["Test Composer"]
    assert ns.total_time == 4.0


def test_musicxml_pickup_and_short_last_bar_keep_their_bar_lines(tmp_path):
    """A score keeps a pickup's notes at offset 0 under the full time signature: the pickup and the short last
    bar get meters of their own length, so the bar lines fall where the score has them (not every bar a
    quarter early, as before). 6/8 with an eighth's pickup too."""
    from music21 import meter, note, stream

    from musejax.data.quantize import bar_grid, downbeat_quarters, main_meter

    def score(signature: str, pickup: float, bars: int, last: float) -> stream.Score:
        part = stream.Part()
        bar = meter.TimeSignature(signature).barDuration.quarterLength
        lengths = [pickup] + [bar] * bars + [last]
        for number, length in enumerate(lengths):
            measure = stream.Measure(number=number)
            if number == 0:
                measure.timeSignature = meter.TimeSignature(signature)
                measure.paddingLeft = bar - length  # written as a pickup, not filled with rests
            elif number == len(lengths) - 1:
                measure.paddingRight = bar - length
            measure.append(note.Note("C5", quarterLength=length))
            part.append(measure)
        return stream.Score([part])

    path = tmp_path / "pickup.musicxml"
    score("4/4", 1.0, 2, 3.0).write("musicxml", fp=str(path))
    ns = read_piece(path)
    quarter = 0.5  # 120 qpm
    assert [(round(t.time / quarter, 6), t.numerator, t.denominator) for t in ns.time_signatures] == [
        (0.0, 1, 4), (1.0, 4, 4), (9.0, 3, 4)]
    starts, lengths, partial = bar_grid(ns, 4, 48, "pianoroll")
    assert starts.tolist() == [0, 4, 20, 36] and lengths.tolist() == [4, 16, 16, 12]
    assert partial.tolist() == [True, False, False, True]
    assert main_meter(ns) == (4, 4) and downbeat_quarters(ns) == 1.0  # the meter, not the pickup's

    ns = music21_convert.music21_to_sequence(score("6/8", 0.5, 2, 2.5))
    assert [(round(t.time / quarter, 6), t.numerator, t.denominator) for t in ns.time_signatures] == [
        (0.0, 1, 8), (0.5, 6, 8), (6.5, 5, 8)]
    assert main_meter(ns) == (6, 8) and downbeat_quarters(ns) == 0.5


def test_musicxml_agrees_with_music21s_own_midi_export(music_files):
    """Our direct music21 -> NoteSequence conversion against music21 -> MIDI -> note-seq."""
    import note_seq
    from music21 import converter
    from music21.midi import translate

    score = converter.parse(str(music_files["musicxml"]))
    via_midi = note_seq.midi_to_note_sequence(translate.streamToMidiFile(score).writestr())
    direct = music21_convert.music21_to_sequence(score)
    assert sorted((n.pitch, round(n.start_time, 3), round(n.end_time, 3)) for n in direct.notes) == \
        sorted((n.pitch, round(n.start_time, 3), round(n.end_time, 3)) for n in via_midi.notes)


def test_humdrum(music_files):
    ns = read_piece(music_files["humdrum"])
    assert len(ns.notes) == 8
    assert {n.part for n in ns.notes} == {0, 1}
    assert sorted({n.pitch for n in ns.notes}) == [48, 50, 52, 53, 60, 62, 64, 65]
    assert max(n.end_time for n in ns.notes) == pytest.approx(2.0)  # four quarters at 120 qpm


def test_abc_tunebook_note_seq_then_music21_fallback(music_files):
    sequences, failures = read_file(music_files["abc"], corpus="folk", root=music_files["abc"].parent,
                                    style="test-folk")
    by_id = {ns.id: ns for ns in sequences}
    assert sorted(by_id) == ["folk/book.abc#1", "folk/book.abc#2"]
    tied, fallback = by_id["folk/book.abc#1"], by_id["folk/book.abc#2"]
    assert tied.source_info.parser == tied.source_info.MAGENTA_ABC
    # L:1/8 from the file header; 120 qpm: an eighth is 0.25 s. B4-|B2 is one 1.5 s note.
    assert _notes(tied) == [(67, 0.0, 0.5, 0), (69, 0.5, 1.0, 0), (71, 1.0, 2.5, 0), (72, 2.5, 3.0, 0),
                            (74, 3.0, 4.0, 0)]
    assert not tied.text_annotations  # the tie marks are gone
    assert fallback.source_info.parser == fallback.source_info.MUSIC21
    starts = [round(n.start_time, 4) for n in fallback.notes]
    assert starts == [0.0, 1.0, 1.1667, 1.3333, 1.5]  # d2 z2 (3fed A6: eighth = 0.25 s, triplet eighth 1/6 s
    assert fallback.notes[0].pitch == 74 and fallback.notes[-1].pitch == 69
    for ns in sequences:
        assert ns.collection_name == "folk" and list(ns.sequence_metadata.genre) == ["test-folk"]
        assert ns.reference_number == int(ns.id.split("#")[1])
    assert tied.sequence_metadata.title == "Tied Tune"
    reasons = {f.tune: f.reason for f in failures}
    assert reasons == {5: "parse-error", 6: "no-notes"}
    assert "note-seq" in next(f.detail for f in failures if f.tune == 5)


def test_abc_tune_selection_and_duplicates(tmp_path):
    book = tmp_path / "dups.abc"
    book.write_text("X:1\nL:1/8\nK:C\nCDEF|\n\nX:1\nL:1/8\nK:C\nGABc|\n\nX:3\nL:1/8\nK:C\ncdef|\n")
    sequences, failures = read_file(book, tunes=[3])
    assert [ns.id for ns in sequences] == ["dups.abc#3"] and failures == []
    sequences, failures = read_file(book)
    assert [ns.id for ns in sequences] == ["dups.abc#1", "dups.abc#3"]
    assert [(f.tune, f.reason) for f in failures] == [(1, "duplicate-tune")]
    with pytest.raises(ReadError, match="duplicate-tune"):
        read_piece(book)


def test_abc_dash_between_different_pitches_is_not_a_tie(tmp_path):
    tune = tmp_path / "slur.abc"
    tune.write_text("X:1\nL:1/8\nK:C\nA-B c2-c2|\n")
    assert _notes(read_piece(tune)) == [(69, 0.0, 0.25, 0), (71, 0.25, 0.5, 0), (72, 0.5, 1.5, 0)]


def _meters(ns):
    return [(round(t.time, 6), t.numerator, t.denominator) for t in ns.time_signatures]


def test_an_abc_pickup_keeps_its_bar_lines(tmp_path):
    """note-seq puts the meter at 0 even after a pickup: an eighth's pickup in 2/4 reads as 1/8, then 2/4 (an eighth
    = 0.25 s at 120 qpm), a quarter's in 6/8 as 2/8 then 6/8; a full first bar, a repeat sign before the first
    note and a tune without a meter are left as they are."""
    def read(body: str, meter: str = "M:2/4"):
        path = tmp_path / "tune.abc"
        path.write_text(f"X:1\n{meter}\nL:1/8\nK:G\n{body}\n")
        ns = read_piece(path)
        assert ns.source_info.parser == ns.source_info.MAGENTA_ABC
        return ns

    assert _meters(read('"G"d | B2 AG | "D"B2 A2 |]')) == [(0.0, 1, 8), (0.25, 2, 4)]
    assert _meters(read("A2 | dBG GBd | efg d3 |", "M:6/8")) == [(0.0, 2, 8), (0.5, 6, 8)]
    assert _meters(read("|: GA Bc | d2 d2 :|")) == [(0.0, 2, 4)]
    assert _meters(read("GA Bc | d2 d2 |")) == [(0.0, 2, 4)]
    assert _meters(read("G2 A2 | B4 |", "M:none")) == []


def test_read_piece_rejects_a_tunebook(music_files, tmp_path):
    good = tmp_path / "two.abc"
    good.write_text("X:1\nL:1/8\nK:C\nCDEF|\n\nX:2\nL:1/8\nK:C\nGABc|\n")
    with pytest.raises(ReadError, match="several-pieces"):
        read_piece(good)


# ----------------------------------------------------------------------------------------- bad input

def _only_failure(path, **kwargs) -> ReadFailure:
    sequences, failures = read_file(path, **kwargs)
    assert sequences == [] and len(failures) == 1
    return failures[0]


def test_corrupt_midi(tmp_path):
    path = tmp_path / "corrupt.mid"
    path.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0" + b"MTrk\xff\xff\xff\xff garbage")
    failure = _only_failure(path)
    assert failure.reason == "corrupt-midi" and failure.path == str(path)
    with pytest.raises(ReadError, match=r"corrupt\.mid: corrupt-midi"):
        read_piece(path)


def test_truncated_midi(tmp_path):
    whole = write_midi(tmp_path / "whole.mid", pitches=tuple(range(48, 90)))
    cut = tmp_path / "cut.mid"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert _only_failure(cut).reason == "corrupt-midi"


def test_empty_file(tmp_path):
    for name in ("empty.mid", "empty.abc", "empty.xml", "empty.krn"):
        (tmp_path / name).write_bytes(b"")
        assert _only_failure(tmp_path / name).reason == "empty"


def test_text_file_with_music_suffix(tmp_path):
    for name in ("notes.mid", "notes.mxl", "notes.krn"):
        (tmp_path / name).write_text("shopping list: eggs, milk\n")
        assert _only_failure(tmp_path / name).reason == "not-music"
    (tmp_path / "notes.abc").write_text("shopping list: eggs, milk\n")
    assert _only_failure(tmp_path / "notes.abc").reason == "not-music"
    (tmp_path / "other.xml").write_text("<html><body>not a score</body></html>")
    assert _only_failure(tmp_path / "other.xml").reason == "parse-error"


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "readme.txt"
    path.write_text("hello")
    assert _only_failure(path).reason == "unsupported-format"
    with pytest.raises(ReadError, match="unsupported-format"):
        read_piece(path)


def test_missing_path_and_unknown_format(tmp_path, music_files):
    with pytest.raises(ReadError, match="missing"):
        read_file(tmp_path / "nope.mid")
    with pytest.raises(ReadError, match="missing"):
        read_piece(tmp_path / "nope.mid")
    with pytest.raises(ValueError, match="unknown format 'mp3'"):
        read_file(music_files["midi"], format="mp3")
    renamed = tmp_path / "melody.bin"
    renamed.write_bytes(music_files["midi"].read_bytes())
    assert len(read_piece(renamed, format="midi").notes) == 3


def test_time_budget_interrupts_a_slow_parse():
    start = time.perf_counter()
    sequence, error = readers._attempt(time.sleep, 5.0, budget=0.2)
    assert sequence is None and error[0] == "timeout"
    assert time.perf_counter() - start < 2.0


def test_sequences_serialise(music_files):
    from note_seq.protobuf import music_pb2

    for path in music_files.values():
        for ns in read_file(path, corpus="c", root=path.parent, style="s")[0]:
            again = music_pb2.NoteSequence.FromString(ns.SerializeToString())
            assert again == ns and again.id.startswith("c/")
