"""Write the documentation pages generated from the code (docs/reference/config.md,
docs/reference/cli.md, docs/api.md); `--check` only says which are stale (exit 1).

    python scripts/gen_reference.py           # after changing a config field, a command or a docstring
    python scripts/gen_reference.py --check
"""

from __future__ import annotations

import sys
from pathlib import Path

from collapselab.manual.pages import generated_pages

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    check = argv == ["--check"]
    if argv and not check:
        print("usage: python scripts/gen_reference.py [--check]", file=sys.stderr)
        return 2
    stale = []
    for rel, page in generated_pages().items():
        path, text = REPO / rel, page()
        if path.exists() and path.read_text() == text:
            continue
        stale.append(rel)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    verb = "stale" if check else "written"
    print("\n".join(f"{verb}: {rel}" for rel in stale) or "all generated pages are current")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
