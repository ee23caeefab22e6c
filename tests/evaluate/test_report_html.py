"""report.html: written by `musejax evaluate`, self-contained (every file it references exists, no URL
elsewhere), with a player and a piano-roll per piece under --audio; rendered by headless Chromium where present."""

from __future__ import annotations

import html.parser
import shutil
import subprocess
from pathlib import Path

import pytest

from musejax.evaluate.html import markdown_to_html
from test_evaluate_command import evaluate, folders  # noqa: F401  (fixture: folders of samples and reference)


class References(html.parser.HTMLParser):
    """Every src/href of the page, by tag, and the text of its table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.links.append((tag, value))
        self._in_cell = tag in ("td", "th")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data.strip())


def parse(path: Path) -> References:
    parser = References()
    parser.feed(path.read_text())
    return parser


@pytest.fixture
def report(folders, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr("musejax.midi.audio.SOUNDFONT_PATHS", ())
    monkeypatch.delenv("MUSEJAX_SOUNDFONT", raising=False)
    tmp_path, samples, reference, _ = folders
    code, out, err = evaluate(capsys, "--samples", samples, "--reference", reference, "--cache-dir",
                              tmp_path / "cache", "--no-progress", "--audio", "--sample-rate", "8000")
    assert code == 0, err
    page = samples / "evaluation" / "report.html"
    assert f"python -m webbrowser {page.resolve().as_uri()}" in out
    return page


def test_every_image_and_audio_file_the_page_references_exists_and_nothing_is_remote(report):
    links = parse(report).links
    players = [src for tag, src in links if tag == "audio"]
    rolls = [src for tag, src in links if tag == "img" and not src.startswith("data:")]
    embedded = [src for tag, src in links if tag == "img" and src.startswith("data:image/png;base64,")]
    assert len(players) == len(rolls) == 5  # the five readable samples, each with a player and a piano-roll
    assert len(embedded) == 3  # the three plots, inside the page
    for tag, src in links:
        assert not src.startswith(("http:", "https:", "//")), src
        if not src.startswith("data:"):
            target = report.parent / src
            assert target.is_file() and target.stat().st_size > 100, src
            assert target.suffix == (".wav" if tag == "audio" else ".png")
    assert (report.parent / players[0]).read_bytes()[:4] == b"RIFF"


def test_the_page_holds_the_markdown_reports_tables(report):
    cells = parse(report).cells
    assert "polyphony" in cells and "pitch_class_histogram" in cells and "copy.mid" in cells
    markdown = (report.parent / "report.md").read_text()
    assert markdown.count("\n|---") == report.read_text().count("<table>")


def test_markdown_tables_headings_and_lists_convert_and_escape():
    page = markdown_to_html("# Title `x<y`\n\n- one\n- two & three\n\n| a | b |\n|---|---|\n| 1 | <2> |\n")
    assert page == ("<h1>Title <code>x&lt;y</code></h1>\n<ul><li>one</li><li>two &amp; three</li></ul>\n"
                    "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>&lt;2&gt;</td>"
                    "</tr></tbody></table>")


CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
                 if shutil.which(name)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium or Chrome on PATH")
def test_headless_chromium_renders_the_page(report):
    done = subprocess.run([CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom", report.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Per-piece metrics" in done.stdout and "<audio" in done.stdout and "polyphony" in done.stdout
