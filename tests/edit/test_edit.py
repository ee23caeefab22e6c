"""musejax.edit.ops operations on hand-computed fixtures, and the `musejax edit` command end to end."""

from __future__ import annotations

import io
import os

import mido
import note_seq
import pytest
from note_seq.protobuf import music_pb2

from musejax.edit import ops as edit
from musejax.midi import gm
from musejax.midi.meta import (PRIMER_END_ANNOTATION, add_midi_extras, primer_end_seconds, sequence_to_midi_bytes,
                                write_midi)
from musejax.midi.tracks import EditError, bar_start_seconds, list_tracks, select_tracks

TextAnnotation = music_pb2.NoteSequence.TextAnnotation


def _sequence() -> music_pb2.NoteSequence:
    """Piano (instrument 0), violin (1) and drums (2); 120 qpm 4/4 in G, then 60 qpm 3/4 in E minor at 4 s."""
    ns = music_pb2.NoteSequence(ticks_per_quarter=480)
    ns.tempos.add(time=0.0, qpm=120.0)
    ns.tempos.add(time=4.0, qpm=60.0)
    ns.time_signatures.add(time=0.0, numerator=4, denominator=4)
    ns.time_signatures.add(time=4.0, numerator=3, denominator=4)
    ns.key_signatures.add(time=0.0, key=7)
    ns.key_signatures.add(time=4.0, key=4, mode=music_pb2.NoteSequence.KeySignature.MINOR)
    for pitch, start, end, velocity in [(60, 0.0, 0.5, 80), (64, 0.5, 1.0, 100), (125, 4.0, 5.0, 60)]:
        ns.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=velocity, instrument=0, program=0)
    for pitch, start, end, velocity in [(76, 1.0, 2.0, 50), (79, 6.0, 7.0, 70)]:
        ns.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=velocity, instrument=1, program=40)
    for pitch, start in [(36, 0.0), (38, 0.5)]:
        ns.notes.add(pitch=pitch, start_time=start, end_time=start + 0.25, velocity=90, instrument=2, is_drum=True)
    ns.instrument_infos.add(instrument=1, name="Violin")
    ns.control_changes.add(time=0.0, control_number=7, control_value=100, instrument=0)
    ns.control_changes.add(time=0.0, control_number=64, control_value=127, instrument=0)
    ns.control_changes.add(time=1.0, control_number=64, control_value=0, instrument=0)
    ns.control_changes.add(time=1.5, control_number=1, control_value=30, instrument=1, program=40)
    ns.pitch_bends.add(time=0.75, bend=4096, instrument=0)
    for time, text in [(0.0, "copyright:(c) test"), (0.0, "lyrics:Hel-"), (0.5, "lyrics:lo"), (2.0, "marker:Verse")]:
        ns.text_annotations.add(time=time, text=text)
    for time, text in [(0.0, "G"), (2.0, "D")]:
        ns.text_annotations.add(time=time, text=text, annotation_type=TextAnnotation.CHORD_SYMBOL)
    ns.total_time = 7.0
    return ns


def _notes(ns, instrument=None):
    return sorted((n.pitch, round(n.start_time, 6), round(n.end_time, 6), n.velocity)
                  for n in ns.notes if instrument is None or n.instrument == instrument)


def _times(container):
    return [round(event.time, 6) for event in container]


# ---------------------------------------------------------------- tracks and General MIDI names

def test_tracks_are_listed_and_selected_by_index_name_program_and_drums():
    ns = _sequence()
    assert [(t.index, t.key.instrument, t.name, t.n_notes) for t in list_tracks(ns)] == \
        [(0, 0, "", 3), (1, 1, "Violin", 2), (2, 2, "", 2)]
    assert select_tracks(ns, "1") == select_tracks(ns, "violin") == [list_tracks(ns)[1].key]
    assert select_tracks(ns, "acoustic grand piano") == [list_tracks(ns)[0].key]
    assert select_tracks(ns, "drums") == [list_tracks(ns)[2].key]
    with pytest.raises(EditError, match="no track matches 'flute'.*'Violin'"):
        select_tracks(ns, "flute")
    with pytest.raises(EditError, match="no track 3"):
        select_tracks(ns, 3)


def test_general_midi_names_numbers_and_aliases():
    assert gm.parse_program("violin") == 40
    assert gm.parse_program("Acoustic Grand Piano") == gm.parse_program("piano") == 0
    assert gm.parse_program("nylon") == 24 and gm.parse_program("41") == 41
    assert gm.program_name(40) == "Violin"
    with pytest.raises(ValueError, match="did you mean violin"):
        gm.parse_program("violn")
    with pytest.raises(ValueError, match="matches several"):
        gm.parse_program("electric")
    with pytest.raises(ValueError, match="outside 0-127"):
        gm.parse_program("128")


# ---------------------------------------------------------------- operations

OPERATIONS = [
    lambda ns: edit.transpose(ns, 2),
    lambda ns: edit.change_tempo(ns, factor=2.0),
    lambda ns: edit.change_velocity(ns, scale=0.5),
    lambda ns: edit.set_program(ns, "flute"),
    lambda ns: edit.quantize(ns, "8th", durations=True),
    lambda ns: edit.trim(ns, 1.0, 5.0),
    lambda ns: edit.merge_tracks(ns, ["0", "1"]),
    lambda ns: edit.split_track(ns, 62, "0"),
]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_operations_leave_their_input_untouched(operation):
    ns = _sequence()
    before = ns.SerializeToString()
    result = operation(ns)
    assert ns.SerializeToString() == before
    assert result.sequence is not ns and result.summary


def test_transpose_all_moves_pitched_notes_and_key_but_never_drums():
    ns = _sequence()
    out, summary = edit.transpose(ns, 2)
    assert [p for p, *_ in _notes(out, 0)] == [62, 66, 127]
    assert [p for p, *_ in _notes(out, 1)] == [78, 81]
    assert [p for p, *_ in _notes(out, 2)] == [36, 38]
    assert [k.key for k in out.key_signatures] == [9, 6]  # G -> A major, E -> F# minor
    assert "5 notes transposed" in summary and "2 drum notes left as they are" in summary
    assert list(out.control_changes) == list(ns.control_changes) and list(out.pitch_bends) == list(ns.pitch_bends)


def test_transpose_reports_and_drops_notes_outside_midi_range():
    out, summary = edit.transpose(_sequence(), 3)
    assert [p for p, *_ in _notes(out, 0)] == [63, 67]  # 125 + 3 = 128 does not exist
    assert "1 notes out of MIDI range 0-127 dropped (would be 128..128)" in summary


def test_transpose_one_track_leaves_other_tracks_and_key_signature():
    ns = _sequence()
    out, _ = edit.transpose(ns, -12, "violin")
    assert [p for p, *_ in _notes(out, 1)] == [64, 67]
    assert _notes(out, 0) == _notes(ns, 0) and _notes(out, 2) == _notes(ns, 2)
    assert [k.key for k in out.key_signatures] == [7, 4]


def test_transpose_of_drums_only_changes_nothing():
    ns = _sequence()
    out, summary = edit.transpose(ns, 5, "drums")
    assert _notes(out) == _notes(ns) and "0 notes transposed, 2 drum notes left as they are" in summary


def test_tempo_factor_scales_every_time_and_every_tempo():
    ns = _sequence()
    out, summary = edit.change_tempo(ns, factor=2.0)
    assert _notes(out, 1) == [(76, 0.5, 1.0, 50), (79, 3.0, 3.5, 70)]
    assert [(round(t.time, 6), t.qpm) for t in out.tempos] == [(0.0, 240.0), (2.0, 120.0)]
    assert _times(out.time_signatures) == _times(out.key_signatures) == [0.0, 2.0]
    assert _times(out.control_changes) == [0.0, 0.0, 0.5, 0.75]
    assert _times(out.pitch_bends) == [0.375]
    assert _times(out.text_annotations) == [0.0, 0.0, 0.25, 1.0, 0.0, 1.0]
    assert out.total_time == 3.5 and "120 -> 240 bpm" in summary


def test_tempo_bpm_sets_the_opening_tempo_and_keeps_changes_in_proportion():
    out, _ = edit.change_tempo(_sequence(), bpm=90)
    assert [(round(t.time, 6), round(t.qpm, 6)) for t in out.tempos] == [(0.0, 90.0), (5.333333, 45.0)]
    assert _notes(out, 1)[1][1:3] == (8.0, 9.333333)


def test_tempo_keeps_every_midi_tick():
    ns = _sequence()
    before = mido.MidiFile(file=io.BytesIO(sequence_to_midi_bytes(ns)))
    after = mido.MidiFile(file=io.BytesIO(sequence_to_midi_bytes(edit.change_tempo(ns, factor=1.25).sequence)))
    def strip(midi):
        return [[(m.type, m.time) for m in track if m.type != "set_tempo"] for track in midi.tracks]

    assert strip(before) == strip(after)
    tempos = [m.tempo for m in after.tracks[0] if m.type == "set_tempo"]
    assert tempos == [400000, 800000]  # 150 and 75 qpm


@pytest.mark.parametrize("kwargs", [{"factor": 0.0}, {"factor": -1.0}, {"factor": float("nan")}, {"bpm": 0.0},
                                    {"bpm": -90.0}, {"factor": 1e-9}, {}])
def test_impossible_tempo_is_an_error(kwargs):
    with pytest.raises(EditError):
        edit.change_tempo(_sequence(), **kwargs)


def test_velocity_scale_offset_and_compress():
    ns = _sequence()
    def velocities(sequence):  # sorted by pitch: 36 38 60 64 76 79 125
        return [velocity for *_, velocity in _notes(sequence)]

    assert velocities(ns) == [90, 90, 80, 100, 50, 70, 60]
    assert velocities(edit.change_velocity(ns, scale=0.8).sequence) == [72, 72, 64, 80, 40, 56, 48]
    assert velocities(edit.change_velocity(ns, offset=30).sequence) == [120, 120, 110, 127, 80, 100, 90]
    assert velocities(edit.change_velocity(ns, offset=-60).sequence) == [30, 30, 20, 40, 1, 10, 1]
    # 50..100 mapped onto 40..100: v -> 40 + (v - 50) * 60 / 50
    assert velocities(edit.change_velocity(ns, velocity_range=(40, 100)).sequence) == [88, 88, 76, 100, 40, 64, 52]
    violin = edit.change_velocity(ns, velocity_range=(40, 100), tracks="violin").sequence
    assert velocities(violin) == [90, 90, 80, 100, 40, 100, 60]
    drums = edit.change_velocity(ns, velocity_range=(100, 110), tracks="drums").sequence  # uniform: clamped
    assert velocities(drums)[:2] == [100, 100]
    with pytest.raises(EditError):
        edit.change_velocity(ns, scale=0.0)
    with pytest.raises(EditError):
        edit.change_velocity(ns, velocity_range=(100, 40))


def test_set_program_by_name_changes_notes_controls_and_bends_of_that_track():
    ns = _sequence()
    out, summary = edit.set_program(ns, "violin", "piano")
    assert {n.program for n in out.notes if n.instrument == 0} == {40}
    assert {c.program for c in out.control_changes if c.instrument == 0} == {40}
    assert [b.program for b in out.pitch_bends] == [40]
    assert {n.program for n in out.notes if n.instrument == 2} == {0}
    assert "Acoustic Grand Piano -> Violin (40)" in summary
    everything = edit.set_program(ns, 73).sequence
    assert {(n.is_drum, n.program) for n in everything.notes} == {(False, 73), (True, 0)}
    with pytest.raises(EditError, match="unknown General MIDI program"):
        edit.set_program(ns, "kazoo", "0")
    with pytest.raises(EditError, match="no track matches 'flute'"):
        edit.set_program(ns, "violin", "flute")


def test_quantize_onsets_and_durations_follow_the_tempo_map():
    ns = music_pb2.NoteSequence()
    ns.tempos.add(time=0.0, qpm=120.0)  # 16th = 0.125 s
    ns.tempos.add(time=4.0, qpm=60.0)  # from 8 quarters on, 16th = 0.25 s
    for start, end in [(0.06, 0.2), (0.07, 0.2), (0.3, 0.55), (0.26, 0.27), (4.3, 4.9)]:
        ns.notes.add(pitch=60, start_time=start, end_time=end, velocity=64)
    onsets = edit.quantize(ns, "16th").sequence
    assert [(round(n.start_time, 6), round(n.end_time, 6)) for n in onsets.notes] == \
        [(0.0, 0.14), (0.125, 0.255), (0.25, 0.5), (0.25, 0.26), (4.25, 4.85)]
    both = edit.quantize(ns, "16th", durations=True).sequence
    assert [(round(n.start_time, 6), round(n.end_time, 6)) for n in both.notes] == \
        [(0.0, 0.25), (0.125, 0.25), (0.25, 0.5), (0.25, 0.375), (4.25, 5.0)]
    triplets = edit.quantize(ns, "8th-triplet").sequence  # 1/3 quarter = 1/6 s
    assert [round(n.start_time, 6) for n in triplets.notes][:3] == [0.0, 0.0, 0.333333]
    with pytest.raises(EditError, match="unknown grid"):
        edit.quantize(ns, "17th")


def test_trim_seconds_keeps_state_in_force_and_events_inside():
    out, summary = edit.trim(_sequence(), 1.0, 5.0)
    assert _notes(out) == [(76, 0.0, 1.0, 50), (125, 3.0, 4.0, 60)]
    assert [(round(t.time, 6), t.qpm) for t in out.tempos] == [(0.0, 120.0), (3.0, 60.0)]
    assert [(round(s.time, 6), s.numerator) for s in out.time_signatures] == [(0.0, 4), (3.0, 3)]
    assert sorted((round(c.time, 6), c.instrument, c.control_number, c.control_value) for c in out.control_changes) \
        == [(0.0, 0, 7, 100), (0.0, 0, 64, 0), (0.5, 1, 1, 30)]
    assert [(b.time, b.bend) for b in out.pitch_bends] == [(0.0, 4096)]
    assert sorted((round(a.time, 6), a.text) for a in out.text_annotations) == \
        [(0.0, "G"), (0.0, "copyright:(c) test"), (1.0, "D"), (1.0, "marker:Verse")]
    assert "kept 2 of 7 notes" in summary


def test_trim_cuts_notes_across_the_boundaries_and_clamps_a_late_end():
    out, summary = edit.trim(_sequence(), 1.5, 100.0)
    assert _notes(out, 1) == [(76, 0.0, 0.5, 50), (79, 4.5, 5.5, 70)]
    assert "past the end of the piece" in summary
    with pytest.raises(EditError, match="past the end of the piece"):
        edit.trim(_sequence(), 8.0, 10.0)
    with pytest.raises(EditError, match="empty"):
        edit.trim(_sequence(), 3.0, 2.0)
    with pytest.raises(EditError):
        edit.trim(_sequence(), -1.0, 2.0)


def test_bars_follow_time_signatures_and_tempo():
    ns = _sequence()  # 4/4 at 120 qpm: 2 s bars; 3/4 at 60 qpm from 4 s: 3 s bars; ends at 7 s
    assert bar_start_seconds(ns) == [0.0, 2.0, 4.0]
    second = edit.trim_bars(ns, 2, 2).sequence  # 2 s .. 4 s: nothing sounds; the marker and chord stay
    assert len(second.notes) == 0
    assert sorted((a.time, a.text) for a in second.text_annotations) == \
        [(0.0, "D"), (0.0, "copyright:(c) test"), (0.0, "marker:Verse")]
    third = edit.trim_bars(ns, 3).sequence
    assert _notes(third) == [(79, 2.0, 3.0, 70), (125, 0.0, 1.0, 60)]
    assert [(t.time, t.qpm) for t in third.tempos] == [(0.0, 60.0)]
    assert edit.trim_bars(ns, 1, 9).summary.endswith("(the piece has 3 bars; kept to the end)")
    with pytest.raises(EditError, match="bar 4 is past the end of the piece"):
        edit.trim_bars(ns, 4, 5)


def test_merge_and_split_tracks():
    ns = _sequence()
    merged, summary = edit.merge_tracks(ns, ["0", "violin"])
    assert [t.n_notes for t in list_tracks(merged)] == [5, 2]
    assert {(c.instrument, c.program) for c in merged.control_changes} == {(0, 0)}
    assert "2 notes moved into track 0" in summary
    with pytest.raises(EditError, match="drum and pitched"):
        edit.merge_tracks(ns, ["0", "drums"])
    with pytest.raises(EditError, match="at least two"):
        edit.merge_tracks(ns, ["0", "piano"])
    split, summary = edit.split_track(ns, 62, "0")
    assert _notes(split, 3) == [(60, 0.0, 0.5, 80)] and [p for p, *_ in _notes(split, 0)] == [64, 125]
    assert sum(c.instrument == 3 for c in split.control_changes) == 3 and len(split.pitch_bends) == 2
    with pytest.raises(EditError, match="exactly one pitched track"):
        edit.split_track(ns, 60, "drums")


# ---------------------------------------------------------------- MIDI text events

def test_midi_bytes_keep_lyrics_markers_text_and_chords_in_the_conductor_track():
    midi = mido.MidiFile(file=io.BytesIO(sequence_to_midi_bytes(_sequence())))
    texts = [(m.type, m.text) for m in midi.tracks[0] if m.type in ("lyrics", "marker", "text", "copyright")]
    assert sorted(texts) == sorted([("copyright", "(c) test"), ("lyrics", "Hel-"), ("lyrics", "lo"),
                                    ("marker", "Verse"), ("text", "G"), ("text", "D")])
    read_back = add_midi_extras(note_seq.midi_to_note_sequence(sequence_to_midi_bytes(_sequence())),
                              sequence_to_midi_bytes(_sequence()))
    assert ("lyrics:lo", 0.5) in [(a.text, round(a.time, 6)) for a in read_back.text_annotations]



@pytest.mark.filterwarnings("ignore:Tempo, Key or Time signature change events found on non-zero tracks")
def test_signatures_outside_the_first_track_and_exact_tempos_survive(tmp_path):
    midi = mido.MidiFile(ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=461538)]))  # 130.000... qpm
    midi.tracks.append(mido.MidiTrack([
        mido.MetaMessage("time_signature", numerator=6, denominator=8), mido.MetaMessage("key_signature", key="D"),
        mido.Message("note_on", note=60, velocity=10, time=480), mido.MetaMessage("key_signature", key="Bbm"),
        mido.Message("note_off", note=60, time=480)]))
    midi.save(tmp_path / "in.mid")
    data = (tmp_path / "in.mid").read_bytes()
    assert not note_seq.midi_to_note_sequence(data).key_signatures  # what note-seq alone would lose
    ns = add_midi_extras(note_seq.midi_to_note_sequence(data), data)
    written = mido.MidiFile(file=io.BytesIO(sequence_to_midi_bytes(ns)))
    meta = [(m.type, m.dict().get("key", m.dict().get("tempo", m.dict().get("numerator"))))
            for m in written.tracks[0] if m.type != "end_of_track"]
    assert meta == [("set_tempo", 461538), ("time_signature", 6), ("key_signature", "D"), ("key_signature", "Bbm")]


def test_tracks_sharing_instrument_zero_are_all_written():
    ns = music_pb2.NoteSequence()  # note-seq's own writer keeps only the last of these two tracks
    ns.notes.add(pitch=60, start_time=0.0, end_time=1.0, velocity=80, instrument=0, program=0)
    ns.notes.add(pitch=72, start_time=0.0, end_time=1.0, velocity=80, instrument=0, program=40)
    ns.instrument_infos.add(instrument=0, name="Upper")
    back = note_seq.midi_to_note_sequence(sequence_to_midi_bytes(ns))
    assert sorted((n.pitch, n.program) for n in back.notes) == [(60, 0), (72, 40)]
    assert [i.name for i in back.instrument_infos] == ["Upper", "Upper"]

# ---------------------------------------------------------------- the `musejax edit` command

TPQ = 480


def _write_midi_fixture(path) -> None:
    """Conductor (name, copyright, tempo 120 -> 60, 4/4 -> 3/4, G -> Em, markers, text), piano with lyrics,
    sustain, volume and a pitch bend, violin with modulation, and a drum kit on channel 10."""
    midi = mido.MidiFile(type=1, ticks_per_beat=TPQ)
    meta, msg = mido.MetaMessage, mido.Message
    midi.tracks.append(mido.MidiTrack([
        meta("track_name", name="My Song"), meta("copyright", text="(c) test"), meta("set_tempo", tempo=500000),
        meta("time_signature", numerator=4, denominator=4), meta("key_signature", key="G"),
        meta("marker", text="Intro"), meta("marker", text="Verse", time=4 * TPQ),
        meta("set_tempo", tempo=1000000, time=4 * TPQ), meta("time_signature", numerator=3, denominator=4),
        meta("key_signature", key="Em"), meta("text", text="some text", time=TPQ)]))
    midi.tracks.append(mido.MidiTrack([
        meta("track_name", name="Piano"), msg("program_change", program=0, channel=0),
        msg("control_change", control=7, value=100, channel=0), msg("control_change", control=64, value=127),
        meta("lyrics", text="Hel-"), msg("note_on", note=60, velocity=80), msg("note_off", note=60, time=TPQ),
        meta("lyrics", text="lo"), msg("note_on", note=64, velocity=100),
        msg("pitchwheel", pitch=4096, time=TPQ // 2), msg("note_off", note=64, time=TPQ // 2),
        msg("control_change", control=64, value=0), msg("note_on", note=125, velocity=60, time=6 * TPQ),
        msg("note_off", note=125, time=TPQ)]))
    midi.tracks.append(mido.MidiTrack([
        meta("track_name", name="Violin"), msg("program_change", program=40, channel=1),
        msg("note_on", note=76, velocity=50, channel=1, time=2 * TPQ),
        msg("control_change", control=1, value=30, channel=1, time=TPQ),
        msg("note_off", note=76, channel=1, time=TPQ), msg("note_on", note=79, velocity=70, channel=1, time=9 * TPQ),
        msg("note_off", note=79, channel=1, time=TPQ)]))
    # The writer always starts a track with a program change, so the fixture's kit has one (standard kit, 0).
    drums = mido.MidiTrack([meta("track_name", name="Kit"), msg("program_change", program=0, channel=9)])
    for i in range(8):
        drums += [msg("note_on", note=36 + 2 * (i % 2), velocity=90, channel=9, time=0 if i == 0 else TPQ // 2),
                  msg("note_off", note=36 + 2 * (i % 2), channel=9, time=TPQ // 2)]
    midi.tracks.append(drums)
    midi.save(path)


def _midi_events(path) -> dict:
    """Everything a listener or notation program would see, by track name, in ticks (channels ignored)."""
    midi = mido.MidiFile(path)
    assert midi.ticks_per_beat == TPQ
    events: dict = {"meta": []}
    for track in midi.tracks:
        name = next((m.name for m in track if m.type == "track_name"), "")
        has_notes = any(m.type == "note_on" for m in track)
        tick, sounding, mine = 0, {}, []
        for m in track:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0:
                sounding.setdefault(m.note, []).append((tick, m.velocity))
            elif m.type in ("note_on", "note_off"):
                start, velocity = sounding[m.note].pop(0)
                mine.append(("note", start, tick, m.note, velocity, m.channel == 9))
            elif m.type in ("control_change", "pitchwheel", "program_change"):
                mine.append((m.type, tick) + tuple(v for k, v in sorted(m.dict().items())
                                                   if k in ("control", "value", "pitch", "program")))
            elif m.is_meta and m.type not in ("end_of_track",) and not (m.type == "track_name" and has_notes):
                events["meta"].append((tick, m.type, str({k: v for k, v in m.dict().items() if k != "time"})))
        if has_notes:
            events[name] = sorted(mine)
    events["meta"].sort()
    return events


def _run(args, capsys):
    from musejax import cli

    code = cli.main(["edit", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_round_trip_without_edits_keeps_every_event(tmp_path, capsys):
    _write_midi_fixture(tmp_path / "in.mid")
    code, out, err = _run([tmp_path / "in.mid", tmp_path / "out.mid"], capsys)
    assert code == 0, err
    assert _midi_events(tmp_path / "out.mid") == _midi_events(tmp_path / "in.mid")
    assert "wrote" in out


def test_editing_one_track_leaves_every_other_event_alone(tmp_path, capsys):
    _write_midi_fixture(tmp_path / "in.mid")
    code, out, err = _run([tmp_path / "in.mid", tmp_path / "out.mid", "--velocity", "0.5@violin"], capsys)
    assert code == 0, err
    before, after = _midi_events(tmp_path / "in.mid"), _midi_events(tmp_path / "out.mid")
    assert [e[4] for e in after["Violin"] if e[0] == "note"] == [25, 35]
    after["Violin"] = [e[:4] + (e[4] * 2,) + e[5:] if e[0] == "note" else e for e in after["Violin"]]
    assert after == before
    assert "velocity x0.5 (track 1 Violin): 2 notes, range 50-70 -> 25-35" in out


def test_audio_writes_a_wav_of_the_edited_piece_beside_the_midi(tmp_path, capsys, monkeypatch):
    from musejax.midi.audio import BUILTIN_NOTICE, SOUNDFONT_ENV, read_wav

    monkeypatch.delenv(SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr("musejax.midi.audio.SOUNDFONT_PATHS", ())  # no SoundFont: the built-in synthesizer
    _write_midi_fixture(tmp_path / "in.mid")
    code, out, err = _run([tmp_path / "in.mid", tmp_path / "out.mid", "--tempo", "2", "--audio",
                           "--sample-rate", "16000", "--stereo"], capsys)
    assert code == 0, err
    assert err.count(BUILTIN_NOTICE) == 1 and f"wrote {tmp_path / 'out.wav'}" in out
    samples, rate = read_wav(tmp_path / "out.wav")
    import note_seq

    edited = note_seq.midi_file_to_note_sequence(str(tmp_path / "out.mid"))
    assert rate == 16000 and samples.shape[1] == 2
    assert len(samples) / rate == pytest.approx(edited.total_time + 0.5, abs=0.01)  # twice as fast, + the tail
    code, _, err = _run([tmp_path / "in.mid", tmp_path / "out2.mid", "--audio", "--soundfont", tmp_path / "no.sf2"],
                        capsys)
    assert code == 2 and "no.sf2: SoundFont not found" in err and not (tmp_path / "out2.mid").exists()


def test_transpose_on_the_command_line_never_moves_drums(tmp_path, capsys):
    _write_midi_fixture(tmp_path / "in.mid")
    code, out, err = _run([tmp_path / "in.mid", tmp_path / "out.mid", "--transpose", "2"], capsys)
    assert code == 0, err
    before, after = _midi_events(tmp_path / "in.mid"), _midi_events(tmp_path / "out.mid")
    assert after["Kit"] == before["Kit"]
    assert [e[3] for e in after["Piano"] if e[0] == "note"] == [62, 66, 127]
    assert ("key_signature" in str(after["meta"])) and "'key': 'A'" in str(after["meta"])


def test_edits_apply_in_command_line_order(tmp_path, capsys):
    _write_midi_fixture(tmp_path / "in.mid")
    source = tmp_path / "in.mid"
    assert _run([source, tmp_path / "a.mid", "--transpose", "5", "--transpose", "-5"], capsys)[0] == 0
    assert _run([source, tmp_path / "b.mid", "--transpose", "-5", "--transpose", "5"], capsys)[0] == 0
    def pitches(path):
        return sorted(e[3] for e in _midi_events(path)["Piano"] if e[0] == "note")

    assert pitches(tmp_path / "a.mid") == [60, 64]  # 125 + 5 left MIDI range before coming back
    assert pitches(tmp_path / "b.mid") == [60, 64, 125]
    code, out, _ = _run([source, tmp_path / "c.mid", "--tempo", "2", "--trim", "0:2"], capsys)
    assert code == 0 and out.index("tempo x2") < out.index("trim 0-2 s")
    assert _run([source, tmp_path / "d.mid", "--trim", "0:2", "--tempo", "2"], capsys)[0] == 0
    def count(path):
        return sum(e[0] == "note" for name, events in _midi_events(path).items() if name != "meta" for e in events)

    # c keeps the original's first 4 s (2 piano + 1 violin + 8 drum notes), d its first 2 s (2 + 1 + 4)
    assert (count(tmp_path / "c.mid"), count(tmp_path / "d.mid")) == (11, 7)


def test_all_options_at_once_and_list_tracks(tmp_path, capsys):
    _write_midi_fixture(tmp_path / "in.mid")
    code, out, err = _run([tmp_path / "in.mid", "--list-tracks"], capsys)
    assert code == 0 and out.splitlines()[1] == "1 'Violin' (Violin, 2 notes)"
    code, out, err = _run([tmp_path / "in.mid", tmp_path / "out.mid", "--transpose", "2", "--tempo", "1.25",
                           "--velocity", "0.8", "--program", "piano=violin", "--quantize", "16th",
                           "--trim", "0:30", "--velocity", "40-100@violin", "--tempo", "90bpm",
                           "--trim", "bars 1:2", "--split", "C5@0", "--merge", "0,3"], capsys)
    assert code == 0, err
    assert len(out.strip().splitlines()) == 12
    # Bars 1-2 at the new 90 bpm are the original's first 8 quarter notes (4 s): piano 60, 64, violin 76, drums.
    notes = note_seq.midi_file_to_note_sequence(str(tmp_path / "out.mid")).notes
    assert sorted(n.pitch for n in notes if not n.is_drum) == [62, 66, 78]
    assert {n.program for n in notes if not n.is_drum} == {40} and sum(n.is_drum for n in notes) == 8
    assert "split track 0 at pitch 72: 2 notes below it moved to a new track, 0 stay" in out


def test_bach_chorale_musicxml_round_trip(tmp_path, capsys):
    import music21

    from musejax.data.readers import read_piece

    chorale = music21.corpus.getWork("bwv66.6")
    code, out, err = _run([chorale, tmp_path / "out.mid", "--transpose=-3@bass"], capsys)
    assert code == 0, err
    source = read_piece(chorale)  # what the edit started from
    result = note_seq.midi_file_to_note_sequence(str(tmp_path / "out.mid"))
    assert [i.name for i in result.instrument_infos] == ["Soprano", "Alto", "Tenor", "Bass"]

    def by_track(ns, index):
        key = list_tracks(ns)[index].key
        return sorted((round(n.start_time, 4), round(n.end_time, 4), n.pitch, n.velocity)
                      for n in ns.notes if (n.instrument, n.program, n.is_drum) == key)

    for index in range(3):  # soprano, alto, tenor untouched
        assert by_track(result, index) == by_track(source, index)
    assert by_track(result, 3) == [(s, e, p - 3, v) for s, e, p, v in by_track(source, 3)]
    assert [(round(s.time, 4), s.numerator, s.denominator) for s in result.time_signatures] == \
        [(round(s.time, 4), s.numerator, s.denominator) for s in source.time_signatures]
    assert [(k.key, k.mode) for k in result.key_signatures] == [(k.key, k.mode) for k in source.key_signatures]
    assert [round(t.qpm, 6) for t in result.tempos] == [round(t.qpm, 6) for t in source.tempos]
    assert "transpose -3 (track 3 Bass)" in out


def test_help_defines_the_value_syntax(capsys):
    from musejax import cli

    with pytest.raises(SystemExit):
        cli.main(["edit", "--help"])
    text = capsys.readouterr().out
    for fragment in ["--transpose N[@TRACK]", "90bpm", "40-100", "piano=violin", "8th-triplet", "bars A:B",
                     "PITCH@TRACK", "--list-tracks"]:
        assert fragment in text


@pytest.mark.parametrize("options, reason", [
    (["--program", "piano=kazoo"], "unknown General MIDI program 'kazoo'"),
    (["--program", "flute=violin"], "no track matches 'flute'"),
    (["--tempo", "0"], "tempo factor must be positive"),
    (["--tempo", "-2"], "tempo factor must be positive"),
    (["--velocity", "0"], "velocity factor must be positive"),
    (["--trim", "100:200"], "past the end of the piece"),
    (["--trim", "bars 9:12"], "bar 9 is past the end of the piece"),
    (["--transpose", "1.5"], "whole semitones"),
    (["--quantize", "17th"], "unknown grid"),
])
def test_bad_edits_are_one_line_errors_and_leave_the_output_alone(tmp_path, capsys, options, reason):
    _write_midi_fixture(tmp_path / "in.mid")
    (tmp_path / "out.mid").write_bytes(b"previous")
    code, out, err = _run([tmp_path / "in.mid", tmp_path / "out.mid", *options], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(tmp_path / "in.mid") in err and reason in err, err
    assert (tmp_path / "out.mid").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mid", "out.mid"]


def test_unreadable_input_and_unwritable_output_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "broken.mid").write_bytes(b"MThd this is not a MIDI file")
    code, _, err = _run([tmp_path / "broken.mid", tmp_path / "out.mid"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "broken.mid" in err
    assert not (tmp_path / "out.mid").exists()
    _write_midi_fixture(tmp_path / "in.mid")
    code, _, err = _run([tmp_path / "in.mid", tmp_path / "missing" / "out.mid"], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = _run([tmp_path / "in.mid", tmp_path / "out.xml"], capsys)
    assert code == 2 and "only MIDI output" in err


def test_a_failure_mid_write_leaves_the_target_untouched(tmp_path, capsys, monkeypatch):
    _write_midi_fixture(tmp_path / "in.mid")
    (tmp_path / "out.mid").write_bytes(b"previous")
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    code, _, err = _run([tmp_path / "in.mid", tmp_path / "out.mid", "--transpose", "2"], capsys)
    assert code == 2 and "out.mid: cannot write: No space left on device" in err
    assert (tmp_path / "out.mid").read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mid", "out.mid"]


def test_abc_tune_from_the_corpus(tmp_path, capsys):
    import music21

    from musejax.data.readers import read_piece, split_abc_tunebook

    tunebook = music21.corpus.getWork("essenFolksong/han2.abc")
    header, tunes, _ = split_abc_tunebook(tunebook.read_text(encoding="latin-1"))
    (tmp_path / "tune.abc").write_text("\n".join(header + tunes[0].lines) + "\n", encoding="latin-1")
    code, out, err = _run([tmp_path / "tune.abc", tmp_path / "out.mid", "--transpose", "2"], capsys)
    assert code == 0, err
    source = read_piece(tmp_path / "tune.abc")
    result = note_seq.midi_file_to_note_sequence(str(tmp_path / "out.mid"))
    def as_list(ns, shift=0):
        return [(round(n.start_time, 4), round(n.end_time, 4), n.pitch + shift, n.velocity)
                for n in sorted(ns.notes, key=lambda n: (n.start_time, n.pitch))]

    assert as_list(result) == as_list(source, 2)
    assert [(s.numerator, s.denominator) for s in result.time_signatures] == [(2, 4)]
    assert [k.key for k in source.key_signatures] == [7] and [k.key for k in result.key_signatures] == [9]


def test_the_one_midi_writer_marks_a_primer_end_and_keeps_the_notes(tmp_path):
    ns = music_pb2.NoteSequence(ticks_per_quarter=220)
    ns.tempos.add(time=0.0, qpm=90.0)
    for i, pitch in enumerate((60, 64, 67, 72)):
        ns.notes.add(pitch=pitch, velocity=80, start_time=i * 0.5, end_time=(i + 1) * 0.5)
    ns.total_time = 2.0
    ns.text_annotations.add(time=1.0, text=PRIMER_END_ANNOTATION)
    assert primer_end_seconds(ns) == 1.0
    path = write_midi(ns, tmp_path / "out" / "sample.mid")
    texts = [(m.type, m.text) for track in mido.MidiFile(path).tracks for m in track if m.type == "text"]
    assert texts == [("text", "primer end")]
    back = note_seq.midi_file_to_note_sequence(str(path))
    assert [(n.pitch, round(n.start_time, 3)) for n in back.notes] == [(60, 0.0), (64, 0.5), (67, 1.0), (72, 1.5)]
    assert [p.name for p in path.parent.iterdir()] == ["sample.mid"]  # no temporary file left

