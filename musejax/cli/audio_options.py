"""The audio options every MIDI-writing command shares (--audio, --soundfont, --sample-rate, --stereo)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musejax.errors import CommandError
from musejax.midi.audio import Renderer, make_renderer


def add_audio_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --audio and its settings to a command's parser."""
    group = parser.add_argument_group("audio")
    group.add_argument("--audio", action="store_true",
                       help="also write a WAV beside every MIDI file (FluidSynth + a GM SoundFont if present, "
                            "else the built-in synthesizer)")
    group.add_argument("--soundfont", type=Path, default=None, metavar="FILE",
                       help="General MIDI SoundFont (.sf2) for FluidSynth (default: $MUSEJAX_SOUNDFONT or a "
                            "system one such as /usr/share/sounds/sf2/FluidR3_GM.sf2)")
    group.add_argument("--sample-rate", type=int, default=44_100, metavar="HZ", help="WAV sample rate (default 44100)")
    group.add_argument("--stereo", action="store_true", help="stereo WAV, tracks panned apart (default mono)")


def renderer_from_args(args: argparse.Namespace, *, announce: bool = True) -> Renderer | None:
    """The renderer --audio asks for (None without --audio), its notice printed once (if `announce`: the
    first process of a job); CommandError for a missing SoundFont or a bad rate."""
    if not args.audio:
        if args.soundfont is not None or args.stereo:
            raise CommandError("--soundfont and --stereo need --audio")
        return None
    renderer = make_renderer(soundfont=args.soundfont, sample_rate=args.sample_rate, stereo=args.stereo)
    if renderer.notice and announce:
        print(renderer.notice, file=sys.stderr)
    return renderer
