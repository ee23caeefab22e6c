"""`musejax edit IN OUT --transpose 2 --tempo 1.25 ...`: apply edits in the order given, write MIDI atomically."""

from __future__ import annotations

import argparse
from pathlib import Path

from musejax.errors import CommandError
from musejax.cli.audio_options import add_audio_arguments, renderer_from_args
from musejax.data.atomic import write_bytes_atomically
from musejax.data.readers import read_piece
from musejax.edit.spec import SYNTAX, parse_operation
from musejax.midi.meta import add_midi_extras, sequence_to_midi_bytes
from musejax.midi.tracks import NoteSequence, describe_tracks, list_tracks

MIDI_SUFFIXES = (".mid", ".midi")


class _AppendOperation(argparse.Action):
    """Appends (option, value) to args.operations so edits keep their command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        operations = list(getattr(namespace, "operations", None) or [])
        operations.append((self.dest, values))
        setattr(namespace, "operations", operations)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = SYNTAX
    parser.add_argument("input", metavar="IN", help="MIDI, MusicXML or ABC file to edit")
    parser.add_argument("output", metavar="OUT", nargs="?", help="MIDI file to write (.mid or .midi)")
    parser.add_argument("--list-tracks", action="store_true",
                        help="print IN's tracks (index, name, program, notes); exit unless OUT is given")
    parser.set_defaults(operations=[])
    metavars = {"transpose": "N[@TRACK]", "tempo": "F|Nbpm", "velocity": "V[@TRACK]",
                "program": "[TRACK=]PROGRAM", "quantize": "GRID[+durations][@TRACK]", "trim": "START:END",
                "merge": "T1,T2", "split": "PITCH@TRACK"}
    helps = {"transpose": "transpose by N semitones", "tempo": "scale the tempo or set the opening bpm",
             "velocity": "scale, offset or compress velocities", "program": "change General MIDI program",
             "quantize": "snap onsets (and durations) to a grid", "trim": "keep a time or bar range",
             "merge": "merge tracks", "split": "split a track at a pitch"}
    for option, metavar in metavars.items():
        parser.add_argument(f"--{option}", dest=option, metavar=metavar, action=_AppendOperation,
                            help=helps[option])
    add_audio_arguments(parser)


def _read(path: Path) -> NoteSequence:
    ns = read_piece(str(path))
    if path.suffix.lower() in MIDI_SUFFIXES:
        try:
            ns = add_midi_extras(ns, path.read_bytes())
        except (OSError, ValueError, EOFError, KeyError, IndexError) as err:
            raise CommandError(f"{path}: cannot read MIDI meta events: {err}") from None
    return ns


def run(args: argparse.Namespace) -> int:
    source = Path(args.input)
    operations = []
    for option, text in args.operations:
        try:
            operations.append(parse_operation(option, text))
        except ValueError as err:
            raise CommandError(f"{source}: --{option} {text}: {err}") from None
    if args.output is None and not args.list_tracks:
        raise CommandError(f"{source}: no OUT file given (or use --list-tracks)")
    target = Path(args.output) if args.output else None
    if target is not None and target.suffix.lower() not in MIDI_SUFFIXES:
        raise CommandError(f"{target}: only MIDI output is supported (.mid or .midi)")
    if target is not None and not target.parent.is_dir():
        raise CommandError(f"{target}: cannot write: directory {target.parent} does not exist")
    renderer = renderer_from_args(args)
    ns = _read(source)
    if args.list_tracks:
        for track in list_tracks(ns):
            print(track.label())
        if target is None:
            return 0
    for operation in operations:
        try:
            ns, summary = operation.apply(ns)
        except ValueError as err:  # EditError and friends: the edit does not fit this piece
            raise CommandError(f"{source}: --{operation.option} {operation.text}: {err}") from None
        print(summary)
    if not operations:
        print("no edits: converting only")
    data = sequence_to_midi_bytes(ns)
    try:
        write_bytes_atomically(target, data)
    except OSError as err:
        raise CommandError(f"{target}: cannot write: {err.strerror or err}") from None
    print(f"wrote {target}: {len(ns.notes)} notes; tracks: {describe_tracks(ns)}")
    if renderer is not None:
        try:
            wav = renderer.render(ns, target.with_suffix(".wav"))
        except (OSError, ValueError) as err:
            raise CommandError(f"{target.with_suffix('.wav')}: cannot write audio: {err}") from None
        print(f"wrote {wav} ({renderer.describe()})")
    return 0
