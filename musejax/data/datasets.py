"""Datasets: corpora -> encoded pieces per split, through the cache; and `musejax data build` outputs on disk.

`build_dataset` turns corpora into encoded pieces per split (`splits.py`). The first build parses the sources
in parallel (`read_corpus`) and caches the parsed NoteSequences and the encoded arrays (`cache.py`); later
builds load the arrays. Windows, augmentation and batches are in `windows.py`; build reports in `report.py`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from musejax.data import cache as cache_files
from musejax.data.atomic import write_bytes_atomically
from musejax.data.report import BuildReport, merge_reports
from musejax.data.splits import SPLITS, split_of
from musejax.data.corpora import BUNDLED_CORPORA, read_corpus, resolve_corpus
from musejax.data.encodings import EncodingError, get_encoding
from musejax.data.quantize import piece_bar
from musejax.data.readers import ReadFailure

if TYPE_CHECKING:
    from note_seq import NoteSequence

    from musejax.data.corpora import Corpus

ENCODING_FAILURE_REASON = "encoding-error"


@dataclass
class EncodedPiece:
    """One encoded piece: its stable id, style label (None if unknown), array (time on axis 0) and, on a grid,
    its bars: (the place in the bar of step 0, steps per bar) from its meter and pickup (`quantize.piece_bar`;
    (0, 0): unknown)."""

    id: str
    style: str | None
    array: np.ndarray
    bar: tuple[int, int] = (0, 0)


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

    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_files.default_cache_dir()
    path, header = cache_files.sequences_entry(corpus, root)
    try:
        meta, sequences = cache_files.read_sequences(path)
        if cache_files.matches_header(meta, header):
            return sequences, BuildReport.from_dict(meta["report"]), True
    except FileNotFoundError:
        pass
    except cache_files.CorruptCacheError as err:
        warnings.warn(f"{err}; rebuilding the sequence cache of corpus {corpus.name!r}",
                      cache_files.CacheWarning, stacklevel=2)
    sequences, report = read_corpus(corpus, workers=workers, progress=progress)
    cache_files.write_sequences(path, sequences, dict(header, report=report.to_dict()))
    return sequences, report, False


def _encoded_corpus(corpus: Corpus, encoder: Any, root: Path, workers: int | None,
                    progress: bool) -> tuple[list[EncodedPiece], BuildReport, str]:
    path, header = cache_files.encoded_entry(corpus, encoder, root)
    header = cache_files.json_roundtrip(header)
    try:
        meta, arrays, ids, styles, bars = cache_files.read_arrays(path)
        if cache_files.matches_header(meta, header):
            pieces = [EncodedPiece(i, s, a, tuple(map(int, b))) for i, s, a, b in zip(ids, styles, arrays, bars)]
            return pieces, BuildReport.from_dict(meta["report"]), "encoded"
    except FileNotFoundError:
        pass
    except cache_files.CorruptCacheError as err:
        warnings.warn(f"{err}; re-encoding corpus {corpus.name!r}", cache_files.CacheWarning, stacklevel=3)
    sequences, read_report, cached = load_sequences(corpus, cache_dir=root, workers=workers, progress=progress)
    pieces, failures = encode_sequences(sequences, encoder, progress=progress, label=corpus.name)
    report = replace(read_report, n_loaded=len(pieces), failures=read_report.failures + failures)
    cache_files.write_arrays(path, [p.array for p in pieces], [p.id for p in pieces], [p.style for p in pieces],
                             dict(header, report=report.to_dict()), [p.bar for p in pieces])
    return pieces, report, "sequences" if cached else "parsed"


def encode_sequences(sequences: Sequence[NoteSequence], encoder: Any, *, progress: bool = False,
                     label: str = "") -> tuple[list[EncodedPiece], list[ReadFailure]]:
    """Encode each sequence; a sequence the encoding rejects becomes a failure naming its file and reason."""
    from tqdm.auto import tqdm


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
        bar = piece_bar(ns, getattr(encoder, "steps_per_quarter", None))  # grid encodings: where the bars fall
        pieces.append(EncodedPiece(ns.id, style, array, bar))
    return pieces, failures


# ---------------------------------------------------------------- build outputs (`musejax data build --out`)


def write_dataset(dataset: EncodedDataset, out_dir: str | Path) -> dict[str, Any]:
    """Write `<split>.npz`, `report.json`, `failed_files.txt` and `summary.json` to `out_dir`; return the summary."""
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    header = {"kind": "split", "name": dataset.name, "encoding": dataset.encoding_options, "styles": dataset.styles}
    for split, pieces in dataset.splits.items():
        cache_files.write_arrays(out / f"{split}.npz", [p.array for p in pieces], [p.id for p in pieces],
                                 [p.style for p in pieces], dict(header, split=split), [p.bar for p in pieces])
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
        header, arrays, ids, styles, bars = cache_files.read_arrays(path)
        splits[split] = [EncodedPiece(i, s, a, tuple(map(int, b))) for i, s, a, b in zip(ids, styles, arrays, bars)]
    report = json.loads((out / "report.json").read_text())
    return EncodedDataset(
        name=header["name"], encoding_options=header["encoding"], splits=splits, styles=header["styles"],
        report=BuildReport.from_dict(report["total"]),
        corpus_reports={name: BuildReport.from_dict(r) for name, r in report["corpora"].items()})


def _write_text(path: Path, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))
