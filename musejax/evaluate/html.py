"""report.html: the evaluation report as one page that opens from the file system (no server, no network).

The tables are those of report.md (converted line by line), the plots are embedded as base64 PNGs, and each
generated piece shown gets its piano-roll and, where a WAV was rendered, an audio player. Piece images and
audio are files referenced by paths relative to the page; nothing is fetched from elsewhere (CSS inline).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import os
import re
from pathlib import Path
from typing import Any, Sequence

from note_seq import NoteSequence

from musejax.data.atomic import write_bytes_atomically
from musejax.midi.plots import plot_pianoroll

HTML_FILE = "report.html"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f3f7; }
img { max-width: 100%; }
.piece { border-top: 1px solid #ddd; padding: 0.8em 0; }
.piece h3 { margin: 0 0 0.4em 0; font-size: 1em; }
audio { display: block; margin: 0.3em 0; }
"""


@dataclasses.dataclass(frozen=True)
class PieceMedia:
    """A generated piece shown in the page: its name, piano-roll PNG and WAV (None where there is none)."""

    name: str
    image: Path | None
    audio: Path | None = None


def _inline(text: str) -> str:
    """Escape a Markdown cell/line, keeping `code` spans."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text, quote=False))


def markdown_to_html(markdown: str) -> str:
    """The subset of Markdown report.md uses (headings, bullet lists, tables, paragraphs) as HTML."""
    out: list[str] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].rstrip()
        if line.startswith("|"):
            rows = []
            while index < len(lines) and lines[index].startswith("|"):
                cells = [c.strip() for c in lines[index].strip().strip("|").split("|")]
                if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                    rows.append(cells)
                index += 1
            head, *body = rows
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr></thead><tbody>"
                       + "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body)
                       + "</tbody></table>")
            continue
        if line.startswith("- "):
            items = []
            while index < len(lines) and lines[index].startswith("- "):
                items.append(f"<li>{_inline(lines[index][2:])}</li>")
                index += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        heading = re.match(r"(#{1,4}) (.*)", line)
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif line:
            out.append(f"<p>{_inline(line)}</p>")
        index += 1
    return "\n".join(out)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _relative(path: Path, out_dir: Path) -> str:
    """A URL path from the page to `path` (which must exist: a broken link is a bug here, not in the browser)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: referenced by {out_dir / HTML_FILE} but missing")
    relative = os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())
    return "/".join(html.escape(part) for part in Path(relative).parts)


def html_page(markdown: str, out_dir: str | Path, plots: dict[str, Path] | None = None,
              pieces: Sequence[PieceMedia] = (), title: str = "musejax evaluation") -> str:
    """The page: report.md's content as HTML, `plots` embedded, then each piece's player and piano-roll."""
    out_dir = Path(out_dir)
    parts = [markdown_to_html(markdown)]
    if plots:
        parts.append("<h2>Plots</h2>")
        for name, path in plots.items():
            parts.append(f'<figure><img alt="{html.escape(name)}" src="{_data_uri(path)}">'
                         f"<figcaption>{html.escape(name.replace('_', ' '))}</figcaption></figure>")
    if pieces:
        heard = sum(piece.audio is not None for piece in pieces)
        parts.append(f"<h2>Generated pieces</h2><p>{len(pieces)} shown"
                     + (f", {heard} with audio" if heard else " (no audio: evaluate with --audio to listen)")
                     + ".</p>")
        for piece in pieces:
            block = [f'<div class="piece"><h3>{html.escape(piece.name)}</h3>']
            if piece.audio is not None:
                block.append(f'<audio controls preload="none" src="{_relative(piece.audio, out_dir)}"></audio>')
            if piece.image is not None:
                block.append(f'<img loading="lazy" alt="piano-roll of {html.escape(piece.name)}" '
                             f'src="{_relative(piece.image, out_dir)}">')
            parts.append("".join(block) + "</div>")
    body = "\n".join(parts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def write_html(markdown: str, out_dir: str | Path, plots: dict[str, Path] | None = None,
               pieces: Sequence[PieceMedia] = (), title: str = "musejax evaluation") -> Path:
    """Write `<out_dir>/report.html` (see `html_page`) atomically; returns its path."""
    path = Path(out_dir) / HTML_FILE
    write_bytes_atomically(path, html_page(markdown, out_dir, plots, pieces, title).encode("utf-8"))
    return path


def write_piece_media(sequences: Sequence[NoteSequence], media_dir: str | Path, *, audio: Any = None,
                      limit: int = 16) -> list[PieceMedia]:
    """Piano-roll PNGs (and WAVs with an `audio` renderer, musejax.midi.audio) of the first `limit` pieces,
    as piece_000.png / .wav ... in `media_dir`."""

    media_dir = Path(media_dir)
    media = []
    for index, sequence in enumerate(sequences[:limit]):
        stem = media_dir / f"piece_{index:03d}"
        name = sequence.id or Path(sequence.filename).name or stem.name
        image = plot_pianoroll(sequence, stem.with_suffix(".png"), title=name)
        wav = audio.render(sequence, stem.with_suffix(".wav")) if audio is not None else None
        media.append(PieceMedia(name, image, wav))
    return media
