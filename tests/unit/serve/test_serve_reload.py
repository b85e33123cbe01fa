"""Hot reload: the server follows a learner's `latest` checkpoint; a request decoding during
the switch finishes on the model it started with; a checkpoint that fails to load is logged
and the old model keeps serving."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from tiny import chat_model, chat_tokenizer

from collapselab.learner.checkpoints import checkpoint_dir, publish

from .conftest import config

ASK = {"message": "hello there", "temperature": 0, "max_length": 6}


def _publish(root, step: int) -> None:
    tok = chat_tokenizer(chat=True)
    publish(chat_model(tok, seed=100 + step), tok, root, step, {"cursor": step})


def test_server_switches_checkpoints_without_failing_requests(client_for, tmp_path, caplog, monkeypatch):
    learner = tmp_path / "learner-run"
    c = client_for(config(source={"learner": str(learner)}, batching={"reload_interval_s": 60}))
    service = c.app.state.service
    r = c.post("/chat", json=ASK)
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_not_ready"  # nothing published yet

    _publish(learner, 1)
    assert service.pool.refresh()
    assert c.post("/chat", json=ASK).json()["generation"] == 1

    # A request is decoding (held) when step 2 is published and swapped in: it finishes on step 1.
    import collapselab.generation

    release, started = threading.Event(), threading.Event()
    real = collapselab.generation.generate

    def held(*args, **kwargs):  # the batch has its model and is decoding
        started.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(collapselab.generation, "generate", held)
    with ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(c.post, "/chat", json=ASK)
        assert started.wait(30)
        _publish(learner, 2)
        assert service.pool.refresh()
        monkeypatch.setattr(collapselab.generation, "generate", real)
        release.set()
        done = in_flight.result()
        assert done.status_code == 200 and done.json()["generation"] == 1
    assert c.post("/chat", json=ASK).json()["generation"] == 2
    assert [m["id"] for m in c.get("/v1/models").json()["data"]] == ["latest", "step-1", "step-2"]

    # A broken step 3: logged, step 2 keeps answering.
    broken = checkpoint_dir(learner, 3)
    broken.mkdir(parents=True)
    (broken / "config.json").write_text("{ not json")
    (learner / "checkpoints" / "latest").write_text("step-3\n")
    with caplog.at_level(logging.ERROR, logger="collapselab.serve"):
        assert not service.pool.refresh()
    assert "step-3 failed to load" in caplog.text
    assert c.post("/chat", json=ASK).json()["generation"] == 2
    assert "collapselab_model_reloads_total 2" in c.get("/metrics").text


def test_the_watcher_picks_up_a_new_checkpoint_by_itself(client_for, tmp_path):
    learner = tmp_path / "learner-run"
    _publish(learner, 1)
    c = client_for(config(source={"learner": str(learner)}, batching={"reload_interval_s": 0.1}))
    assert c.post("/chat", json=ASK).json()["generation"] == 1
    _publish(learner, 2)
    for _ in range(100):
        if c.post("/chat", json=ASK).json()["generation"] == 2:
            break
        threading.Event().wait(0.05)
    assert c.post("/chat", json=ASK).json()["generation"] == 2
