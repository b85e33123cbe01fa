"""The loop end to end on a tiny corpus and tiny random models: files, provenance,
resumption after SIGKILL, restarts, and bad input that leaves a run untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny import tiny_config, write_config

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.lab.events import RunStarted
from collapselab.records import read_records
from collapselab.rundir.metrics_file import read_metrics_file


def _metrics(run_dir: Path) -> dict[str, dict[str, float]]:
    out = {}
    for p in sorted(run_dir.glob("*/seed-*/gen-*/metrics.json")):
        data = json.loads(p.read_text())
        out[str(p.parent.relative_to(run_dir))] = {k: v["value"] for k, v in data["metrics"].items()}
    return out


def _cli(*args: str, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.Popen([sys.executable, "-m", "collapselab.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_tiny_run_writes_every_file_with_provenance(tiny_lm_data, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_lm_data, tmp_path / "runs"))
    run_dir = run_experiment(cfg)
    assert (run_dir / "config.yaml").exists()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config_hash"] == cfg.config_hash() and manifest["packages"]["torch"] and manifest["hardware"]["cores"]
    runtime = {"device": "cpu", "train_dtype": "float32", "infer_dtype": "float32", "generation_backend": "transformers"}
    assert manifest["runtime"] == runtime
    for arm in ("replace", "accumulate"):
        for g in range(3):
            d = run_dir / arm / "seed-0" / f"gen-{g}"
            for name in ("train.parquet", "synthetic.parquet", "predictions.parquet", "metrics.json", "DONE", "model/config.json"):
                assert (d / name).exists(), f"{d / name} missing"
            syn = read_records(d / "synthetic.parquet")
            assert len(syn) == 24 and all(r.source == "synthetic" and r.generation == g for r in syn)
            assert {r.parent_id for r in syn} == {r.id for r in read_records(run_dir / arm / "seed-0" / "gen-0" / "train.parquet")}
            assert json.loads(syn[0].generator)["decoding"]["top_p"] == 0.9
            assert json.loads((d / "metrics.json").read_text())["runtime"] == runtime
    m = _metrics(run_dir)
    # generation 0 is shared by construction: the same numbers in both arms
    assert m["replace/seed-0/gen-0"] == m["accumulate/seed-0/gen-0"]
    # replace trains on synthetic only; accumulate on human + all synthetic so far
    assert {r.source for r in read_records(run_dir / "replace/seed-0/gen-2/train.parquet")} == {"synthetic"}
    acc = read_records(run_dir / "accumulate/seed-0/gen-2/train.parquet")
    assert len(acc) == 24 * 3 and sum(r.source == "human" for r in acc) == 24
    # the replace arm's model changes from generation to generation
    assert m["replace/seed-0/gen-2"]["perplexity"] != pytest.approx(m["replace/seed-0/gen-0"]["perplexity"])


def test_same_config_and_seed_give_the_same_numbers(tiny_lm_data, tmp_path):
    a = run_experiment(config_from_dict(tiny_config(tiny_lm_data, tmp_path / "a", generations=2)))
    b = run_experiment(config_from_dict(tiny_config(tiny_lm_data, tmp_path / "b", generations=2)))
    assert _metrics(a) == _metrics(b)


def test_sigkill_mid_generation_then_resume_equals_uninterrupted(tiny_lm_data, tmp_path):
    cfg = tiny_config(tiny_lm_data, tmp_path / "killed")
    path = write_config(cfg, tmp_path / "killed.yaml")
    proc = _cli("run", str(path))
    run_root = tmp_path / "killed" / "tiny"
    deadline = time.time() + 240
    # kill once generation 1 of the first arm has its data but is not finished
    while time.time() < deadline:
        hits = list(run_root.glob("*/replace/seed-0/gen-1/train.parquet"))
        if hits and not (hits[0].parent / "DONE").exists():
            break
        if proc.poll() is not None:
            pytest.fail(f"run ended before it could be killed: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    else:
        pytest.fail("run never reached generation 1")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = hits[0].parents[3]
    assert not (run_dir / "replace/seed-0/gen-1/DONE").exists()
    assert not (run_dir / "accumulate/seed-0/gen-2").exists()

    resumed = _cli("run", str(path))
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-3000:]
    assert f"pid {proc.pid}" in out and "is no longer running" in out  # the killed run's lock, taken over
    assert sorted(p.name for p in run_root.iterdir()) == [run_dir.name]  # continued, not restarted

    clean_cfg = write_config(tiny_config(tiny_lm_data, tmp_path / "clean"), tmp_path / "clean.yaml")
    clean = _cli("run", str(clean_cfg))
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err[-3000:]
    clean_dir = next((tmp_path / "clean" / "tiny").iterdir())
    assert _metrics(run_dir) == _metrics(clean_dir)
    assert len(_metrics(run_dir)) == 6


def test_restart_from_generation_moves_old_results_aside_and_redoes_them(tiny_lm_data, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_lm_data, tmp_path / "runs", generations=2))
    run_dir = run_experiment(cfg)
    before = _metrics(run_dir)
    from collapselab.store import Store

    with Store() as store:  # COLLAPSELAB_DB points at this test's own database
        assert sorted({(m["arm"], m["generation"]) for m in store.metrics(run_dir.name)}) == [
            ("accumulate", 0), ("accumulate", 1), ("replace", 0), ("replace", 1)
        ]
    seen = []

    def listener(event):  # before any work starts, the database has forgotten generation 1
        if isinstance(event, RunStarted):
            with Store() as store:
                seen.append(sorted({(m["arm"], m["generation"]) for m in store.metrics(run_dir.name)}))

    again = run_experiment(cfg, restart_from=1, listeners=[listener])
    assert again == run_dir
    assert seen == [[("accumulate", 0), ("replace", 0)]]
    assert _metrics(run_dir) == before
    assert len(list((run_dir / ".superseded").glob("*/*/seed-0/gen-1/metrics.json"))) == 2


def test_a_changed_config_does_not_touch_the_existing_run(tiny_lm_data, tmp_path):
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", generations=1)
    path = write_config(cfg, tmp_path / "c.yaml")
    first = _cli("run", str(path))
    assert first.wait(timeout=300) == 0
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    snapshot = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}
    second = _cli("run", str(path), "--set", "training.lr=0.002")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert "config hash" in err and "--fresh" in err and len(err.strip().splitlines()) == 1
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == snapshot


def test_bad_dataset_record_is_a_one_line_error_naming_file_and_field(tiny_lm_data, tmp_path):
    bad = tiny_lm_data / "train.jsonl"
    lines = bad.read_text().splitlines()
    lines[5] = json.dumps({"text": "no id here"})
    bad.write_text("\n".join(lines) + "\n")
    path = write_config(tiny_config(tiny_lm_data, tmp_path / "runs"), tmp_path / "c.yaml")
    p = _cli("run", str(path))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2
    assert len(err.strip().splitlines()) == 1 and "train.jsonl" in err and "'id'" in err
    assert not (tmp_path / "runs").exists()  # nothing created before the data was known good


def test_missing_dataset_names_it_and_where_to_put_it(tmp_path):
    cfg = tiny_config(tmp_path / "nope", tmp_path / "runs")
    cfg["data"] = {"dataset": "wikitext2", "train_size": 10, "block_tokens": 16}
    path = write_config(cfg, tmp_path / "c.yaml")
    p = _cli("run", str(path), env_extra={"COLLAPSELAB_DATA": str(tmp_path / "empty")})
    _, err = p.communicate(timeout=120)
    assert p.returncode == 2 and "wikitext2" in err and "COLLAPSELAB_DATA" in err and len(err.strip().splitlines()) == 1


def test_unknown_yaml_key_exits_2_naming_it(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path / "runs")
    cfg["decoding"]["temprature"] = 0.7
    path = write_config(cfg, tmp_path / "c.yaml")
    p = _cli("run", str(path))
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "decoding.temprature" in err and str(path) in err


def test_status_reports_done_generations(tiny_lm_data, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_lm_data, tmp_path / "runs", generations=1))
    run_dir = run_experiment(cfg)
    p = _cli("status", str(run_dir))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "2/2 generations done" in out


@pytest.mark.parametrize(
    "change, message",
    [
        ({"experiment": {"task": "qa"}}, r"missing field 'context'"),
        ({"evaluation": {"metrics": ["perplexity", "perplexty"]}}, r"evaluation.metrics.1: unknown metric 'perplexty'"),
        ({"evaluation": {"metrics": ["exact_match"]}}, r"evaluation.metrics.0: 'exact_match' is a qa metric"),
        ({"arms": [{"name": "r", "mix": "ratio", "ratio": 0.5, "size": 100}]}, r"arms.0.size: 100 at ratio 0.5"),
        ({"training": {"precision": "bf16"}}, r"training.precision: bf16 on a CPU"),
        # a metric its data cannot give (the gibberish levels cannot be calibrated on 4 texts)
        ({"data": {"train_size": 4}, "evaluation": {"metrics": ["perplexity", "gibberish_score"], "gibberish_background": None}},
         r"evaluation.metrics: gibberish_score cannot be computed on this run's data: the gibberish scorer needs at least 5"),
    ],
)
def test_configs_that_would_fail_after_training_fail_before_the_run_exists(tiny_lm_data, tmp_path, change, message):
    from collapselab.config import ConfigError
    from collapselab.records import RecordError

    cfg = tiny_config(tiny_lm_data, tmp_path / "runs")
    for block, values in change.items():
        if isinstance(values, dict):
            cfg[block] = {**cfg[block], **values}
        else:
            cfg[block] = values
    with pytest.raises((ConfigError, RecordError), match=message):
        run_experiment(config_from_dict(cfg))
    assert not (tmp_path / "runs").exists()


def test_a_generation_whose_database_write_failed_is_recorded_on_the_next_run(tiny_lm_data, tmp_path, monkeypatch):
    from collapselab import store
    from collapselab.store import Store

    cfg = config_from_dict(tiny_config(tiny_lm_data, tmp_path / "runs", generations=2))
    real = store.record_generation
    calls = []

    def flaky(db_url, run_dir, arm, seed, generation):
        calls.append(generation)
        if len(calls) == 1:
            raise OSError("database went away")
        return real(db_url, run_dir, arm, seed, generation)

    monkeypatch.setattr(store, "record_generation", flaky)
    with pytest.raises(OSError):
        run_experiment(cfg)
    monkeypatch.setattr(store, "record_generation", real)
    run_dir = run_experiment(cfg)
    with Store() as db:
        recorded = sorted({(m["arm"], m["generation"]) for m in db.metrics(run_dir.name)})
    assert recorded == [("accumulate", 0), ("accumulate", 1), ("replace", 0), ("replace", 1)]


def test_copied_generation0_names_its_own_arm(tiny_lm_data, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_lm_data, tmp_path / "runs", generations=1))
    run_dir = run_experiment(cfg)
    tag = json.loads(read_records(run_dir / "accumulate/seed-0/gen-0/synthetic.parquet")[0].generator)
    assert tag["arm"] == "accumulate" and tag["copied_from_arm"] == "replace"
    assert json.loads(read_records(run_dir / "replace/seed-0/gen-0/synthetic.parquet")[0].generator)["arm"] == "replace"


def test_plain_run_continues_the_newest_run_not_the_last_name(tiny_lm_data, tmp_path):
    cfg = config_from_dict(tiny_config(tiny_lm_data, tmp_path / "runs", generations=1))
    named = run_experiment(cfg, run_id="zzz-named")
    newest = run_experiment(cfg, fresh=True)
    assert newest != named
    assert run_experiment(cfg) == newest


def test_generation_0_baselines_are_computed_once_per_run_and_given_to_every_arm_and_seed(tiny_lm_data, tmp_path, monkeypatch):
    from collapselab.tasks.lm import LMTask

    calls = []
    real = LMTask.baselines
    monkeypatch.setattr(LMTask, "baselines", lambda self, *a: (calls.append(a[-1]), real(self, *a))[1])
    raw = tiny_config(tiny_lm_data, tmp_path / "runs", generations=1, seeds=[0, 1])
    run_dir = run_experiment(config_from_dict(raw))
    assert len(calls) == 1
    values = {(arm, seed): read_metrics_file(run_dir / arm / f"seed-{seed}" / "gen-0" / "metrics.json").metrics["unigram_perplexity"].value
              for arm in ("replace", "accumulate") for seed in (0, 1)}
    assert len(set(values.values())) == 1 and next(iter(values.values())) > 1
