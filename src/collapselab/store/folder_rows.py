"""Reading a run directory into rows for the store.

The engine writes `runs/<experiment>/<run_id>/` with `config.yaml` and `manifest.json`,
then `<arm>/seed-<s>/gen-<g>/` per generation, finished by a `DONE` file. Everything here
returns plain dicts keyed by column name; every error names the file and the key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from collapselab.errors import RunError
from collapselab.rundir.generation import (
    DATA_FILES,
    PREDICTION_COLUMNS,
    REQUIRED_FILES,
    GenerationFolder,
    finished,
)
from collapselab.store.db import StoreError
from collapselab.textio import parquet_row_count, parse_yaml, read_json, read_parquet, read_text


def load_json(path: Path) -> Any:
    return read_json(path, error=StoreError)


def _read_text(path: Path) -> str:
    return read_text(path, error=StoreError)


def _get(
    obj: Any,
    key: str,
    kind: type | tuple[type, ...],
    file: str,
    parent: str = "",
    *,
    nullable: bool = False,
) -> Any:
    """obj[key] checked to be of `kind`; errors name the file and the dotted key path."""
    dotted = f"{parent}.{key}" if parent else key
    if not isinstance(obj, dict):
        raise StoreError(f"{file}: {parent or 'top level'}: expected a JSON object, got {obj!r}")
    if key not in obj:
        raise StoreError(f"{file}: missing key {dotted!r}")
    value = obj[key]
    if value is None and nullable:
        return None
    # bool is an int in Python; a JSON true is never a count or a measurement.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise StoreError(f"{file}: key {dotted!r}: expected {_kind_name(kind)}, got {value!r}")
    return value


def _timing(timings: dict[str, Any], key: str, file: str) -> float | None:
    """A step's seconds; absent when the step ran in an earlier, interrupted process."""
    if key not in timings:
        return None
    return _get(timings, key, (int, float), file, "timings", nullable=True)


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _float(value: int | float | None) -> float | None:
    return None if value is None else float(value)


def dumps(obj: Any) -> str:
    """The one JSON spelling the store writes, so equal data is equal text."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False)


def read_manifest_run_id(run_dir: Path) -> str:
    path = run_dir / "manifest.json"
    return _get(load_json(path), "run_id", str, str(path))


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `runs` row and the `arms` rows of a run directory."""

    manifest_path = run_dir / "manifest.json"
    manifest = load_json(manifest_path)
    manifest_text = _read_text(manifest_path)
    where = str(manifest_path)
    run_id = _get(manifest, "run_id", str, where)
    config_path = run_dir / "config.yaml"
    config_yaml = _read_text(config_path)
    config = parse_yaml(config_yaml, where=str(config_path), error=StoreError)
    arms_cfg = _get(config, "arms", list, str(config_path))
    if not arms_cfg:
        raise StoreError(f"{config_path}: key 'arms' is empty; a run has at least one arm")
    arm_rows = []
    for i, arm in enumerate(arms_cfg):
        name = _get(arm, "name", str, str(config_path), f"arms.{i}")
        arm_rows.append({"run_id": run_id, "arm": name, "position": i, "config": dumps(arm)})
    experiment_block = _get(config, "experiment", dict, str(config_path))
    task = experiment_block.get("task")
    run_row = {
        "run_id": run_id,
        "experiment": _get(manifest, "experiment", str, where),
        "task": task,
        "created": _get(manifest, "created", str, where),
        "config_hash": _get(manifest, "config_hash", str, where),
        "git_sha": _get(manifest, "git_sha", str, where),
        "config_yaml": config_yaml,
        "manifest": manifest_text,
        "generations_planned": _get(experiment_block, "generations", int, str(config_path), "experiment"),
        "run_dir": str(run_dir.resolve()),
    }
    return run_row, arm_rows


def done_generations(run_dir: Path) -> list[tuple[str, int, int]]:
    """(arm, seed, generation) of every generation directory holding a DONE file."""
    return [(f.arm, f.seed, f.generation) for f in finished(run_dir)]


def read_generation(
    run_dir: Path, run_id: str, arm: str, seed: int, generation: int
) -> dict[str, list[dict[str, Any]]]:
    """Rows for every generation table, keyed by table name."""
    folder = GenerationFolder(run_dir, arm, seed, generation)
    gdir = folder.path
    for name in REQUIRED_FILES:
        if not (gdir / name).is_file():
            raise StoreError(f"{gdir / name}: file does not exist (is the generation finished?)")
    key = {"run_id": run_id, "arm": arm, "seed": seed, "generation": generation}
    done = load_json(folder.done)
    finished_at = _get(done, "finished", str, str(folder.done))
    mpath = folder.metrics
    try:
        m = folder.read_metrics()
    except RunError as e:
        raise StoreError(str(e)) from None
    metrics_text = _read_text(mpath)
    where = str(mpath)
    for k, expected in (("arm", arm), ("seed", seed), ("generation", generation)):
        found = getattr(m, k)
        if found != expected:
            raise StoreError(
                f"{where}: key {k!r} is {found!r} but the file lies in the directory for {k} {expected!r}"
            )
    generation_row = {
        **key,
        "status": "done",
        "finished": finished_at,
        "train_s": m.timings.get("train_s"),
        "generate_s": m.timings.get("generate_s"),
        "evaluate_s": m.timings.get("evaluate_s"),
        "train_losses": dumps(m.train.losses),
        "train_steps": m.train.steps,
        "train_tokens": m.train.tokens,
        "train_seconds": m.train.seconds,
        "train_records": m.sizes.train_records,
        "synthetic_records": m.sizes.synthetic_records,
        "metrics_json": metrics_text,
    }
    metric_rows = [
        {**key, "name": name, "value": entry.value, "version": entry.version,
         "higher_is_better": entry.higher_is_better, "details": dumps(entry.details)}
        for name, entry in sorted(m.metrics.items())
    ]
    refinery_rows, rejection_rows = [], []
    ref = m.refinery
    if ref is not None:
        w = "refinery"
        refinery_rows.append(
            {
                **key,
                "attempts": _get(ref, "attempts", int, where, w),
                "passed": _get(ref, "passed", int, where, w),
            }
        )
        for reason, count in sorted(_get(ref, "rejected", dict, where, w).items()):
            if not isinstance(count, int) or isinstance(count, bool):
                raise StoreError(
                    f"{where}: key 'refinery.rejected.{reason}': expected int, got {count!r}"
                )
            rejection_rows.append({**key, "reason": reason, "count": count})
    return {
        "generations": [generation_row],
        "metrics": metric_rows,
        "predictions": read_predictions(folder.predictions, key),
        "refinery": refinery_rows,
        "refinery_rejections": rejection_rows,
        "data_files": index_data_files(run_dir, gdir, key),
    }


def read_predictions(path: Path, key: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of predictions.parquet, with each `scores` checked to be a JSON object of numbers."""
    table = read_parquet(path, error=StoreError)
    missing = [c for c in PREDICTION_COLUMNS if c not in table.column_names]
    if missing:
        raise StoreError(f"{path}: missing column(s) {missing}; has {table.column_names}")
    rows = []
    for i, r in enumerate(table.select(list(PREDICTION_COLUMNS)).to_pylist()):
        for c in PREDICTION_COLUMNS:
            if not isinstance(r[c], str):
                raise StoreError(f"{path} row {i}: column {c!r} must be a string, got {r[c]!r}")
        try:
            scores = json.loads(r["scores"])
        except json.JSONDecodeError as e:
            raise StoreError(
                f"{path} row {i} (example {r['example_id']!r}): column 'scores' is not JSON ({e.msg})"
            ) from None
        if not isinstance(scores, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) or v is None
            for v in scores.values()
        ):
            raise StoreError(
                f"{path} row {i} (example {r['example_id']!r}): column 'scores' must be a JSON object of numbers, got {r['scores']!r}"
            )
        rows.append({**key, "position": i, **r})
    return rows


def index_data_files(run_dir: Path, gdir: Path, key: dict[str, Any]) -> list[dict[str, Any]]:
    """Path, content hash, size and row count of the generation's data files."""
    rows = []
    for name, kind in DATA_FILES.items():
        path = gdir / name
        if not path.is_file():
            continue  # only rejected.parquet is optional; REQUIRED_FILES checked the rest
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        n_rows = parquet_row_count(path, error=StoreError) if path.suffix == ".parquet" else None
        rows.append(
            {
                **key,
                "path": path.relative_to(run_dir).as_posix(),
                "kind": kind,
                "sha256": digest.hexdigest(),
                "bytes": path.stat().st_size,
                "rows": n_rows,
            }
        )
    return rows
