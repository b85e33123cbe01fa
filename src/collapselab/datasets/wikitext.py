"""WikiText-2 raw (`wiki.{train,valid,test}.raw`): one record per paragraph, titled by its article."""

from __future__ import annotations

import re
from pathlib import Path

from collapselab.records import Record

from .files import read_text

# ` = Title = ` (level 1) vs ` = = Section = = ` (level 2+): one `=` on each side.
_HEADING = re.compile(r"^ = [^=].* = $")


def read_wikitext(path: Path) -> list[Record]:
    """Read a WikiText raw file into `lm` records, one per paragraph line.

    Each record's text is the paragraph line as is (raw: leading space, `@-@` and all),
    preceded by the heading lines right before it (joined with newlines), so the
    records together hold every non-blank line of the file and no record is a lone
    heading. A heading with no paragraph before the next article stays a record of its own.

    Args:
        path: A raw WikiText file: one paragraph or heading per line, blank lines are " ".

    Returns:
        Records with id `<file name>:<line>` (1-based line of its first heading or paragraph) and title
        the article (the level-1 heading above it; None before the first one).
    """
    lines = read_text(path).split("\n")
    records = []
    title: str | None = None
    pending: list[str] = []  # headings waiting for the paragraph they introduce
    start = 0  # 1-based line of the record being built: its first heading or its paragraph
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not pending:
            start = i
        if _is_article_heading(lines, i - 1):
            if pending:  # an empty section at the end of the previous article
                records.append(Record(id=f"{path.name}:{start}", title=title, text="\n".join(pending)))
            title, pending, start = line.strip()[2:-2].strip(), [line], i
        elif line.lstrip().startswith("= ") and line.rstrip().endswith(" ="):
            pending.append(line)  # section heading
        else:
            records.append(Record(id=f"{path.name}:{start}", title=title, text="\n".join([*pending, line])))
            pending = []
    if pending:
        records.append(Record(id=f"{path.name}:{start}", title=title, text="\n".join(pending)))
    return records


def _is_article_heading(lines: list[str], i: int) -> bool:
    # Table legends such as ` = Played , W = ` also look like level-1 headings; real
    # headings stand between blank lines. This gives 600 / 60 / 60 articles in
    # train / valid / test, the published WikiText-2 counts.
    return (
        _HEADING.match(lines[i]) is not None
        and (i == 0 or not lines[i - 1].strip())
        and (i + 1 < len(lines) and not lines[i + 1].strip())
    )
