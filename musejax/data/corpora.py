"""Corpora: the bundled ones (from music21's corpus, each with a style label) and any user directory.

`resolve_corpus` lists a corpus's files without parsing them (ABC tunebooks are split into tunes, which
is cheap); `read_corpus` parses them in parallel into NoteSequences plus a BuildReport.

Selection rules for the bundled corpora (all under music21's corpus folder):
  bach-chorales  bach/*.mxl|.xml whose part list is exactly Soprano, Alto, Tenor, Bass (365 files).
                 Chorales with extra instrumental parts, the .krn copies of three chorales and the
                 .rntxt analyses are left out, so part 0..3 is always S, A, T, B.
  palestrina     palestrina/*.krn.
  monteverdi     monteverdi/madrigal.*.mxl; .rntxt analyses and madrigal.3.1_old.mxl (an older copy
                 of 3.1) left out.
  trecento       trecento/*.xml|.mxl.
  essen-german   essenFolksong/ altdeu*, ballad*, boehme*, dva*, erk*, fink*, kinder*, zuccal*: Essen's
                 German collections ("deutschl"). Left out: han* (Chinese), irl (Irish), lot/lux
                 (Lorraine, Luxembourg), variant0 (Swiss variants), folkHaydn (British songs set by
                 Haydn), test*.
  essen-chinese  essenFolksong/han1.abc, han2.abc.
  oneills-irish  oneills1850/*.abc. Several files overlap (0626-0635 vs 0626-0700, 1556-1576 vs
                 1556-1624, _bs/_mh/_ml transcriptions of the same numbers, ...): a tune is its O'Neill
                 number (X:), and the first file in name order that holds it wins.
  ryans-fiddle   ryansMammoth/*.abc (one tune per file).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import functools
import hashlib
import json
import os
import re
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from musejax.data.readers import (DEFAULT_BUDGET_SECONDS, READER_VERSION, SUPPORTED_FORMATS, ReadError,
                                  ReadFailure, decode_text, read_file, split_abc_tunebook)
from musejax.data.report import BuildReport

if TYPE_CHECKING:
    from note_seq import NoteSequence

ABC_TUNES_PER_TASK = 40  # a big tunebook is read as several tasks so that it spreads over the workers


class CorpusFile(NamedTuple):
    path: Path
    rel: str  # POSIX path relative to the corpus root: the piece id's second half
    style: str | None
    tunes: tuple[int, ...] | None = None  # ABC: the tune numbers to read; None: the whole file

    @property
    def n_pieces(self) -> int:
        return len(self.tunes) if self.tunes is not None else 1


@dataclasses.dataclass
class Corpus:
    """A resolved corpus: its files (each with a style label or None) and what was left out."""

    name: str
    root: Path
    files: list[CorpusFile]
    description: str = ""
    unsupported: list[str] = dataclasses.field(default_factory=list)  # rel paths, reported by a build
    notes: list[str] = dataclasses.field(default_factory=list)  # selection remarks for `data info`

    @property
    def n_pieces(self) -> int:
        return sum(f.n_pieces for f in self.files)

    def styles(self) -> dict[str | None, int]:
        """Piece count per style label."""
        counts: dict[str | None, int] = {}
        for f in self.files:
            counts[f.style] = counts.get(f.style, 0) + f.n_pieces
        return counts

    def fingerprint(self) -> str:
        """Hash of reader version, paths, sizes, mtimes, labels and tune selections (a cache key)."""
        digest = hashlib.sha256(f"{READER_VERSION}\0{self.name}".encode())
        for f in self.files:
            stat = f.path.stat()
            digest.update(f"\0{f.rel}\0{stat.st_size}\0{stat.st_mtime_ns}\0{f.style}\0{f.tunes}".encode())
        digest.update("\0".join(self.unsupported).encode())
        return digest.hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class BundledCorpus:
    name: str
    style: str
    description: str
    folder: str  # folder inside music21's corpus
    select: Callable[[Path], bool]
    dedupe_tunes: bool = False  # drop tunes (by X: number) already held by an earlier file


def _musicxml_part_names(path: Path) -> tuple[str, ...]:
    """Part names from a MusicXML part list, read from the file head only (no parsing)."""
    if path.suffix == ".mxl":
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.endswith((".xml", ".musicxml")) and
                        not n.startswith("META-INF"))
            with archive.open(name) as handle:
                head = handle.read(1 << 16)
    else:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    text = head.decode("utf-16", "replace") if head[:2] in (b"\xff\xfe", b"\xfe\xff") else \
        head.decode("utf-8", "replace")
    part_list = text.split("</part-list>")[0]
    return tuple(name.strip() for name in re.findall(r"<part-name[^>]*>([^<]*)<", part_list))


def _is_chorale(path: Path) -> bool:
    return path.suffix in (".mxl", ".xml") and _musicxml_part_names(path) == ("Soprano", "Alto", "Tenor", "Bass")


_GERMAN_ESSEN = ("altdeu", "ballad", "boehme", "dva", "erk", "fink", "kinder", "zuccal")

BUNDLED_CORPORA: dict[str, BundledCorpus] = {c.name: c for c in [
    BundledCorpus("bach-chorales", "bach", "J.S. Bach four-part chorales (SATB MusicXML)", "bach", _is_chorale),
    BundledCorpus("palestrina", "palestrina", "Palestrina mass movements (Humdrum)", "palestrina",
                  lambda p: p.suffix == ".krn"),
    BundledCorpus("monteverdi", "monteverdi", "Monteverdi madrigals, books 3-5 (MusicXML)", "monteverdi",
                  lambda p: p.suffix == ".mxl" and p.name.startswith("madrigal.") and "_old" not in p.name),
    BundledCorpus("trecento", "trecento", "Italian trecento songs and mass movements (MusicXML)", "trecento",
                  lambda p: p.suffix in (".xml", ".mxl")),
    BundledCorpus("essen-german", "german-folk", "Essen folksong collection, German songs (ABC)",
                  "essenFolksong", lambda p: p.suffix == ".abc" and p.name.startswith(_GERMAN_ESSEN)),
    BundledCorpus("essen-chinese", "chinese-folk", "Essen folksong collection, Han Chinese songs (ABC)",
                  "essenFolksong", lambda p: p.suffix == ".abc" and p.name.startswith("han")),
    BundledCorpus("oneills-irish", "irish", "O'Neill's Music of Ireland (1850 tunes, ABC)", "oneills1850",
                  lambda p: p.suffix == ".abc", dedupe_tunes=True),
    BundledCorpus("ryans-fiddle", "fiddle", "Ryan's Mammoth Collection of fiddle tunes (ABC)", "ryansMammoth",
                  lambda p: p.suffix == ".abc"),
]}


@functools.lru_cache(maxsize=1)
def _music21_corpus() -> tuple[Path, tuple[Path, ...]]:
    from music21 import common, corpus

    return Path(common.getCorpusFilePath()), tuple(sorted(corpus.getCorePaths()))


def _abc_tune_numbers(path: Path) -> tuple[int, ...] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None  # read_file reports it
    return tuple(tune.number for tune in split_abc_tunebook(decode_text(data))[1])


def _with_tunes(path: Path, rel: str, style: str | None) -> CorpusFile:
    tunes = _abc_tune_numbers(path) if SUPPORTED_FORMATS.get(path.suffix.lower()) == "abc" else None
    return CorpusFile(path, rel, style, tunes)


def _resolve_bundled(spec: BundledCorpus) -> Corpus:
    corpus_root, paths = _music21_corpus()
    root = corpus_root / spec.folder
    chosen = [p for p in paths if p.parent == root and spec.select(p)]
    files = [_with_tunes(p, p.relative_to(root).as_posix(), spec.style) for p in chosen]
    notes = []
    if spec.dedupe_tunes:
        seen: set[int] = set()
        deduped, dropped = [], 0
        for f in files:
            kept = tuple(n for n in f.tunes or () if n not in seen)
            seen.update(kept)
            dropped += f.n_pieces - len(kept)
            if kept:
                deduped.append(f._replace(tunes=kept))
        files = deduped
        notes.append(f"{dropped} tunes left out: their number is held by an earlier file")
    return Corpus(spec.name, root, files, spec.description, notes=notes)


def _load_label_mapping(labels_path: Path) -> dict[str, str]:
    if not labels_path.is_file():
        raise ValueError(f"{labels_path}: label mapping file not found")
    if labels_path.suffix.lower() == ".json":
        try:
            mapping = json.loads(labels_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{labels_path}: not valid JSON: {error}") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
            raise ValueError(f"{labels_path}: expected a JSON object of relative path -> label")
    elif labels_path.suffix.lower() == ".csv":
        with open(labels_path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
            rows = rows[1:]
        bad = [i for i, row in enumerate(rows, start=1) if len(row) < 2 or not row[1].strip()]
        if bad:
            raise ValueError(f"{labels_path}: row {bad[0]} is not 'relative path,label'")
        mapping = {row[0]: row[1] for row in rows}
    else:
        raise ValueError(f"{labels_path}: label mapping must be .csv or .json")
    return {Path(k.strip()).as_posix().strip("/"): v.strip() for k, v in mapping.items()}


def _labeller(labels: str | None, root: Path, rels: list[str]) -> Callable[[str], str | None]:
    """rel path -> style: None, the first sub-folder ("folder"), or a CSV/JSON mapping of files or folders."""
    if labels is None:
        return lambda rel: None
    if labels == "folder":
        return lambda rel: rel.split("/")[0] if "/" in rel else None
    mapping = _load_label_mapping(Path(labels))
    unused = [k for k in mapping if not any(rel == k or rel.startswith(k + "/") for rel in rels)]
    if unused:
        raise ValueError(f"{labels}: {len(unused)} entries match no file under {root}, e.g. {unused[0]!r}")

    def label(rel: str) -> str | None:
        matches = [k for k in mapping if rel == k or rel.startswith(k + "/")]
        return mapping[max(matches, key=len)] if matches else None

    return label


def _resolve_directory(path: Path, labels: str | None) -> Corpus:
    single = path.is_file()
    root = path.parent if single else path
    candidates = [path] if single else sorted(
        p for p in root.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(root).parts))
    if labels not in (None, "folder"):
        candidates = [p for p in candidates if p.resolve() != Path(labels).resolve()]
    supported = [p for p in candidates if p.suffix.lower() in SUPPORTED_FORMATS]
    unsupported = [p.relative_to(root).as_posix() for p in candidates if p.suffix.lower() not in SUPPORTED_FORMATS]
    if not supported:
        kinds = ", ".join(sorted(SUPPORTED_FORMATS))
        raise ValueError(f"{path}: empty corpus: no music files ({kinds}) found"
                         + (f"; {len(unsupported)} other files" if unsupported else ""))
    rels = [p.relative_to(root).as_posix() for p in supported]
    label = _labeller(labels, root, rels)
    files = [_with_tunes(p, rel, label(rel)) for p, rel in zip(supported, rels)]
    return Corpus(root.name or str(root), root, files, f"user corpus at {root}", unsupported=unsupported)


def resolve_corpus(name_or_path: str, labels: str | None = None) -> Corpus:
    """A bundled corpus by name, or a user file/directory tree (labels: None, "folder" or a CSV/JSON file)."""
    if name_or_path in BUNDLED_CORPORA:
        if labels is not None:
            raise ValueError(f"{name_or_path}: a bundled corpus has its own style label; labels= is for directories")
        return _resolve_bundled(BUNDLED_CORPORA[name_or_path])
    path = Path(name_or_path).expanduser()
    if not path.exists():
        names = ", ".join(BUNDLED_CORPORA)
        raise ValueError(f"unknown corpus {name_or_path!r}: not a bundled corpus ({names}) "
                         "and no such file or directory")
    return _resolve_directory(path, labels)


# ------------------------------------------------------------------------------------- parallel reading

class _Task(NamedTuple):
    path: str
    root: str
    corpus: str
    style: str | None
    tunes: tuple[int, ...] | None
    budget_seconds: float | None
    cost: float  # rough, for scheduling big tasks first


def _tasks(corpus: Corpus, budget_seconds: float | None) -> list[_Task]:
    tasks = []
    for f in corpus.files:
        size = float(f.path.stat().st_size) if f.path.exists() else 0.0
        chunks = [f.tunes[i:i + ABC_TUNES_PER_TASK] for i in range(0, len(f.tunes), ABC_TUNES_PER_TASK)] \
            if f.tunes else [f.tunes]
        for chunk in chunks:
            share = len(chunk) / len(f.tunes) if f.tunes else 1.0
            tasks.append(_Task(str(f.path), str(corpus.root), corpus.name, f.style, chunk, budget_seconds,
                               size * share))
    return sorted(tasks, key=lambda t: -t.cost)


def _read_task(task: _Task) -> tuple[str, list[bytes], list[ReadFailure], int]:
    """Worker: read one file (or a tunebook chunk); never raises (a surprise becomes a failure)."""
    n_pieces = len(task.tunes) if task.tunes is not None else 1
    try:
        sequences, failures = read_file(task.path, style=task.style, corpus=task.corpus, root=task.root,
                                        tunes=task.tunes, budget_seconds=task.budget_seconds)
    except ReadError as error:
        return task.path, [], [ReadFailure(task.path, None, "missing", str(error))], n_pieces
    except Exception as error:  # a reader bug must not end the whole build
        failure = ReadFailure(task.path, None, "internal-error", f"{type(error).__name__}: {error}")
        return task.path, [], [failure], n_pieces
    return task.path, [ns.SerializeToString() for ns in sequences], failures, n_pieces


def _default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _jax_started() -> bool:
    """True once JAX has created a backend: its runtime threads are native, invisible to `threading`."""
    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge
    except ImportError:  # a JAX without this module: assume the worst
        return True
    return bool(getattr(xla_bridge, "backends_are_initialized", lambda: True)())


def _pool_context():
    """fork when this process has no other threads (fast); else a forkserver (fork is unsafe once, e.g., JAX
    has started its runtime threads, and JAX warns of a deadlock)."""
    import multiprocessing
    import threading

    # tqdm's monitor thread only sleeps and refreshes bars: it does not make fork unsafe.
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.name != "tqdm_monitor"]
    if not others and not _jax_started() and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["musejax.data.readers", "note_seq", "music21"])
    return context


def _run(tasks: list[_Task], workers: int, context):
    """Yield task results as they finish: in-process for one worker, else from a process pool."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_read_task, tasks)
        return
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_read_task, task) for task in tasks]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool as error:
            raise RuntimeError(f"a corpus reader process died ({error}); "
                               "rerun with workers=1 to find the file") from None
        finally:
            for future in futures:
                future.cancel()


def read_corpus(corpus: Corpus, *, workers: int | None = None, progress: bool = True,
                budget_seconds: float | None = DEFAULT_BUDGET_SECONDS,
                ) -> tuple[list[NoteSequence], BuildReport]:
    """Parse every piece of `corpus` in parallel: (sequences sorted by id, build report).

    Bad files and tunes are skipped and listed in the report; `budget_seconds` bounds each piece.
    """
    from note_seq.protobuf import music_pb2
    from tqdm.auto import tqdm

    start = time.perf_counter()
    report = BuildReport(corpus=corpus.name, n_files=len(corpus.files) + len(corpus.unsupported))
    report.failures += [ReadFailure(str(corpus.root / rel), None, "unsupported-format",
                                    f"suffix {Path(rel).suffix!r} is not one of {', '.join(sorted(SUPPORTED_FORMATS))}")
                        for rel in corpus.unsupported]
    tasks = _tasks(corpus, budget_seconds)
    workers = min(_default_workers() if workers is None else max(1, workers), max(1, len(tasks)))
    context = _pool_context()
    sequences = []
    chunks_left = collections.Counter(task.path for task in tasks)
    files_done = len(corpus.unsupported)
    with tqdm(total=corpus.n_pieces, unit="piece", desc=corpus.name, disable=not progress,
              mininterval=0.5, dynamic_ncols=True) as bar:
        for path, serialized, failures, n_pieces in _run(tasks, workers, context):
            sequences += [music_pb2.NoteSequence.FromString(data) for data in serialized]
            report.failures += failures
            chunks_left[path] -= 1
            files_done += chunks_left[path] == 0
            bar.update(n_pieces)
            bar.set_postfix(files=f"{files_done}/{report.n_files}", failed=report.n_failed, refresh=False)
    sequences.sort(key=lambda ns: ns.id)
    report.failures.sort(key=lambda f: (f.path, -1 if f.tune is None else f.tune, f.reason))
    report.n_loaded = len(sequences)
    report.seconds = time.perf_counter() - start
    return sequences, report
