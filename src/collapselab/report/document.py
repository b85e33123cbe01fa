"""A report as a list of blocks, rendered once as Markdown and once as self-contained HTML.

Both renderings come from the same blocks, so report.md and report.html never disagree.
Figures are PNG files beside report.md (`figures/*.png`) and base64 data URIs in the HTML.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(slots=True)
class Heading:
    text: str
    level: int = 2


@dataclass(slots=True)
class Para:
    text: str


@dataclass(slots=True)
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str | None = None


@dataclass(slots=True)
class Figure:
    path: Path  # a PNG file
    caption: str


@dataclass(slots=True)
class Code:
    text: str
    summary: str | None = None  # HTML: a collapsed <details> block with this summary


@dataclass
class Document:
    title: str
    blocks: list[Heading | Para | Table | Figure | Code] = field(default_factory=list)

    def add(self, *blocks: Heading | Para | Table | Figure | Code) -> None:
        self.blocks.extend(blocks)

    # ------------------------------------------------------------ markdown

    def markdown(self, base: Path) -> str:
        out = [f"# {self.title}", ""]
        for b in self.blocks:
            if isinstance(b, Heading):
                out += [f"{'#' * b.level} {b.text}", ""]
            elif isinstance(b, Para):
                out += [b.text, ""]
            elif isinstance(b, Table):
                if b.caption:
                    out += [f"*{b.caption}*", ""]
                out.append("| " + " | ".join(_md_cell(h) for h in b.header) + " |")
                out.append("|" + "---|" * len(b.header))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
                out.append("")
            elif isinstance(b, Figure):
                out += [f"![{b.caption}]({b.path.relative_to(base).as_posix()})", "", f"*{b.caption}*", ""]
            else:
                if b.summary:
                    out += [f"*{b.summary}*", ""]
                out += ["```", b.text.rstrip(), "```", ""]
        return "\n".join(out)

    # ------------------------------------------------------------ html

    def html(self) -> str:
        body = [f"<h1>{_e(self.title)}</h1>"]
        for b in self.blocks:
            if isinstance(b, Heading):
                body.append(f'<h{b.level} id="{_anchor(b.text)}">{_e(b.text)}</h{b.level}>')
            elif isinstance(b, Para):
                body.append(f"<p>{_inline(b.text)}</p>")
            elif isinstance(b, Table):
                cap = f"<caption>{_inline(b.caption)}</caption>" if b.caption else ""
                head = "".join(f"<th>{_inline(h)}</th>" for h in b.header)
                rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in b.rows)
                body.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
            elif isinstance(b, Figure):
                data = base64.b64encode(b.path.read_bytes()).decode()
                body.append(f'<figure><img alt="{_e(b.caption)}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{_inline(b.caption)}</figcaption></figure>")
            else:
                pre = f"<pre>{_e(b.text)}</pre>"
                body.append(f"<details><summary>{_e(b.summary)}</summary>{pre}</details>" if b.summary else pre)
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(self.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }} caption {{ text-align: left; font-style: italic; padding: 0.3em 0; }}
img {{ max-width: 100%; }} figcaption {{ font-style: italic; color: #555; }}
pre {{ background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }}
code {{ background: #f3f3f3; padding: 0 0.2em; }}
</style></head><body>
{chr(10).join(body)}
</body></html>
"""


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def _e(text: str | None) -> str:
    return html.escape(text or "")


def _inline(text: str | None) -> str:
    """Escape, then render the two inline marks the report uses: `code` and **bold**."""
    out = _e(text)
    parts = out.split("`")
    out = "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))
    parts = out.split("**")
    out = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
    return out.replace("\n", "<br>")


def _anchor(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
