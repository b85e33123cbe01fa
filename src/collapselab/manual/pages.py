"""The documentation pages generated from the code, by their path in the checkout.
`python scripts/gen_reference.py` writes them; tests/unit/manual keeps the committed ones
equal to this output, so a changed field, command or docstring without a regenerated page
fails the suite (and a stale page cannot reach the site)."""

from __future__ import annotations

from collections.abc import Callable


def generated_pages() -> dict[str, Callable[[], str]]:
    """path relative to the checkout -> the function that writes the page's text."""
    from collapselab.manual.api import api_markdown
    from collapselab.manual.cli import cli_page
    from collapselab.manual.config import config_page

    return {"docs/api.md": api_markdown, "docs/reference/config.md": config_page, "docs/reference/cli.md": cli_page}
