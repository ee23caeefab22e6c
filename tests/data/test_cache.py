"""Cache file formats (round trip, atomicity, corruption) and the dataset cache (hit, invalidation, recovery)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from note_seq import NoteSequence

from musejax.data import atomic, cache


def _sequence(index: int) -> NoteSequence:
    ns = NoteSequence(id=f"tiny/piece{index}.mid", filename=f"/x/piece{index}.mid", collection_name="tiny")
    for step in range(5 + index):
        ns.notes.add(pitch=60 + step % 12, start_time=0.5 * step, end_time=0.5 * step + 0.5, velocity=80)
    ns.total_time = 0.5 * (5 + index)
    ns.sequence_metadata.genre.append("test")
    return ns


# ---------------------------------------------------------------- formats


def test_sequence_stream_round_trip(tmp_path: Path) -> None:
    sequences = [_sequence(i) for i in range(4)]
    path = tmp_path / "sub" / "c.seqs"
    cache.write_sequences(path, sequences, {"kind": "sequences", "fingerprint": "abc"})
    assert cache.read_sequences_header(path)["fingerprint"] == "abc"
    meta, back = cache.read_sequences(path)
    assert meta["format_version"] == cache.CACHE_FORMAT_VERSION and meta["n_sequences"] == 4
    assert back == sequences
    assert [p.name for p in path.parent.iterdir()] == ["c.seqs"]  # no temp file left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_sequence_stream_detects_damage(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "c.seqs"
    cache.write_sequences(path, [_sequence(i) for i in range(3)], {})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-7]
    elif damage == "flip":
        data[-20] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(b"\x00garbage" * 10)
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(cache.CorruptCacheError, match="c.seqs"):
        cache.read_sequences(path)


def test_array_file_round_trip_and_empty(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.random((n, 2, 5)) < 0.3 for n in (3, 0, 7)]
    path = tmp_path / "a.npz"
    cache.write_arrays(path, arrays, ["a", "b", "c"], ["x", None, "y"], {"kind": "encoded"},
                       [(12, 16), (0, 0), (0, 12)])
    meta, back, ids, styles, bars = cache.read_arrays(path)
    assert meta["kind"] == "encoded" and ids == ["a", "b", "c"] and styles == ["x", None, "y"]
    assert all(a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b) for a, b in zip(arrays, back))
    assert bars.tolist() == [[12, 16], [0, 0], [0, 12]]
    cache.write_arrays(path, arrays, ["a", "b", "c"], ["x", None, "y"], {})  # no bars given: unknown
    assert cache.read_arrays(path)[4].tolist() == [[0, 0]] * 3
    cache.write_arrays(path, [], [], [], {})
    meta, back, ids, styles, bars = cache.read_arrays(path)
    assert (back, ids, styles, bars.shape) == ([], [], [], (0, 2))


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_array_file_detects_damage(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "a.npz"
    cache.write_arrays(path, [np.arange(100, dtype=np.int32)] * 3, ["a", "b", "c"], [None] * 3, {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"PK\x03\x04" + b"\x00" * 50)
    with pytest.raises(cache.CorruptCacheError, match="a.npz"):
        cache.read_arrays(path)


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic.atomic_write(path) as handle:
        handle.write(b"half-written")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_atomic_write_keeps_the_mode_of_the_file_it_replaces(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic.write_bytes_atomically(path, b"new")
    assert path.read_bytes() == b"new" and path.stat().st_mode & 0o777 == 0o640


def test_default_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MUSEJAX_CACHE", str(tmp_path / "c"))
    assert cache.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("MUSEJAX_CACHE")
    assert cache.default_cache_dir() == Path.home() / ".cache" / "musejax"


# ---------------------------------------------------------------- the dataset cache


def write_tiny_corpus(folder: Path, n_pieces: int = 6, broken: bool = True) -> Path:
    """A folder of short MIDI files (C major scales at different offsets) plus, optionally, one corrupt file."""
    from note_seq import sequence_proto_to_midi_file

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(n_pieces):
        ns = NoteSequence(ticks_per_quarter=220)
        ns.tempos.add(qpm=120.0)
        for step in range(8 + index):
            pitch = 55 + index + [0, 2, 4, 5, 7, 9, 11, 12][step % 8]
            ns.notes.add(pitch=pitch, start_time=0.25 * step, end_time=0.25 * step + 0.25, velocity=90)
        ns.total_time = 0.25 * (8 + index)
        sequence_proto_to_midi_file(ns, str(folder / f"piece{index}.mid"))
    if broken:
        (folder / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06 this is not a MIDI file")
    return folder


@pytest.fixture()
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A tiny corpus, an empty cache dir and a counter of the dataset build's calls to read_corpus (the parser;
    not replaced)."""
    from musejax.data import datasets

    calls = []
    real_read_corpus = datasets.read_corpus

    def counting_read_corpus(*args, **kwargs):
        calls.append(args[0])
        return real_read_corpus(*args, **kwargs)

    monkeypatch.setattr(datasets, "read_corpus", counting_read_corpus)
    return {"corpus": str(write_tiny_corpus(tmp_path / "tiny")), "cache": tmp_path / "cache", "calls": calls}


def _build(tiny: dict, encoding="pianoroll"):
    from musejax.data.datasets import build_dataset

    return build_dataset(tiny["corpus"], encoding, cache_dir=tiny["cache"], workers=1, progress=False)


def _arrays(dataset) -> dict[str, np.ndarray]:
    return {p.id: p.array for pieces in dataset.splits.values() for p in pieces}


def test_second_build_loads_the_cache_without_parsing(tiny: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", cache.CacheWarning)  # a missing cache is not corrupt
        cold = _build(tiny)
    assert list(cold.cache_status.values()) == ["parsed"] and len(tiny["calls"]) == 1
    warm = _build(tiny)
    assert list(warm.cache_status.values()) == ["encoded"] and len(tiny["calls"]) == 1  # no parse
    assert cold.styles == warm.styles and cold.report.to_dict() == warm.report.to_dict()
    assert [p.id for p in warm.splits["train"]] == [p.id for p in cold.splits["train"]]
    a, b = _arrays(cold), _arrays(warm)
    assert len(a) == 6 and a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert [Path(f.path).name for f in warm.report.failures] == ["broken.mid"]  # failures survive the cache
    files = sorted(p.relative_to(tiny["cache"]).parts[0] for p in tiny["cache"].rglob("*") if p.is_file())
    assert files == ["encoded", "sequences"]


def test_changed_source_file_invalidates_the_cache(tiny: dict) -> None:
    before = _arrays(_build(tiny))
    piece = Path(tiny["corpus"]) / "piece0.mid"
    from note_seq import sequence_proto_to_midi_file

    ns = NoteSequence(ticks_per_quarter=220)
    ns.tempos.add(qpm=120.0)
    for step in range(30):
        ns.notes.add(pitch=72, start_time=0.25 * step, end_time=0.25 * step + 0.25, velocity=90)
    ns.total_time = 7.5
    sequence_proto_to_midi_file(ns, str(piece))
    stat = piece.stat()
    os.utime(piece, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = _build(tiny)
    assert list(after.cache_status.values()) == ["parsed"] and len(tiny["calls"]) == 2
    changed = [k for k in before if not np.array_equal(before[k], _arrays(after)[k])]
    assert len(changed) == 1 and changed[0].endswith("piece0.mid")


def test_touching_a_file_or_adding_one_invalidates(tiny: dict) -> None:
    _build(tiny)
    piece = Path(tiny["corpus"]) / "piece1.mid"
    stat = piece.stat()
    os.utime(piece, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5 * 10**9))
    assert list(_build(tiny).cache_status.values()) == ["parsed"]
    (Path(tiny["corpus"]) / "extra.mid").write_bytes(piece.read_bytes())
    dataset = _build(tiny)
    assert list(dataset.cache_status.values()) == ["parsed"] and len(_arrays(dataset)) == 7


def test_new_encoding_options_reuse_parsed_sequences(tiny: dict) -> None:
    from musejax.data.encodings import get_encoding

    coarse = _build(tiny, get_encoding("pianoroll", steps_per_quarter=2))
    fine = _build(tiny, get_encoding("pianoroll", steps_per_quarter=4))
    assert list(fine.cache_status.values()) == ["sequences"] and len(tiny["calls"]) == 1
    a, b = _arrays(coarse), _arrays(fine)
    assert all(2 * len(a[k]) <= len(b[k]) + 1 for k in a)
    assert list(_build(tiny, get_encoding("pianoroll", steps_per_quarter=2)).cache_status.values()) == ["encoded"]


def test_cache_format_version_change_invalidates(tiny: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    _build(tiny)
    monkeypatch.setattr(cache, "CACHE_FORMAT_VERSION", cache.CACHE_FORMAT_VERSION + 1)
    assert list(_build(tiny).cache_status.values()) == ["parsed"]


@pytest.mark.parametrize("which", ["encoded", "sequences", "both"])
def test_corrupt_cache_file_is_rebuilt_with_a_warning(tiny: dict, which: str) -> None:
    from musejax.data.encodings import get_encoding

    # a corrupt sequence file only matters when the arrays must be re-encoded: use new options then
    reference = _arrays(_build(tiny))
    encoding = get_encoding("pianoroll", steps_per_quarter=2) if which == "sequences" else "pianoroll"
    for kind in (["encoded", "sequences"] if which == "both" else [which]):
        for path in (tiny["cache"] / kind).iterdir():
            path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(cache.CacheWarning, match=r"\.(npz|seqs): .*(checksum|unreadable|inconsistent)"):
        rebuilt = _build(tiny, encoding)
    assert list(rebuilt.cache_status.values()) == ["sequences" if which == "encoded" else "parsed"]
    again = _arrays(rebuilt)
    assert reference.keys() == again.keys()
    if which != "sequences":
        assert all(np.array_equal(reference[k], again[k]) for k in reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error", cache.CacheWarning)
        assert list(_build(tiny, encoding).cache_status.values()) == ["encoded"]


def test_two_corpora_with_the_same_name_are_refused(tmp_path: Path) -> None:
    from musejax.data.datasets import build_dataset

    first = write_tiny_corpus(tmp_path / "a" / "midi", n_pieces=1, broken=False)
    second = write_tiny_corpus(tmp_path / "b" / "midi", n_pieces=1, broken=False)
    with pytest.raises(ValueError, match="two corpora are named 'midi'"):
        build_dataset([str(first), str(second)], "pianoroll", cache_dir=tmp_path / "c", workers=1, progress=False)
    assert not (tmp_path / "c").exists()  # refused before any parsing or caching
