"""e2e fixtures: a headless browser (see browser.py)."""

from __future__ import annotations

import pytest
from browser import chromium  # noqa: E402  (tests/e2e is on sys.path under pytest's rootdir-relative import)


@pytest.fixture
def browser():
    """A headless Chromium WebDriver; screenshots go wherever the test saves them."""
    with chromium() as driver:
        yield driver
