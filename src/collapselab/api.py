"""The Python API: run, load and compare experiments from a notebook.

This is collapselab's stable surface (everything else is internal):

    import collapselab
    run = collapselab.run("configs/quickstart.yaml", overrides=["experiment.generations=2"])
    run.metrics(metric="perplexity")          # tidy DataFrame: arm, seed, generation, metric, value, version
    run.compare("perplexity")                 # arms side by side, one row per generation
    run.predictions("replace", 0)             # per-example rows of one generation
    run.synthetic("replace", 1)               # what generation 1 wrote, with provenance
    collapselab.load_run(run.run_id).report() # report.md / report.html
    collapselab.runs()                        # every recorded run

`run` is the engine `collapselab run` drives, with the same resume rules (running the same
config again continues its latest run). Bad input raises the project's named errors
(`collapselab.errors.CollapselabError` and its subclasses), with the message the CLI prints.
Reads go through the results database (`db`, else `$COLLAPSELAB_DB`, else the SQLite
default); per-example files are read from the run directory the database indexes.
Importing collapselab stays light: pandas, torch and transformers load on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from collapselab.config import ExperimentConfig
    from collapselab.lab.events import Listener

__all__ = ["Run", "load_run", "run", "runs"]


def run(
    config: str | Path | dict[str, Any] | ExperimentConfig,
    overrides: Sequence[str] | None = None,
    fresh: bool = False,
    db: str | None = None,
    *,
    run_id: str | None = None,
    restart_from_generation: int | None = None,
    listeners: Sequence[Listener] = (),
) -> Run:
    """Run an experiment, or continue its latest run from the first unfinished step.

    Args:
        config: A YAML path, a config dict, or an `ExperimentConfig`.
        overrides: `key.path=value` strings, as `--set` takes them.
        fresh: Start a new run instead of continuing the latest one.
        db: Results database URL.
        run_id: Continue (or create) this run instead of the latest one.
        restart_from_generation: Redo this generation and later (old results moved aside).
        listeners: Extra `collapselab.lab.events` listeners (progress bars render either way).

    Returns:
        The finished run.

    Raises:
        CollapselabError: A config key, data file, record, run directory, model or database
            that is wrong, with the one-line message the CLI prints.
    """
    from collapselab.checks import check_experiment
    from collapselab.engine import run_experiment
    from collapselab.report import up_to_date_report

    cfg = resolve_config(config, overrides)
    # All that the config gets wrong, at once and before any data is read; the engine checks
    # again once it has the human data and the model's positions.
    check_experiment(cfg, here=True, source=str(config) if isinstance(config, str | Path) else None)
    run_dir = run_experiment(cfg, fresh=fresh, run_id=run_id, restart_from=restart_from_generation, db_url=db, listeners=listeners,
                             write_report=up_to_date_report)  # the trackers log it when the run ends
    return Run(run_dir=run_dir, run_id=run_dir.name, db=db)


def resolve_config(config: str | Path | dict[str, Any] | ExperimentConfig, overrides: Sequence[str] | None = None) -> ExperimentConfig:
    """An `ExperimentConfig` from a path, a dict or a config, with `key.path=value` overrides."""
    from collapselab.config import (
        ExperimentConfig,
        apply_override,
        config_from_dict,
        load_config,
        parse_override,
    )

    if isinstance(config, str | Path):  # a YAML path, or a ready config's name ("quickstart")
        from collapselab.config.files import resolve_config as find_config

        return load_config(find_config(config), list(overrides or []))
    data = config.model_dump(mode="json") if isinstance(config, ExperimentConfig) else dict(config)
    for item in overrides or []:
        keys, value = parse_override(item)
        apply_override(data, keys, value)
    return config_from_dict(data)


def load_run(run_dir_or_id: str | Path, db: str | None = None) -> Run:
    """A recorded run, by its id or its run directory.

    Raises:
        StoreError: The run is not in the database (the message lists the known runs), or
            the database cannot be opened.
    """
    from collapselab.results import resolve_run_dir
    from collapselab.store import Store

    with Store(db) as store:
        run_id = store.resolve_run(run_dir_or_id)
    run_dir = Path(run_dir_or_id) if Path(run_dir_or_id, "manifest.json").is_file() else resolve_run_dir(run_id, db)
    return Run(run_dir=run_dir, run_id=run_id, db=db)


def runs(experiment: str | None = None, db: str | None = None) -> pd.DataFrame:
    """Every recorded run (id, experiment, task, created, git SHA, config hash, arms,
    generations recorded), oldest first; only `experiment`'s when given."""
    import pandas as pd

    from collapselab.store import Store

    with Store(db) as store:
        rows = store.list_runs()
    frame = pd.DataFrame(rows, columns=["run_id", "experiment", "task", "created", "git_sha", "config_hash", "generations", "arms"])
    if experiment is not None:
        frame = frame[frame["experiment"] == experiment].reset_index(drop=True)
    return frame


@dataclass(frozen=True)
class Run:
    """One run: its directory, its id and the database it is recorded in."""

    run_dir: Path
    run_id: str
    db: str | None = None

    @property
    def config(self) -> ExperimentConfig:
        """The run's resolved config (every default filled in)."""
        from collapselab.rundir.folders import load_run_config

        return load_run_config(self.run_dir)

    @property
    def manifest(self) -> dict[str, Any]:
        """The run's manifest: versions, git SHA, config hash, seeds, hardware, runtime."""
        from collapselab.store import Store

        with Store(self.db) as store:
            return store.run(self.run_id)["manifest"]

    def metrics(self, arm: str | None = None, metric: str | None = None) -> pd.DataFrame:
        """Every metric value, tidy: arm, seed, generation, metric, value, version,
        higher_is_better (arms in config order, then seed, generation, metric)."""
        import pandas as pd

        from collapselab.store import Store

        with Store(self.db) as store:
            rows = store.metrics(self.run_id, arm=arm, name=metric)
        cols = ["arm", "seed", "generation", "metric", "value", "version", "higher_is_better"]
        return pd.DataFrame([{**r, "metric": r["name"]} for r in rows], columns=cols)

    def compare(self, metric: str) -> pd.DataFrame:
        """Arms side by side for one metric: one row per generation, a column per arm (mean over seeds)."""
        import pandas as pd

        from collapselab.store import Store

        with Store(self.db) as store:
            return pd.DataFrame(store.compare_arms(self.run_id, metric)).set_index("generation")

    def question(self, example_id: str) -> pd.DataFrame:
        """One test example across generations: arm, seed, generation, prediction and its
        per-example scores as columns; `input` and `reference` in `.attrs`."""
        import pandas as pd

        from collapselab.store import Store

        with Store(self.db) as store:
            h = store.question_history(self.run_id, example_id)
        frame = pd.DataFrame([{k: v for k, v in x.items() if k != "scores"} | x["scores"] for x in h["history"]])
        frame.attrs.update(example_id=example_id, input=h["input"], reference=h["reference"])
        return frame

    def predictions(self, arm: str, generation: int, seed: int = 0) -> pd.DataFrame:
        """Per-example rows of one generation: example_id, input, reference, prediction and
        each per-example score as a column."""
        import pandas as pd

        from collapselab.results import finished_generation

        rows = finished_generation(self.run_dir, arm, seed, generation).read_predictions()
        return pd.DataFrame([{k: v for k, v in r.items() if k != "scores"} | r["scores"] for r in rows])

    def synthetic(self, arm: str, generation: int, seed: int = 0) -> pd.DataFrame:
        """What one generation wrote, one row per record with its provenance columns
        (id, source, generation, parent_id, generator) and, where computed, its per-record
        scores (e.g. `synthetic_perplexity` under the generation-0 model)."""
        import pandas as pd

        from collapselab.results import finished_generation
        from collapselab.rundir.generation import SYNTHETIC

        folder = finished_generation(self.run_dir, arm, seed, generation)
        frame = pd.DataFrame([r.to_dict() for r in folder.read_records(SYNTHETIC)])
        scores = folder.read_synthetic_scores()
        if folder.synthetic_scores.exists() and len(frame):
            per = pd.DataFrame([{"id": i, **s} for i, s in scores.items()])
            frame = frame.merge(per, on="id", how="left")
        return frame

    def report(self, out_dir: str | Path | None = None) -> Path:
        """Write report.md, a self-contained report.html and figures/; returns report.md's path."""
        from collapselab.report import write_report

        return write_report(self.run_dir, Path(out_dir) if out_dir is not None else None).markdown
