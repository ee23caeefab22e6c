"""Recommendation by style embeddings: an index over a music library, liked/disliked profiles, exact top-k search.

The index holds one L2-normalised style-encoder embedding per piece (see `musejax.style.classify`) plus its id, file,
tune number, style label, composer and title. It is built once per (classifier checkpoint, library contents)
and saved as an .npz; later queries load it. Search is exact: one (N, E) x (E,) product and an
`argpartition` (a few ms at 100k pieces, see experiments/bench_recommend.py).

Scoring (Rocchio-style): score(x) = sum_i w_i cos(x, liked_i) / sum_i w_i - dislike_weight * mean_j cos(x, disliked_j),
with w_i = 1 + ln(play count) (1 for a plain liked file). Liked and disliked pieces themselves (same file and tune)
are never returned; an identical copy under another path scores ~1 and ranks first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from musejax.data.corpora import resolve_corpus
from musejax.data.datasets import expand_corpus_names, load_sequences
from musejax.data.cache import default_cache_dir, safe_name
from musejax.style.classify import embed_sequences
from musejax.data.atomic import atomic_write
from musejax.errors import UserError

INDEX_VERSION = 1
DEFAULT_DISLIKE_WEIGHT = 0.5


class RecommendError(UserError):
    """Inputs the user can fix (bad history line, empty library, unreadable liked file); one-line message."""


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-8)


def piece_key(path: str | Path, tune: int = 0) -> str:
    """Identity of a piece for exclusion: resolved file path plus tune number (0 = whole file)."""
    return f"{Path(path).expanduser().resolve()}#{int(tune)}"


@dataclasses.dataclass
class LibraryIndex:
    """Per-piece metadata and normalised embeddings (N, E) float32; `meta` says what it was built from."""

    ids: list[str]
    keys: list[str]
    styles: list[str]
    composers: list[str]
    titles: list[str]
    embeddings: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.ids)

    def positions(self, keys: Sequence[str]) -> np.ndarray:
        """Rows whose key is in `keys` (a dict lookup per key: no scan of the library)."""
        if "_by_key" not in self.__dict__:
            by_key: dict[str, list[int]] = {}
            for row, key in enumerate(self.keys):
                by_key.setdefault(key, []).append(row)
            self.__dict__["_by_key"] = by_key
        return np.array(sorted({row for key in set(keys) for row in self.__dict__["_by_key"].get(key, ())}), np.int64)

    def save(self, path: str | Path) -> Path:
        """Write atomically as .npz (embeddings + a JSON header of the metadata)."""

        header = {"version": INDEX_VERSION, "meta": self.meta, "ids": self.ids, "keys": self.keys,
                  "styles": self.styles, "composers": self.composers, "titles": self.titles}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:
            np.savez(handle, embeddings=self.embeddings, header=np.array(json.dumps(header)))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LibraryIndex":
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                header, embeddings = json.loads(str(data["header"])), np.asarray(data["embeddings"], np.float32)
        except (OSError, ValueError, KeyError) as err:
            raise RecommendError(f"{path}: not a musejax recommendation index ({err})") from None
        if header.get("version") != INDEX_VERSION or len(header["ids"]) != len(embeddings):
            raise RecommendError(f"{path}: index version {header.get('version')} / size mismatch; rebuild it")
        return cls(header["ids"], header["keys"], header["styles"], header["composers"], header["titles"],
                   embeddings, header["meta"])


# ------------------------------------------------------------------------------------------ building


def library_corpora(library: str) -> list[Any]:
    """Resolved corpora of a library spec: bundled names ("," separated, "all") or a folder."""

    names = [library] if Path(library).expanduser().exists() else [n.strip() for n in library.split(",") if n.strip()]
    try:
        return [resolve_corpus(name) for name in expand_corpus_names(names)]
    except ValueError as err:
        raise RecommendError(f"--library {library!r}: {err}") from None


def index_identity(style_run: Any, corpora: Sequence[Any]) -> dict[str, Any]:
    """What an index depends on: the classifier checkpoint and every corpus's name, root and fingerprint."""
    run = str(Path(style_run.run_dir).resolve()) if style_run.run_dir is not None else "in-memory"
    return {"classifier": run, "classifier_step": style_run.step,
            "corpora": [{"name": c.name, "root": str(Path(c.root).resolve()), "fingerprint": c.fingerprint()}
                        for c in corpora]}


def default_index_path(identity: dict[str, Any], cache_dir: str | Path | None = None) -> Path:
    """<cache>/recommend/<corpora>-<hash of identity>.npz (cache: $MUSEJAX_CACHE or ~/.cache/musejax)."""

    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    names = "+".join(c["name"] for c in identity["corpora"])
    return root / "recommend" / f"{safe_name(names)[:80]}-{digest}.npz"


def index_sequences(style_run: Any, sequences: Sequence[Any], meta: dict[str, Any]) -> LibraryIndex:
    """Embed NoteSequences into an index (pieces that cannot be encoded are left out, counted in meta)."""

    embedded = embed_sequences(style_run, sequences)
    kept = [sequences[i] for i in embedded.kept]
    meta = dict(meta, n_left_out=len(embedded.failures), embed_dim=int(embedded.embeddings.shape[1]))
    return LibraryIndex(
        ids=[ns.id for ns in kept], keys=[piece_key(ns.filename, ns.reference_number) for ns in kept],
        styles=[ns.sequence_metadata.genre[0] if ns.sequence_metadata.genre else "" for ns in kept],
        composers=[", ".join(ns.sequence_metadata.composers) for ns in kept],
        titles=[ns.sequence_metadata.title for ns in kept],
        embeddings=normalize_rows(embedded.embeddings), meta=meta)


def load_or_build_index(style_run: Any, library: str, *, index_path: str | Path | None = None,
                        rebuild: bool = False, cache_dir: str | Path | None = None, workers: int | None = None,
                        progress: bool = False) -> tuple[LibraryIndex, Path, bool]:
    """(index, its path, whether it was built now). A saved index is reused when its identity matches."""

    corpora = library_corpora(library)
    identity = index_identity(style_run, corpora)
    path = Path(index_path) if index_path is not None else default_index_path(identity, cache_dir)
    if path.exists() and not rebuild:
        index = LibraryIndex.load(path)
        if index.meta.get("identity") == json.loads(json.dumps(identity)):
            return index, path, False
    sequences = []
    for corpus in corpora:
        sequences += load_sequences(corpus, cache_dir=cache_dir, workers=workers, progress=progress)[0]
    if not sequences:
        raise RecommendError(f"--library {library!r}: no readable pieces")
    index = index_sequences(style_run, sequences, {"library": library, "identity": identity})
    index.save(path)
    return index, path, True


# ------------------------------------------------------------------------------------------ searching


def top_k(embeddings: np.ndarray, query: np.ndarray, k: int, exclude: np.ndarray | None = None,
          ) -> tuple[np.ndarray, np.ndarray]:
    """Exact search: (indices, scores) of the k largest `embeddings @ query`, best first, skipping `exclude`."""
    scores = embeddings @ np.asarray(query, embeddings.dtype)
    if exclude is not None and len(exclude):
        scores[np.asarray(exclude)] = -np.inf
    n_valid = len(scores) - (0 if exclude is None else len(np.unique(exclude)))
    k = max(0, min(k, n_valid))
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = part[np.argsort(-scores[part], kind="stable")]
    return order, scores[order]


def profile(liked: np.ndarray, weights: np.ndarray | None = None, disliked: np.ndarray | None = None,
            dislike_weight: float = DEFAULT_DISLIKE_WEIGHT) -> np.ndarray:
    """Query vector q with q . x = weighted mean cos(x, liked) - dislike_weight * mean cos(x, disliked)."""
    liked = normalize_rows(np.atleast_2d(liked))
    weights = np.ones(len(liked)) if weights is None else np.asarray(weights, np.float64)
    if len(liked) == 0 or weights.shape != (len(liked),) or (weights <= 0).any():
        raise RecommendError("need at least one liked piece with a positive weight")
    query = (weights[:, None] * liked).sum(0) / weights.sum()
    if disliked is not None and len(disliked):
        query = query - dislike_weight * normalize_rows(np.atleast_2d(disliked)).mean(0)
    return query.astype(np.float32)


def play_count_weight(count: float) -> float:
    """Weight of a history entry: 1 + ln(count), so repeats count with diminishing returns."""
    return 1.0 + math.log(count)


@dataclasses.dataclass
class Recommendation:
    rank: int
    id: str
    path: str
    style: str
    composer: str
    title: str
    score: float


def recommend(index: LibraryIndex, liked: np.ndarray, *, weights: np.ndarray | None = None,
              disliked: np.ndarray | None = None, exclude_keys: Sequence[str] = (), k: int = 10,
              dislike_weight: float = DEFAULT_DISLIKE_WEIGHT) -> list[Recommendation]:
    """The k best library pieces for the profile, never one whose key is in `exclude_keys`."""
    if k < 1:
        raise RecommendError(f"-k must be >= 1, got {k}")
    exclude = index.positions(exclude_keys)
    query = profile(liked, weights, disliked, dislike_weight)
    indices, scores = top_k(index.embeddings, query, k, exclude)
    return [Recommendation(rank + 1, index.ids[i], index.keys[i].rsplit("#", 1)[0], index.styles[i],
                           index.composers[i], index.titles[i], float(s))
            for rank, (i, s) in enumerate(zip(indices, scores))]


# ------------------------------------------------------------------------------------------ history files


def parse_history(path: str | Path) -> list[tuple[Path, int, float]]:
    """A listening history -> [(file, tune, play count)]. One entry per line: a path, optionally `#N` for tune N
    of a tunebook (0 = every piece of the file), optionally followed by a play count (after a tab, comma or
    space). Lines starting with '#' are comments; relative paths are relative to the history file; repeats add up."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise RecommendError(f"{path}: cannot read listening history: {err}") from None
    counts: dict[tuple[Path, int], float] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry, count = line, 1.0
        for separator in ("\t", ",", " "):
            head, sep, tail = line.rpartition(separator)
            if sep and head.strip() and _is_number(tail.strip()):
                entry, count = head.strip().rstrip(",").strip(), float(tail.strip())
                break
        if not math.isfinite(count) or count <= 0:
            raise RecommendError(f"{path}:{number}: play count must be > 0, got {count:g}")
        name, hash_sign, tune_text = entry.rpartition("#")
        tune = int(tune_text) if hash_sign and tune_text.isdigit() and name else 0
        file = Path(name if tune else entry).expanduser()
        file = file if file.is_absolute() else path.parent / file
        counts[(file, tune)] = counts.get((file, tune), 0.0) + count
    if not counts:
        raise RecommendError(f"{path}: listening history has no entries")
    return [(file, tune, count) for (file, tune), count in counts.items()]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
