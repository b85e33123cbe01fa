"""The learner on real WikiText-2 with `collapselab serve --learner` running: the server picks up
each new checkpoint while requests keep succeeding; SIGTERM stops the learner after the step
in progress; a learner killed with SIGKILL and restarted continues from its last checkpoint
with no article repeated or skipped."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml
from serve_process import collapselab, free_port, stop, wait_healthy
from tiny import save_chat_model

pytestmark = pytest.mark.e2e


def _config(tmp_path: Path, data: Path, base: Path) -> Path:
    cfg = {
        "learner": {"name": "wiki", "output_dir": str(tmp_path / "runs"), "docs_per_step": 2, "steps": 50, "max_doc_tokens": 96, "keep_checkpoints": None, "self_feed": 0.5, "self_feed_tokens": 8},
        "source": {"kind": "wikitext2", "path": str(data / "wikitext2"), "split": "train"},
        "model": {"name": str(base)},
        "training": {"lr": 0.002, "seq_len": 48, "batch_tokens": 512},
        "evaluation": {"held_out": {"kind": "wikitext2", "path": str(data / "wikitext2"), "split": "test"}, "tokens": 192, "seq_len": 48, "continuations": 2, "prompt_tokens": 8, "continuation_tokens": 8},
    }
    path = tmp_path / "learn.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _wait(predicate, proc, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _latest(run_dir: Path) -> str | None:
    p = run_dir / "checkpoints" / "latest"
    return p.read_text().strip() if p.is_file() else None


def test_server_follows_the_learner_and_a_killed_learner_resumes_exactly(tmp_path, shared_data):
    base = save_chat_model(tmp_path / "base", chat=True, seed=5)
    config = _config(tmp_path, shared_data, base)
    db = f"sqlite:///{tmp_path / 'lab.db'}"
    learn_log = tmp_path / "learn.log"
    learner = collapselab(["learn", str(config), "--db", db], learn_log)
    server = None
    try:
        _wait(lambda: list((tmp_path / "runs" / "wiki").glob("*/checkpoints/latest")), learner, learn_log)
        run_dir = next((tmp_path / "runs" / "wiki").glob("*/checkpoints/latest")).parents[1]
        port, serve_log = free_port(), tmp_path / "serve.log"
        server = collapselab(["serve", "--learner", str(run_dir), "--port", str(port)], serve_log)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server, serve_log)

        answers: list[tuple[int, int | None]] = []
        done = threading.Event()

        def keep_asking() -> None:  # a client chatting the whole time
            with httpx.Client(timeout=60) as client:
                while not done.is_set():
                    r = client.post(f"{url}/chat", json={"message": "Tell me about the river", "max_length": 6})
                    answers.append((r.status_code, r.json().get("generation")))

        asker = threading.Thread(target=keep_asking)
        asker.start()
        # the server has answered from two checkpoints while the learner goes on
        _wait(lambda: len({g for _, g in answers}) >= 2, learner, learn_log)
        learner.send_signal(signal.SIGTERM)  # stops after the step in progress, long before step 50
        learner.wait(300)
        assert learner.returncode == 0, learn_log.read_text()[-3000:]
        assert "SIGTERM received" in learn_log.read_text()
        last = int(_latest(run_dir).removeprefix("step-"))
        assert 1 <= last < 50 and (run_dir / "learner" / "seed-0" / f"gen-{last}" / "DONE").is_file()
        # the server switches to the newest checkpoint on its own
        _wait(lambda: answers and answers[-1][1] == last, server, serve_log, timeout=120)
        done.set()
        asker.join(60)
        assert all(status == 200 for status, _ in answers), answers
        seen = [g for _, g in answers]
        assert seen == sorted(seen)  # it moved forward, never back

        # SIGKILL mid-run, then restart: the articles trained on are the stream's, once each.
        total = last + 2
        more = ["--set", f"learner.steps={total}"]
        learner = collapselab(["learn", str(config), "--db", db, *more], learn_log)
        _wait(lambda: _latest(run_dir) == f"step-{last + 1}", learner, learn_log)
        os.kill(learner.pid, signal.SIGKILL)
        learner.wait(30)
        resumed = collapselab(["learn", str(config), "--db", db, *more], tmp_path / "learn2.log")
        resumed.wait(300)
        assert resumed.returncode == 0, (tmp_path / "learn2.log").read_text()[-3000:]
        assert _latest(run_dir) == f"step-{total}"
        trained = []
        for k in range(1, total + 1):
            trained += json.loads((run_dir / "checkpoints" / f"step-{k}" / "state.json").read_text())["documents"]
        spooled = [json.loads(line)["id"] for line in (run_dir / "stream.jsonl").read_text().splitlines()]
        from collapselab.learner.sources import WikiText2Articles

        order = [d.id for d in WikiText2Articles(shared_data / "wikitext2", "train", seed=0).documents(0)]
        assert trained == spooled[: len(trained)] == order[:total]  # 1 human article a step, in order
        assert (run_dir / "learner" / "seed-0" / f"gen-{total}" / "DONE").is_file()
        r = httpx.post(f"{url}/chat", json={"message": "hello", "max_length": 4}, timeout=60)
        assert r.status_code == 200
    finally:
        for p in (learner, server):
            if p is not None:
                stop(p)
