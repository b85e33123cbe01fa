"""Run a claim and write its verdicts into the run directory.

    claim = load_claim("gerstgrasser")
    cfg_path, cfg = prepare(claim, overrides, gpu=False)   # the claim checked against its config
    run_dir = run_experiment(cfg, ...)                       # continues the config's latest run
    result = evaluate_claim(claim, run_dir, size="laptop")
    write_reproduction(run_dir, result)                      # <run_dir>/reproduction.json

`run_claim` does all of it (as `collapselab reproduce NAME` does, without its tables).
reproduction.json holds everything the run's report and the `--all` page show, so they read
the file, never the run again; one entry per claim run on this run directory (two claims
may share a run: gerstgrasser and kazdan do):

    {"claims": {name: result}}, a result being
    {"claim", "title", "paper": {...}, "reference", "setting", "notes", "cost",
     "size": "laptop" | "paper", "config", "overrides", "run_dir", "run_id", "git_sha", "date",
     "metric", "seeds", "verdict", "checks": [CheckResult...], "figures": [the paper's numbers],
     "curves": {metric: {arm: [{"generation", "mean", "ci_low", "ci_high", "n"}]}}}
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collapselab.checks import check_experiment
from collapselab.config import ExperimentConfig, load_config
from collapselab.errors import ConfigErrors, RunError
from collapselab.lab.events import Listener
from collapselab.metrics.stats import summarize
from collapselab.records import atomic_write_json
from collapselab.reproduce.claims import Claim, claim_problems
from collapselab.reproduce.verdicts import claim_verdict, evaluate_check
from collapselab.results import RunData, load_run
from collapselab.textio import read_json

REPRODUCTION = "reproduction.json"  # beside the run's manifest.json


def prepare(claim: Claim, overrides: Sequence[str] = (), gpu: bool = False) -> tuple[Path, ExperimentConfig]:
    """The claim's config (laptop size, or paper size with `gpu`) with `overrides`, checked
    against the claim before anything runs.

    Raises:
        ConfigErrors: Every check term or figure the config cannot answer (an arm it lacks, a
            generation it does not run), one line each naming the claim file and the check.
    """
    path = claim.config_path(gpu)
    cfg = load_config(path, list(overrides))
    problems = claim_problems(claim, cfg)
    if problems:
        raise ConfigErrors(problems, claim.source)
    return path, cfg


def run_claim(claim: Claim, overrides: Sequence[str] = (), *, gpu: bool = False, fresh: bool = False,
              db: str | None = None, listeners: Sequence[Listener] = ()) -> dict[str, Any]:
    """Run (or continue) the claim's config, then compute and write its verdicts.

    Returns:
        What reproduction.json holds.
    """
    from collapselab.engine import run_experiment

    path, cfg = prepare(claim, overrides, gpu)
    check_experiment(cfg, here=True, source=str(path))
    run_dir = run_experiment(cfg, fresh=fresh, db_url=db, listeners=listeners)
    result = evaluate_claim(claim, run_dir, size="paper" if gpu else "laptop", config=claim.paper_config if gpu else claim.config,
                            overrides=overrides)
    write_reproduction(run_dir, result)
    return result


def evaluate_claim(claim: Claim, run_dir: Path, *, size: str, config: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The claim's verdicts on the finished (or partly finished) run in `run_dir`."""
    run = load_run(run_dir)
    checks = [evaluate_check(run, c, claim).to_dict() for c in claim.checks]
    return {
        "claim": claim.name, "title": claim.title, "paper": claim.paper.model_dump(), "reference": claim.paper.reference(),
        "setting": claim.setting, "notes": claim.notes, "cost": claim.cost.model_dump(),
        "size": size, "config": config, "overrides": list(overrides),
        "run_dir": str(run_dir), "run_id": run.manifest["run_id"], "git_sha": run.manifest.get("git_sha"),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "metric": claim.metric, "seeds": run.seeds, "verdict": claim_verdict([c["verdict"] for c in checks]),
        "checks": checks,
        "figures": [{**f.model_dump(), "metric": f.metric or claim.metric} for f in claim.figures],
        "curves": {m: curves(run, m) for m in claim.metrics()},
    }


def curves(run: RunData, metric: str) -> dict[str, list[dict[str, Any]]]:
    """arm -> per finished generation: the metric's mean over seeds and its 95 % interval."""
    out: dict[str, list[dict[str, Any]]] = {}
    for arm in run.arms:
        points = []
        for g in range(run.cfg.experiment.generations):
            values = run.values(arm, g, metric)
            if values:
                s = summarize(values)
                points.append({"generation": g, "mean": s.mean, "ci_low": s.ci_low, "ci_high": s.ci_high, "n": s.n})
        if points:
            out[arm] = points
    return out


def write_reproduction(run_dir: Path, result: dict[str, Any]) -> Path:
    """Write (or replace) the claim's entry of `<run_dir>/reproduction.json`, atomically; the
    entries of other claims on the same run stay. Returns the file's path."""
    path = run_dir / REPRODUCTION
    entries = {r["claim"]: r for r in read_reproduction(run_dir) or []}
    entries[result["claim"]] = result
    atomic_write_json(path, {"claims": dict(sorted(entries.items()))})
    return path


def read_reproduction(run_dir: Path) -> list[dict[str, Any]] | None:
    """The verdicts of every claim run on this run (by claim name), or None when the run was
    not run as a claim."""
    path = run_dir / REPRODUCTION
    if not path.is_file():
        return None
    data = read_json(path, error=RunError)
    claims = data.get("claims") if isinstance(data, dict) else None
    if not isinstance(claims, dict) or not all(isinstance(r, dict) and isinstance(r.get("checks"), list) for r in claims.values()):
        raise RunError(f"{path}: not a reproduction record ({{'claims': {{name: {{'checks': [...], ...}}}}}})")
    return list(claims.values())


def failed(claim: Claim, error: BaseException, *, size: str) -> dict[str, Any]:
    """A claim whose run failed, as the `--all` page shows it (no checks measured)."""
    return {
        "claim": claim.name, "title": claim.title, "paper": claim.paper.model_dump(), "reference": claim.paper.reference(),
        "setting": claim.setting, "notes": claim.notes, "cost": claim.cost.model_dump(), "size": size,
        "verdict": "failed", "error": f"{type(error).__name__}: {' '.join(str(error).split())}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "checks": [],
        "figures": [{**f.model_dump(), "metric": f.metric or claim.metric} for f in claim.figures],
        "metric": claim.metric, "curves": {},
    }
