"""General MIDI program numbers and names.

Programs are numbered 0-127 as stored in MIDI files and in NoteSequence (`note.program`); the printed General
MIDI list is 1-based, so GM "41 Violin" is program 40 here. Names come from pretty_midi's GM table.
"""

from __future__ import annotations

import difflib
import re

from pretty_midi.constants import INSTRUMENT_MAP

PROGRAM_NAMES: tuple[str, ...] = tuple(INSTRUMENT_MAP)

# Short everyday names for programs whose GM name is longer (or shared by several programs).
PROGRAM_ALIASES: dict[str, int] = {
    "piano": 0,
    "grand piano": 0,
    "electric piano": 4,
    "rhodes": 4,
    "organ": 19,
    "guitar": 24,
    "nylon guitar": 24,
    "steel guitar": 25,
    "electric guitar": 27,
    "bass": 32,
    "upright bass": 32,
    "electric bass": 33,
    "strings": 48,
    "string ensemble": 48,
    "harp": 46,
    "choir": 52,
    "voice": 52,
    "sax": 65,
    "saxophone": 65,
    "synth": 80,
    "synth lead": 80,
    "synth pad": 88,
    "pad": 88,
}


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_BY_NAME: dict[str, int] = {_normalise(name): program for program, name in enumerate(PROGRAM_NAMES)}
_BY_ALIAS: dict[str, int] = {_normalise(alias): program for alias, program in PROGRAM_ALIASES.items()}


def program_name(program: int) -> str:
    """The General MIDI name of `program` (0-127)."""
    if not 0 <= program <= 127:
        raise ValueError(f"MIDI program {program} is outside 0-127")
    return PROGRAM_NAMES[program]


def find_program(name: str) -> int | None:
    """The program a GM name or alias denotes (case, spaces and punctuation ignored), or None if unknown.

    An exact GM name or alias wins; otherwise a fragment that occurs in exactly one GM name ("nylon").
    """
    key = _normalise(name)
    if not key:
        return None
    if key in _BY_NAME:
        return _BY_NAME[key]
    if key in _BY_ALIAS:
        return _BY_ALIAS[key]
    matches = [program for normalised, program in _BY_NAME.items() if key in normalised]
    return matches[0] if len(matches) == 1 else None


def parse_program(text: str) -> int:
    """A program from a number 0-127 or a GM name/alias; ValueError with suggestions otherwise."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        number = int(text)
        if not 0 <= number <= 127:
            raise ValueError(f"MIDI program {number} is outside 0-127")
        return number
    program = find_program(text)
    if program is not None:
        return program
    candidates = list(PROGRAM_NAMES) + list(PROGRAM_ALIASES)
    close = difflib.get_close_matches(text.lower(), [c.lower() for c in candidates], n=3, cutoff=0.6)
    key = _normalise(text)
    ambiguous = [name for name in PROGRAM_NAMES if key and key in _normalise(name)]
    if len(ambiguous) > 1:
        hint = f"; it matches several: {', '.join(ambiguous[:6])}"
    elif close:
        hint = f"; did you mean {' / '.join(close)}?"
    else:
        hint = "; use 0-127 or a General MIDI name such as piano, violin, flute"
    raise ValueError(f"unknown General MIDI program {text!r}{hint}")
