"""On-disk formats of the dataset cache and of `musejax data build` outputs.

Two kinds of file, both written atomically (temp file in the same folder, then `os.replace`), so an
interrupted build never leaves a half-written file under the final name:
- a sequence stream (`.seqs`): parsed NoteSequences of one corpus as length-prefixed protobufs after a
  JSON header (format version, cache key, CRC-32 of the body);
- an array file (`.npz`): the encoded pieces of one corpus concatenated along axis 0 with an offsets
  table, piece ids and styles, and a JSON header; loads without pickle.
A file that cannot be read back exactly raises `CorruptCacheError`; callers warn and rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from musejax.data.atomic import atomic_write
from musejax.data import readers

if TYPE_CHECKING:
    from note_seq import NoteSequence

    from musejax.data.corpora import Corpus

# Bump when the layout of a cache file or what the readers/encoders put into it changes.
CACHE_FORMAT_VERSION = 2  # 2: encoded pieces keep their bars (phase, steps per bar)

_SEQUENCE_MAGIC = b"MUSEJAX-SEQUENCES\n"
_LENGTH = struct.Struct("<I")


class CorruptCacheError(ValueError):
    """A cache file exists but cannot be read back (truncated, wrong checksum, bad content)."""


class CacheWarning(UserWarning):
    """Emitted when a corrupt cache file is discarded and rebuilt."""


def default_cache_dir() -> Path:
    """`$MUSEJAX_CACHE` if set, else `~/.cache/musejax`."""
    env = os.environ.get("MUSEJAX_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "musejax"


def stable_hash(value: Any) -> str:
    """SHA-1 hex digest of a JSON-serialisable value (keys sorted), for cache keys."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def safe_name(name: str) -> str:
    """A file-name-safe version of a corpus name (for readable cache file names)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:60] or "corpus"


# ---------------------------------------------------------------- sequence streams


def write_sequences(path: Path, sequences: Sequence[NoteSequence], header: dict[str, Any]) -> None:
    """Write NoteSequences as a length-prefixed protobuf stream after a JSON header."""
    blobs = [seq.SerializeToString() for seq in sequences]
    body = b"".join(_LENGTH.pack(len(blob)) + blob for blob in blobs)
    meta = dict(header, format_version=CACHE_FORMAT_VERSION, n_sequences=len(blobs),
                body_bytes=len(body), body_crc32=zlib.crc32(body))
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    with atomic_write(path) as handle:
        handle.write(_SEQUENCE_MAGIC + _LENGTH.pack(len(meta_bytes)) + meta_bytes)
        handle.write(body)


def read_sequences_header(path: Path) -> dict[str, Any]:
    """The JSON header of a sequence stream (cheap: does not read the body)."""
    with open(path, "rb") as handle:
        return _parse_sequence_header(path, handle.read(len(_SEQUENCE_MAGIC) + _LENGTH.size), handle)[0]


def _parse_sequence_header(path: Path, start: bytes, handle: IO[bytes] | None = None,
                           data: bytes | None = None) -> tuple[dict[str, Any], int]:
    if not start.startswith(_SEQUENCE_MAGIC) or len(start) < len(_SEQUENCE_MAGIC) + _LENGTH.size:
        raise CorruptCacheError(f"{path}: not a musejax sequence cache (bad magic)")
    (meta_len,) = _LENGTH.unpack_from(start, len(_SEQUENCE_MAGIC))
    begin = len(_SEQUENCE_MAGIC) + _LENGTH.size
    meta_bytes = handle.read(meta_len) if handle is not None else data[begin:begin + meta_len]
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptCacheError(f"{path}: unreadable header ({err})") from None
    if not isinstance(meta, dict):
        raise CorruptCacheError(f"{path}: header is not an object")
    return meta, begin + meta_len


def read_sequences(path: Path) -> tuple[dict[str, Any], list[NoteSequence]]:
    """Read back (header, sequences); raises CorruptCacheError on any inconsistency."""
    from note_seq import NoteSequence

    data = Path(path).read_bytes()
    meta, pos = _parse_sequence_header(path, data[: len(_SEQUENCE_MAGIC) + _LENGTH.size], data=data)
    body = memoryview(data)[pos:]
    if len(body) != meta.get("body_bytes") or zlib.crc32(body) != meta.get("body_crc32"):
        raise CorruptCacheError(f"{path}: body length or checksum mismatch (truncated or damaged)")
    sequences: list[NoteSequence] = []
    offset = 0
    try:
        while offset < len(body):
            (size,) = _LENGTH.unpack_from(body, offset)
            offset += _LENGTH.size
            sequences.append(NoteSequence.FromString(bytes(body[offset:offset + size])))
            offset += size
    except Exception as err:  # struct.error, protobuf DecodeError
        raise CorruptCacheError(f"{path}: bad record {len(sequences)} ({err})") from None
    if offset != len(body) or len(sequences) != meta.get("n_sequences"):
        raise CorruptCacheError(f"{path}: expected {meta.get('n_sequences')} sequences, found {len(sequences)}")
    return meta, sequences


# ---------------------------------------------------------------- array files


def write_arrays(path: Path, arrays: Sequence[np.ndarray], ids: Sequence[str],
                 styles: Sequence[str | None], header: dict[str, Any],
                 bars: Sequence[tuple[int, int]] | None = None) -> None:
    """Write pieces as one concatenated array + offsets (+ ids, styles, bars, JSON header) in an .npz; `bars`:
    (phase, bar steps) per piece (`quantize.piece_bar`; None: unknown, (0, 0))."""
    bars = np.zeros((len(arrays), 2), np.int32) if bars is None else np.asarray(bars, np.int32).reshape(-1, 2)
    if not (len(arrays) == len(ids) == len(styles) == len(bars)):
        raise ValueError(f"{path}: {len(arrays)} arrays, {len(ids)} ids, {len(styles)} styles, {len(bars)} bars")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if arrays:
        data = np.concatenate([np.asarray(a) for a in arrays], axis=0)
    else:
        data = np.zeros((0,), dtype=np.int32)
    meta = dict(header, format_version=CACHE_FORMAT_VERSION, n_pieces=len(arrays),
                data_shape=list(data.shape), data_dtype=str(data.dtype))
    with atomic_write(path) as handle:
        np.savez(handle, data=data, offsets=offsets,
                 ids=np.array(list(ids), dtype=np.str_),
                 styles=np.array(["" if s is None else s for s in styles], dtype=np.str_), bars=bars,
                 header=np.array(json.dumps(meta, sort_keys=True)))


def read_arrays(path: Path) -> tuple[dict[str, Any], list[np.ndarray], list[str], list[str | None], np.ndarray]:
    """Read back (header, arrays, ids, styles, bars (N, 2)); arrays are views into one buffer; a file written
    before bars were kept gives (0, 0) (unknown) for each."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["header"][()]))
            data, offsets = npz["data"], npz["offsets"]
            ids, styles = npz["ids"].tolist(), npz["styles"].tolist()
            bars = npz["bars"] if "bars" in npz.files else np.zeros((len(ids), 2), np.int32)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise CorruptCacheError(f"{path}: unreadable array file ({type(err).__name__}: {err})") from None
    n = meta.get("n_pieces") if isinstance(meta, dict) else None
    consistent = (
        isinstance(n, int) and offsets.ndim == 1 and len(offsets) == n + 1 and len(ids) == n == len(styles)
        and list(data.shape) == meta.get("data_shape") and str(data.dtype) == meta.get("data_dtype")
        and offsets[0] == 0 and offsets[-1] == len(data) and bool(np.all(np.diff(offsets) >= 0))
        and bars.shape == (n, 2)
    )
    if not consistent:
        raise CorruptCacheError(f"{path}: inconsistent array file (header, offsets and data disagree)")
    arrays = [data[offsets[i]:offsets[i + 1]] for i in range(n)]
    return meta, arrays, ids, [s or None for s in styles], bars.astype(np.int32)


# ---------------------------------------------------------------- cache identity


def corpus_identity(corpus: Corpus) -> dict[str, Any]:
    """What a corpus cache entry depends on: name, root, file fingerprint, style labels, reader version."""

    # Styles come from the labels file, which the fingerprint of the files does not see.
    styles = stable_hash(sorted((str(f.rel), f.style) for f in corpus.files))
    return {"corpus": corpus.name, "root": str(corpus.root), "fingerprint": corpus.fingerprint(),
            "styles": styles, "reader_version": getattr(readers, "READER_VERSION", None)}


def sequences_entry(corpus: Corpus, root: Path) -> tuple[Path, dict[str, Any]]:
    """(file, expected header) of the parsed-sequence cache of a corpus under the cache root."""
    identity = corpus_identity(corpus)
    slot = stable_hash([identity["corpus"], identity["root"]])[:16]
    path = root / "sequences" / f"{safe_name(corpus.name)}-{slot}.seqs"
    return path, {"kind": "sequences", **identity}


def encoded_entry(corpus: Corpus, encoder: Any, root: Path) -> tuple[Path, dict[str, Any]]:
    """(file, expected header) of a corpus's encoded-array cache for one encoding's options."""
    identity = corpus_identity(corpus)
    options = {"name": encoder.name, **encoder.options()}
    slot = stable_hash([identity["corpus"], identity["root"], options])[:16]
    path = root / "encoded" / f"{safe_name(corpus.name)}-{encoder.name}-{slot}.npz"
    return path, {"kind": "encoded", "encoding": options, **identity}


def matches_header(meta: dict[str, Any], expected: dict[str, Any]) -> bool:
    """True when a cache file's header has this format version and every expected key."""
    if meta.get("format_version") != CACHE_FORMAT_VERSION:
        return False
    return all(meta.get(key) == value for key, value in expected.items())


def json_roundtrip(value: dict[str, Any]) -> dict[str, Any]:
    """Options as they will read back from a JSON header (tuples become lists)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))
