"""NoteSequence -> WAV: through FluidSynth and a General MIDI SoundFont where both are present, else through the
built-in synthesizer (`musejax.midi.synth`).

FluidSynth is the system's `fluidsynth` program (on PATH) or the `pyfluidsynth` package (the `audio` extra;
it needs the libfluidsynth shared library). A SoundFont is `--soundfont FILE`, else `$MUSEJAX_SOUNDFONT`, else
the first of `SOUNDFONT_PATHS` that exists. Every WAV is 16-bit PCM, mono or stereo, peak-normalised to
`PEAK` (so it never clips), 44.1 kHz unless asked otherwise.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

import numpy as np
from note_seq import NoteSequence

from musejax.data.atomic import atomic_write
from musejax.errors import UserError
from musejax.midi.synth import DEFAULT_SAMPLE_RATE, synthesize
from musejax.midi.meta import write_midi

PEAK = 0.89  # peak level after normalisation (of full scale)
SOUNDFONT_ENV = "MUSEJAX_SOUNDFONT"
SOUNDFONT_PATHS: tuple[str, ...] = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian/Ubuntu fluid-soundfont-gm
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",  # Fedora, Arch
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/local/share/soundfonts/default.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
)
BUILTIN_NOTICE = ("no FluidSynth/SoundFont found: rendering with the built-in synthesizer "
                  "(pip install 'musejax[audio]' and a GM SoundFont for realistic instruments)")


class AudioError(UserError):
    """A SoundFont that is not there, a bad setting, or FluidSynth failing; the message names the file."""


def find_soundfont(soundfont: str | Path | None = None) -> Path | None:
    """The SoundFont to use: `soundfont` (must exist), else $MUSEJAX_SOUNDFONT (must exist), else a common path."""
    for given, what in ((soundfont, "--soundfont"), (os.environ.get(SOUNDFONT_ENV) or None, f"${SOUNDFONT_ENV}")):
        if given is not None:
            path = Path(given).expanduser()
            if not path.is_file():
                raise AudioError(f"{path}: SoundFont not found (given by {what})")
            return path
    return next((Path(p) for p in SOUNDFONT_PATHS if Path(p).is_file()), None)


def _pyfluidsynth() -> Any | None:
    """The pyfluidsynth module, or None when it or the libfluidsynth library it loads is missing."""
    try:
        import fluidsynth
    except (ImportError, OSError):
        return None
    return fluidsynth if hasattr(fluidsynth, "Synth") else None


def peak_normalise(samples: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """Scale so the largest magnitude is `peak` (silence stays silent)."""
    samples = np.asarray(samples, dtype=np.float64)
    top = float(np.max(np.abs(samples), initial=0.0))
    return samples * (peak / top) if top > 0 else samples


def write_wav(samples: np.ndarray, path: str | Path, sample_rate: int) -> Path:
    """Write float samples in [-1, 1] ((n,) mono or (n, 2) stereo) as 16-bit PCM, atomically; returns the path."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and samples.shape[1] not in (1, 2)):
        raise AudioError(f"{path}: audio must be (n,) or (n, 1|2), got shape {samples.shape}")
    pcm = np.round(np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    path = Path(path)
    with atomic_write(path) as handle:
        with wave.open(handle, "wb") as out:
            out.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(pcm.tobytes())
    return path


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV as float samples ((n,) mono or (n, channels)) and its sample rate."""
    try:
        with wave.open(str(path), "rb") as handle:
            channels, width, rate = handle.getnchannels(), handle.getsampwidth(), handle.getframerate()
            frames = handle.readframes(handle.getnframes())
    except (OSError, EOFError, wave.Error) as err:
        raise AudioError(f"{path}: cannot read WAV: {err}") from None
    if width != 2:
        raise AudioError(f"{path}: {8 * width}-bit WAV; expected 16-bit PCM")
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64) / 32768.0
    return (samples if channels == 1 else samples.reshape(-1, channels)), rate


@dataclasses.dataclass(frozen=True)
class Renderer:
    """Renders NoteSequences to WAV files with one backend: "fluidsynth" (program), "pyfluidsynth" or "builtin".

    `notice` is the line a command prints once when FluidSynth could not be used (None when it is used).
    """

    backend: str
    soundfont: Path | None = None
    sample_rate: int = DEFAULT_SAMPLE_RATE
    stereo: bool = False

    @property
    def notice(self) -> str | None:
        return BUILTIN_NOTICE if self.backend == "builtin" else None

    def describe(self) -> str:
        where = f" with {self.soundfont}" if self.soundfont else ""
        return f"{self.backend}{where}, {self.sample_rate} Hz {'stereo' if self.stereo else 'mono'}"

    def samples(self, sequence: NoteSequence) -> np.ndarray:
        """Peak-normalised float audio of `sequence`: (n,) mono or (n, 2) stereo."""
        if self.backend == "builtin":
            audio = synthesize(sequence, sample_rate=self.sample_rate, stereo=self.stereo)
        else:
            audio = (_fluidsynth_program if self.backend == "fluidsynth" else _pyfluidsynth_render)(
                sequence, self.soundfont, self.sample_rate)
            audio = audio if self.stereo else audio.mean(axis=1)
        return peak_normalise(audio)

    def render(self, sequence: NoteSequence, path: str | Path) -> Path:
        """Write `sequence` as a WAV file at `path`; returns the path."""
        return write_wav(self.samples(sequence), path, self.sample_rate)


def make_renderer(*, soundfont: str | Path | None = None, sample_rate: int = DEFAULT_SAMPLE_RATE,
                  stereo: bool = False, builtin: bool = False) -> Renderer:
    """The best renderer available: FluidSynth (program, then pyfluidsynth) with a SoundFont, else the built-in
    synthesizer (`builtin=True` asks for it). AudioError for a named SoundFont that is missing or a bad rate."""
    if not 8000 <= sample_rate <= 192_000:
        raise AudioError(f"sample rate {sample_rate} Hz is outside 8000-192000")
    font = find_soundfont(soundfont)
    if not builtin and font is not None:
        if shutil.which("fluidsynth"):
            return Renderer("fluidsynth", font, sample_rate, stereo)
        if _pyfluidsynth() is not None:
            return Renderer("pyfluidsynth", font, sample_rate, stereo)
    return Renderer("builtin", None, sample_rate, stereo)


def _fluidsynth_program(sequence: NoteSequence, soundfont: Path, sample_rate: int) -> np.ndarray:
    """Render through the `fluidsynth` program (fast-render to a file); (n, 2) float audio."""

    with tempfile.TemporaryDirectory(prefix="musejax-audio-") as folder:
        midi, out = Path(folder) / "in.mid", Path(folder) / "out.wav"
        write_midi(sequence, midi)
        command = ["fluidsynth", "-ni", "-q", "-g", "0.5", "-F", str(out), "-T", "wav", "-O", "s16",
                   "-r", str(sample_rate), str(soundfont), str(midi)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise AudioError(f"fluidsynth with {soundfont} failed: {err}") from None
        if done.returncode != 0 or not out.is_file():
            detail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            raise AudioError(f"fluidsynth with {soundfont} failed: {detail[0]}")
        audio, rate = read_wav(out)
    if rate != sample_rate:
        raise AudioError(f"fluidsynth wrote {rate} Hz audio, asked for {sample_rate} Hz")
    return audio if audio.ndim == 2 else np.stack([audio, audio], axis=1)


def _channels(sequence: NoteSequence) -> dict[tuple[int, int, bool], int]:
    """A MIDI channel per (instrument, program, is_drum) track: drums on channel 10 (index 9), others cycle."""
    pitched = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15]
    keys = sorted({(n.instrument, n.program, n.is_drum) for n in sequence.notes})
    out, next_index = {}, 0
    for key in keys:
        if key[2]:
            out[key] = 9
        else:
            out[key] = pitched[next_index % len(pitched)]
            next_index += 1
    return out


def _pyfluidsynth_render(sequence: NoteSequence, soundfont: Path, sample_rate: int) -> np.ndarray:
    """Render through pyfluidsynth, driving note-on/off events between blocks of samples; (n, 2) float audio."""
    fluidsynth = _pyfluidsynth()
    if fluidsynth is None:
        raise AudioError("pyfluidsynth (or the libfluidsynth library it loads) is not installed")
    synth = fluidsynth.Synth(samplerate=float(sample_rate), gain=0.5)
    try:
        font_id = synth.sfload(str(soundfont))
        if font_id < 0:
            raise AudioError(f"{soundfont}: FluidSynth cannot load this SoundFont")
        channels = _channels(sequence)
        for (_, program, is_drum), channel in channels.items():
            synth.program_select(channel, font_id, 128 if is_drum else 0, 0 if is_drum else program)
        events = []  # (time, order, channel, pitch, velocity): note-offs before note-ons at the same time
        for note in sequence.notes:
            channel = channels[(note.instrument, note.program, note.is_drum)]
            events.append((note.start_time, 1, channel, note.pitch, note.velocity))
            events.append((note.end_time, 0, channel, note.pitch, 0))
        events.sort()
        blocks, done = [], 0
        end = max([sequence.total_time] + [e[0] for e in events]) + 1.0  # a second for the release and reverb
        for time, is_on, channel, pitch, velocity in events + [(end, 0, -1, 0, 0)]:
            target = int(round(time * sample_rate))
            if target > done:
                blocks.append(np.asarray(synth.get_samples(target - done), dtype=np.float64))
                done = target
            if channel < 0:
                break
            if is_on:
                synth.noteon(channel, pitch, max(1, velocity))
            else:
                synth.noteoff(channel, pitch)
    finally:
        synth.delete()
    interleaved = np.concatenate(blocks) if blocks else np.zeros(0)
    return interleaved.reshape(-1, 2) / 32768.0
