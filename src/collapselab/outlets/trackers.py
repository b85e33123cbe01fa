"""Experiment trackers (`tracking:` block): MLflow and Weights & Biases.

One tracker run per (arm, seed) of a collapselab run, named `<run_id>/<arm>/seed-<s>`: its
params are the resolved config (flattened, `training.lr`, ...) and the arm's own settings
(`arm.*`), its metrics every generation's metrics with `step = generation`, and at the end
config.yaml and the run's report as artifacts: the folder `write_report(run_dir)` returns,
a writer handed in by whoever starts the run (the report is a face above the loop).

Tracker calls run in the background (`collapselab.outlets.outbox`), so a slow or unreachable tracking
server never blocks the run; what could not be logged is reported when the run ends. A
resumed run continues its MLflow runs (found by their tags) and logs the finished
generations they are missing; W&B runs keep their id (`<run_id>-<arm>-seed-<s>`), so an
online resume continues them.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collapselab.config.operations import TrackingBlock
from collapselab.lab.events import (
    Event,
    GenerationFailed,
    GenerationFinished,
    RunFinished,
    RunStarted,
)
from collapselab.outlets.outbox import Outbox
from collapselab.rundir.generation import GenerationFolder, finished

MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value; the whole config is an artifact too


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as `{"training.lr": "0.005", ...}`; lists as JSON, values cut to MLflow's limit."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, name + "."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            out[name] = text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"
    return out


class _Tracker:
    """What MLflow and W&B share: events -> jobs in an outbox, one tracker run per (arm, seed)."""

    name = "tracker"

    def __init__(self, block: TrackingBlock, say: Callable[[str], None], write_report: Callable[[Path], Path] | None = None) -> None:
        self.block, self.say, self.write_report = block, say, write_report
        self.outbox = Outbox(self.name, retries=2)
        self.run: RunStarted | None = None
        self.closed = False

    def __call__(self, event: Event) -> None:
        if self.closed:
            return
        if isinstance(event, RunStarted):
            self.run = event
            done = finished(event.run_dir)  # before this invocation
            self.outbox.put(f"start {event.run_id}", lambda: self.started(done))
        elif isinstance(event, GenerationFinished):
            self.outbox.put(f"log {event.arm}/seed-{event.seed}/gen-{event.generation}",
                            lambda: self.log(event.arm, event.seed, event.generation, event.metrics))
        elif isinstance(event, RunFinished):
            self.outbox.put(f"report and finish {event.run_id}", lambda: self.finish(event.run_dir, "FINISHED"))
            self.closed = True  # the run ends: nothing more to queue; close() waits
        elif isinstance(event, GenerationFailed):
            self.outbox.put(f"finish {event.run_dir.name} as failed", lambda: self.finish(None, "FAILED"))
            self.closed = True

    def close(self) -> None:
        """Wait (at most `drain_s`) for queued tracker calls and say what was not logged."""
        for m in self.outbox.close(self.block.drain_s):
            self.say(f"{self.name}: not logged: {m.what} ({m.error})")

    def params(self, arm: str) -> dict[str, str]:
        assert self.run is not None
        cfg = self.run.config.model_dump(mode="json")
        arms = {a["name"]: a for a in cfg.pop("arms")}
        return {**flat_params(cfg), **flat_params(arms[arm], "arm."), "collapselab.run_id": self.run.run_id}

    def tags(self, arm: str, seed: int) -> dict[str, str]:
        assert self.run is not None
        manifest = json.loads((self.run.run_dir / "manifest.json").read_text())
        tags = {"collapselab.run_id": self.run.run_id, "collapselab.experiment": self.run.experiment,
                "collapselab.arm": arm, "collapselab.seed": str(seed), "collapselab.git_sha": manifest.get("git_sha", "")}
        if manifest.get("sweep"):
            tags["collapselab.sweep"] = manifest["sweep"]["name"]
            tags["collapselab.sweep_point"] = json.dumps(manifest["sweep"]["point"])
        return tags

    def finish(self, run_dir: Path | None, status: str) -> None:
        """Log the config and report of `run_dir` (None: a failed run, nothing) and close every
        tracker run with `status`, closing them even when the report cannot be written."""
        try:
            if run_dir is not None:
                self.log_report(run_dir, self.write_report(run_dir) if self.write_report is not None else None)
        finally:
            self.terminate(status)

    def started(self, done: list[GenerationFolder]) -> None:
        """Open the tracker; `done` are the generations finished before."""
        raise NotImplementedError

    def log(self, arm: str, seed: int, generation: int, metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def log_report(self, run_dir: Path, report: Path | None) -> None:
        """Log config.yaml and the report folder (None: no report)."""
        raise NotImplementedError

    def terminate(self, status: str) -> None:
        raise NotImplementedError


class MlflowTracker(_Tracker):
    name = "mlflow"

    def __init__(self, block: TrackingBlock, say: Callable[[str], None], write_report: Callable[[Path], Path] | None = None) -> None:
        super().__init__(block, say, write_report)
        self.runs: dict[tuple[str, int], str] = {}  # (arm, seed) -> MLflow run id
        self.client: Any = None
        self.experiment_id = ""

    def started(self, done: list[GenerationFolder]) -> None:
        from mlflow import MlflowClient

        assert self.run is not None and self.block.mlflow is not None
        self.client = MlflowClient(tracking_uri=self.block.mlflow.tracking_uri)
        name = self.block.mlflow.experiment or self.run.experiment
        found = self.client.get_experiment_by_name(name)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(name)
        # a resumed run: log what its MLflow runs are missing
        for f in done:
            values = f.read_metrics().values()
            self.log(f.arm, f.seed, f.generation, {k: v for k, v in values.items() if v is not None}, only_if_missing=True)

    def log(self, arm: str, seed: int, generation: int, metrics: dict[str, float], only_if_missing: bool = False) -> None:
        from mlflow.entities import Metric

        run_id = self._run_for(arm, seed)
        if only_if_missing and metrics:
            first = sorted(metrics)[0]
            if any(m.step == generation for m in self.client.get_metric_history(run_id, first)):
                return
        now = int(time.time() * 1000)
        batch = [Metric(_mlflow_key(k), float(v), now, generation) for k, v in sorted(metrics.items())]
        for i in range(0, len(batch), 1000):  # MLflow's batch limit
            self.client.log_batch(run_id, metrics=batch[i : i + 1000])

    def log_report(self, run_dir: Path, report: Path | None) -> None:
        for run_id in self.runs.values():
            self.client.log_artifact(run_id, str(run_dir / "config.yaml"))
            if report is not None:
                self.client.log_artifacts(run_id, str(report), artifact_path="report")

    def terminate(self, status: str) -> None:
        for run_id in self.runs.values():
            self.client.set_terminated(run_id, status)

    def _run_for(self, arm: str, seed: int) -> str:
        """The MLflow run of (arm, seed): the one with its tags, else a new one with the params."""
        from mlflow.entities import Param

        assert self.run is not None
        if (arm, seed) not in self.runs:
            tags = self.tags(arm, seed)
            query = " and ".join(f"tags.`{k}` = '{tags[k]}'" for k in ("collapselab.run_id", "collapselab.arm", "collapselab.seed"))
            found = self.client.search_runs([self.experiment_id], filter_string=query, max_results=1)
            if found:
                self.runs[(arm, seed)] = found[0].info.run_id
            else:
                created = self.client.create_run(self.experiment_id, run_name=f"{self.run.run_id}/{arm}/seed-{seed}", tags=tags)
                params = [Param(k, v) for k, v in sorted(self.params(arm).items())]
                for i in range(0, len(params), 100):  # MLflow's batch limit for params
                    self.client.log_batch(created.info.run_id, params=params[i : i + 100])
                self.runs[(arm, seed)] = created.info.run_id
            self.client.update_run(self.runs[(arm, seed)], status="RUNNING")
        return self.runs[(arm, seed)]


class WandbTracker(_Tracker):
    name = "wandb"

    def __init__(self, block: TrackingBlock, say: Callable[[str], None], write_report: Callable[[Path], Path] | None = None) -> None:
        super().__init__(block, say, write_report)
        self.runs: dict[tuple[str, int], Any] = {}

    def started(self, done: list[GenerationFolder]) -> None:
        import wandb  # noqa: F401  (fails here, reported, when wandb is not installed)

    def log(self, arm: str, seed: int, generation: int, metrics: dict[str, float]) -> None:
        self._run_for(arm, seed).log(dict(metrics), step=generation)

    def log_report(self, run_dir: Path, report: Path | None) -> None:
        # Files in a W&B run's folder are its files (synced with it); copies, not symlinks,
        # so the offline run stays whole when the run directory moves.
        for run in self.runs.values():
            shutil.copy2(run_dir / "config.yaml", Path(run.dir) / "config.yaml")
            if report is not None:
                shutil.copytree(report, Path(run.dir) / "report", dirs_exist_ok=True)

    def terminate(self, status: str) -> None:
        import wandb

        for run in self.runs.values():
            run.finish(exit_code=0 if status == "FINISHED" else 1)
        wandb.teardown()  # stops W&B's service process with the last run

    def _run_for(self, arm: str, seed: int) -> Any:
        import wandb

        assert self.run is not None and self.block.wandb is not None
        if (arm, seed) not in self.runs:
            w = self.block.wandb
            folder = Path(w.dir or self.run.run_dir)
            folder.mkdir(parents=True, exist_ok=True)
            self.runs[(arm, seed)] = wandb.init(
                project=w.project, entity=w.entity, mode=w.mode, dir=str(folder),
                id=re.sub(r"[^A-Za-z0-9_-]", "-", f"{self.run.run_id}-{arm}-seed-{seed}")[:128], resume="allow",
                name=f"{self.run.run_id}/{arm}/seed-{seed}", group=self.run.run_id, config=self.params(arm),
                tags=[arm, f"seed-{seed}"], reinit="create_new", settings=wandb.Settings(silent=True, console="off"),
            )
        return self.runs[(arm, seed)]


def _mlflow_key(name: str) -> str:
    """Metric names MLflow accepts (letters, digits, _ - . / space)."""
    return re.sub(r"[^A-Za-z0-9_\-./ ]", "_", name)
