"""Audio rendering: the built-in synthesizer's pitches, length and level; WAV files; choosing FluidSynth."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from note_seq import NoteSequence

from musejax.midi import audio
from musejax.midi.synth import FAMILY_TIMBRES, TAIL_SECONDS, synthesize

RATE = 44_100
# (pitch, start s, end s, program): A4 on the piano, C5 on strings, A2 on the bass, E6 on a flute (pipe).
NOTES = ((69, 0.0, 0.6, 0), (72, 0.7, 1.3, 48), (45, 1.4, 2.2, 32), (88, 2.3, 2.9, 73))


def hertz(pitch: int) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def known_sequence(notes=NOTES) -> NoteSequence:
    ns = NoteSequence()
    for index, (pitch, start, end, program) in enumerate(notes):
        ns.notes.add(pitch=pitch, start_time=start, end_time=end, velocity=90, program=program, instrument=index)
    ns.total_time = max(end for _, _, end, _ in notes)
    return ns


def strongest_frequency(segment: np.ndarray, rate: int = RATE) -> float:
    """The frequency of the spectrum's peak (Hann window, zero-padded 16x for a fine grid)."""
    n_fft = 16 * len(segment)
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n_fft))
    return float(np.fft.rfftfreq(n_fft, 1.0 / rate)[np.argmax(spectrum)])


def cents(a: float, b: float) -> float:
    return 1200 * abs(np.log2(a / b))


def test_each_note_sounds_at_its_fundamental_and_the_length_is_the_end_plus_the_tail():
    samples = audio.Renderer("builtin").samples(known_sequence())
    assert samples.ndim == 1
    assert len(samples) == round((2.9 + TAIL_SECONDS) * RATE)
    for pitch, start, end, _ in NOTES:
        segment = samples[int((start + 0.05) * RATE): int((end - 0.02) * RATE)]  # past the previous release
        assert cents(strongest_frequency(segment), hertz(pitch)) < 5, pitch
    assert 0.5 < np.abs(samples).max() <= 1.0
    assert np.abs(samples).max() == pytest.approx(audio.PEAK)
    assert np.abs(samples[int(3.0 * RATE):]).max() < 1e-9  # releases end inside the tail: silence after


@pytest.mark.parametrize("family", range(16))
def test_every_family_has_the_fundamental_as_its_strongest_partial(family):
    for pitch in (40, 69, 96):
        ns = known_sequence([(pitch, 0.0, 0.5, family * 8)])
        segment = synthesize(ns)[int(0.02 * RATE): int(0.48 * RATE)]
        assert cents(strongest_frequency(segment), hertz(pitch)) < 8, (FAMILY_TIMBRES[family][0], pitch)


def test_drums_are_noise_bursts_that_decay_and_velocity_sets_loudness():
    ns = NoteSequence()
    for index, pitch in enumerate((36, 38, 42, 49, 45, 70)):
        ns.notes.add(pitch=pitch, start_time=index * 0.5, end_time=index * 0.5 + 0.1, velocity=100, is_drum=True)
    ns.total_time = 3.0
    samples = synthesize(ns)
    for index in range(6):
        hit = samples[int(index * 0.5 * RATE): int((index * 0.5 + 0.45) * RATE)]
        assert np.abs(hit[:2000]).max() > 0.05 and np.abs(hit[-2000:]).max() < 0.5 * np.abs(hit[:2000]).max()
    loud = np.abs(synthesize(known_sequence([(60, 0.0, 0.5, 0)]))).max()
    soft_sequence = known_sequence([(60, 0.0, 0.5, 0)])
    soft_sequence.notes[0].velocity = 30
    assert np.abs(synthesize(soft_sequence)).max() < 0.3 * loud


def test_stereo_pans_tracks_apart_and_never_clips(tmp_path):
    loud = known_sequence([(60, 0.0, 1.0, 0), (64, 0.0, 1.0, 40), (67, 0.0, 1.0, 56)] * 4)  # 12 notes at once
    for note in loud.notes:
        note.velocity = 127
    renderer = audio.Renderer("builtin", stereo=True, sample_rate=22_050)
    samples = renderer.samples(loud)
    assert samples.shape == (round((1.0 + TAIL_SECONDS) * 22_050), 2)
    assert np.abs(samples).max() == pytest.approx(audio.PEAK)
    piano_left = synthesize(known_sequence([(60, 0, 1, 0), (90, 0, 1, 40)]), stereo=True)
    assert np.abs(piano_left[:, 0]).sum() != pytest.approx(np.abs(piano_left[:, 1]).sum(), rel=0.05)
    path = renderer.render(loud, tmp_path / "loud.wav")
    back, rate = audio.read_wav(path)
    assert rate == 22_050 and back.shape == samples.shape
    assert np.abs(back - samples).max() < 2.0 / 32767  # 16-bit rounding
    assert np.abs(back).max() <= 1.0


def test_an_empty_sequence_is_the_tail_of_silence(tmp_path):
    path = audio.Renderer("builtin").render(NoteSequence(), tmp_path / "empty.wav")
    samples, rate = audio.read_wav(path)
    assert len(samples) == round(TAIL_SECONDS * RATE) and not samples.any()


def test_soundfont_search_and_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv(audio.SOUNDFONT_ENV, raising=False)
    monkeypatch.setattr(audio, "SOUNDFONT_PATHS", (str(tmp_path / "none.sf2"),))
    assert audio.find_soundfont() is None
    with pytest.raises(audio.AudioError, match=r"missing\.sf2: SoundFont not found \(given by --soundfont\)"):
        audio.find_soundfont(tmp_path / "missing.sf2")
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(tmp_path / "gone.sf2"))
    with pytest.raises(audio.AudioError, match=r"gone\.sf2.*MUSEJAX_SOUNDFONT"):
        audio.make_renderer()
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF")
    monkeypatch.setenv(audio.SOUNDFONT_ENV, str(font))
    assert audio.find_soundfont() == font
    with pytest.raises(audio.AudioError, match="sample rate"):
        audio.make_renderer(sample_rate=1000)


def test_without_fluidsynth_the_builtin_synthesizer_is_used_and_says_so(tmp_path, monkeypatch):
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setitem(sys.modules, "fluidsynth", None)  # import fails, as without pyfluidsynth
    renderer = audio.make_renderer(soundfont=font)
    assert renderer.backend == "builtin" and renderer.notice == audio.BUILTIN_NOTICE


def test_the_fluidsynth_program_is_called_with_the_font_and_its_output_normalised(tmp_path, monkeypatch):
    """A stand-in `fluidsynth` on PATH records its arguments and writes a quiet stereo WAV."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "fluidsynth"
    script.write_text(f"""#!{sys.executable}
import sys, wave
import numpy as np
args = sys.argv[1:]
open({str(tmp_path / 'args.txt')!r}, 'w').write(' '.join(args))
rate = int(args[args.index('-r') + 1])
t = np.arange(rate // 2) / rate
tone = (0.1 * np.sin(2 * np.pi * 440 * t) * 32767).astype('<i2')
with wave.open(args[args.index('-F') + 1], 'wb') as out:
    out.setnchannels(2); out.setsampwidth(2); out.setframerate(rate)
    out.writeframes(np.stack([tone, tone], 1).tobytes())
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    renderer = audio.make_renderer(soundfont=font, sample_rate=32_000)
    assert renderer.backend == "fluidsynth" and renderer.notice is None
    samples, rate = audio.read_wav(renderer.render(known_sequence(), tmp_path / "out.wav"))
    args = (tmp_path / "args.txt").read_text().split()
    assert args[:2] == ["-ni", "-q"] and args[-2] == str(font) and args[-1].endswith(".mid")
    assert rate == 32_000 and samples.ndim == 1 and np.abs(samples).max() == pytest.approx(audio.PEAK, abs=1e-4)


def test_pyfluidsynth_gets_note_events_in_time_order(tmp_path, monkeypatch):
    """A stand-in pyfluidsynth module: note-ons/offs arrive after the samples that precede them."""
    calls = []

    class Synth:
        def __init__(self, samplerate, gain):
            self.rendered = 0

        def sfload(self, path):
            calls.append(("sfload", Path(path).name))
            return 1

        def program_select(self, channel, font, bank, preset):
            calls.append(("program", channel, bank, preset))

        def noteon(self, channel, pitch, velocity):
            calls.append(("on", self.rendered, channel, pitch))

        def noteoff(self, channel, pitch):
            calls.append(("off", self.rendered, channel, pitch))

        def get_samples(self, n):
            self.rendered += n
            return np.full(2 * n, 1000, dtype=np.int16)

        def delete(self):
            calls.append(("delete",))

    module = type(sys)("fluidsynth")
    module.Synth = Synth
    monkeypatch.setitem(sys.modules, "fluidsynth", module)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    font = tmp_path / "font.sf2"
    font.write_bytes(b"RIFF")
    ns = known_sequence(NOTES[:2])
    ns.notes.add(pitch=36, start_time=0.0, end_time=0.1, velocity=100, is_drum=True, instrument=9)
    renderer = audio.make_renderer(soundfont=font, stereo=True, sample_rate=8000)
    assert renderer.backend == "pyfluidsynth"
    samples = renderer.samples(ns)
    assert samples.shape == (round((1.3 + 1.0) * 8000), 2)
    assert ("program", 9, 128, 0) in calls and ("program", 0, 0, 0) in calls and ("program", 1, 0, 48) in calls
    assert ("on", 0, 0, 69) in calls and ("off", round(0.6 * 8000), 0, 69) in calls
    assert ("on", round(0.7 * 8000), 1, 72) in calls and calls[-1] == ("delete",)
