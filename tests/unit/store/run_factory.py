"""Craft run directories the way the engine writes them (the store's input contract)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from collapselab.records import Record, write_records


def make_run(
    root: Path,
    run_id: str = "run-a",
    arms: tuple[str, ...] = ("replace", "accumulate"),
    seeds: tuple[int, ...] = (0,),
    generations: int = 3,
    examples: int = 4,
    experiment: str = "quick",
) -> Path:
    """A run directory with config, manifest and every generation finished (DONE)."""
    run_dir = root / experiment / run_id
    run_dir.mkdir(parents=True)
    config = {
        "experiment": {"name": experiment, "task": "qa", "generations": generations},
        "arms": [
            {"name": a, "init": "previous", "mix": a, "ratio": None, "size": None} for a in arms
        ],
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    manifest = {
        "run_id": run_id,
        "experiment": experiment,
        "created": "2026-11-22T10:00:00+00:00",
        "config_hash": "0123456789abcdef",
        "git_sha": "abc1234-dirty",
        "packages": {"torch": "2.13.0"},
        "seeds": list(seeds),
        "hardware": {"cpu": "x"},
        "command": "collapselab run quick.yaml",
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for arm in arms:
        for seed in seeds:
            for g in range(generations):
                write_generation(run_dir, arm, seed, g, examples=examples)
    return run_dir


def value(arm: str, seed: int, g: int, attempt: int = 0) -> float:
    """A metric value that encodes where it came from, so tests can check placement."""
    return round(0.9 - 0.1 * g - 0.01 * len(arm) + 0.001 * seed + 1e-6 * attempt, 9)


def write_generation(
    run_dir: Path,
    arm: str,
    seed: int,
    g: int,
    *,
    examples: int = 4,
    attempt: int = 0,
    refinery: bool = True,
    done: bool = True,
) -> Path:
    """Every file of one generation; `attempt` changes each value so a redo is visible."""
    gdir = run_dir / arm / f"seed-{seed}" / f"gen-{g}"
    gdir.mkdir(parents=True, exist_ok=True)
    (gdir / "DONE").unlink(missing_ok=True)
    human = [
        Record(id=f"h{i}", context=f"context {i}", question=f"q{i}?", answers=(f"a{i}",))
        for i in range(examples)
    ]
    synth = [
        r.derive(id=f"s{g}-{r.id}", source="synthetic", generation=g, parent_id=r.id) for r in human
    ]
    write_records(gdir / "train.parquet", human)
    write_records(gdir / "synthetic.parquet", synth)
    if refinery:
        write_records(gdir / "rejected.parquet", synth[:1])
    v = value(arm, seed, g, attempt)
    pq.write_table(
        pa.Table.from_pylist(
            [
                {
                    "example_id": f"h{i}",
                    "input": f"question: q{i}? context: context {i}",
                    "reference": json.dumps([f"a{i}"]),
                    "prediction": f"{arm} s{seed} g{g} a{attempt} #{i}",
                    "scores": json.dumps({"exact_match": float(i % 2), "f1": v}),
                }
                for i in range(examples)
            ]
        ),
        gdir / "predictions.parquet",
    )
    metrics = {
        "arm": arm,
        "seed": seed,
        "generation": g,
        "metrics": {
            "f1": {
                "value": v,
                "version": "1",
                "higher_is_better": True,
                "details": {"attempt": attempt},
            },
            "exact_match": {"value": 0.5, "version": "1", "higher_is_better": True, "details": {}},
            "perplexity": {
                "value": math.exp(1 + g),
                "version": "2",
                "higher_is_better": False,
                "details": {"by_subject": {"x": 1.5}},
            },
        },
        "train": {
            "losses": [2.5, 2.0, 1.75 + attempt],
            "steps": 3,
            "tokens": 3000,
            "seconds": 1.25,
        },
        "timings": {"train_s": 1.5, "generate_s": 0.5, "evaluate_s": 0.25},
        "sizes": {"train_records": examples, "synthetic_records": examples},
        "refinery": {
            "attempts": 10 + g,
            "passed": 8,
            "rejected": {"duplicate": 1, "too_short": 1 + g},
        }
        if refinery
        else None,
    }
    (gdir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if done:
        (gdir / "DONE").write_text(json.dumps({"finished": f"2026-11-22T10:{g:02d}:00+00:00"}))
    return gdir


def every_answer(store, run_id: str) -> dict:
    """The answer to every query the store offers about one run (for equality checks)."""
    # Crafted runs name their test examples h0..h{n-1}.
    n_examples = store.generations(run_id)[0]["n_predictions"]
    return {
        "list_runs": store.list_runs(),
        "run": store.run(run_id),
        "generations": store.generations(run_id),
        "metrics": store.metrics(run_id),
        "metrics_table": store.metrics_table(run_id),
        "compare": {m: store.compare_arms(run_id, m) for m in ("f1", "exact_match", "perplexity")},
        "history": [store.question_history(run_id, f"h{i}") for i in range(n_examples)],
        "refinery": store.refinery(run_id),
        "data_files": store.data_files(run_id),
        "questions": store.questions(run_id),
        "documents": store.documents(run_id),
        "predictions": [
            store.predictions(run_id, g["arm"], g["seed"], g["generation"])
            for g in store.generations(run_id)
        ],
    }
