"""A tiny run's outlets, through the real clients: MLflow (read back with MLflow's own client),
W&B offline, the Hub, Telegram and a webhook (local servers on loopback standing in for the
last three). With the endpoints down the run still finishes and says what was not sent."""

from __future__ import annotations

import json

import pytest
from fake_endpoints import closed_port, endpoints
from tiny_lab import tiny_config, write_corpus

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.lab.events import Message
from collapselab.report import up_to_date_report

pytestmark = pytest.mark.e2e


@pytest.fixture
def secrets_env(monkeypatch):
    import huggingface_hub.constants

    # The suite runs offline (HF_HUB_OFFLINE=1 blocks every Hub request); this test's Hub is on loopback.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:bot-token")
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "4242")


def _run(cfg: dict) -> tuple[object, list[str]]:
    said: list[str] = []
    run_dir = run_experiment(config_from_dict(cfg), listeners=[lambda e: said.append(e.text) if isinstance(e, Message) else None],
                             write_report=up_to_date_report)  # as the CLI and the API hand it in
    return run_dir, said


def _metrics(run_dir, g: int) -> dict[str, float]:
    doc = json.loads((run_dir / f"ratio/seed-0/gen-{g}/metrics.json").read_text())
    return {k: v["value"] for k, v in doc["metrics"].items() if v["value"] is not None}


def test_hub_and_notifiers_get_every_generation_and_a_resumed_run_uploads_only_what_is_missing(tmp_path, secrets_env):
    data = write_corpus(tmp_path / "data")
    with endpoints() as (base, got):
        cfg = tiny_config(data, tmp_path / "runs",
                          hub={"repo_id": "lab/collapse", "endpoint": base, "prefix": "{run_id}"},
                          notify={"webhook": {"url": f"{base}/hook"}, "telegram": {"api_url": base}, "max_messages": 3})
        run_dir, said = _run(cfg)
        prefix = run_dir.name
        # the run's manifest, then one commit per generation with every file of its folder as it is
        # on disk (another machine resumes from a whole generation)
        assert sorted(c[1] for c in got.commits) == sorted([f"collapselab: {prefix}/manifest.json",
                                                            *(f"collapselab: {prefix}/ratio/seed-0/gen-{g}" for g in (0, 1))])
        files = got.files["lab/collapse"]
        assert files[f"{prefix}/manifest.json"] == (run_dir / "manifest.json").read_bytes()
        for g in (0, 1):
            folder = run_dir / f"ratio/seed-0/gen-{g}"
            local = {f"{prefix}/ratio/seed-0/gen-{g}/{p.relative_to(folder).as_posix()}": p.read_bytes()
                     for p in folder.rglob("*") if p.is_file()}
            assert {k: v for k, v in files.items() if k.startswith(f"{prefix}/ratio/seed-0/gen-{g}/")} == local
            assert {f"{prefix}/ratio/seed-0/gen-{g}/{n}" for n in ("model/model.safetensors", "DONE", "train.parquet")} <= set(local)
        assert (got.created[0]["organization"], got.created[0]["name"]) == ("lab", "collapse")
        assert "hub: 2 generation(s) uploaded to lab/collapse" in said
        # Telegram and the webhook: the same messages, three progress messages at most, then
        # the run-finished one saying what was held back
        texts = [body["text"] for _, body in got.telegram]
        assert {token for token, _ in got.telegram} == {"123:bot-token"} and {b["chat_id"] for _, b in got.telegram} == {"4242"}
        # first the run's key parameters (always sent, not counted in max_messages)
        assert texts[0] == (f"collapselab tiny/{prefix}: run started: task lm, model scratch, data jsonl (train 8, test 4), "
                            "2 generations, seeds 0, arms ratio (previous, ratio 0.5), training 1 epoch lr 0.005, decoding sample T=1 top_p=0.9")
        texts = texts[1:]
        assert [t.split(": ", 1)[1] for t in texts[:3]] == [
            "ratio seed 0 generation 0 started",
            f"ratio seed 0 generation 0 finished in {texts[1].split(' in ')[1].split(' s')[0]} s: perplexity {_metrics(run_dir, 0)['perplexity']:.4g}",
            "ratio seed 0 generation 1 started",
        ]
        assert texts[3].endswith("run finished (1 progress messages held back by notify.max_messages)") and len(texts) == 4
        assert [w["text"] for w in got.webhook][1:] == texts
        assert got.webhook[2]["collapselab"] == {"event": "generation_finished", "run": f"tiny/{prefix}", "arm": "ratio", "seed": 0,
                                                 "generation": 0, "metrics": {"perplexity": _metrics(run_dir, 0)["perplexity"]}}

        # the same run again: nothing is uploaded twice
        _run(cfg)
        assert len(got.commits) == 3
        # a generation missing on the Hub (its upload failed, say) is uploaded by the next invocation
        with got.lock:
            for k in [k for k in files if "/gen-1/" in k]:
                del files[k]
        _, said = _run(cfg)
        assert [c[1] for c in got.commits[3:]] == [f"collapselab: {prefix}/ratio/seed-0/gen-1"]
        assert "hub: 1 generation(s) uploaded to lab/collapse" in said


def test_with_every_endpoint_down_the_run_finishes_and_says_what_was_not_sent(tmp_path, secrets_env):
    data = write_corpus(tmp_path / "data")
    down = closed_port()
    cfg = tiny_config(data, tmp_path / "runs",
                      hub={"repo_id": "lab/collapse", "endpoint": down, "retries": 0, "drain_s": 3},
                      notify={"webhook": {"url": f"{down}/hook"}, "telegram": {"api_url": down}, "retries": 0, "drain_s": 3})
    run_dir, said = _run(cfg)
    assert all((run_dir / f"ratio/seed-0/gen-{g}/DONE").exists() for g in (0, 1))
    assert "hub: 0 generation(s) uploaded to lab/collapse" in said
    assert {s.split(" (")[0] for s in said if s.startswith("hub: not uploaded: ratio/")} == {
        "hub: not uploaded: ratio/seed-0/gen-0", "hub: not uploaded: ratio/seed-0/gen-1"}
    for dest in ("webhook", "telegram"):
        lost = [s for s in said if s.startswith(f"notify: not sent to {dest}: ")]
        assert len(lost) == 6 and any("run_started" in s for s in lost), said  # run started, 2 x started, 2 x finished, run finished


def test_mlflow_and_wandb_get_params_every_generation_and_the_report(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps its artifacts in ./mlruns

    data = write_corpus(tmp_path / "data")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = tiny_config(data, tmp_path / "runs", tracking={"mlflow": {"tracking_uri": uri}, "wandb": {"dir": str(tmp_path / "wandb")}})
    run_dir, said = _run(cfg)
    assert not [s for s in said if "not logged" in s], said

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    assert run.info.run_name == f"{run_dir.name}/ratio/seed-0" and run.info.status == "FINISHED"
    params = run.data.params
    assert params["training.lr"] == "0.005" and params["experiment.generations"] == "2" and params["arm.mix"] == "ratio"
    assert params["data.dataset"] == "jsonl" and params["collapselab.run_id"] == run_dir.name
    for name in _metrics(run_dir, 1):
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, name))
        assert history == [(g, pytest.approx(_metrics(run_dir, g)[name])) for g in (0, 1) if name in _metrics(run_dir, g)], name
    report = client.download_artifacts(run.info.run_id, "report/report.md", str(tmp_path / "download"))
    assert run_dir.name in open(report).read()
    assert {f.path for f in client.list_artifacts(run.info.run_id)} >= {"config.yaml", "report"}

    (offline,) = (tmp_path / "wandb" / "wandb").glob("offline-run-*")
    (records,) = offline.glob("run-*.wandb")
    blob = records.read_bytes()
    assert b"perplexity" in blob and b"training.lr" in blob  # history and config records
    assert (offline / "files" / "report" / "report.md").read_text() == (run_dir / "report" / "report.md").read_text()
