"""Corpora: user directories (labels, bad files, parallel build), bundled corpora, `musejax data info`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from child_env import child_env
from conftest import write_midi
from musejax import cli
from musejax.data import corpora
from musejax.data.corpora import BUNDLED_CORPORA, read_corpus, resolve_corpus
from musejax.data.readers import read_file


@pytest.fixture
def user_corpus(tmp_path: Path, music_files) -> Path:
    """jazz/: midi + musicxml; folk/: tunebook (2 good, 1 broken, 1 silent tune) + krn; plus bad files."""
    root = tmp_path / "mine"
    (root / "jazz").mkdir(parents=True)
    (root / "folk" / "deep").mkdir(parents=True)
    shutil.copy(music_files["midi"], root / "jazz" / "a.mid")
    shutil.copy(music_files["musicxml"], root / "jazz" / "b.musicxml")
    shutil.copy(music_files["abc"], root / "folk" / "book.abc")
    shutil.copy(music_files["humdrum"], root / "folk" / "deep" / "c.krn")
    write_midi(root / "top.mid", pitches=(70, 72))
    (root / "jazz" / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (root / "folk" / "empty.krn").write_bytes(b"")
    (root / "README.txt").write_text("about this corpus")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "x.mid").write_bytes(b"ignored")
    return root


def test_user_corpus_build_reports_every_skip(user_corpus):
    corpus = resolve_corpus(str(user_corpus))
    assert corpus.name == "mine" and corpus.unsupported == ["README.txt"]
    assert [f.rel for f in corpus.files] == ["folk/book.abc", "folk/deep/c.krn", "folk/empty.krn",
                                             "jazz/a.mid", "jazz/b.musicxml", "jazz/broken.mid", "top.mid"]
    assert corpus.n_pieces == 4 + 6  # the tunebook's 4 tunes + 6 single-piece files
    sequences, report = read_corpus(corpus, workers=1, progress=False)
    assert [ns.id for ns in sequences] == ["mine/folk/book.abc#1", "mine/folk/book.abc#2", "mine/folk/deep/c.krn",
                                           "mine/jazz/a.mid", "mine/jazz/b.musicxml", "mine/top.mid"]
    assert report.n_files == 8 and report.n_loaded == 6 and report.n_failed == 5
    assert report.counts_by_reason() == {"parse-error": 1, "no-notes": 1, "empty": 1, "corrupt-midi": 1,
                                         "unsupported-format": 1}
    assert {Path(f.path).name for f in report.failures} == {"book.abc", "empty.krn", "broken.mid", "README.txt"}
    summary = report.summary()
    assert "6 pieces loaded, 5 skipped" in summary and "corrupt-midi" in summary and "README.txt" in summary
    assert json.loads(json.dumps(report.to_dict()))["counts_by_reason"]["empty"] == 1
    assert all(not ns.sequence_metadata.genre for ns in sequences)


def test_parallel_build_matches_serial(user_corpus):
    corpus = resolve_corpus(str(user_corpus), labels="folder")
    serial, serial_report = read_corpus(corpus, workers=1, progress=False)
    parallel, parallel_report = read_corpus(corpus, workers=2, progress=False)
    assert [ns.SerializeToString() for ns in serial] == [ns.SerializeToString() for ns in parallel]
    assert serial_report.failures == parallel_report.failures


def test_labels_from_folder(user_corpus):
    corpus = resolve_corpus(str(user_corpus), labels="folder")
    assert {f.rel: f.style for f in corpus.files}["folk/deep/c.krn"] == "folk"
    assert corpus.styles() == {"folk": 6, "jazz": 3, None: 1}
    sequences, _ = read_corpus(corpus, workers=1, progress=False)
    assert {ns.id: list(ns.sequence_metadata.genre) for ns in sequences}["mine/jazz/a.mid"] == ["jazz"]


def test_labels_from_csv_and_json(user_corpus, tmp_path):
    csv_file = user_corpus / "labels.csv"  # inside the corpus: must not count as an unsupported file
    csv_file.write_text("path,label\njazz/a.mid,bebop\nfolk,ballad\n")
    corpus = resolve_corpus(str(user_corpus), labels=str(csv_file))
    styles = {f.rel: f.style for f in corpus.files}
    assert styles["jazz/a.mid"] == "bebop" and styles["jazz/b.musicxml"] is None
    assert styles["folk/deep/c.krn"] == "ballad" and corpus.unsupported == ["README.txt"]
    json_file = tmp_path / "labels.json"
    json_file.write_text(json.dumps({"folk/deep": "chorale", "folk": "ballad", "top.mid": "solo"}))
    styles = {f.rel: f.style for f in resolve_corpus(str(user_corpus), labels=str(json_file)).files}
    assert styles["folk/deep/c.krn"] == "chorale" and styles["folk/book.abc"] == "ballad"
    assert styles["top.mid"] == "solo"


def test_bad_label_files(user_corpus, tmp_path):
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"jaz/a.mid": "bebop"}))
    with pytest.raises(ValueError, match="match no file.*jaz/a.mid"):
        resolve_corpus(str(user_corpus), labels=str(typo))
    bad_row = tmp_path / "bad.csv"
    bad_row.write_text("jazz/a.mid\n")
    with pytest.raises(ValueError, match="row 1"):
        resolve_corpus(str(user_corpus), labels=str(bad_row))
    with pytest.raises(ValueError, match="not found"):
        resolve_corpus(str(user_corpus), labels=str(tmp_path / "absent.csv"))
    wrong = tmp_path / "labels.yaml"
    wrong.write_text("a: b")
    with pytest.raises(ValueError, match=r"\.csv or \.json"):
        resolve_corpus(str(user_corpus), labels=str(wrong))


def test_corpus_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus 'bach-chorale'.*bach-chorales"):
        resolve_corpus("bach-chorale")
    with pytest.raises(ValueError, match="no such file or directory"):
        resolve_corpus(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty corpus"):
        resolve_corpus(str(tmp_path / "empty"))
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="empty corpus.*1 other files"):
        resolve_corpus(str(tmp_path / "docs"))
    with pytest.raises(ValueError, match="bundled corpus has its own style"):
        resolve_corpus("palestrina", labels="folder")


def test_single_file_corpus_and_fingerprint(music_files):
    corpus = resolve_corpus(str(music_files["abc"]))
    assert [f.rel for f in corpus.files] == ["book.abc"] and corpus.files[0].tunes == (1, 2, 5, 6)
    before = corpus.fingerprint()
    assert before == resolve_corpus(str(music_files["abc"])).fingerprint()
    music_files["abc"].write_text(music_files["abc"].read_text() + "\nX:9\nL:1/8\nK:C\nCDEF|\n")
    assert resolve_corpus(str(music_files["abc"])).fingerprint() != before


def test_bundled_corpora_selection():
    counts = {name: resolve_corpus(name) for name in BUNDLED_CORPORA}
    assert len(counts["bach-chorales"].files) == 365
    assert all(f.rel.endswith((".mxl", ".xml")) for f in counts["bach-chorales"].files)
    assert "bwv846.mxl" not in {f.rel for f in counts["bach-chorales"].files}  # a prelude, not a chorale
    assert len(counts["palestrina"].files) == 1318 and len(counts["monteverdi"].files) == 48
    assert counts["essen-chinese"].n_pieces == 1224
    essen = {f.rel for f in counts["essen-german"].files}
    assert "erk10.abc" in essen and not essen & {"han1.abc", "irl.abc", "lux.abc", "test0.abc"}
    oneills = counts["oneills-irish"]
    numbers = [n for f in oneills.files for n in f.tunes]
    assert len(numbers) == len(set(numbers)) == oneills.n_pieces > 1800
    for name, corpus in counts.items():
        assert {f.style for f in corpus.files} == {BUNDLED_CORPORA[name].style}


def test_real_files_of_every_bundled_corpus():
    """A few real files (or tunes) from each bundled corpus load, with ids and labels."""
    for name, spec in BUNDLED_CORPORA.items():
        corpus = resolve_corpus(name)
        picked = corpus.files[:: max(1, len(corpus.files) // 2)][:2]
        loaded = 0
        for f in picked:
            tunes = f.tunes[:3] if f.tunes else None
            sequences, failures = read_file(f.path, style=f.style, corpus=name, root=corpus.root, tunes=tunes)
            loaded += len(sequences)
            for ns in sequences:
                assert ns.id.startswith(f"{name}/{f.rel}") and list(ns.sequence_metadata.genre) == [spec.style]
                assert len(ns.notes) > 0 and ns.total_time > 0
        assert loaded >= len(picked), name
    chorale = read_file(resolve_corpus("bach-chorales").files[0].path)[0][0]
    assert [p.name for p in chorale.part_infos] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert {n.part for n in chorale.notes} == {0, 1, 2, 3}


def test_data_info_command(capsys, user_corpus):
    assert cli.main(["data", "info"]) == 0
    out = capsys.readouterr().out
    for name, spec in BUNDLED_CORPORA.items():
        assert name in out and spec.style in out
    assert "1224" in out  # essen-chinese tunes, counted from X: lines
    assert cli.main(["data", "info", str(user_corpus), "--labels", "folder"]) == 0
    out = capsys.readouterr().out
    assert "pieces       10" in out and "jazz" in out and "unsupported" in out
    assert cli.main(["data", "info", "no-such-corpus"]) == 2
    assert "unknown corpus" in capsys.readouterr().err


def test_abc_tasks_are_chunked(monkeypatch, music_files):
    monkeypatch.setattr(corpora, "ABC_TUNES_PER_TASK", 3)
    corpus = resolve_corpus(str(music_files["abc"]))
    tasks = corpora._tasks(corpus, budget_seconds=10.0)
    assert sorted(t.tunes for t in tasks) == [(1, 2, 5), (6,)]
    sequences, report = read_corpus(corpus, workers=1, progress=False)
    assert [ns.id for ns in sequences] == ["book/book.abc#1", "book/book.abc#2"] or \
        [ns.id.split("/", 1)[1] for ns in sequences] == ["book.abc#1", "book.abc#2"]
    assert report.counts_by_reason() == {"parse-error": 1, "no-notes": 1}


def test_the_parse_pool_does_not_fork_once_jax_has_started():
    import jax

    jax.devices()  # the suite's JAX is running: its runtime threads make fork unsafe
    assert corpora._jax_started()
    assert corpora._pool_context().get_start_method() == "forkserver"


@pytest.mark.slow  # 37 s; the in-process check of the start method above stays in the default suite
def test_the_first_command_builds_a_cold_corpus_without_a_fork_warning(tmp_path):
    """The start of the README's first command (JAX starts, then the corpus is parsed by a process pool) on a
    small folder corpus with an empty cache: no `os.fork() ... JAX is multithreaded` warning, and no warning
    from the parse workers' imports either."""
    if corpora._default_workers() < 2:
        pytest.skip("one core: the corpus is parsed in-process, no pool to check")
    for i in range(8):
        write_midi(tmp_path / "corpus" / f"tune{i}.mid", pitches=[60 + i, 62, 64, 65, 67, 69, 71, 72] * 4,
                   seconds_per_note=0.25)
    env = child_env(drop=("PYTHONWARNINGS",), MUSEJAX_CACHE=str(tmp_path / "cache"),
                    JAX_PLATFORMS="cpu")  # the warning filters a user has
    proc = subprocess.run([str(Path(sys.executable).parent / "musejax"), "train", "--config", "lm:tiny", "--workdir",
                           str(tmp_path / "run"), "--no-progress", f"--config.data.corpus={tmp_path / 'corpus'}",
                           "--config.data.valid_fraction=0.25", "--config.data.test_fraction=0.25",
                           "--config.train.steps=1", "--config.sample.n=0"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert "cpu device(s)" in proc.stdout, proc.stdout + proc.stderr  # JAX started before the parse
    assert "os.fork()" not in proc.stderr, proc.stderr[-3000:]
    assert "Warning" not in proc.stderr, proc.stderr[-3000:]  # nor any other warning (the parse workers' imports)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
