"""The documentation site builds in MkDocs' strict mode (a broken link or anchor, a page left
out of the nav, a nav entry without its page: each is a warning, and strict fails on any), and
the README stays the short front page that links into it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_site_builds_in_strict_mode(tmp_path):
    # no -q: mkdocs counts the warnings it logs, and -q would hide them from the count
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    html = (tmp_path / "site" / "reference" / "config" / "index.html").read_text()
    assert "Config reference" in html and "<code>max_new_tokens</code>" in html  # the generated page is on the site


def test_readme_is_short_and_links_into_the_site():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) < 200
    # the two commands, exactly (scripts/quickstart.sh and scripts/test.sh; .ci/run runs the second)
    assert "bash scripts/quickstart.sh" in readme and "bash scripts/test.sh" in readme
    targets = re.findall(r"\]\((docs/[^)#]+)(?:#[^)]*)?\)", readme)
    assert len(targets) >= 10, targets
    missing = [t for t in targets if not (REPO / t).is_file()]
    assert not missing, missing
