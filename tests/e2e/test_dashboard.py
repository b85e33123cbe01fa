"""`collapselab dashboard` as a real server in headless Chromium: every page renders its
charts and tables with no exception, and a generation recorded by another process while
a page is open appears on it without a reload."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest

from collapselab.store import import_run_dir, record_generation, record_run

STARTUP_S = 90
RENDER_S = 90


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, tiny_lm_run, tiny_qa_run, tiny_three_arm_run):
    """The dashboard on a database holding the tiny runs, live refresh every second."""
    db = f"sqlite:///{tmp_path / 'results.db'}"
    for run in (tiny_lm_run, tiny_qa_run, tiny_three_arm_run):
        import_run_dir(db, run.run_dir)
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "collapselab.cli", "dashboard", "--db", db, "--port", str(port),
                             "--refresh", "1"], stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the dashboard did not start:\n{(tmp_path / 'server.log').read_text()}") from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}", db
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    server_log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in server_log and "locked" not in server_log, server_log


def _show(driver, url: str, *, charts: int, tables: int, text: str | None = None) -> None:
    """Load `url` and wait until the script run is over and the page holds at least
    `charts` rendered charts and `tables` data grids (and `text`)."""
    from selenium.webdriver.common.by import By

    driver.get(url)
    deadline = time.monotonic() + RENDER_S
    while True:
        idle = not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        drawn = len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'))
        grids = len(driver.find_elements(By.CSS_SELECTOR, '[data-testid="stDataFrame"] canvas'))
        found = text is None or text in driver.find_element(By.TAG_NAME, "body").text
        if idle and drawn >= charts and grids >= tables and found:
            break
        exceptions = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
        assert not exceptions, exceptions[0].text
        assert time.monotonic() < deadline, f"{url}: {drawn} charts, {grids} tables after {RENDER_S} s"
        time.sleep(0.3)
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')


def test_every_page_in_a_browser_and_a_new_generation_appears_live(server, browser, tmp_path, tiny_lm_run,
                                                                      tiny_qa_run, tiny_three_arm_run):
    from unit.store.run_factory import make_run

    base, db = server
    browser.set_window_size(1400, 2400)  # tables render when in view: keep every one in view
    lm, qa, three = (r.run_dir.name for r in (tiny_lm_run, tiny_qa_run, tiny_three_arm_run))
    pages = [
        ("runs", {}, 0, 2),
        ("generations", {"run": lm}, 2, 1),  # the lm task's two main metrics
        ("question", {"run": qa}, 1, 1),
        ("question", {"run": lm}, 1, 1),  # a language-model run: one prompt's continuation per generation
        ("synthetic", {"run": lm, "order": "perplexity, highest first"}, 1, 1),
        ("refinery", {"run": three, "build": "C-synthetic / seed 0"}, 2, 4),
    ]
    for name, params, charts, tables in pages:
        _show(browser, f"{base}/?{urlencode({'page': name, **params})}", charts=charts, tables=tables)
        shot = tmp_path / f"{name}.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 20_000, name  # a drawn page, not a blank one

    # A run in progress: generation 0 recorded, the page open; another process records
    # generations 1-3 while the dashboard refreshes on its own.
    run_dir = make_run(tmp_path / "live-runs", run_id="live", arms=("replace", "accumulate"), generations=4, examples=50)
    record_run(db, run_dir)
    for arm in ("replace", "accumulate"):
        record_generation(db, run_dir, arm, 0, 0)
    _show(browser, f"{base}/?page=generations&run=live", charts=1, tables=1, text="generations 0 to 0")
    browser.execute_script("window.collapselabMarker = 'same page'")  # a reload would drop it
    writer = subprocess.run(
        [sys.executable, "-c", (
            "import sys, time; from pathlib import Path; from collapselab.store import record_generation\n"
            "for g in (1, 2, 3):\n"
            "    for arm in ('replace', 'accumulate'):\n"
            "        record_generation(sys.argv[1], Path(sys.argv[2]), arm, 0, g)\n"
            "    time.sleep(0.5)\n")
         , db, str(run_dir)], capture_output=True, text=True, timeout=120)
    assert writer.returncode == 0, writer.stderr
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + RENDER_S
    while "generations 0 to 3" not in browser.find_element(By.TAG_NAME, "body").text:
        assert time.monotonic() < deadline, "the new generations never appeared"
        time.sleep(0.5)
    assert browser.execute_script("return window.collapselabMarker") == "same page"  # no reload
    assert "run=live" in browser.current_url  # the selection stayed
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    browser.save_screenshot(str(tmp_path / "live.png"))
    assert Path(tmp_path / "live.png").stat().st_size > 20_000
