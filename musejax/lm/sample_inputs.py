"""What a sample starts from: the trained run (`load_run`), the model's first input or an encoded primer (and the
texture a primer is read in), its style input (a style, a mix or the styles in turn), each sample's length (drawn
from the corpus's piece lengths, or given in bars), and the run's own sampling settings (`config_options`) and
their checks (`check_settings`). Used by musejax/lm/sample.py."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from note_seq import NoteSequence

from musejax.config import ConfigError
from musejax.data.encodings import EncodingError
from musejax.data.quantize import main_meter, piece_bar
from musejax.data.windows import TEXTURE_AS_WRITTEN
from musejax.errors import UserError
from musejax.lm.build import ApplyLM, covering
from musejax.lm.data import texture_label, texture_shift_names
from musejax.lm.restore import restore_run
from musejax.lm.steps import row_nll_sums

DEFAULT_QPM = 120.0
# Without a length, a sample is as long as a training piece drawn at random; a primer's continuation runs to the
# drawn length, and at least this many bars.
MIN_CONTINUATION_BARS = 4
FALLBACK_STEPS = 256  # a run saved before piece lengths were recorded


class SampleError(UserError):
    """Settings or inputs the user can fix (unknown style, bad top-p, empty primer, ...); one-line message."""


@dataclasses.dataclass
class Run:
    """What sampling needs from a trained run: model (Flax module) + params, its encoding and style names.

    `loss_kind` is "bernoulli" (piano-roll LM) or "categorical" (event LM); `styles[i]` is style id i.
    """

    model: Any
    params: Any
    encoding: Any
    styles: list[str] = dataclasses.field(default_factory=list)
    loss_kind: str = "bernoulli"
    config: Any = None
    run_dir: Path | None = None
    step: int | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.run_dir.name if self.run_dir is not None else "musejax"

    @property
    def conditioned(self) -> bool:
        return int(getattr(self.model, "n_styles", 0) or 0) > 0


def load_run(run_dir: str | Path, checkpoint: str | int = "best") -> Run:
    """Restore a run directory's model, params, encoding and styles ("best", "latest" or a step number)."""

    try:
        restored = restore_run(run_dir, checkpoint)
    except ConfigError as err:
        raise SampleError(str(err)) from None
    return Run(model=restored.model, params=restored.params, encoding=restored.encoding, styles=restored.styles,
               loss_kind=restored.loss_kind, config=restored.config, run_dir=Path(run_dir), step=restored.step,
               meta=restored.meta)


# ------------------------------------------------------------------------------------------- first inputs


def _start_input(run: Run) -> np.ndarray:
    """What the model reads first when there is no primer: an all-zero frame (piano-roll, as in training) or,
    as event LMs have no start token, a silent event: melody no-event, performance velocity (64)."""
    encoding = run.encoding
    if run.loss_kind == "bernoulli":
        return np.zeros((1, *_frame_shape(encoding)), np.float32)
    if encoding.name == "performance":
        return np.array([encoding.velocity_offset + (64 - 1) // encoding.velocity_bin_size], np.int32)
    return np.array([getattr(encoding, "NO_EVENT", 0)], np.int32)


def _frame_shape(encoding: Any) -> tuple[int, ...]:
    return (2, 88) if getattr(encoding, "onsets", False) else (88,)


def _encode_primer(run: Run, primer: NoteSequence) -> np.ndarray:

    try:
        array = run.encoding.encode(primer)
    except EncodingError as err:
        raise SampleError(f"primer {primer.filename or primer.id}: {err}") from None
    if len(array) == 0:
        raise SampleError(f"primer {primer.filename or primer.id}: encodes to no time steps")
    return array


def _primer_qpm(primer: NoteSequence) -> float:
    tempos = sorted(primer.tempos, key=lambda t: t.time)
    return float(tempos[0].qpm) if tempos and tempos[0].qpm > 0 else DEFAULT_QPM


# ------------------------------------------------------------------------------------------------ styles


def parse_mix(text: str) -> dict[str, float]:
    """"bach:0.5,irish:0.5" -> {"bach": 0.5, "irish": 0.5} (weights are normalised later)."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, weight = part.rpartition(":")
        try:
            value = float(weight)
        except ValueError:
            value = None
        if not sep or not name.strip() or value is None or not np.isfinite(value):
            raise SampleError(f"--mix {text!r}: expected NAME:WEIGHT[,NAME:WEIGHT...], got {part!r}")
        mix[name.strip()] = mix.get(name.strip(), 0.0) + value
    if not mix:
        raise SampleError(f"--mix {text!r}: no NAME:WEIGHT pairs")
    return mix


def style_input(run: Run, n: int, style: str | None, mix: dict[str, float] | None) -> tuple[Any, list[str]]:
    """-> (style ids (n,) int32 / weights (n, S) float32 / None, a per-sample description of the style)."""
    if not run.conditioned:
        if style is not None or mix:
            raise SampleError(f"run {run.name} was trained without style conditioning; drop --style/--mix")
        return None, [""] * n
    known = f"known styles: {', '.join(run.styles)}"
    if style is not None and mix:
        raise SampleError("give either a style or a mix, not both")
    if style is not None:
        if style not in run.styles:
            raise SampleError(f"unknown style {style!r} for run {run.name}; {known}")
        return np.full(n, run.styles.index(style), np.int32), [style] * n
    if mix:
        unknown = sorted(set(mix) - set(run.styles))
        if unknown:
            raise SampleError(f"unknown style {unknown[0]!r} in the mix for run {run.name}; {known}")
        weights = np.array([mix.get(name, 0.0) for name in run.styles], np.float64)
        if (weights < 0).any() or weights.sum() <= 0:
            raise SampleError(f"mix weights must be >= 0 and sum to > 0, got {mix}")
        weights /= weights.sum()
        label = "+".join(f"{name}:{w:.2g}" for name, w in zip(run.styles, weights) if w > 0)
        return np.tile(weights.astype(np.float32), (n, 1)), [label] * n
    ids = np.arange(n, dtype=np.int32) % len(run.styles)  # no choice given: samples cycle through the styles
    return ids, [run.styles[i] for i in ids]


# ------------------------------------------------------------------------------------------------- lengths


def corpus_piece_lengths(run: Run) -> np.ndarray:
    """The training pieces' lengths (time steps / events) recorded with the run."""
    return _corpus_pieces(run)[0]


def _corpus_pieces(run: Run) -> tuple[np.ndarray, np.ndarray]:
    """The training pieces' lengths (N,) and bars (N, 2) (phase, steps per bar; (0, 0) where not recorded)."""
    lengths = np.asarray(run.meta.get("piece_lengths") or [], np.int64)
    bars = np.asarray(run.meta.get("piece_bars") or [], np.int64).reshape(-1, 2)
    if len(bars) != len(lengths):
        bars = np.zeros((len(lengths), 2), np.int64)
    if not len(lengths):
        return np.array([FALLBACK_STEPS], np.int64), np.zeros((1, 2), np.int64)
    return lengths[lengths > 0], bars[lengths > 0]


def _drawn_pieces(run: Run, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Lengths (n,) and bars (n, 2) of the training pieces n samples take theirs from (seeded draws)."""
    lengths, bars = _corpus_pieces(run)
    drawn = np.random.default_rng([seed, 1]).choice(len(lengths), size=n)
    return lengths[drawn], bars[drawn]


def reads_bars(run: Run) -> bool:
    """Whether the run's model reads the place in the bar from bar lines (config.model.bar_lines)."""
    return bool(getattr(run.model, "bar_lines", False) and getattr(run.model, "position_period", 0))


def sample_bars(run: Run, n: int, *, seed: int = 0, primer: NoteSequence | None = None) -> np.ndarray:
    """(n, 2) int32 bars of n samples (the place in the bar of their first step, steps per bar; (0, 0): not
    known): a primer's own (`quantize.piece_bar`), else those of the training piece each length was drawn from."""
    if primer is not None:
        return np.tile(np.asarray(piece_bar(primer, getattr(run.encoding, "steps_per_quarter", None)), np.int32),
                       (n, 1))
    return _drawn_pieces(run, n, seed)[1].astype(np.int32)


def steps_per_bar(run: Run, primer: NoteSequence | None = None) -> int:
    """Time steps in one bar of the primer's meter (`main_meter`; 4/4 without one); grid encodings only."""
    per_quarter = getattr(run.encoding, "steps_per_quarter", None)
    if not per_quarter:
        raise SampleError(f"run {run.name} uses {run.encoding.name} events, which have no bars: give a length "
                          "in events (--steps)")
    numerator, denominator = (4, 4) if primer is None else main_meter(primer)
    return max(1, round(per_quarter * numerator * 4 / denominator))


def sample_lengths(run: Run, n: int, *, seed: int = 0, bars: int | None = None, primer: NoteSequence | None = None,
                   primer_steps: int = 0) -> list[int]:
    """New steps per sample: `bars` bars each, or else lengths drawn (seeded) from the corpus's pieces; a
    continuation of a primer of `primer_steps` runs to the drawn length, at least MIN_CONTINUATION_BARS bars."""
    if bars is not None:
        if bars < 1:
            raise SampleError(f"bars must be >= 1, got {bars}")
        if primer is None and reads_bars(run):  # each sample in the meter of the piece it takes its bars from
            per_bar = sample_bars(run, n, seed=seed)[:, 1]
            return [bars * int(steps or steps_per_bar(run)) for steps in per_bar]
        return [bars * steps_per_bar(run, primer)] * n
    drawn = _drawn_pieces(run, n, seed)[0]
    if primer_steps:
        try:
            floor = MIN_CONTINUATION_BARS * steps_per_bar(run, primer)
        except SampleError:
            floor = 64
        drawn = np.maximum(drawn - primer_steps, floor)
    return [int(x) for x in drawn]


def primer_texture(run: Run, prefix: np.ndarray, style: np.ndarray | None, n: int,
                   bar: np.ndarray | None = None) -> np.ndarray:
    """(n,) texture labels for continuing a primer with a model that reads one (config.data.texture_shift_rate):
    per sample (style), the most probable label given the primer: TEXTURE_AS_WRITTEN (the corpus's texture) or
    that of a shift the model was trained with (a melody alone, a melody over chords, ...), each weighted by its
    share of the training windows. prefix: the start frame and the primer's frames (P, ...); the primer is scored
    once per label and distinct style, in its bars (`bar` (2,), as `sample_bars`; None: not known)."""
    data = run.config.data
    shifts = texture_shift_names(data, run.loss_kind)
    names = tuple(dict.fromkeys(shifts))
    rate = min(max(float(data.texture_shift_rate), 1e-3), 1 - 1e-3)
    labels = np.array([TEXTURE_AS_WRITTEN, *(texture_label(name) for name in names)], np.int32)
    log_prior = np.log([1 - rate, *(rate * shifts.count(name) / len(shifts) for name in names)])
    if style is None:
        styles, which = None, np.zeros(n, np.int64)
    else:
        styles, which = np.unique(np.asarray(style), axis=0, return_inverse=True)
        which = np.asarray(which).reshape(-1)
    rows = 1 if styles is None else len(styles)
    frames = np.asarray(prefix, np.float32)
    inputs, targets = (np.broadcast_to(a, (len(labels) * rows, *a.shape)) for a in (frames[:-1], frames[1:]))
    batch = {"inputs": inputs, "targets": targets, "mask": np.ones(inputs.shape[:2], np.float32),
             "style": None if styles is None else np.concatenate([styles] * len(labels)),
             "texture": np.repeat(labels, rows)}
    if bar is not None:
        batch["bar"] = np.tile(np.asarray(bar, np.int32), (len(inputs), 1))
    logits = covering(ApplyLM(run.model, styles is not None), targets)(run.params, batch, train=False, rng=None)
    nll = np.asarray(row_nll_sums(logits, targets, batch["mask"], "bernoulli")[0]).reshape(len(labels), rows)
    return labels[np.argmax(log_prior[:, None] - nll, axis=0)][which]


def nucleus_applies(model: Any, frames: bool) -> bool:
    """Whether a model (its module or its config group) makes a categorical choice that top-p can cut: the next
    event of an event LM, or the next note's key of a piano-roll NADE that draws its note count first."""
    return not frames or draws_note_count(model, frames)


def draws_note_count(model: Any, frames: bool) -> bool:
    """Whether a model (its module or its config group) draws each frame's note count before its keys: a
    piano-roll NADE with nade_count, the one model a count temperature applies to."""
    return frames and getattr(model, "output", None) == "nade" and bool(getattr(model, "nade_count", False))


def config_options(config: Any, **given: Any) -> dict[str, Any]:
    """A run's own sampling settings (config.sample: temperature, top-k, top-p, threshold, count temperature, max
    copy bars), as `sample` takes them: those left unset, and a top-p or count temperature the run's model has no
    use for, are left out; `given` settings that are not None (a command's options) replace them."""
    s = config.sample
    frames = config.data.encoding == "pianoroll"
    nucleus = nucleus_applies(config.model, frames=frames)
    counts = draws_note_count(config.model, frames)
    options = dict(temperature=s.temperature, top_k=s.top_k, top_p=s.top_p if nucleus else None, threshold=s.threshold,
                   count_temperature=s.count_temperature if counts else None, max_copy_bars=s.max_copy_bars)
    options.update({key: value for key, value in given.items() if value is not None})
    return {key: value for key, value in options.items() if value is not None}


def check_settings(run: Run, n: int, steps: int, temperature: float, top_k: int | None, top_p: float | None,
                   threshold: float | None, count_temperature: float | None = None) -> None:
    """Raise a SampleError naming the first setting that `run`'s model cannot take or that is out of range."""
    if n < 1 or steps < 1:
        raise SampleError(f"need n >= 1 samples and steps >= 1, got n={n}, steps={steps}")
    if not (np.isfinite(temperature) and temperature >= 0):
        raise SampleError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if count_temperature is not None:
        if not draws_note_count(run.model, frames=run.loss_kind == "bernoulli"):
            raise SampleError(f"the count temperature applies to a NADE that draws its note count first; run "
                              f"{run.name} has no such model (use --temperature)")
        if not (np.isfinite(count_temperature) and count_temperature > 0):
            raise SampleError(f"count temperature must be > 0, got {count_temperature}")
    if run.loss_kind == "bernoulli":
        if top_k is not None:
            raise SampleError(f"top-k applies to event models; run {run.name} is a piano-roll model "
                              "(use --threshold, --temperature or, for a counting NADE, --top-p)")
        if top_p is not None and not nucleus_applies(run.model, frames=True):
            raise SampleError(f"top-p applies to event models and to a NADE that draws its note count first; run "
                              f"{run.name} is a piano-roll model without one (use --threshold or --temperature)")
        if top_p is not None and not 0 < top_p <= 1:
            raise SampleError(f"top-p must lie in (0, 1], got {top_p}")
        if threshold is not None and not 0 < threshold < 1:
            raise SampleError(f"threshold must lie in (0, 1), got {threshold}")
    else:
        if threshold is not None:
            raise SampleError(f"--threshold applies to piano-roll models; run {run.name} is an event model "
                              "(use --top-k/--top-p/--temperature)")
        if top_k is not None and top_k < 1:
            raise SampleError(f"top-k must be >= 1, got {top_k}")
        if top_p is not None and not 0 < top_p <= 1:
            raise SampleError(f"top-p must lie in (0, 1], got {top_p}")
