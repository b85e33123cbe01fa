"""Retake the README's screenshots in headless Chromium (Debian's chromium and
chromium-driver, as the e2e tests drive it):

    docs/dashboard-generations.png   the dashboard's Generations page of a recursive run
    docs/dashboard-question.png      the dashboard's Question page (one test question, or
                                     one prompt of a language-model run, per generation)
    docs/serve-compare.png           the chat page comparing two generations of one run

    python scripts/screenshots.py                        # tiny runs built here (about 3 min on 2 cores)
    python scripts/screenshots.py --runs RUN_DIR...      # finished runs instead (e.g. a quickstart)
    python scripts/screenshots.py --only serve --serve-run RUN_DIR

With no `--runs`, the tiny lm and qa runs of the test suite (tests/tiny_runs.py) are built in
a temporary folder: tiny random models, so their texts are not language, but every chart,
legend and table is the real thing. Generations shows the first recursive run; Question
shows the first question-answering run (else the first run's prompts); the chat page
serves the first run with several generations.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]  # tiny runs and the browser of the test suite

WINDOW = (1280, 900)
RENDER_S = 180


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "collapselab.cli", *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def _wait(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + RENDER_S
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{url} did not come up:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def tiny_runs(home: Path) -> list[Path]:
    """The test suite's tiny lm run (replace vs accumulate, 2 generations, 2 seeds) and qa run."""
    import tiny_runs as tr

    home.mkdir(parents=True, exist_ok=True)
    os.environ.update(COLLAPSELAB_DB=f"sqlite:///{home / 'collapselab.db'}", COLLAPSELAB_CACHE=str(home / "cache"), HF_HOME=str(home / "hf"), HF_HUB_OFFLINE="1",
                      HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return [tr.lm_run(home).run_dir, tr.qa_run(home).run_dir]


def _rendered(driver, charts: int) -> None:
    """Wait until the Streamlit script run is over and `charts` charts are drawn."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + RENDER_S
    while True:
        idle = not driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        drawn = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg')
        errors = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"], [data-testid="stAlertContentError"]')
        if errors:
            raise SystemExit(f"the page shows an error: {errors[0].text}")
        if idle and len(drawn) >= charts:
            time.sleep(1.5)  # the charts' enter transition
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"{driver.current_url}: {len(drawn)} of {charts} charts after {RENDER_S} s")
        time.sleep(0.3)


def dashboard(runs: list[Path], out: Path, work: Path, only: set[str]) -> None:
    from browser import chromium

    from collapselab.results import load_run
    from collapselab.store import import_run_dir

    db = f"sqlite:///{work / 'screenshots.db'}"
    loaded = [load_run(r) for r in runs]
    for r in runs:
        import_run_dir(db, r)
    recursive = next(r for r in loaded if r.recursive)
    question = next((r for r in loaded if r.task.answers_questions), loaded[0])
    port = _port()
    log = work / "dashboard.log"
    proc = _cli(["dashboard", "--db", db, "--port", str(port), "--refresh", "0"], log)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(f"{base}/_stcore/health", proc, log)
        with chromium() as driver:
            driver.set_window_size(*WINDOW)
            shots = [("generations", {"run": recursive.manifest["run_id"]}, len(recursive.task.main_metrics[:2]), "dashboard-generations.png"),
                     ("question", {"run": question.manifest["run_id"]}, 1, "dashboard-question.png")]
            for page, params, charts, name in shots:
                if page in only:
                    driver.get(f"{base}/?{urlencode({'page': page, **params})}")
                    _rendered(driver, charts)
                    driver.save_screenshot(str(out / name))
                    print(f"wrote {out / name}")
    finally:
        _stop(proc)


def serve(run: Path, out: Path, work: Path, message: str, max_tokens: int) -> None:
    """The chat page in compare mode: generation 0 and the last generation of the run's first arm."""
    from browser import chromium
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    port = _port()
    log = work / "serve.log"
    proc = _cli(["serve", "--run", str(run), "--generation", "0", "--port", str(port)], log)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(f"{url}/health", proc, log)
        with chromium() as driver:
            driver.set_window_size(*WINDOW)
            driver.get(url)
            wait = WebDriverWait(driver, RENDER_S)
            wait.until(lambda d: len(Select(d.find_element(By.ID, "model-a")).options) > 1)
            first = Select(driver.find_element(By.ID, "model-a")).first_selected_option.get_attribute("value")  # "arm/gen-0"
            arm = first.split("/")[0]
            last = [o.get_attribute("value") for o in Select(driver.find_element(By.ID, "model-a")).options
                    if o.get_attribute("value").startswith(f"{arm}/gen-")][-1]
            driver.find_element(By.ID, "max_tokens").clear()
            driver.find_element(By.ID, "max_tokens").send_keys(str(max_tokens))
            driver.find_element(By.ID, "compare-toggle").click()
            Select(driver.find_element(By.ID, "model-b")).select_by_value(last)
            driver.find_element(By.ID, "message").send_keys(message)
            driver.find_element(By.ID, "send").click()
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#log-a .reply[data-done]")
                       and d.find_elements(By.CSS_SELECTOR, "#log-b .reply[data-done]"))
            driver.save_screenshot(str(out / "serve-compare.png"))
            print(f"wrote {out / 'serve-compare.png'}")
    finally:
        _stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, help="finished run directories (default: build the tiny runs)")
    parser.add_argument("--serve-run", type=Path, help="the run the chat page serves (default: the first recursive run)")
    parser.add_argument("--only", nargs="+", choices=["generations", "question", "serve"], default=["generations", "question", "serve"])
    parser.add_argument("--message", help="the chat page's message (default: a short one for the tiny runs' 64 positions)")
    parser.add_argument("--max-tokens", type=int, help="the chat replies' length (default 48, 16 for the tiny runs)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="collapselab-screenshots-") as tmp:
        work = Path(tmp)
        runs = args.runs or tiny_runs(work / "tiny")
        only = set(args.only)
        if only & {"generations", "question"}:
            dashboard(runs, args.out, work, only)
        if "serve" in only:
            tiny = not args.runs and not args.serve_run
            message = args.message or ("A small bird" if tiny else "Once upon a time, a little girl found a key in the garden.")
            serve(args.serve_run or runs[0], args.out, work, message, args.max_tokens or (16 if tiny else 48))


if __name__ == "__main__":
    main()
