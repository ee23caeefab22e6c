"""A small additive synthesizer for NoteSequences: pure numpy, no SoundFont, one timbre per General MIDI family.

Each pitched note is a sum of harmonics (the fundamental always the strongest partial, so a note's pitch is the
peak of its spectrum) under an attack / decay / sustain / release envelope; drum notes (`is_drum`) are noise
bursts and pitch-swept sines by kind (kick, snare, hi-hat, cymbal, tom). Work is vectorised per note, never a
Python loop over samples. The result lasts `sequence end + TAIL_SECONDS` (the longest release fits in it) and is
not normalised: `musejax.midi.audio` peak-normalises and writes it. Pitch bends and controllers are ignored.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from note_seq import NoteSequence

DEFAULT_SAMPLE_RATE = 44_100
TAIL_SECONDS = 0.5  # audio after the last note ends: every release (and drum decay) fits in it


@dataclasses.dataclass(frozen=True)
class Timbre:
    """Harmonic amplitudes (1st = fundamental = 1.0, the largest) and an ADSR envelope in seconds.

    `decay` is the time constant of the fall from the attack peak to `sustain` (0..1 of the peak); a plucked or
    struck sound has sustain 0, so it fades while held. `release` is the linear fade after the note ends.
    """

    harmonics: tuple[float, ...]
    attack: float
    decay: float
    sustain: float
    release: float
    detune_cents: float = 0.0  # a second, quieter copy this much sharper (chorus) when > 0: ensembles, pads


# program // 8 -> timbre, in General MIDI family order.
FAMILY_TIMBRES: tuple[tuple[str, Timbre], ...] = (
    ("piano", Timbre((1.0, 0.45, 0.25, 0.12, 0.06, 0.03), 0.004, 0.9, 0.0, 0.12)),
    ("chromatic percussion", Timbre((1.0, 0.08, 0.35, 0.04, 0.1), 0.002, 0.45, 0.0, 0.2)),
    ("organ", Timbre((1.0, 0.65, 0.4, 0.3, 0.12, 0.15, 0.05), 0.015, 0.05, 0.9, 0.05)),
    ("guitar", Timbre((1.0, 0.6, 0.35, 0.2, 0.12, 0.06), 0.003, 0.6, 0.0, 0.1)),
    ("bass", Timbre((1.0, 0.35, 0.12, 0.05), 0.006, 0.5, 0.35, 0.08)),
    ("strings", Timbre((1.0, 0.5, 0.33, 0.25, 0.2, 0.16, 0.12, 0.1), 0.08, 0.2, 0.85, 0.2)),
    ("ensemble", Timbre((1.0, 0.45, 0.3, 0.2, 0.14, 0.1), 0.12, 0.3, 0.85, 0.3, detune_cents=7.0)),
    ("brass", Timbre((1.0, 0.8, 0.65, 0.5, 0.38, 0.28, 0.2, 0.14), 0.04, 0.15, 0.8, 0.1)),
    ("reed", Timbre((1.0, 0.12, 0.55, 0.08, 0.35, 0.05, 0.2), 0.03, 0.1, 0.85, 0.08)),
    ("pipe", Timbre((1.0, 0.22, 0.07, 0.03), 0.05, 0.1, 0.9, 0.1)),
    ("synth lead", Timbre((1.0, 0.0, 0.33, 0.0, 0.2, 0.0, 0.14, 0.0, 0.11), 0.01, 0.1, 0.8, 0.08)),
    ("synth pad", Timbre((1.0, 0.5, 0.33, 0.25, 0.2), 0.3, 0.5, 0.8, 0.4, detune_cents=9.0)),
    ("synth effects", Timbre((1.0, 0.3, 0.5, 0.2, 0.3), 0.1, 0.6, 0.5, 0.35, detune_cents=8.0)),
    ("ethnic", Timbre((1.0, 0.55, 0.4, 0.3, 0.2, 0.1), 0.005, 0.5, 0.1, 0.15)),
    ("percussive", Timbre((1.0, 0.2, 0.25, 0.1), 0.001, 0.2, 0.0, 0.1)),
    ("sound effects", Timbre((1.0, 0.4, 0.3, 0.2), 0.05, 0.3, 0.5, 0.3, detune_cents=8.0)),
)


def family_timbre(program: int) -> Timbre:
    """The built-in timbre of a General MIDI program (0-127): one per family of 8 programs."""
    if not 0 <= program <= 127:
        raise ValueError(f"MIDI program {program} is outside 0-127")
    return FAMILY_TIMBRES[program // 8][1]


def _envelope(n_held: int, n_total: int, timbre: Timbre, sample_rate: int) -> np.ndarray:
    """ADSR gain over n_total samples: the note sounds for n_held, then releases linearly."""
    t = np.arange(n_total) / sample_rate
    attack = max(timbre.attack, 1.0 / sample_rate)
    rise = np.minimum(t / attack, 1.0)
    fall = timbre.sustain + (1.0 - timbre.sustain) * np.exp(-np.maximum(t - attack, 0.0) / timbre.decay)
    gain = rise * fall
    if n_total > n_held:
        level = gain[n_held - 1] if n_held > 0 else 0.0
        n_release = n_total - n_held
        gain[n_held:] = level * np.linspace(1.0, 0.0, n_release, endpoint=False) * (
            np.arange(n_release) < timbre.release * sample_rate)
    return gain


TABLE_SIZE = 4096  # samples per period of a wavetable


@functools.lru_cache(maxsize=256)
def _wavetable(harmonics: tuple[float, ...]) -> np.ndarray:
    """One period of the sum of `harmonics` (sine partials 1..H), sampled at TABLE_SIZE points."""
    phase = np.arange(TABLE_SIZE) / TABLE_SIZE
    return np.sin(2 * np.pi * np.outer(phase, np.arange(1, len(harmonics) + 1))) @ np.asarray(harmonics)


def _tone(pitch: int, n_samples: int, timbre: Timbre, sample_rate: int) -> np.ndarray:
    """The timbre's harmonics at `pitch` (those below 0.45 x the sample rate: no aliasing), by wavetable lookup."""
    frequency = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
    t = np.arange(n_samples) / sample_rate
    wave = np.zeros(n_samples)
    copies = ((0.0, 1.0),) if timbre.detune_cents <= 0 else ((0.0, 1.0), (timbre.detune_cents, 0.5))
    for cents, weight in copies:
        f0 = frequency * 2.0 ** (cents / 1200.0)
        n_partials = max(1, min(len(timbre.harmonics), int(0.45 * sample_rate / f0)))
        table = _wavetable(timbre.harmonics[:n_partials])
        index = (np.mod(f0 * t, 1.0) * TABLE_SIZE).astype(np.int64) % TABLE_SIZE
        wave += weight * table[index]
    return wave / sum(weight for _, weight in copies)


def _drum(pitch: int, n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A General MIDI percussion sound (channel 10 key `pitch`) as noise and swept sines; it decays by itself."""
    t = np.arange(n_samples) / sample_rate
    noise = rng.uniform(-1.0, 1.0, n_samples)
    if pitch in (35, 36):  # bass drum: a sine falling from 150 to 50 Hz
        frequency = 50.0 + 100.0 * np.exp(-t / 0.03)
        phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
        return np.sin(phase) * np.exp(-t / 0.15)
    if pitch in (38, 39, 40):  # snare, clap: noise over a short tone
        return (0.7 * noise + 0.3 * np.sin(2 * np.pi * 190.0 * t)) * np.exp(-t / 0.08)
    if pitch in (41, 43, 45, 47, 48, 50):  # toms: lower keys, lower drums
        frequency = 80.0 + (pitch - 41) * 15.0
        return np.sin(2 * np.pi * frequency * t) * np.exp(-t / 0.2)
    bright = np.diff(noise, prepend=0.0) * 0.5  # high-passed noise: hats and cymbals
    if pitch in (42, 44):  # closed / pedal hi-hat
        return bright * np.exp(-t / 0.03)
    if pitch in (46, 49, 51, 52, 53, 55, 57, 59):  # open hi-hat, cymbals
        return bright * np.exp(-t / 0.3)
    return (0.5 * bright + 0.5 * noise) * np.exp(-t / 0.06)  # other percussion: a short click


def _pan(key: tuple[int, int, bool], keys: list[tuple[int, int, bool]]) -> float:
    """Stereo position in [-0.8, 0.8] for an (instrument, program, is_drum) track; drums in the centre."""
    if key[2] or len(keys) < 2:
        return 0.0
    return -0.8 + 1.6 * keys.index(key) / (len(keys) - 1)


def synthesize(sequence: NoteSequence, *, sample_rate: int = DEFAULT_SAMPLE_RATE, stereo: bool = False) -> np.ndarray:
    """Render `sequence` to float audio: (n,) mono or (n, 2) stereo, n = (end + TAIL_SECONDS) * sample_rate.

    Loudness follows velocity; in stereo each track (instrument, program) gets its own position. Not normalised.
    """
    if sample_rate < 8000:
        raise ValueError(f"sample rate {sample_rate} Hz is below 8000 Hz")
    notes = [note for note in sequence.notes if note.end_time > note.start_time]
    end = max([sequence.total_time] + [note.end_time for note in notes])
    n_total = int(round((end + TAIL_SECONDS) * sample_rate))
    out = np.zeros((n_total, 2 if stereo else 1))
    keys = sorted({(note.instrument, note.program, note.is_drum) for note in notes})
    rng = np.random.default_rng(0)  # same sequence, same audio
    release_samples = int(TAIL_SECONDS * sample_rate)
    for note in notes:
        start = int(round(note.start_time * sample_rate))
        n_held = max(1, int(round(note.end_time * sample_rate)) - start)
        timbre = None if note.is_drum else family_timbre(note.program)
        tail = release_samples if timbre is None else int(np.ceil(timbre.release * sample_rate))
        n = min(n_held + tail, n_total - start)
        if n <= 0:
            continue
        if timbre is None:
            wave = _drum(note.pitch, n, sample_rate, rng)
        else:
            wave = _tone(note.pitch, n, timbre, sample_rate) * _envelope(min(n_held, n), n, timbre, sample_rate)
        gain = (max(note.velocity, 1) / 127.0) ** 1.5
        if stereo:
            angle = (_pan((note.instrument, note.program, note.is_drum), keys) + 1.0) * np.pi / 4
            out[start:start + n] += np.outer(wave * gain, (np.cos(angle), np.sin(angle)))
        else:
            out[start:start + n, 0] += wave * gain
    return out if stereo else out[:, 0]
