"""A tiny document model rendered to Markdown and to a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Code", "Details", "Document", "Heading", "Image", "Para", "Table"]


@dataclass(frozen=True)
class Heading:
    """A section heading; ``anchor`` becomes its HTML ``id``."""

    text: str
    level: int = 2
    anchor: str | None = None


@dataclass(frozen=True)
class Para:
    """A paragraph; ``**bold**`` and ``code`` spans are rendered in both formats."""

    text: str


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Image:
    path: Path
    caption: str


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""


@dataclass(frozen=True)
class Details:
    """A collapsed block (HTML ``<details>``): ``summary`` is shown, ``elements`` on a click."""

    summary: str
    elements: Sequence[Heading | Para | Table | Image | Code]


Element = Heading | Para | Table | Image | Code | Details


def _inline_html(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#222}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}figure{margin:1.25rem 0}img{width:100%;max-width:60rem;height:auto}
figcaption{font-size:.9rem;color:#444}summary{cursor:pointer;font-weight:600;margin:1rem 0}
pre{background:#f6f6f6;padding:.75rem;overflow:auto;font-size:.8rem}code{background:#f3f3f3;padding:0 .2rem}
"""


@dataclass
class Document:
    """Elements in order; :meth:`to_markdown` links images, :meth:`to_html` embeds them."""

    title: str
    elements: list[Element] = field(default_factory=list)

    def add(self, *elements: Element) -> None:
        self.elements.extend(elements)

    def to_markdown(self, base: Path) -> str:
        """Markdown with image paths relative to ``base`` (the directory of the .md file)."""
        return "\n".join([f"# {self.title}", "", *_markdown(self.elements, base)])

    def to_html(self) -> str:
        """One HTML file, images embedded as base64 PNG data."""
        body = [f"<h1>{html.escape(self.title)}</h1>", *_html(self.elements)]
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(self.title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )


def _markdown(elements: Sequence[Element], base: Path) -> list[str]:
    out: list[str] = []
    for e in elements:
        if isinstance(e, Heading):
            out += ["#" * e.level + " " + e.text, ""]
        elif isinstance(e, Para):
            out += [e.text, ""]
        elif isinstance(e, Table):
            out.append("| " + " | ".join(e.headers) + " |")
            out.append("| " + " | ".join("---" for _ in e.headers) + " |")
            out += ["| " + " | ".join(row) + " |" for row in e.rows]
            out.append("")
        elif isinstance(e, Image):
            out += [f"![{e.caption}]({Path(e.path).relative_to(base).as_posix()})", "", f"*{e.caption}*", ""]
        elif isinstance(e, Code):
            out += [f"```{e.language}", e.text.rstrip("\n"), "```", ""]
        elif isinstance(e, Details):
            out += [
                "<details>",
                f"<summary>{html.escape(e.summary)}</summary>",
                "",
                *_markdown(e.elements, base),
                "</details>",
                "",
            ]
    return out


def _html(elements: Sequence[Element]) -> list[str]:
    body: list[str] = []
    for e in elements:
        if isinstance(e, Heading):
            anchor = f' id="{html.escape(e.anchor)}"' if e.anchor else ""
            body.append(f"<h{e.level}{anchor}>{html.escape(e.text)}</h{e.level}>")
        elif isinstance(e, Para):
            body.append(f"<p>{_inline_html(e.text)}</p>")
        elif isinstance(e, Table):
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in e.headers)
            rows = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>" for row in e.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(e, Image):
            data = base64.b64encode(Path(e.path).read_bytes()).decode("ascii")
            body.append(
                f'<figure><img alt="{html.escape(e.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{_inline_html(e.caption)}</figcaption></figure>"
            )
        elif isinstance(e, Code):
            body.append(f"<pre><code>{html.escape(e.text)}</code></pre>")
        elif isinstance(e, Details):
            body += ["<details>", f"<summary>{html.escape(e.summary)}</summary>", *_html(e.elements), "</details>"]
    return body
