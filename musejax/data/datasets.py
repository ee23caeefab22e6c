"""Datasets: split by piece, encode with a cache, window, augment by transposition, batch (numpy only).

`build_dataset` turns corpora into encoded pieces per split. The first build parses the sources in parallel
(`read_corpus`) and caches the parsed NoteSequences and the encoded arrays (see `cache.py`); later builds
load the arrays. Windows, masks and batches are plain numpy so the model side never sees files.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musejax.data import cache as cache_files

if TYPE_CHECKING:  # imported lazily: windows and batches need numpy only
    from note_seq import NoteSequence

    from musejax.data.corpora import Corpus
    from musejax.data.readers import ReadFailure
    from musejax.data.report import BuildReport

SPLITS = ("train", "valid", "test")
ENCODING_FAILURE_REASON = "encoding-error"


def split_of(piece_id: str, valid_fraction: float = 0.1, test_fraction: float = 0.1) -> str:
    """"train", "valid" or "test" from a SHA-1 of the piece id: stable across runs, machines and corpus order."""
    if not (0.0 <= valid_fraction and 0.0 <= test_fraction and valid_fraction + test_fraction <= 1.0):
        raise ValueError(f"split fractions must be >= 0 and sum to <= 1, got {valid_fraction=}, {test_fraction=}")
    digest = hashlib.sha1(piece_id.encode("utf-8")).digest()
    position = (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53  # uniform in [0, 1), exact in a float
    if position < test_fraction:
        return "test"
    if position < test_fraction + valid_fraction:
        return "valid"
    return "train"


@dataclass
class EncodedPiece:
    """One encoded piece: its stable id, style label (None if unknown) and array (time on axis 0)."""

    id: str
    style: str | None
    array: np.ndarray


@dataclass
class EncodedDataset:
    """Encoded pieces per split; `styles` is sorted, a style's index is its position (for conditioning).

    `report` counts files and failures (reading and encoding) over all corpora; `corpus_reports` per corpus;
    `cache_status` says per corpus whether the arrays came from the cache ("encoded"), were re-encoded from
    cached sequences ("sequences") or the sources were parsed ("parsed").
    """

    name: str
    encoding_options: dict[str, Any]
    splits: dict[str, list[EncodedPiece]]
    styles: list[str]
    report: BuildReport
    corpus_reports: dict[str, BuildReport] = field(default_factory=dict)
    cache_status: dict[str, str] = field(default_factory=dict)

    def style_index(self, style: str | None) -> int:
        """Position of `style` in `styles`; -1 for an unlabelled piece."""
        return -1 if style is None else self.styles.index(style)


# ---------------------------------------------------------------- building with the cache


def expand_corpus_names(corpus: str | Sequence[str]) -> list[str]:
    """Corpus names/paths as a de-duplicated list; "all" stands for every bundled corpus."""
    from musejax.data.corpora import BUNDLED_CORPORA

    names = [corpus] if isinstance(corpus, (str, Path)) else list(corpus)
    expanded: list[str] = []
    for name in names:
        for item in (list(BUNDLED_CORPORA) if str(name) == "all" else [str(name)]):
            if item not in expanded:
                expanded.append(item)
    if not expanded:
        raise ValueError("no corpus given")
    return expanded


def build_dataset(corpus: str | Sequence[str], encoding: Any, *, cache_dir: str | Path | None = None,
                  workers: int | None = None, progress: bool = True, labels: str | None = None,
                  valid_fraction: float = 0.1, test_fraction: float = 0.1) -> EncodedDataset:
    """Encode one or several corpora (names, paths or "all") into train/valid/test pieces, using the cache.

    `encoding` is an encoding object or a name for `get_encoding`. The cache lives in `cache_dir`
    (default `$MUSEJAX_CACHE` or `~/.cache/musejax`) and is invalidated by a change of the sources
    (corpus fingerprint, labels), of the encoding options or of the cache format version.
    """
    from musejax.data.corpora import resolve_corpus
    from musejax.data.encodings import get_encoding

    split_of("", valid_fraction, test_fraction)  # validates the fractions before any work
    encoder = get_encoding(encoding) if isinstance(encoding, str) else encoding
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_files.default_cache_dir()
    splits: dict[str, list[EncodedPiece]] = {name: [] for name in SPLITS}
    corpus_reports: dict[str, BuildReport] = {}
    cache_status: dict[str, str] = {}
    resolved_corpora = [resolve_corpus(name, labels) for name in expand_corpus_names(corpus)]
    names = [c.name for c in resolved_corpora]
    for name in sorted({n for n in names if names.count(n) > 1}):  # piece ids start with the corpus name
        roots = [str(c.root) for c in resolved_corpora if c.name == name]
        raise ValueError(f"two corpora are named {name!r} ({', '.join(roots)}); rename one folder")
    for resolved in resolved_corpora:
        pieces, report, status = _encoded_corpus(resolved, encoder, root, workers, progress)
        corpus_reports[resolved.name], cache_status[resolved.name] = report, status
        for piece in pieces:
            splits[split_of(piece.id, valid_fraction, test_fraction)].append(piece)
    styles = sorted({p.style for pieces in splits.values() for p in pieces if p.style is not None})
    return EncodedDataset(
        name="+".join(corpus_reports), encoding_options={"name": encoder.name, **encoder.options()},
        splits=splits, styles=styles, report=merge_reports(list(corpus_reports.values())),
        corpus_reports=corpus_reports, cache_status=cache_status)


def load_sequences(corpus: Corpus, *, cache_dir: str | Path | None = None, workers: int | None = None,
                   progress: bool = True) -> tuple[list[NoteSequence], BuildReport, bool]:
    """Parsed NoteSequences of a resolved corpus from the cache, else parsed (in parallel) and cached.

    Returns (sequences, read report, whether they came from the cache).
    """
    from musejax.data.corpora import read_corpus

    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_files.default_cache_dir()
    path, header = _sequences_entry(corpus, root)
    try:
        meta, sequences = cache_files.read_sequences(path)
        if _matches(meta, header):
            return sequences, report_from_dict(meta["report"]), True
    except FileNotFoundError:
        pass
    except cache_files.CorruptCacheError as err:
        warnings.warn(f"{err}; rebuilding the sequence cache of corpus {corpus.name!r}",
                      cache_files.CacheWarning, stacklevel=2)
    sequences, report = read_corpus(corpus, workers=workers, progress=progress)
    cache_files.write_sequences(path, sequences, dict(header, report=report.to_dict()))
    return sequences, report, False


def _corpus_identity(corpus: Corpus) -> dict[str, Any]:
    from musejax.data import readers

    # Styles come from the labels file, which the fingerprint of the files does not see.
    styles = cache_files.stable_hash(sorted((str(f.rel), f.style) for f in corpus.files))
    return {"corpus": corpus.name, "root": str(corpus.root), "fingerprint": corpus.fingerprint(),
            "styles": styles, "reader_version": getattr(readers, "READER_VERSION", None)}


def _sequences_entry(corpus: Corpus, root: Path) -> tuple[Path, dict[str, Any]]:
    identity = _corpus_identity(corpus)
    slot = cache_files.stable_hash([identity["corpus"], identity["root"]])[:16]
    path = root / "sequences" / f"{cache_files.safe_name(corpus.name)}-{slot}.seqs"
    return path, {"kind": "sequences", **identity}


def _encoded_entry(corpus: Corpus, encoder: Any, root: Path) -> tuple[Path, dict[str, Any]]:
    identity = _corpus_identity(corpus)
    options = {"name": encoder.name, **encoder.options()}
    slot = cache_files.stable_hash([identity["corpus"], identity["root"], options])[:16]
    path = root / "encoded" / f"{cache_files.safe_name(corpus.name)}-{encoder.name}-{slot}.npz"
    return path, {"kind": "encoded", "encoding": options, **identity}


def _matches(meta: dict[str, Any], expected: dict[str, Any]) -> bool:
    if meta.get("format_version") != cache_files.CACHE_FORMAT_VERSION:
        return False
    return all(meta.get(key) == value for key, value in expected.items())


def _encoded_corpus(corpus: Corpus, encoder: Any, root: Path, workers: int | None,
                    progress: bool) -> tuple[list[EncodedPiece], BuildReport, str]:
    path, header = _encoded_entry(corpus, encoder, root)
    header = _json_roundtrip(header)
    try:
        meta, arrays, ids, styles = cache_files.read_arrays(path)
        if _matches(meta, header):
            pieces = [EncodedPiece(i, s, a) for i, s, a in zip(ids, styles, arrays)]
            return pieces, report_from_dict(meta["report"]), "encoded"
    except FileNotFoundError:
        pass
    except cache_files.CorruptCacheError as err:
        warnings.warn(f"{err}; re-encoding corpus {corpus.name!r}", cache_files.CacheWarning, stacklevel=3)
    sequences, read_report, cached = load_sequences(corpus, cache_dir=root, workers=workers, progress=progress)
    pieces, failures = encode_sequences(sequences, encoder, progress=progress, label=corpus.name)
    report = replace(read_report, n_loaded=len(pieces), failures=read_report.failures + failures)
    cache_files.write_arrays(path, [p.array for p in pieces], [p.id for p in pieces], [p.style for p in pieces],
                             dict(header, report=report.to_dict()))
    return pieces, report, "sequences" if cached else "parsed"


def _json_roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    """Options as they will read back from a JSON header (tuples become lists)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def encode_sequences(sequences: Sequence[NoteSequence], encoder: Any, *, progress: bool = False,
                     label: str = "") -> tuple[list[EncodedPiece], list[ReadFailure]]:
    """Encode each sequence; a sequence the encoding rejects becomes a failure naming its file and reason."""
    from tqdm.auto import tqdm

    from musejax.data.encodings import EncodingError
    from musejax.data.readers import ReadFailure

    pieces: list[EncodedPiece] = []
    failures: list[ReadFailure] = []
    for ns in tqdm(sequences, desc=f"encode {label}".strip(), unit="piece", disable=not progress, leave=False):
        try:
            array = encoder.encode(ns)
        except EncodingError as err:
            tune = ns.reference_number or None
            failures.append(ReadFailure(ns.filename or ns.id, tune, ENCODING_FAILURE_REASON, str(err)))
            continue
        style = ns.sequence_metadata.genre[0] if ns.sequence_metadata.genre else None
        pieces.append(EncodedPiece(ns.id, style, array))
    return pieces, failures


def report_from_dict(data: dict[str, Any]) -> BuildReport:
    """Rebuild a BuildReport from `to_dict()` output (for cached and saved reports)."""
    from musejax.data.report import BuildReport

    return BuildReport.from_dict(data)


def merge_reports(reports: Sequence[BuildReport]) -> BuildReport:
    """One report over several corpora (counts and seconds summed, failures concatenated)."""
    from musejax.data.report import BuildReport

    return BuildReport(corpus="+".join(r.corpus for r in reports), n_files=sum(r.n_files for r in reports),
                       n_loaded=sum(r.n_loaded for r in reports), failures=[f for r in reports for f in r.failures],
                       seconds=sum(r.seconds for r in reports))


# ---------------------------------------------------------------- windows, augmentation, batches


def make_windows(arrays: Sequence[np.ndarray], length: int, hop: int | None = None,
                 pad_value: int | float = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut pieces into windows of `length` steps every `hop` steps (default: `length`, no overlap).

    Returns (windows (N, length, ...), mask (N, length) bool, piece_index (N,) int64). Windows start at
    0, hop, 2*hop, ... until one reaches the end of the piece; the last partial window and pieces shorter
    than `length` are padded with `pad_value` and masked False there. Empty pieces give no window.
    """
    hop = length if hop is None else hop
    if length < 1 or hop < 1:
        raise ValueError(f"window length and hop must be >= 1, got {length=}, {hop=}")
    if len(arrays) == 0:
        raise ValueError("make_windows needs at least one array")
    feature_shape, dtype = np.shape(arrays[0])[1:], np.asarray(arrays[0]).dtype
    spans: list[tuple[int, int, int]] = []  # (piece, start, stop)
    for index, array in enumerate(arrays):
        if np.shape(array)[1:] != feature_shape or np.asarray(array).dtype != dtype:
            raise ValueError(f"array {index} has shape {np.shape(array)} / {np.asarray(array).dtype}, "
                             f"expected (T, {', '.join(map(str, feature_shape))}) / {dtype}")
        steps = len(array)
        start = 0
        while start < steps:
            spans.append((index, start, min(start + length, steps)))
            if start + length >= steps:
                break
            start += hop
    windows = np.full((len(spans), length, *feature_shape), pad_value, dtype=dtype)
    mask = np.zeros((len(spans), length), dtype=bool)
    for row, (index, start, stop) in enumerate(spans):
        windows[row, : stop - start] = arrays[index][start:stop]
        mask[row, : stop - start] = True
    piece_index = np.array([span[0] for span in spans], dtype=np.int64)
    return windows, mask, piece_index


def random_transpose(array: np.ndarray, encoding: Any, rng: np.random.Generator, max_semitones: int) -> np.ndarray:
    """Transpose by a shift drawn uniformly from those in [-max_semitones, max_semitones] that keep every note
    in the encoding's range (`encoding.transpose` returns None for the others)."""
    if max_semitones < 0:
        raise ValueError(f"max_semitones must be >= 0, got {max_semitones}")
    for shift in rng.permutation(np.arange(-max_semitones, max_semitones + 1)):
        if shift == 0:
            return array
        shifted = encoding.transpose(array, int(shift))
        if shifted is not None:
            return shifted
    return array  # unreachable: a shift of 0 is always among the candidates


Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator], np.ndarray]  # (window, mask, rng) -> window


def transpose_augmentation(encoding: Any, max_semitones: int) -> Augment:
    """An `augment` for BatchIterator: transposes the unpadded prefix of a window (see `random_transpose`)."""

    def augment(window: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        steps = int(mask.sum())
        out = np.array(window, copy=True)
        out[:steps] = random_transpose(window[:steps], encoding, rng, max_semitones)
        return out

    return augment


class BatchIterator:
    """Batches of windows as dicts of numpy arrays: {"array", "mask", **extras}, deterministic in (seed, epoch).

    `extras` are per-window arrays (e.g. "style", "piece_index") batched alongside. `augment(window, mask, rng)`
    (e.g. `transpose_augmentation`) is applied per window with a generator seeded by (seed, epoch, batch), so
    resuming a run at batch k of an epoch (`epoch(e, start_batch=k)`) sees exactly the same data.
    """

    def __init__(self, arrays: np.ndarray, masks: np.ndarray, extras: dict[str, np.ndarray] | None = None,
                 batch_size: int = 32, seed: int = 0, shuffle: bool = True, drop_remainder: bool = True,
                 augment: Augment | None = None) -> None:
        arrays = np.asarray(arrays)
        extras = {key: np.asarray(value) for key, value in (extras or {}).items()}
        n = len(arrays)
        if np.shape(masks)[:2] != np.shape(arrays)[:2]:
            raise ValueError(f"masks shape {np.shape(masks)} does not match arrays shape {np.shape(arrays)}")
        for key, value in extras.items():
            if key in ("array", "mask") or len(value) != n:
                raise ValueError(f"extra {key!r}: reserved name or length {len(value)} != {n} windows")
        if batch_size < 1 or seed < 0:
            raise ValueError(f"need batch_size >= 1 and seed >= 0, got {batch_size=}, {seed=}")
        if drop_remainder and n < batch_size:
            raise ValueError(f"{n} windows are fewer than one batch of {batch_size} (drop_remainder=True)")
        self.arrays, self.masks, self.extras = arrays, np.asarray(masks, dtype=bool), extras
        self.batch_size, self.seed, self.shuffle = batch_size, seed, shuffle
        self.drop_remainder, self.augment = drop_remainder, augment

    @property
    def steps_per_epoch(self) -> int:
        """Number of batches in one epoch."""
        n = len(self.arrays)
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The window order of an epoch (a permutation seeded by (seed, epoch) when shuffling)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        n = len(self.arrays)
        return np.random.default_rng([self.seed, epoch]).permutation(n) if self.shuffle else np.arange(n)

    def epoch(self, epoch: int, start_batch: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Yield the batches of `epoch`, beginning at batch `start_batch` (for an exact resume)."""
        order = self.order(epoch)
        for batch in range(start_batch, self.steps_per_epoch):
            index = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            arrays, masks = self.arrays[index], self.masks[index]
            if self.augment is not None:
                rng = np.random.default_rng([self.seed, epoch, batch])
                arrays = np.stack([self.augment(a, m, rng) for a, m in zip(arrays, masks)])
            yield {"array": arrays, "mask": masks, **{key: value[index] for key, value in self.extras.items()}}


# ---------------------------------------------------------------- build outputs (`musejax data build --out`)


def write_dataset(dataset: EncodedDataset, out_dir: str | Path) -> dict[str, Any]:
    """Write `<split>.npz`, `report.json`, `failed_files.txt` and `summary.json` to `out_dir`; return the summary."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    header = {"kind": "split", "name": dataset.name, "encoding": dataset.encoding_options, "styles": dataset.styles}
    for split, pieces in dataset.splits.items():
        cache_files.write_arrays(out / f"{split}.npz", [p.array for p in pieces], [p.id for p in pieces],
                                 [p.style for p in pieces], dict(header, split=split))
    report = {"total": dataset.report.to_dict(), "counts_by_reason": dataset.report.counts_by_reason(),
              "corpora": {name: r.to_dict() for name, r in dataset.corpus_reports.items()}}
    _write_text(out / "report.json", json.dumps(report, indent=2, sort_keys=True) + "\n")
    lines = [f"{f.path}{'' if f.tune is None else f'#{f.tune}'}\t{f.reason}\t{f.detail}"
             for f in dataset.report.failures]
    _write_text(out / "failed_files.txt", "".join(line.replace("\n", " ") + "\n" for line in lines))
    summary = dataset_summary(dataset)
    _write_text(out / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def dataset_summary(dataset: EncodedDataset) -> dict[str, Any]:
    """Counts per split and per corpus, styles, encoding options and cache status (JSON-ready)."""
    return {
        "name": dataset.name, "encoding": dataset.encoding_options, "styles": dataset.styles,
        "splits": {split: {"pieces": len(pieces), "steps": int(sum(len(p.array) for p in pieces))}
                   for split, pieces in dataset.splits.items()},
        "corpora": {name: {"files": r.n_files, "loaded": r.n_loaded, "failed": r.n_failed,
                           "counts_by_reason": r.counts_by_reason(), "cache": dataset.cache_status.get(name)}
                    for name, r in dataset.corpus_reports.items()},
        "counts_by_reason": dataset.report.counts_by_reason(),
    }


def load_dataset(out_dir: str | Path) -> EncodedDataset:
    """Read back a directory written by `write_dataset` (e.g. by `musejax data build --out DIR`)."""
    out = Path(out_dir).expanduser()
    splits: dict[str, list[EncodedPiece]] = {}
    header: dict[str, Any] = {}
    for split in SPLITS:
        path = out / f"{split}.npz"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing split file (not a `musejax data build` output?)")
        header, arrays, ids, styles = cache_files.read_arrays(path)
        splits[split] = [EncodedPiece(i, s, a) for i, s, a in zip(ids, styles, arrays)]
    report = json.loads((out / "report.json").read_text())
    return EncodedDataset(
        name=header["name"], encoding_options=header["encoding"], splits=splits, styles=header["styles"],
        report=report_from_dict(report["total"]),
        corpus_reports={name: report_from_dict(r) for name, r in report["corpora"].items()})


def _write_text(path: Path, text: str) -> None:
    with cache_files.atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))


def format_build_report(dataset: EncodedDataset, max_listed: int = 10) -> str:
    """The text `musejax data build` prints: per-corpus loaded/failed, failures by reason, split sizes."""
    width = max(len(name) for name in dataset.corpus_reports) if dataset.corpus_reports else 6
    lines = [f"{'corpus':<{width}}  {'files':>6}  {'loaded':>7}  {'failed':>6}  cache"]
    for name, r in dataset.corpus_reports.items():
        lines.append(f"{name:<{width}}  {r.n_files:>6}  {r.n_loaded:>7}  {r.n_failed:>6}  "
                     f"{dataset.cache_status.get(name, '-')}")
    lines += ["", dataset.report.summary(max_listed=max_listed), ""]
    sizes = ", ".join(f"{split} {len(pieces)}" for split, pieces in dataset.splits.items())
    lines.append(f"pieces per split: {sizes}; styles: {', '.join(dataset.styles) or 'none'}")
    return "\n".join(lines)


# ---------------------------------------------------------------- `musejax data build`

_ENCODING_FLAGS = {  # flag -> (type, help); passed to get_encoding only when given
    "steps_per_quarter": (int, "grid resolution of pianoroll/melody (default 4)"),
    "onsets": (None, "pianoroll: add an onset channel ((T, 2, 88))"),
    "min_pitch": (int, "melody/multitrack: lowest pitch"), "max_pitch": (int, "melody: highest pitch"),
    "velocity_bins": (int, "performance: velocity bins"), "steps_per_second": (int, "performance: time resolution"),
    "max_shift_steps": (int, "performance: longest time shift"), "n_tracks": (int, "multitrack: tracks"),
    "n_bars": (int, "multitrack: bars per segment"), "steps_per_bar": (int, "multitrack: steps per bar"),
    "n_pitches": (int, "multitrack: pitches"),
}


def add_build_arguments(parser: Any) -> None:
    """Arguments of `musejax data build` (an argparse parser)."""
    parser.add_argument("--corpus", action="append", required=True, metavar="NAME|PATH",
                        help="bundled corpus name, folder or file; repeat to combine; 'all' = every bundled corpus")
    parser.add_argument("--encoding", required=True, choices=["pianoroll", "melody", "performance", "multitrack"])
    for option, (kind, help_text) in _ENCODING_FLAGS.items():
        flag = "--" + option.replace("_", "-")
        if kind is None:
            parser.add_argument(flag, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=None, metavar="N", help=help_text)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the splits, report and summary")
    parser.add_argument("--cache-dir", default=None, help="cache folder (default $MUSEJAX_CACHE or ~/.cache/musejax)")
    parser.add_argument("--workers", type=int, default=None, metavar="N", help="parse processes (default: all cores)")
    parser.add_argument("--labels", default=None, help="style labels of a folder corpus: 'folder' or a CSV/JSON file")
    parser.add_argument("--valid-fraction", type=float, default=0.1, metavar="F")
    parser.add_argument("--test-fraction", type=float, default=0.1, metavar="F")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_build(args: Any) -> int:
    """Build (or load from the cache) the dataset, write it to --out and print the build report."""
    import time

    from musejax.cli import CommandError
    from musejax.data.encodings import get_encoding

    options = {k: getattr(args, k) for k in _ENCODING_FLAGS if getattr(args, k, None) is not None}
    try:
        encoding = get_encoding(args.encoding, **options)
        start = time.perf_counter()
        dataset = build_dataset(args.corpus, encoding, cache_dir=args.cache_dir, workers=args.workers,
                                progress=not args.no_progress, labels=args.labels,
                                valid_fraction=args.valid_fraction, test_fraction=args.test_fraction)
    except ValueError as err:  # unknown corpus / option, bad labels file, bad fractions
        raise CommandError(str(err)) from None
    seconds = time.perf_counter() - start
    summary = write_dataset(dataset, args.out)
    print(format_build_report(dataset))
    print(f"built in {seconds:.1f} s; wrote {', '.join(sorted(summary['splits']))} splits, report.json, "
          f"failed_files.txt and summary.json to {args.out}")
    return 0
