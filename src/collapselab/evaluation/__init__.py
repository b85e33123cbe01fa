"""A model scored on a task's held-out human test set, outside any run (`collapselab evaluate`).

Any model collapselab loads (a catalogue name, a local HF folder, a name under
$COLLAPSELAB_MODELS, a hub id, a run's generation, a learner's checkpoint) is scored exactly
as a generation is: the same test set drawn from the same config keys (`data.dataset`,
`data.test_size`, `data.split_seed`), the same prompts, the same greedy shared-prefix
decoding and the same metrics (`engine.score_model`, the engine's own scoring step). So a
pretrained model's numbers here equal generation 0's zero-shot baseline of a run with the
same data keys, and a run's generation evaluated on its run's own test set gives its own
metrics.json again.

    <out>/
      config.yaml           the resolved config the evaluation read (model, data, prompts, evaluation)
      predictions.parquet   one row per test example, as a generation's
      metrics.json          `rundir.metrics_file.ModelEvaluation`
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapselab.checks import check_experiment
from collapselab.config import ExperimentConfig, dump_config
from collapselab.engine import human_pools, score_model
from collapselab.errors import RunError
from collapselab.lab import Lab
from collapselab.lab.starts import load_for_inference
from collapselab.metrics.external import load_reference
from collapselab.metrics.sanity import gibberish_background
from collapselab.models.loading import load_tokenizer, max_positions
from collapselab.models.prompts import prompt_format
from collapselab.records import atomic_write_text
from collapselab.rundir.folders import load_run_config, runtime
from collapselab.rundir.generation import METRICS, PREDICTIONS, GenerationFolder, write_predictions
from collapselab.rundir.metrics_file import ModelEvaluation, write_metrics_file
from collapselab.seeds import step_seed
from collapselab.tasks import get_task, mcq

__all__ = ["ModelEvaluation", "evaluate_model", "generation_config", "model_config"]


@dataclass(frozen=True, slots=True)
class GenerationSource:
    """Which generation of which run the evaluated model is."""

    run_dir: Path
    arm: str
    seed: int
    generation: int

    def describe(self) -> dict[str, Any]:
        return {"run": str(self.run_dir), "arm": self.arm, "seed": self.seed, "generation": self.generation}


def model_config(model: str, task: str, dataset: str, *, path: str | None = None, test_size: int | None = None,
                 metrics: list[str] | None = None, split_seed: int = 0) -> ExperimentConfig:
    """The config of an evaluation of `model` outside any run: the defaults of every key the
    command line does not name, as a run with only these keys set would have them."""
    data: dict[str, Any] = {"dataset": dataset, "split_seed": split_seed}
    if path is not None:
        data["path"] = path
    if test_size is not None:
        data["test_size"] = test_size
    return ExperimentConfig.model_validate({
        "experiment": {"name": "evaluate", "task": task, "generations": 1},
        "data": data, "model": {"name": model}, "evaluation": {"metrics": metrics},
        "arms": [{"name": "evaluate"}],
    })


def generation_config(run_dir: Path, arm: str, generation: int, seed: int | None = None, *, dataset: str | None = None,
                      path: str | None = None, test_size: int | None = None,
                      metrics: list[str] | None = None) -> tuple[ExperimentConfig, GenerationSource]:
    """The config of an evaluation of a run's generation: the run's own config (its prompts,
    decoding length, metrics) with the model set to that generation's saved model, and the
    data keys given here in place of the run's (a different test set)."""
    cfg = load_run_config(run_dir)
    seed = cfg.experiment.seeds[0] if seed is None else seed
    folder = GenerationFolder(run_dir, arm, seed, generation)
    arms = [a.name for a in cfg.arms]
    if arm not in arms:
        raise RunError(f"--arm {arm!r}: run {run_dir} has arms {', '.join(arms)}")
    if seed not in cfg.experiment.seeds:
        raise RunError(f"--seed {seed}: run {run_dir} has seeds {', '.join(map(str, cfg.experiment.seeds))}")
    if not (folder.model / "config.json").is_file():
        raise RunError(f"--generation {generation}: {folder.model} holds no saved model (the generation is {folder.status()})")
    data = cfg.data.model_dump()
    if dataset is not None:  # another dataset: none of the run's file path
        data.update(dataset=dataset, path=None)
    if path is not None:
        data["path"] = path
    if test_size is not None:
        data["test_size"] = test_size
    evaluation = cfg.evaluation.model_dump()
    if metrics is not None:
        evaluation["metrics"] = metrics
    # the generation's saved folder holds its weights and its tokenizer (a scratch run's BPE too)
    model = {**cfg.model.model_dump(), "name": str(folder.model), "lora": None}
    resolved = ExperimentConfig.model_validate({**cfg.model_dump(), "data": data, "evaluation": evaluation, "model": model,
                                                "hub": None, "notify": None, "tracking": None, "sweep": None})
    return resolved, GenerationSource(run_dir, arm, seed, generation)


def evaluate_model(cfg: ExperimentConfig, out: Path, *, source: GenerationSource | None = None) -> ModelEvaluation:
    """Score `cfg.model.name` on the held-out human test set of `cfg`'s data keys and write
    `out/` (predictions.parquet, metrics.json, config.yaml).

    Args:
        cfg: An evaluation's config (`model_config`, `generation_config`, or a run's).
        out: The folder to write (created; files in it are replaced).
        source: The run generation the model is, recorded in metrics.json.

    Returns:
        What metrics.json holds.
    """
    task = get_task(cfg.experiment.task)
    pools = human_pools(cfg, task)
    name = cfg.model.name
    tokenizer = load_tokenizer(name)  # a run's generation folder holds its own, a scratch BPE included
    human = task.prepare_human(cfg, pools, tokenizer)
    positions = max_positions(name, tokenizer)
    background = gibberish_background(cfg, task)
    check_experiment(cfg, here=True, human=human, tokenizer=tokenizer, max_positions=positions, background=background)
    reference = load_reference(cfg, task)
    mmlu = mcq.questions(cfg.evaluation.mmlu) if cfg.evaluation.mmlu is not None else None
    out.mkdir(parents=True, exist_ok=True)
    lab = Lab(cfg, task, out, human, tokenizer, positions, task.max_new_tokens(cfg), prompt_format(tokenizer, cfg.prompts),
              reference, background, mmlu)

    t0 = time.perf_counter()
    model = load_for_inference(lab, name)
    # A generation's seed at generation 0: greedy answers do not depend on it, sampled ones
    # (an lm's continuations) are drawn as the engine draws them.
    seed = step_seed(cfg.experiment.seeds[0], 0 if source is None else source.generation, "evaluate")
    result = score_model(lab, model, model, None, seed)  # no synthetic data: only what scores the test set
    doc = ModelEvaluation.model_validate({
        "model": name, "task": task.name, "dataset": cfg.data.dataset, "data_path": cfg.data.path,
        "test_examples": len(human.test), "split_seed": cfg.data.split_seed,
        "generation": None if source is None else source.describe(), "metrics": result.metrics,
        "seconds": time.perf_counter() - t0, "runtime": runtime(cfg.decoding),
    })
    write_predictions(out / PREDICTIONS, result.predictions)
    write_metrics_file(out / METRICS, doc)
    atomic_write_text(out / "config.yaml", dump_config(cfg))
    return doc
