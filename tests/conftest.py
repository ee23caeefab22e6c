"""Shared small fixtures: tiny music files of every supported format, written into tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

from child_env import with_fast_compile

os.environ["XLA_FLAGS"] = with_fast_compile(os.environ.get("XLA_FLAGS", ""))  # before JAX starts: child_env.py
if os.environ.get("PYTEST_XDIST_WORKER"):  # several test processes (before any backend starts): none may claim
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # most of a GPU's memory

# Two CPU devices, as the `musejax` command gives a 2-core machine (musejax/host.py), on every machine: the
# training loops and the sampler run split over both, as they do for users here.
jax.config.update("jax_num_cpu_devices", 2)

# Two parts, 2/4 at a bare <sound tempo="60"/> (1 quarter = 1 s). Part 1: C5 half tied over the bar
# to a C5 quarter, then D5 quarter. Part 2: a C4+E4 chord (whole bar), then a rest and G3.
MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1">
  <work><work-title>Tiny Duet</work-title></work>
  <identification><creator type="composer">Test Composer</creator></identification>
  <part-list>
    <score-part id="P1"><part-name>Upper</part-name></score-part>
    <score-part id="P2"><part-name>Lower</part-name></score-part>
  </part-list>
  <part id="P1">
    <measure number="1">
      <attributes><divisions>1</divisions><key><fifths>0</fifths></key>
        <time><beats>2</beats><beat-type>4</beat-type></time></attributes>
      <sound tempo="60"/>
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration><tie type="start"/>
        <type>half</type><notations><tied type="start"/></notations></note>
    </measure>
    <measure number="2">
      <note><pitch><step>C</step><octave>5</octave></pitch><duration>1</duration><tie type="stop"/>
        <type>quarter</type><notations><tied type="stop"/></notations></note>
      <note><pitch><step>D</step><octave>5</octave></pitch><duration>1</duration><type>quarter</type></note>
    </measure>
  </part>
  <part id="P2">
    <measure number="1">
      <attributes><divisions>1</divisions><key><fifths>0</fifths></key>
        <time><beats>2</beats><beat-type>4</beat-type></time><clef><sign>F</sign><line>4</line></clef></attributes>
      <note><pitch><step>C</step><octave>4</octave></pitch><duration>2</duration><type>half</type></note>
      <note><chord/><pitch><step>E</step><octave>4</octave></pitch><duration>2</duration><type>half</type></note>
    </measure>
    <measure number="2">
      <note><rest/><duration>1</duration><type>quarter</type></note>
      <note><pitch><step>G</step><octave>3</octave></pitch><duration>1</duration><type>quarter</type></note>
    </measure>
  </part>
</score-partwise>
"""

# Tune 1: note-seq reads it (with a tie it would drop); tune 2 has a rest and a triplet, which only
# music21 reads; tune 5 is broken for both; tune 6 has no notes.
ABC_TUNEBOOK = """%abc-2.1
% a file header that applies to every tune:
L:1/8

X:1
T:Tied Tune
M:4/4
K:G
G2 A2 B4- | B2 c2 d4 |]

X:2
T:Rests And Triplets
M:3/4
K:D
d2 z2 (3fed | A6 |]

X:5
T:Broken
M:4/4
K:C
C D E F | [[[ G2 A2 }}} |

X:6
T:Silence
M:4/4
K:C
z8 | z8 |]
"""

# Two spines (bass, soprano) in 4/4 at quarter = 120: four quarter notes each.
HUMDRUM = """!!!COM: Test Composer
!!!OTL: Tiny Chorale
**kern\t**kern
*M4/4\t*M4/4
=1\t=1
4C\t4c
4D\t4d
4E\t4e
4F\t4f
==\t==
*-\t*-
"""


def write_midi(path: Path, pitches=(60, 64, 67), seconds_per_note: float = 0.5) -> Path:
    """A one-track MIDI file of consecutive notes, written with pretty_midi."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0, name="piano")
    for i, pitch in enumerate(pitches):
        piano.notes.append(pretty_midi.Note(velocity=80, pitch=pitch, start=i * seconds_per_note,
                                            end=(i + 1) * seconds_per_note))
    midi.instruments.append(piano)
    path.parent.mkdir(parents=True, exist_ok=True)
    midi.write(str(path))
    return path


@pytest.fixture
def music_files(tmp_path: Path) -> dict[str, Path]:
    """One small file per format plus the tunebook, in tmp_path."""
    files = {
        "midi": write_midi(tmp_path / "melody.mid"),
        "musicxml": tmp_path / "duet.musicxml",
        "abc": tmp_path / "book.abc",
        "humdrum": tmp_path / "chorale.krn",
    }
    files["musicxml"].write_text(MUSICXML, encoding="utf-8")
    files["abc"].write_text(ABC_TUNEBOOK, encoding="utf-8")
    files["humdrum"].write_text(HUMDRUM, encoding="utf-8")
    return files
