"""An ABC tune's pickup bar, which note-seq's ABC parser does not keep.

note-seq puts the tune's meter at time 0 whatever its first bar holds, so a tune that starts with a pickup (most
reels, jigs and hornpipes: "A | dBG ...") reads with every bar line early by the pickup. The music21 reader gives
a short measure a meter of its own length (music21_convert.py `_meters`); this gives note-seq's tunes the same
first meter: the tune is parsed again up to its first bar line, and a first bar shorter than the meter's becomes
a meter of its length (1/8 for an eighth's pickup in 2/4), the tune's meter following at its end.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from note_seq import NoteSequence

from musejax.data.music21_convert import _short_meter

_FIELD = re.compile(r"^[A-Za-z+]:")
# chord symbols, decorations, inline fields, grace notes and comments: no note or bar line of the tune's own
_NOT_MUSIC = re.compile(r'"[^"]*"|![^!]*!|\+[^+\s]*\+|\[[A-Za-z]:[^\]]*\]|\{[^}]*\}|%.*$')
_NOTE_OR_REST = re.compile(r"[A-Ga-gzxZX]")


def first_bar_lines(lines: Sequence[str]) -> list[str] | None:
    """The tune's lines up to its first bar line that follows a note or rest (its fields kept), or None when no
    bar line follows one."""
    kept: list[str] = []
    in_body = False
    heard = False
    for line in lines:
        if not in_body or _FIELD.match(line):
            kept.append(line)
            in_body = in_body or line.startswith("K:")
            continue
        code = _NOT_MUSIC.sub(lambda match: " " * len(match.group(0)), line)
        for position, char in enumerate(code):
            if char == "|" and heard:
                kept.append(line[:position])
                return kept
            heard = heard or bool(_NOTE_OR_REST.match(char))
        kept.append(line)
    return None


def mark_pickup(ns: NoteSequence, lines: Sequence[str], parse: Callable[[list[str]], NoteSequence]) -> None:
    """Give `ns` (note-seq's reading of the tune `lines`, header included) a pickup meter where its first bar is
    shorter than its meter's; `parse` reads ABC lines as `ns` was read."""
    signatures = sorted(ns.time_signatures, key=lambda s: s.time)
    if not signatures or signatures[0].time > 0 or not ns.notes:
        return
    prefix = first_bar_lines(lines)
    if prefix is None:
        return
    try:  # where a note after the first bar would start: its length, rests included
        pickup_seconds = max(note.start_time for note in parse([*prefix[:-1], prefix[-1] + " c"]).notes)
    except Exception:  # noqa: BLE001 - a first bar note-seq cannot read alone: leave the tune as read
        return
    qpm = ns.tempos[0].qpm if ns.tempos and ns.tempos[0].qpm > 0 else 120.0  # note-seq's default without Q:
    first = signatures[0]
    pickup_quarters = pickup_seconds * qpm / 60.0
    if not 1e-6 < pickup_quarters < 4.0 * first.numerator / first.denominator - 1e-6:
        return
    meter = _short_meter(pickup_quarters, first.denominator)
    if meter is None:
        return
    first.time = pickup_seconds
    ns.time_signatures.add(time=0.0, numerator=meter[0], denominator=meter[1])
    replace_repeated(ns.time_signatures, sorted(ns.time_signatures, key=lambda s: s.time))


def replace_repeated(field, items: list) -> None:
    """Set a repeated proto field to copies of `items` (which may be elements of it)."""
    copies = [type(item)() for item in items]
    for copy, item in zip(copies, items):
        copy.CopyFrom(item)
    del field[:]
    field.extend(copies)
