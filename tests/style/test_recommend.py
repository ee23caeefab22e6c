"""Recommendation: exact top-k, profiles with likes/dislikes, exclusion of liked pieces, history files, the
index file, and `musejax recommend` end to end with the tiny classifier of style_fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from musejax.style import recommend as rec
from musejax.cli import main
from style_fixtures import tiny_style_run


def random_index(n: int = 50, dim: int = 8, seed: int = 0) -> rec.LibraryIndex:
    embeddings = rec.normalize_rows(np.random.default_rng(seed).normal(size=(n, dim)))
    return rec.LibraryIndex(ids=[f"lib/p{i}" for i in range(n)], keys=[f"/lib/p{i}.mid#0" for i in range(n)],
                            styles=["a" if i % 2 else "b" for i in range(n)], composers=[""] * n,
                            titles=[f"piece {i}" for i in range(n)], embeddings=embeddings, meta={"library": "lib"})


def test_top_k_is_exact_and_skips_excluded():
    index = random_index(200)
    query = index.embeddings[5] + 0.3 * index.embeddings[9]
    order, scores = rec.top_k(index.embeddings, query, 10, exclude=np.array([5, 5, 17]))
    brute = [i for i in np.argsort(-(index.embeddings @ query)) if i not in (5, 17)][:10]
    np.testing.assert_array_equal(order, brute)
    assert (np.diff(scores) <= 0).all()
    assert len(rec.top_k(index.embeddings, query, 500)[0]) == 200
    assert len(rec.top_k(index.embeddings, query, 500, exclude=np.arange(190))[0]) == 10


def test_never_returns_liked_and_ranks_an_identical_copy_first():
    index = random_index()
    index.embeddings[30] = index.embeddings[3]  # p30 is a copy of p3 under another path
    results = rec.recommend(index, index.embeddings[3][None], exclude_keys=[index.keys[3]], k=49)
    assert "lib/p3" not in [r.id for r in results] and len(results) == 49
    assert results[0].id == "lib/p30" and results[0].score == pytest.approx(1.0, abs=1e-5)
    assert [r.rank for r in results[:3]] == [1, 2, 3]


def test_dislikes_push_away_and_play_counts_weigh():
    index = random_index()
    liked, disliked = index.embeddings[[1, 2]], index.embeddings[[4]]
    plain = rec.recommend(index, liked, exclude_keys=[index.keys[i] for i in (1, 2, 4)], k=5)
    steered = rec.recommend(index, liked, disliked=disliked, dislike_weight=2.0,
                            exclude_keys=[index.keys[i] for i in (1, 2, 4)], k=5)
    cos_to_disliked = lambda rs: np.mean([index.embeddings[int(r.id[5:])] @ disliked[0] for r in rs])
    assert cos_to_disliked(steered) < cos_to_disliked(plain)
    heavy = rec.profile(liked, weights=np.array([rec.play_count_weight(100), 1.0]))
    assert heavy @ liked[0] > heavy @ liked[1]
    assert rec.play_count_weight(1) == 1.0
    with pytest.raises(rec.RecommendError):
        rec.profile(np.zeros((0, 8)))


def test_history_file_parsing(tmp_path):
    (tmp_path / "music").mkdir()
    history = tmp_path / "plays.txt"
    history.write_text("# my plays\n\nmusic/a.mid\t12\nmusic/b c.mid, 3\n/abs/tunes.abc#4 2\nmusic/a.mid 3\n"
                       "music/d.mid\n", encoding="utf-8")
    entries = rec.parse_history(history)
    assert entries == [(tmp_path / "music/a.mid", 0, 15.0), (tmp_path / "music/b c.mid", 0, 3.0),
                       (Path("/abs/tunes.abc"), 4, 2.0),
                       (tmp_path / "music/d.mid", 0, 1.0)]
    bad = tmp_path / "bad.txt"
    bad.write_text("a.mid 5\nb.mid -2\n")
    with pytest.raises(rec.RecommendError, match=r"bad.txt:2: play count must be > 0"):
        rec.parse_history(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(rec.RecommendError, match="no entries"):
        rec.parse_history(empty)


def test_index_round_trip(tmp_path):
    index = random_index(7)
    loaded = rec.LibraryIndex.load(index.save(tmp_path / "sub" / "index.npz"))
    assert loaded.ids == index.ids and loaded.meta == index.meta
    np.testing.assert_array_equal(loaded.embeddings, index.embeddings)
    (tmp_path / "junk.npz").write_bytes(b"not an index")
    with pytest.raises(rec.RecommendError, match="junk.npz"):
        rec.LibraryIndex.load(tmp_path / "junk.npz")


def test_recommend_cli_end_to_end(tmp_path, capsys):
    run, corpus, cache = tiny_style_run()
    library = tmp_path / "library"
    shutil.copytree(corpus, library)
    copy = tmp_path / "liked_copy.mid"
    shutil.copy(library / "scales" / "s04.mid", copy)
    liked = library / "scales" / "s07.mid"
    base = ["recommend", "--model", str(run), "--library", str(library), "--cache-dir", str(cache),
            "--workers", "1", "--json"]
    capsys.readouterr()
    assert main(base + ["--liked", str(copy), str(liked), "-k", "30"]) == 0
    results = json.loads(capsys.readouterr().out)
    paths = [r["path"] for r in results]
    assert str(liked.resolve()) not in paths and len(results) == 23  # 24 pieces minus the liked one
    assert [r["rank"] for r in results] == list(range(1, 24))
    index_files = list((cache / "recommend").glob("library-*.npz"))
    assert len(index_files) == 1

    # one liked piece: its identical copy in the library ranks first (score ~1); the saved index is reused
    assert main(base + ["--liked", str(copy), "-k", "3"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["path"] == str((library / "scales" / "s04.mid").resolve())
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-4) and results[1]["score"] < results[0]["score"]
    disliked = library / "chords" / "c00.mid"
    assert main(base + ["--liked", str(copy), "-k", "30", "--disliked", str(disliked)]) == 0
    assert str(disliked.resolve()) not in [r["path"] for r in json.loads(capsys.readouterr().out)]

    history = tmp_path / "history.txt"
    history.write_text(f"{copy} 5\nlibrary/scales/s07.mid\n")
    assert main(["recommend", "--model", str(run), "--library", str(library), "--cache-dir", str(cache),
                 "--history", str(history), "-k", "4"]) == 0
    out = capsys.readouterr().out
    assert "(24 pieces; index" in out and "loaded) for 2 liked / 0 disliked" in out
    assert "s07.mid" not in out.split("disliked", 1)[1] and len(out.strip().splitlines()) == 5

    assert main(base + ["--liked", str(tmp_path / "nope.mid")]) == 2
    assert "nope.mid: liked file not found" in capsys.readouterr().err
    assert main(["recommend", "--library", str(library)]) == 2
