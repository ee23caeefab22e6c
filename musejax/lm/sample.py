"""Sampling from trained music language models: one jit-compiled `lax.scan` per call, N sequences at once.

Piano-roll LMs sample every key of a frame as a Bernoulli variable (or take p > threshold), or with a NADE
output from its conditionals (a counting NADE: the note count, then each note's key, top-p filtered); event LMs
sample a token with temperature, top-k and nucleus (top-p) filtering. A conditioned model gets a style id or a
mixture of styles per sample. A primer (a user's MIDI/MusicXML piece) is encoded with the run's encoding, run
through the model in one scan to get the recurrent state, and continued; the result holds primer + continuation.
All randomness comes from one seed: same seed and settings -> same output.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.multihost_utils import process_allgather
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from note_seq import NoteSequence

from musejax.midi.audio import Renderer
from musejax.data.quantize import seconds_to_quarters, write_bars
from musejax.data.windows import TEXTURE_AS_WRITTEN
from musejax.lm.copy_check import CopyReport, redraw_copies
from musejax.lm.data import LM_TEXTURE_SHIFTS
from musejax.midi.meta import PRIMER_END_ANNOTATION, primer_end_seconds, write_midi
from musejax.midi.plots import plot_pianoroll
from musejax.train.mesh import DATA_AXIS, data_parallel_devices, make_mesh, replicate_tree
from musejax.lm.sample_inputs import (DEFAULT_QPM, Run, SampleError, _encode_primer, _primer_qpm,
                                      _start_input, check_settings, config_options, corpus_piece_lengths, load_run,
                                      parse_mix, primer_texture, reads_bars, sample_bars, sample_lengths,
                                      steps_per_bar, style_input)

__all__ = ["Run", "SampleError", "CopyReport", "load_run", "sample", "sample_arrays", "write_samples",
           "write_run_samples", "filter_logits", "parse_mix", "plot_pianoroll", "primer_end_seconds",
           "corpus_piece_lengths", "sample_lengths", "steps_per_bar"]

# Pre-drawn noise for the whole scan up to this many numbers (one RNG call, leanest loop body); above it,
# each step draws its own noise from a per-step key.
MAX_PREDRAWN_NOISE = 1 << 24


# ------------------------------------------------------------------------------------------ pure JAX parts


def filter_logits(logits: jax.Array, *, top_k: int | None = None, top_p: float | jax.Array | None = None) -> jax.Array:
    """Set logits outside the top k and outside the nucleus (smallest set with probability >= top_p) to -inf.

    logits (..., V). Ties at the cut-off are kept. The most likely token always survives.
    """
    if top_k is not None and top_k < logits.shape[-1]:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p is not None:
        ordered = -jnp.sort(-logits, axis=-1)
        probs = jax.nn.softmax(ordered, axis=-1)
        mass_before = jnp.cumsum(probs, axis=-1) - probs
        n_keep = jnp.maximum(jnp.sum(mass_before < top_p, axis=-1, keepdims=True), 1)
        cutoff = jnp.take_along_axis(ordered, n_keep - 1, axis=-1)
        logits = jnp.where(logits < cutoff, -jnp.inf, logits)
    return logits


def _choose(logits: jax.Array, noise: jax.Array | None, temperature: jax.Array, top_p: jax.Array,
            threshold: jax.Array, mode: str, top_k: int | None, use_top_p: bool) -> jax.Array:
    """One step's logits -> the sampled input of the next step (frames as float32, tokens as int32)."""
    if mode == "greedy-events":
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    if mode == "events":
        shifted = logits - jnp.max(logits, axis=-1, keepdims=True)  # max 0: no overflow as temperature -> 0
        scaled = filter_logits(shifted / temperature, top_k=top_k, top_p=top_p if use_top_p else None)
        return jnp.argmax(scaled + noise, axis=-1).astype(jnp.int32)  # Gumbel-max = categorical sample
    if mode == "greedy-frames":
        frame = logits > 0
    elif mode == "threshold-frames":
        frame = jax.nn.sigmoid(logits / temperature) > threshold
    else:  # "bernoulli-frames"
        frame = noise < jax.nn.sigmoid(logits / temperature)
    return _onsets_sound(frame)


def _onsets_sound(frame: jax.Array) -> jax.Array:
    """Bool frames -> float32 model input; in an onset roll (B, 2, 88) an onset key also sounds."""
    if frame.ndim == 3 and frame.shape[1] == 2:
        frame = frame.at[:, 0].set(frame[:, 0] | frame[:, 1])
    return frame.astype(jnp.float32)


NADE_MODES = {"bernoulli-frames": "bernoulli", "threshold-frames": "threshold", "greedy-frames": "greedy"}


def _draw_noise(key: jax.Array, shape: tuple[int, ...], mode: str) -> jax.Array:
    if mode == "events":
        return jax.random.gumbel(key, shape, jnp.float32)
    return jax.random.uniform(key, shape, jnp.float32)


@functools.partial(jax.jit, static_argnames=("model", "n", "steps", "mode", "top_k", "use_top_p", "mesh"))
def _generate(model: Any, params: Any, prefix: jax.Array, style: jax.Array | None, key: jax.Array,
              temperature: jax.Array, top_p: jax.Array, threshold: jax.Array, count_temperature: jax.Array, *,
              n: int, steps: int, mode: str, top_k: int | None, use_top_p: bool, mesh: Mesh | None = None,
              texture: jax.Array | None = None, end: jax.Array | None = None,
              bar: jax.Array | None = None) -> jax.Array:
    """Run the model over prefix[:-1] (one scan; the primer), then sample `steps` steps starting from input
    prefix[-1] (a second scan: (carry, x) -> model.step -> sample x'). prefix (P, ...); returns (steps, n, ...).
    `texture`: (n,) texture labels for a model that reads them (None: the corpus's texture as written); `end`:
    (n,) each sample's whole length (primer included) for a model that reads the steps left (None: unknown);
    `bar`: (n, 2) each sample's bars (the place in the bar of its first step, steps per bar) for a model that
    reads bar lines (None: from the first step).

    With a `mesh` the n samples are split over its devices (params replicated); the random draws, and so the
    samples, are the same as without it."""
    def split(tree: Any, spec: P = P(DATA_AXIS)) -> Any:
        return tree if mesh is None else jax.tree.map(
            lambda a: jax.lax.with_sharding_constraint(a, NamedSharding(mesh, spec)), tree)

    variables = {"params": params}
    style, texture, end, bar = split(style), split(texture), split(end), split(bar)
    first = prefix.shape[0] - 1  # the index of the first input step in the whole sequence
    if prefix.shape[0] > 1:
        history = split(jnp.broadcast_to(prefix[:-1], (n, *prefix[:-1].shape)))
        carry, _ = model.apply(variables, history, style, texture=texture, end=end, bar=bar, method="encode")
    else:
        carry = model.apply(variables, n, method="initial_carry")
    carry = split(carry)
    first_input = split(jnp.broadcast_to(prefix[-1], (n, *prefix.shape[1:])))
    nade_output = getattr(model, "output", "bernoulli") == "nade"  # a NADE draws its frames key by key
    logits_shape = (n, model.noise_width) if nade_output else jax.eval_shape(
        lambda: model.apply(variables, carry, first_input, style, first, texture=texture, end=end, bar=bar,
                            method="step")[1]).shape
    noisy = mode in ("events", "bernoulli-frames")
    predrawn = noisy and steps * math.prod(logits_shape) <= MAX_PREDRAWN_NOISE
    xs = (split(_draw_noise(key, (steps, *logits_shape), mode), P(None, DATA_AXIS)) if predrawn
          else jax.random.split(key, steps) if noisy else None)

    def body(state, step_noise):
        carry, x, index = state
        carry, logits = model.apply(variables, carry, x, style, index, texture=texture, end=end, bar=bar,
                                    method="step")
        if noisy and not predrawn:
            step_noise = _draw_noise(step_noise, logits_shape, mode)
        if nade_output:
            frame = model.apply(variables, logits, None if step_noise is None else step_noise.reshape(n, -1),
                                temperature=temperature, top_p=top_p if use_top_p else None, threshold=threshold,
                                mode=NADE_MODES[mode], count_temperature=count_temperature, method="draw_frame")
            x = _onsets_sound(frame.reshape(x.shape))
        else:
            x = _choose(logits, step_noise, temperature, top_p, threshold, mode, top_k, use_top_p)
        return (carry, x, index + 1), x.astype(jnp.int32 if mode.endswith("events") else jnp.bool_)

    _, samples = jax.lax.scan(body, (carry, first_input, jnp.int32(first)), xs, length=steps)
    return samples


# how a continuation's title says which texture its primer was read in (a shift of musejax/lm/data.py)
TEXTURE_READINGS = {"melody": "as a melody", "melody_chords": "as a melody over chords",
                    "accompaniment": "with chords added", "grid": "on a coarser grid"}


# ------------------------------------------------------------------------------------------------ sampling


def sample(run: Run, n: int, steps: int | Sequence[int] | None = None, *, bars: int | None = None, seed: int = 0,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           threshold: float | None = None, primer: NoteSequence | None = None,
           style: str | None = None, mix: dict[str, float] | None = None,
           count_temperature: float | None = None, max_copy_bars: float = 0.0,
           copy_report: CopyReport | None = None) -> list[NoteSequence]:
    """Sample `n` sequences of `steps` new time steps (piano-roll/melody) or events (performance) each: an int,
    one int per sample, or None for `bars` bars or else lengths drawn from the corpus (`sample_lengths`).

    Piano-roll: Bernoulli per key with p = sigmoid(logits / temperature), or p > `threshold` (a counting NADE:
    its note count at `count_temperature`, None = 1, then each note's key from its nucleus `top_p`); events:
    softmax of logits / temperature filtered by `top_k`/`top_p`.
    temperature 0 = greedy. With a `primer` each result is the primer (on the encoding's grid, at the primer's
    first tempo) followed by the continuation, and carries a text annotation at the primer's end. A conditioned
    model takes `style` (a name), `mix` ({name: weight}) or neither (sample i gets style i mod S). Without a
    primer an event model starts from one silent event. `max_copy_bars` > 0: a free sample that copies that many
    bars of a training piece is drawn again (copy_check.py; what it did goes into `copy_report`).
    """
    arrays, primer_array, style_labels, textures, bar = _sample(run, n, steps, seed, temperature, top_k, top_p,
                                                                threshold, primer, style, mix, bars,
                                                                count_temperature, max_copy_bars, copy_report)
    qpm = DEFAULT_QPM if primer is None else _primer_qpm(primer)
    sequences = []
    for index, array in enumerate(arrays):
        ns = run.encoding.decode(array, qpm=qpm)
        if bar is not None and primer is None:
            write_bars(ns, *bar[index], run.encoding.steps_per_quarter, qpm)
        _describe(ns, run, index, style_labels[index], primer, primer_array, qpm, textures[index])
        sequences.append(ns)
    return sequences


def sample_arrays(run: Run, n: int, steps: int | Sequence[int] | None = None, *, bars: int | None = None,
                  seed: int = 0, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                  threshold: float | None = None, primer: NoteSequence | None = None, style: str | None = None,
                  mix: dict[str, float] | None = None, count_temperature: float | None = None,
                  max_copy_bars: float = 0.0, copy_report: CopyReport | None = None) -> np.ndarray | list[np.ndarray]:
    """`sample` before decoding: arrays (L, ...) in the run's encoding (bool frames / int32 events), as one
    (n, L, ...) array for an int `steps`, else a list (lengths may differ).

    L = primer steps + new steps; without a primer, event models have their start event in front.
    """
    arrays = _sample(run, n, steps, seed, temperature, top_k, top_p, threshold, primer, style, mix, bars,
                     count_temperature, max_copy_bars, copy_report)[0]
    return np.stack(arrays) if isinstance(steps, (int, np.integer)) else arrays


def _sampling_mesh(n: int) -> Mesh | None:
    """The devices that split the n samples: every device of a multi-host job (n a multiple of their number:
    `_sample` rounds it up); on one CPU host, its devices (one per core: `musejax.host`); None for one device."""
    if jax.process_count() > 1:
        return make_mesh()
    if jax.default_backend() != "cpu":
        return None
    devices = data_parallel_devices((n,))
    return make_mesh(devices) if len(devices) > 1 else None


def _sample(run: Run, n: int, steps: int | Sequence[int] | None, seed: int, temperature: float, top_k: int | None,
            top_p: float | None, threshold: float | None, primer: NoteSequence | None, style: str | None,
            mix: dict[str, float] | None, bars: int | None = None, count_temperature: float | None = None,
            max_copy_bars: float = 0.0, copy_report: CopyReport | None = None
            ) -> tuple[list[np.ndarray], np.ndarray | None, list[str], list[int | None], np.ndarray | None]:
    """-> (whole arrays (L_i, ...) per sample, the encoded primer or None, a style label per sample, the texture
    label each was drawn under (None for a model without one), the (n, 2) bars each was drawn in (None for a
    model that does not read bar lines)); free samples that copy >= max_copy_bars bars drawn again."""
    if not (math.isfinite(max_copy_bars) and max_copy_bars >= 0):
        raise SampleError(f"max copy bars must be >= 0 (0 = no copy check), got {max_copy_bars}")

    def draw(draw_seed: int):
        return _draw(run, n, steps, draw_seed, temperature, top_k, top_p, threshold, primer, style, mix, bars,
                     count_temperature)

    if not max_copy_bars or primer is not None:
        return draw(seed)
    return redraw_copies(run, draw(seed), draw, seed, max_copy_bars, copy_report)


def _draw(run: Run, n: int, steps: int | Sequence[int] | None, seed: int, temperature: float, top_k: int | None,
          top_p: float | None, threshold: float | None, primer: NoteSequence | None, style: str | None,
          mix: dict[str, float] | None, bars: int | None, count_temperature: float | None
          ) -> tuple[list[np.ndarray], np.ndarray | None, list[str], list[int | None], np.ndarray | None]:
    """One draw of `_sample` without the copy check."""
    if n < 1:
        raise SampleError(f"need n >= 1 samples, got n={n}")
    primer_array = None if primer is None else _encode_primer(run, primer)
    if steps is not None and bars is not None:
        raise SampleError("give a length in steps or in bars, not both")
    if steps is None:
        lengths = sample_lengths(run, n, seed=seed, bars=bars, primer=primer,
                                 primer_steps=0 if primer_array is None else len(primer_array))
    elif isinstance(steps, (int, np.integer)):
        lengths = [int(steps)] * n
    else:
        lengths = [int(x) for x in steps]
        if len(lengths) != n:
            raise SampleError(f"{len(lengths)} lengths given for {n} samples")
    steps = max(lengths)
    check_settings(run, n, min(lengths), temperature, top_k, top_p, threshold, count_temperature)
    style_array, style_labels = style_input(run, n, style, mix)  # numpy ids (n,) or weights (n, S), or None
    start = _start_input(run)
    if primer_array is None:
        prefix = start
    elif run.loss_kind == "bernoulli":
        prefix = np.concatenate([start, primer_array.astype(np.float32)])
    else:
        prefix = primer_array.astype(np.int32)
    if run.loss_kind == "bernoulli":
        mode = "greedy-frames" if temperature == 0 else "threshold-frames" if threshold is not None else "bernoulli-frames"
    else:
        mode = "greedy-events" if temperature == 0 else "events"
        vocab_size = int(getattr(run.encoding, "vocab_size", 0) or 0)
        top_k = None if top_k is None or (vocab_size and top_k >= vocab_size) else int(top_k)
    mesh = _sampling_mesh(int(n))
    drawn = n if mesh is None else -(-n // mesh.size) * mesh.size  # a multi-host job: a multiple of its devices
    if style_array is not None and drawn > n:  # the extra samples are dropped after the draw
        style_array = np.concatenate([style_array, np.repeat(style_array[-1:], drawn - n, 0)])
    inputs = (run.params, prefix, style_array, jax.random.key(seed), np.float32(temperature or 1.0),
              np.float32(1.0 if top_p is None else top_p), np.float32(0.5 if threshold is None else threshold),
              np.float32(1.0 if count_temperature is None else count_temperature))
    bar = bars_drawn = None  # a model that reads bar lines: each sample's, drawn with its length, or its primer's
    if reads_bars(run):
        bars_drawn = sample_bars(run, n, seed=seed, primer=primer)
        bar = np.concatenate([bars_drawn, np.repeat(bars_drawn[-1:], drawn - n, 0)])
    texture = None  # a model that reads a texture label: the corpus's texture, or the one its primer is in
    if getattr(run.model, "textures", 0):
        texture = (np.full(drawn, TEXTURE_AS_WRITTEN, np.int32) if primer_array is None
                   else primer_texture(run, prefix, style_array, drawn, None if bar is None else bar[0]))
    textures = [None] * n if texture is None else [int(label) for label in texture[:n]]
    end = None  # a model that reads the steps left: each sample's whole length, as asked for
    if getattr(run.model, "end_buckets", 0):
        head = len(prefix) - 1 if run.loss_kind == "bernoulli" else len(prefix)  # the start frame is not kept
        end = np.asarray(lengths + [lengths[-1]] * (drawn - n), np.int32) + head
    if mesh is not None:  # every input replicated over the mesh (on many hosts: each passes the same values)
        inputs, texture, end, bar = replicate_tree((inputs, texture, end, bar), mesh)
    samples = _generate(run.model, *inputs, n=int(drawn), steps=int(steps), mode=mode, top_k=top_k,
                        use_top_p=top_p is not None and top_p < 1, mesh=mesh, texture=texture, end=end, bar=bar)
    # (n, steps, ...) bool frames / int32 events; a multi-host job gathers every host's samples on each
    samples = np.swapaxes(process_allgather(samples, tiled=True) if jax.process_count() > 1
                          else np.asarray(samples), 0, 1)[:n]
    if run.loss_kind == "bernoulli":
        head = primer_array if primer_array is not None else np.zeros((0, *start.shape[1:]), bool)
        arrays = np.concatenate([np.broadcast_to(head.astype(bool), (n, *head.shape)), samples], 1)
    else:
        arrays = np.concatenate([np.broadcast_to(prefix, (n, *prefix.shape)), samples], 1)
    cut = arrays.shape[1] - steps  # the primer (and an event model's start event) in front of every sample
    return [arrays[i, : cut + lengths[i]] for i in range(n)], primer_array, style_labels, textures, bars_drawn


def _describe(ns: NoteSequence, run: Run, index: int, style_label: str, primer: NoteSequence | None,
              primer_array: np.ndarray | None, qpm: float, texture: int | None = None) -> None:
    """Name the sample, record its style, and (for a primer) its time/key signature, where the primer ends and
    the texture the model read it in, where not its corpus's (TEXTURE_READINGS)."""
    ns.id = f"{run.name}/sample_{index:03d}"
    ns.filename = ""
    title = f"{run.name} sample {index}" + (f" ({style_label})" if style_label else "")
    if primer is not None:
        title += f", continuing {Path(primer.filename).name or primer.id}"
        if texture:  # read in a texture other than the corpus's
            title += f" {TEXTURE_READINGS[LM_TEXTURE_SHIFTS[texture - 1]]}"
        end = run.encoding.decode(primer_array, qpm=qpm).total_time
        for field in ("time_signatures", "key_signatures"):  # the primer's, up to its end (a pickup's meter too),
            signatures = sorted(getattr(primer, field), key=lambda s: s.time)  # moved to the sample's tempo
            quarters = seconds_to_quarters(primer, np.array([s.time for s in signatures]), "primer")
            kept = [(s, q * 60.0 / qpm) for s, q in zip(signatures, quarters) if q * 60.0 / qpm < max(end, 1e-9)]
            if kept:
                del getattr(ns, field)[:]
                for signature, time in kept:
                    getattr(ns, field).add().CopyFrom(signature)
                    getattr(ns, field)[-1].time = time
        ns.text_annotations.add(time=end, text=PRIMER_END_ANNOTATION)
    ns.sequence_metadata.title = title
    if style_label:
        ns.sequence_metadata.genre.append(style_label)


def write_samples(run: Run | str | Path, out_dir: str | Path, *, n: int = 4, steps: int | Sequence[int] | None = None,
                  seed: int = 0, audio: Renderer | None = None, **options: Any) -> list[Path]:
    """Sample (see `sample`; `options` = bars, temperature, top_k, ...) and write sample_000.mid/.png ... to
    out_dir (steps None: lengths drawn from the corpus's pieces), and sample_000.wav ... with an `audio` renderer.

    `run` is a Run or a run directory (its best checkpoint). Returns the MIDI paths.
    """
    run = run if isinstance(run, Run) else load_run(run)
    sequences = sample(run, n, steps, seed=seed, **options)
    out_dir = Path(out_dir)
    paths = [out_dir / f"sample_{index:03d}.mid" for index in range(len(sequences))]
    if jax.process_index() == 0:  # a multi-host job: every process samples its share, the first one writes
        for path, ns in zip(paths, sequences):
            write_midi(ns, path)
            plot_pianoroll(ns, path.with_suffix(".png"))
            if audio is not None:
                audio.render(ns, path.with_suffix(".wav"))
    return paths


def write_run_samples(run_dir: str | Path, config: Any, audio: Renderer | None = None,
                      copy_report: CopyReport | None = None) -> list[Path]:
    """The end of a training run: `config.sample.n` pieces with the run's sampling settings, from its best
    checkpoint, into <run_dir>/samples (MIDI + PNG, and WAV with an `audio` renderer)."""
    s = config.sample
    return write_samples(run_dir, Path(run_dir) / "samples", n=s.n, steps=s.steps or None, seed=s.seed, audio=audio,
                         copy_report=copy_report, **config_options(config))
