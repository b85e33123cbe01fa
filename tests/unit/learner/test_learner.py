"""The continuous learner on a tiny model: steps publish checkpoints and record evaluations
as a run; self-fed documents carry provenance; a restart continues at the checkpoint's
cursor with no document repeated or skipped; `stop` ends it after the step in progress."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from tiny import save_chat_model

from collapselab.learner import load_learner_config, run_learner
from collapselab.learner.checkpoints import latest, read_state
from collapselab.learner.config import learner_config_from_dict
from collapselab.learner.loop import Spool
from collapselab.learner.sources import Document, JsonlDocuments, TextFolder
from collapselab.records import read_records

WORDS = "the cat sat on the mat and the dog sat on the log a model trained on its own output forgets".split()


def _jsonl(path: Path, n: int, prefix: str, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"{prefix}{i}", "text": " ".join(rng.choice(WORDS) for _ in range(40))}) + "\n")
    return path


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory) -> Path:
    return save_chat_model(tmp_path_factory.mktemp("learner") / "base", chat=True, seed=3)


def _config(tmp_path: Path, base: Path, **learner) -> dict:
    return {
        "learner": {"name": "tiny", "output_dir": str(tmp_path / "runs"), "docs_per_step": 4, "steps": 2, "self_feed": 0.25, "self_feed_tokens": 6, "keep_checkpoints": None, **learner},
        "source": {"kind": "jsonl", "path": str(_jsonl(tmp_path / "docs.jsonl", 14, "d", 0))},
        "model": {"name": str(base), "lora": {"r": 4}},
        "training": {"lr": 0.001, "seq_len": 32, "batch_tokens": 256},
        "evaluation": {"held_out": {"kind": "jsonl", "path": str(_jsonl(tmp_path / "held.jsonl", 4, "h", 1))}, "tokens": 128, "seq_len": 32, "continuations": 3, "prompt_tokens": 6, "continuation_tokens": 6},
    }


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lab.db'}"


def _trained_ids(run_dir: Path, steps: int) -> list[str]:
    ids = []
    for k in range(1, steps + 1):
        ids += read_state(run_dir / "checkpoints" / f"step-{k}")["documents"]
    return ids


def test_steps_publish_record_and_resume_without_repeating_a_document(tmp_path, tiny_base):
    cfg = learner_config_from_dict(_config(tmp_path, tiny_base))
    run_dir = run_learner(cfg, db_url=_db(tmp_path), report=lambda s: None)
    assert latest(run_dir).name == "step-2"
    # 4 documents a step, a quarter of them the model's own: 3 human documents a step
    assert _trained_ids(run_dir, 2) == [f"jsonl:d{i}" for i in range(6)]
    train = read_records(run_dir / "learner" / "seed-0" / "gen-1" / "train.parquet")
    assert [r.source for r in train] == ["human"] * 3 + ["synthetic"]
    assert train[3].parent_id == "jsonl:d0" and train[3].generation == 0 and train[3].text

    # Killed after publishing step 3 but before its evaluation: the rerun evaluates it,
    # then goes on from its cursor.
    cfg4 = learner_config_from_dict(_config(tmp_path, tiny_base, steps=4))
    state = {"cursor": 9, "documents": ["jsonl:d6", "jsonl:d7", "jsonl:d8"], "self_fed": [], "train": {"losses": [1.0], "steps": 1, "tokens": 1, "seconds": 0.1}}
    from collapselab.learner.checkpoints import publish
    from collapselab.models.loading import load_model

    step2 = load_model(run_dir / "checkpoints" / "step-2", for_training=False)
    Spool(run_dir / "stream.jsonl", JsonlDocuments(Path(cfg.source.path))).take(0, 9)
    publish(step2.model, step2.tokenizer, run_dir, 3, state)
    again = run_learner(cfg4, db_url=_db(tmp_path), report=lambda s: None)
    assert again == run_dir and latest(run_dir).name == "step-4"
    assert (run_dir / "learner" / "seed-0" / "gen-3" / "DONE").is_file()
    ids = _trained_ids(run_dir, 4)
    assert ids == [f"jsonl:d{i}" for i in range(12)] and len(set(ids)) == len(ids)

    # the store holds a learner run: one arm, steps 0..4 as generations, each with perplexity
    engine = sa.create_engine(_db(tmp_path))
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select generation, value from metrics where name = 'perplexity' and arm = 'learner' order by generation")).all()
        arms = conn.execute(sa.text("select arm from arms")).scalars().all()
    assert [g for g, _ in rows] == [0, 1, 2, 3, 4] and all(v > 1 for _, v in rows)
    assert arms == ["learner"]
    # the report reads a learner run as a run: its perplexity curve has one point per step
    from collapselab.results import load_run

    data = load_run(run_dir)
    assert [g.generation for g in data.gens] == [0, 1, 2, 3, 4]
    assert [round(g.metrics["perplexity"], 6) for g in data.gens] == [round(v, 6) for _, v in rows]


def test_stop_ends_after_the_step_in_progress(tmp_path, tiny_base):
    stop = threading.Event()

    def report(line: str) -> None:
        if line.startswith("learner step 1"):
            stop.set()  # as SIGTERM does, while step 1 is finishing

    cfg = learner_config_from_dict(_config(tmp_path, tiny_base, steps=5, self_feed=0.0))
    run_dir = run_learner(cfg, db_url=_db(tmp_path), stop=stop, report=report)
    assert latest(run_dir).name == "step-1" and (run_dir / "learner" / "seed-0" / "gen-1" / "DONE").is_file()


def test_spool_drops_a_torn_line_and_repeated_ids(tmp_path):
    class Repeating:
        def documents(self, start: int):
            for i in range(start, 10):
                yield Document(f"doc{i % 4}", None, f"text {i}")  # ids repeat after 4

    path = tmp_path / "stream.jsonl"
    spool = Spool(path, Repeating())
    assert [d.id for d in spool.take(0, 3)] == ["doc0", "doc1", "doc2"]
    with path.open("a") as f:
        f.write('{"id": "torn", "tit')  # a kill in the middle of a write
    reopened = Spool(path, Repeating())
    assert [d.id for d in reopened.docs] == ["doc0", "doc1", "doc2"]
    assert [d.id for d in reopened.take(0, 10)] == ["doc0", "doc1", "doc2", "doc3"]


def test_folder_source_reads_text_files_by_path(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "b" / "c.txt").write_text("second")
    (tmp_path / "skip.md").write_text("not text")
    docs = list(TextFolder(tmp_path).documents(1))
    assert [(d.id, d.text) for d in docs] == [("folder:b/c.txt", "second")]


def test_bad_config_names_the_key(tmp_path, tiny_base):
    from collapselab.config import ConfigError

    bad = _config(tmp_path, tiny_base)
    bad["learner"]["self_feed"] = 1.5
    with pytest.raises(ConfigError, match=r"learner.self_feed"):
        learner_config_from_dict(bad, "x.yaml")
    bad = _config(tmp_path, tiny_base)
    bad["learner"]["docs"] = 3
    with pytest.raises(ConfigError, match=r"unknown key 'learner.docs'"):
        learner_config_from_dict(bad, "x.yaml")
    path = tmp_path / "l.yaml"
    import yaml

    path.write_text(yaml.safe_dump({**_config(tmp_path, tiny_base), "model": {"name": "scratch"}}))
    with pytest.raises(ConfigError, match=r"model.name"):
        load_learner_config(path)


def test_wikipedia_client_against_recorded_responses(tmp_path):
    """The real client, pointed at a local server that answers with responses in the API's
    formatversion=2 shape (one random article per call, plain-text extract)."""
    import http.server
    import urllib.parse

    from collapselab.learner.config import LearnerError
    from collapselab.learner.sources import USER_AGENT, WikipediaRandom

    recorded = sorted((Path(__file__).parent / "data").glob("wikipedia_random_*.json"))
    seen: list[tuple[dict, str]] = []

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            seen.append((dict(urllib.parse.parse_qsl(url.query)), self.headers["User-Agent"]))
            if url.path != "/w/api.php":
                self.send_error(500)
                return
            body = recorded[(len(seen) - 1) % len(recorded)].read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        spool = Spool(tmp_path / "stream.jsonl", WikipediaRandom(f"{base}/w/api.php", timeout_s=5))
        docs = spool.take(0, 3)
        # the repeated Wombat (third response) is not spooled again
        assert [d.id for d in docs] == ["wikipedia:18618509", "wikipedia:1371947", "wikipedia:6678"]
        assert docs[0].title == "Wombat" and "== Etymology ==" in docs[0].text
        params, agent = seen[0]
        assert params["generator"] == "random" and params["grnnamespace"] == "0" and params["explaintext"] == "1"
        assert agent == USER_AGENT
        with pytest.raises(LearnerError, match="source.api_url"):
            next(WikipediaRandom(f"{base}/broken", timeout_s=5, retries=1).documents(0))
    finally:
        server.shutdown()
