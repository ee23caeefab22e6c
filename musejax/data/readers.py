"""Read MIDI, MusicXML, ABC tunebooks and Humdrum files into `note_seq.NoteSequence` protos.

MIDI: note-seq. ABC: note-seq per tune (ties restored, which it drops), music21 for the tunes it
rejects (rests, tuplets, grace notes, chords, variant endings). MusicXML and Humdrum: music21 (note-seq's
MusicXML reader drops ties and misreads tempos; it has no Humdrum reader), converted directly to a
NoteSequence. Bad content never raises from `read_file`: it comes back as `ReadFailure`s, so a corpus
build can report it and go on. note-seq and music21 are imported lazily: listing corpora stays fast.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import warnings
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from musejax.data.abc_bars import mark_pickup, replace_repeated
from musejax.data import music21_convert
from musejax.errors import UserError

if TYPE_CHECKING:
    from note_seq import NoteSequence

SUPPORTED_FORMATS: dict[str, str] = {
    ".mid": "midi", ".midi": "midi",
    ".xml": "musicxml", ".mxl": "musicxml", ".musicxml": "musicxml",
    ".abc": "abc",
    ".krn": "humdrum",
}
FORMATS: tuple[str, ...] = ("midi", "musicxml", "abc", "humdrum")
# Bumped whenever reading rules change, so caches keyed on a corpus fingerprint are rebuilt.
# 2: a short measure (a pickup) gets a meter of its own length; 3: so does an ABC tune's pickup read by note-seq
READER_VERSION = "3"
DEFAULT_BUDGET_SECONDS = 60.0
ABC_DEFAULT_VELOCITY = 90  # note-seq's ABC default (!mf!); the music21 path matches it


class ReadFailure(NamedTuple):
    """One file or tune that could not be read: short `reason` category plus a human `detail`."""

    path: str
    tune: int | None
    reason: str  # empty, not-music, corrupt-midi, parse-error, no-notes, timeout, unsupported-format, ...
    detail: str


class ReadError(UserError):
    """A file the user named explicitly could not be read; message is "PATH: reason: detail"."""


class PieceTimeout(BaseException):
    """Raised by SIGALRM inside a parse that overran its budget (BaseException: libraries' broad
    `except Exception` blocks must not swallow it)."""


def format_of(path: str | os.PathLike, format: str | None = None) -> str | None:
    """The format name of `path` (from `format` if given, else its suffix); None if unsupported."""
    if format is not None:
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; known formats: {', '.join(FORMATS)}")
        return format
    return SUPPORTED_FORMATS.get(Path(path).suffix.lower())


@contextlib.contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Raise PieceTimeout if the body runs longer than `seconds` (main thread on POSIX; else no limit)."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _on_alarm(signum, frame):
        raise PieceTimeout(f"took longer than the {seconds:g} s budget")

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----------------------------------------------------------------------------------------- ABC tunebooks

_FIELD = re.compile(r"^[A-Za-z+]:")
_X_FIELD = re.compile(r"^X:\s*(\S*)")


class AbcTune(NamedTuple):
    number: int  # the X: number, or the 1-based position when X: is not an integer
    lines: list[str]


def split_abc_tunebook(text: str) -> tuple[list[str], list[AbcTune], list[tuple[int, str]]]:
    """Split ABC text into (file-header fields, tunes, duplicates). Cheap: no music parsing.

    A tune starts at an X: line and ends at a blank line or the next X: line (ABC 2.1). A repeated
    tune number keeps the first tune; each later one is returned as (number, message).
    """
    header: list[str] = []
    tunes: list[AbcTune] = []
    duplicates: list[tuple[int, str]] = []
    seen: set[int] = set()
    current: list[str] | None = None
    chunks: list[list[str]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if _X_FIELD.match(line):
            if current:
                chunks.append(current)
            current = [line]
        elif current is None:
            if _FIELD.match(line) or line.startswith("%%"):
                header.append(line)
        elif not line:
            chunks.append(current)
            current = None
        else:
            current.append(line)
    if current:
        chunks.append(current)
    if not chunks and any(line.startswith("K:") for line in header):  # one tune without X:
        chunks, header = [["X:1", *header]], []
    for position, lines in enumerate(chunks, start=1):
        value = _X_FIELD.match(lines[0]).group(1)
        number = int(value) if value.isdigit() else position
        if number in seen:
            duplicates.append((number, f"tune X:{number} appears again at position {position}; kept the first"))
            continue
        seen.add(number)
        tunes.append(AbcTune(number, lines))
    return header, tunes, duplicates


_TIE_TOKEN = '"@musejax-tie@"'
_ABC_SKIP_OR_TIE = re.compile(r'("[^"]*"|![^!]*!|\[[A-Za-z]:[^\]]*\]|%.*$)|-')


def _mark_abc_ties(lines: list[str]) -> list[str]:
    """Replace each tie "-" in the tune body by a text annotation that note-seq keeps (it drops ties)."""
    return [line if _FIELD.match(line) else
            _ABC_SKIP_OR_TIE.sub(lambda m: m.group(1) or _TIE_TOKEN, line) for line in lines]


def _merge_marked_ties(ns: NoteSequence) -> None:
    """Join the two notes around each tie mark (note-seq ABC is monophonic) and drop the marks.

    A "tie" between different pitches (some transcribers use "-" as a slur) joins nothing."""
    mark_text = _TIE_TOKEN.strip('"')
    marks = [a.time for a in ns.text_annotations if a.text == mark_text]
    if not marks:
        return
    notes = sorted(ns.notes, key=lambda n: (n.start_time, n.end_time))
    dropped: set[int] = set()
    for time in marks:
        before = [i for i, n in enumerate(notes) if abs(n.end_time - time) < 1e-9 and i not in dropped]
        after = [i for i, n in enumerate(notes) if abs(n.start_time - time) < 1e-9 and i not in dropped]
        if before and after and notes[before[-1]].pitch == notes[after[0]].pitch:
            notes[before[-1]].end_time = notes[after[0]].end_time
            dropped.add(after[0])
    replace_repeated(ns.notes, [n for i, n in enumerate(notes) if i not in dropped])
    replace_repeated(ns.text_annotations, [a for a in ns.text_annotations if a.text != mark_text])


def _abc_tune_with_note_seq(header: list[str], tune: AbcTune) -> NoteSequence:
    from note_seq import abc_parser

    def parse(lines: list[str]) -> NoteSequence:
        return abc_parser.ABCTune(header + _mark_abc_ties(lines)).note_sequence

    ns = parse(tune.lines)
    _merge_marked_ties(ns)
    mark_pickup(ns, tune.lines, parse)  # note-seq puts the meter at 0 even after a pickup
    return ns


def _abc_tune_with_music21(header: list[str], tune: AbcTune) -> NoteSequence:
    from music21 import converter, stream

    lines = header + tune.lines
    if not any(line.startswith(("L:", "M:")) for line in lines):
        lines = [lines[0], "L:1/8", *lines[1:]]  # ABC 2.1 default; music21 insists on one
    score = converter.parseData("\n".join(lines) + "\n", format="abc")
    if isinstance(score, stream.Opus):
        score = score.scores[0]
    ns = music21_convert.music21_to_sequence(score, default_velocity=ABC_DEFAULT_VELOCITY)
    ns.source_info.encoding_type = ns.source_info.ABC
    return ns


def _read_abc(path: Path, text: str, tunes: Collection[int] | None, budget: float | None):
    header, all_tunes, duplicates = split_abc_tunebook(text)
    failures = [ReadFailure(str(path), number, "duplicate-tune", message) for number, message in duplicates
                if tunes is None or number in tunes]
    if not all_tunes:
        return [], failures + [ReadFailure(str(path), None, "not-music", "no ABC tune (no X: or K: line)")]
    sequences = []
    for tune in all_tunes:
        if tunes is not None and tune.number not in tunes:
            continue
        ns, first_error = _attempt(_abc_tune_with_note_seq, header, tune, budget=budget)
        if ns is None or not len(ns.notes):
            ns, error = _attempt(_abc_tune_with_music21, header, tune, budget=budget)
            if ns is None:
                if first_error:
                    error = (error[0], f"{error[1]} (note-seq: {first_error[1]})")
                failures.append(ReadFailure(str(path), tune.number, *error))
                continue
        sequences.append((tune.number, ns))
    return sequences, failures


# -------------------------------------------------------------------------------- MIDI, MusicXML, Humdrum

def _read_midi(path: Path, data: bytes) -> NoteSequence:
    import note_seq

    return note_seq.midi_to_note_sequence(data)


def _read_musicxml(path: Path) -> NoteSequence:
    ns = music21_convert.parse_file(path, "musicxml")
    ns.source_info.encoding_type = ns.source_info.MUSIC_XML
    return ns


def _read_humdrum(path: Path) -> NoteSequence:
    return music21_convert.parse_file(path, "humdrum")


def _sniff(fmt: str, data: bytes) -> str | None:
    """Why `data` cannot be `fmt` at all (a cheap magic-bytes check), or None if it may be."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 text (some MusicXML exporters write it)
        data = data[:65536].decode("utf-16", "replace").encode("utf-8")
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return "empty"
    if fmt == "midi" and not (data.startswith(b"MThd") or (data.startswith(b"RIFF") and data[8:12] == b"RMID")):
        return "not-music"
    if fmt == "musicxml" and not (head.startswith(b"<") or data.startswith(b"PK")):
        return "not-music"
    if fmt == "humdrum" and not (head.startswith(b"**") or b"\n**" in data):
        return "not-music"
    return None


def _attempt(function, *args, budget: float | None):
    """Run one parse under the time budget: (sequence, None) or (None, (reason, detail))."""
    try:
        with time_budget(budget), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # music21 warns per odd measure; failures are reported instead
            return function(*args), None
    except PieceTimeout as error:
        return None, ("timeout", str(error))
    except Exception as error:  # any library error is this piece's failure, never the build's
        reason = "corrupt-midi" if function is _read_midi else "parse-error"
        return None, (reason, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300])


def decode_text(data: bytes) -> str:
    """Text of a music file: UTF-16 (with BOM), else UTF-8, else Latin-1."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", "replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _read_any(path: Path, fmt: str, tunes: Collection[int] | None, budget: float | None):
    """Parse one file: ([(tune number or None, sequence)], [ReadFailure])."""
    data = path.read_bytes()
    problem = _sniff(fmt, data)
    if problem:
        return [], [ReadFailure(str(path), None, problem, f"does not look like a {fmt} file")]
    if fmt == "abc":
        return _read_abc(path, decode_text(data), tunes, budget)
    if fmt == "midi":
        ns, error = _attempt(_read_midi, path, data, budget=budget)
    elif fmt == "musicxml":
        ns, error = _attempt(_read_musicxml, path, budget=budget)
    else:
        ns, error = _attempt(_read_humdrum, path, budget=budget)
    if ns is None:
        return [], [ReadFailure(str(path), None, *error)]
    return [(None, ns)], []


def read_file(path: str | os.PathLike, *, style: str | None = None, corpus: str | None = None,
              root: str | os.PathLike | None = None, format: str | None = None,
              tunes: Collection[int] | None = None,
              budget_seconds: float | None = DEFAULT_BUDGET_SECONDS,
              ) -> tuple[list[NoteSequence], list[ReadFailure]]:
    """Read every piece of one file (a tunebook gives one per tune; `tunes` keeps only those X: numbers).

    Bad content comes back as failures; a missing path raises ReadError, an unknown `format` ValueError.
    `budget_seconds` bounds each piece's parse (None: no limit).
    """
    path = Path(path)
    fmt = format_of(path, format)
    if not path.is_file():
        raise ReadError(f"{path}: missing: no such file")
    if fmt is None:
        known = ", ".join(sorted(SUPPORTED_FORMATS))
        return [], [ReadFailure(str(path), None, "unsupported-format", f"suffix {path.suffix!r} is not one of {known}")]
    try:
        pieces, failures = _read_any(path, fmt, tunes, budget_seconds)
    except OSError as error:
        return [], [ReadFailure(str(path), None, "unreadable", str(error))]
    rel = Path(os.path.relpath(path, root)).as_posix() if root is not None else path.name
    sequences = []
    for number, ns in pieces:
        if not len(ns.notes):
            failures.append(ReadFailure(str(path), number, "no-notes", "parsed, but it has no notes"))
            continue
        ns.id = (f"{corpus}/{rel}" if corpus else rel) + (f"#{number}" if number is not None else "")
        ns.filename = str(path)
        ns.reference_number = number or 0
        ns.collection_name = corpus or ""
        del ns.sequence_metadata.genre[:]
        if style:
            ns.sequence_metadata.genre.append(style)
        sequences.append(ns)
    return sequences, failures


def read_piece(path: str | os.PathLike, *, format: str | None = None) -> NoteSequence:
    """Read a file holding exactly one piece (or a one-tune tunebook); anything else is a ReadError."""
    fmt = format_of(path, format)
    if fmt is None:
        raise ReadError(f"{path}: unsupported-format: suffix {Path(path).suffix!r} is not one of "
                        f"{', '.join(sorted(SUPPORTED_FORMATS))}")
    sequences, failures = read_file(path, format=fmt)
    if failures:
        first = failures[0]
        tune = f" (tune {first.tune})" if first.tune is not None else ""
        raise ReadError(f"{path}{tune}: {first.reason}: {first.detail}")
    if len(sequences) != 1:
        raise ReadError(f"{path}: several-pieces: it holds {len(sequences)} tunes; pick one with an editor "
                        "or read it as a corpus")
    return sequences[0]
