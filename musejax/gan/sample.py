"""Sampling a multitrack generator and writing what it makes: binarised segments -> MIDI and piano-roll PNGs.

Binarisation: a cell sounds if p > threshold, or with probability p (Bernoulli) when threshold is None.
The generator runs in eval mode (BatchNorm running averages), so a sample does not depend on its batch.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from musejax.midi.meta import write_midi

TRACK_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")
CHORALE_TRACK_NAMES = ("soprano", "alto", "tenor", "bass")


@functools.partial(jax.jit, static_argnames=("generator", "n", "bernoulli", "train"))
def _generate(generator: Any, variables: Any, key: jax.Array, style: jax.Array | None, threshold: jax.Array, *,
              n: int, bernoulli: bool, train: bool = False) -> jax.Array:
    noise_key, draw_key = jax.random.split(key)
    noise = generator.sample_noise(noise_key, n)
    if train:
        probs, _ = generator.apply(variables, noise, style, train=True, mutable=["batch_stats"])
    else:
        probs = generator.apply(variables, noise, style, train=False)
    if bernoulli:
        return jax.random.uniform(draw_key, probs.shape) < probs
    return probs > threshold


def generate_segments(generator: Any, variables: Any, n: int, *, seed: int = 0, threshold: float | None = 0.5,
                      style: int | None = None, batch_size: int = 256, train_mode: bool = False) -> np.ndarray:
    """n binarised segments (n, tracks, bars, steps, pitches) bool; deterministic in (seed, n, batch_size).

    `style`: a style id for a conditional generator (required there, refused otherwise). `train_mode` uses
    batch statistics instead of the running averages (for comparing the two).
    """
    if n < 1:
        raise ValueError(f"number of samples must be >= 1, got {n}")
    if (style is None) != (generator.n_styles == 0):
        raise ValueError(f"generator has {generator.n_styles} styles: give a style id exactly when it is conditional")
    if style is not None and not 0 <= style < generator.n_styles:
        raise ValueError(f"style id {style} is outside 0..{generator.n_styles - 1}")
    out = []
    for index, start in enumerate(range(0, n, batch_size)):
        size = min(batch_size, n - start)
        styles = None if style is None else jnp.full((size,), style, jnp.int32)
        key = jax.random.fold_in(jax.random.key(seed), index)
        out.append(np.asarray(_generate(generator, variables, key, styles, jnp.float32(threshold or 0.0), n=size,
                                        bernoulli=threshold is None, train=train_mode)))
    return np.concatenate(out)


def jaccard_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) Jaccard distances between binary segments: 1 - shared cells / cells on in either
    (two empty segments: 0). The mode-collapse measure: a collapsed generator's samples are all close."""
    fa = np.asarray(a).reshape(len(a), -1).astype(np.float32)
    fb = np.asarray(b).reshape(len(b), -1).astype(np.float32)
    shared = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - shared
    return np.where(union > 0, 1.0 - shared / np.maximum(union, 1.0), 0.0)


def mean_pairwise_jaccard(segments: np.ndarray) -> float:
    """Mean Jaccard distance over all pairs of different segments (0 for fewer than two)."""
    if len(segments) < 2:
        return 0.0
    distances = jaccard_distances(segments, segments)
    return float(distances[np.triu_indices(len(segments), k=1)].mean())


def segments_to_sequence(segments: np.ndarray, encoding: Any, *, qpm: float = 120.0, gap_bars: int = 1,
                         track_names: Sequence[str] | None = None) -> Any:
    """Several segments one after another (a silent gap of `gap_bars` bars between them) as one NoteSequence."""
    from note_seq.protobuf import music_pb2

    combined = music_pb2.NoteSequence()
    seconds_per_step = 60.0 / (qpm * encoding.steps_per_quarter)
    segment_seconds = (encoding.n_bars + gap_bars) * encoding.steps_per_bar * seconds_per_step
    for index, segment in enumerate(segments):
        ns = encoding.decode(np.asarray(segment, bool), qpm=qpm)
        if index == 0:
            combined.CopyFrom(ns)
            del combined.notes[:]
        for note in ns.notes:
            copy = combined.notes.add()
            copy.CopyFrom(note)
            copy.start_time += index * segment_seconds
            copy.end_time += index * segment_seconds
    combined.total_time = len(segments) * segment_seconds - gap_bars * encoding.steps_per_bar * seconds_per_step
    names = track_names or _track_names(encoding.n_tracks)
    for info in combined.part_infos:
        if info.part < len(names):
            info.name = names[info.part]
    return combined


def _track_names(n_tracks: int) -> list[str]:
    return list(CHORALE_TRACK_NAMES) if n_tracks == 4 else [f"track {t}" for t in range(n_tracks)]


def plot_multitrack_grid(segments: np.ndarray, path: str | Path, *, min_pitch: int, columns: int = 4,
                         titles: Sequence[str] | None = None, track_names: Sequence[str] | None = None) -> Path:
    """A PNG of segments (n, tracks, bars, steps, pitches) in a grid: time x pitch, one colour per track."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgb
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    segments = np.asarray(segments, bool)
    n, tracks, bars, steps, pitches = segments.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    figure = Figure(figsize=(3.2 * columns, 2.4 * rows + 0.5), dpi=90)
    FigureCanvasAgg(figure)
    colours = np.array([to_rgb(TRACK_COLOURS[t % len(TRACK_COLOURS)]) for t in range(tracks)])
    for index in range(n):
        axes = figure.add_subplot(rows, columns, index + 1)
        roll = segments[index].reshape(tracks, bars * steps, pitches).transpose(0, 2, 1).astype(float)
        ink = np.einsum("tpx,tc->pxc", roll, colours)
        count = roll.sum(axis=0)[..., None]
        image = np.where(count > 0, ink / np.maximum(count, 1.0), 1.0)
        axes.imshow(image, origin="lower", aspect="auto", interpolation="nearest",
                    extent=(0, bars * steps, min_pitch - 0.5, min_pitch + pitches - 0.5))
        for bar in range(1, bars):
            axes.axvline(bar * steps, color="0.6", linewidth=0.6)
        axes.set_xticks([b * steps for b in range(bars)], [str(b + 1) for b in range(bars)], fontsize=6)
        octaves = [p for p in range(min_pitch, min_pitch + pitches) if p % 12 == 0]
        axes.set_yticks(octaves, [f"C{p // 12 - 1}" for p in octaves], fontsize=6)
        if titles is not None:
            axes.set_title(titles[index], fontsize=7)
    names = track_names or _track_names(tracks)
    figure.legend(handles=[Patch(color=colours[t], label=names[t]) for t in range(tracks)], loc="lower center",
                  ncol=tracks, fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def write_segments(segments: np.ndarray, encoding: Any, out_dir: str | Path, *, qpm: float = 120.0,
                   prefix: str = "sample", audio: Any = None) -> list[Path]:
    """Each segment as `<prefix>_000.mid` + `.png` (+ `.wav` with an `audio` renderer, musejax.midi.audio), and
    all of them as `<prefix>_grid.png` / `_all.mid`."""

    out_dir = Path(out_dir)
    paths = []
    for index, segment in enumerate(segments):
        stem = out_dir / f"{prefix}_{index:03d}"
        sequence = segments_to_sequence(segment[None], encoding, qpm=qpm)
        paths.append(write_midi(sequence, stem.with_suffix(".mid")))
        plot_multitrack_grid(segment[None], stem.with_suffix(".png"), min_pitch=encoding.min_pitch)
        if audio is not None:
            audio.render(sequence, stem.with_suffix(".wav"))
    write_grid(segments, encoding, out_dir, prefix, qpm=qpm)
    return paths


def write_grid(segments: np.ndarray, encoding: Any, out_dir: str | Path, stem: str, *,
               qpm: float = 120.0) -> tuple[Path, Path]:
    """`<stem>_grid.png` (all segments) and `<stem>_all.mid` (them one after another, a bar of rest between)."""

    out_dir = Path(out_dir)
    png = plot_multitrack_grid(segments, out_dir / f"{stem}_grid.png", min_pitch=encoding.min_pitch,
                               titles=[f"{stem} {i}" for i in range(len(segments))])
    midi = write_midi(segments_to_sequence(segments, encoding, qpm=qpm), out_dir / f"{stem}_all.mid")
    return png, midi
