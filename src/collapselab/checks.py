"""Every cross-check of an experiment config, all problems at once.

The schema (`collapselab.config`) checks each block's fields and the checks between a
config's own fields; it knows no task. What a config means to the tasks, the metrics, the
models and the data is checked here, above them all, and every problem is reported in one
go (as torchtune's `validate` does), one line each, starting with the config key it is
about:

    config_problems(cfg)        what the registries say (a task's own keys, its data builders,
                                the training extras, metric names, the external reference):
                                the same on every machine
    check_experiment(cfg, ...)  raises `ConfigErrors` with all of those and, as asked, what
                                this machine lacks (a library, a GPU), what the human data
                                makes impossible (arm sizes) and what does not fit in the
                                model's positions

Callers: `collapselab config validate|show`, `collapselab.run` (before the engine starts),
the engine (once the human data and the tokenizer are ready, before any run directory is
touched) and the sweep planner (every grid point).
"""

from __future__ import annotations

from collections.abc import Sequence

from collapselab.config import ExperimentConfig, TrainingBlock
from collapselab.errors import ConfigErrors
from collapselab.lab import HumanData, Task
from collapselab.metrics import all_metrics, default_metrics, get_metric, metric_for_task
from collapselab.metrics.external import uses_reference
from collapselab.metrics.registry import METRICS_EXTRA, missing_libraries
from collapselab.metrics.sanity import gibberish_problems
from collapselab.models.loading import device
from collapselab.refinery.verifier import SEED_FILTERS
from collapselab.tasks import get_task

# Recipe keys that act only when the task supplies a validation split, a score and loss
# weights (`Task.training_extras`); their defaults leave them off.
TRAINING_EXTRAS = ("validation_share", "early_stopping_patience", "early_stopping_metric", "loss_weights")


def check_experiment(
    cfg: ExperimentConfig,
    *,
    here: bool = False,
    human: HumanData | None = None,
    max_positions: int | None = None,
    background: Sequence[str] | None = None,
    source: str | None = None,
) -> None:
    """Raise one `ConfigErrors` listing every problem of `cfg`, or return.

    Args:
        cfg: A config the schema accepted.
        here: Also what this machine lacks for it: a metric's library, a generation backend,
            a device for the precision.
        human: The prepared human data: also the arm sizes it cannot fill.
        max_positions: The model's longest sequence: also what does not fit in it.
        background: With `human`, the run's gibberish background text: also the metrics the
            run's data cannot calibrate (the gibberish scorer is fitted now, not after training).
        source: Where the config came from (a YAML path), named in the message.

    Raises:
        ConfigErrors: With `.problems`, one line per problem, each naming its config key.
    """
    problems = config_problems(cfg)
    if here:
        problems += _machine_problems(cfg)
    if human is not None:
        problems += _size_problems(cfg, human)
        if background is not None:
            problems += gibberish_problems(cfg, get_task(cfg.experiment.task), human.train, human.test, background)
    if max_positions is not None:
        problems += get_task(cfg.experiment.task).position_problems(cfg, max_positions)
    if problems:
        raise ConfigErrors(problems, source)


def config_problems(cfg: ExperimentConfig) -> list[str]:
    """Every problem the task, metric and model registries see in `cfg`, one line each
    naming its key; empty when there is none. Independent of the machine and the data."""
    task = get_task(cfg.experiment.task)
    problems = [
        f"arms.{i}.data: task {task.name!r} has no {arm.data!r} data builder"
        for i, arm in enumerate(cfg.arms)
        if arm.data != "human" and arm.data not in task.data_builders
    ]
    problems += task.config_problems(cfg)
    problems += _verify_problems(cfg, task)
    for key, recipe in (("training", cfg.training), ("model.pretrain", cfg.model.pretrain)):
        problems += _recipe_problems(cfg, task, key, recipe)
    return problems + _metric_problems(cfg, task)


def _verify_problems(cfg: ExperimentConfig, task: Task) -> list[str]:
    """`arms[].verify`: the refinery's filters judge question-answer records, and in the loop
    the filters that compare a record with the human seed would reject the right answers."""
    problems = []
    for i, arm in enumerate(cfg.arms):
        if not arm.verify:
            continue
        if not task.answers_questions:
            problems.append(f"arms.{i}.verify: the refinery's filters judge question-answer records; the {task.name} task writes texts")
        seeded = [f for f in cfg.refinery.filters.order if f in SEED_FILTERS]
        if seeded:
            problems.append(f"arms.{i}.verify: refinery.filters.order lists {seeded}, which compare a record with the human seed; "
                            "in the loop every record keeps its human question, so they would reject the right answers: "
                            "leave them out of refinery.filters.order")
    return problems


def _recipe_problems(cfg: ExperimentConfig, task: Task, key: str, recipe: TrainingBlock) -> list[str]:
    """The training extras of one recipe (`training` or `model.pretrain`)."""
    if not task.training_extras:
        return [
            f"{key}.{f}: the {task.name} task has no validation split or loss weights"
            for f in TRAINING_EXTRAS
            if getattr(recipe, f) != TrainingBlock.model_fields[f].default
        ]
    problems = []
    if recipe.early_stopping_patience is not None and recipe.validation_share == 0:
        problems.append(f"{key}.early_stopping_patience: needs {key}.validation_share > 0 (a split to stop on)")
    if recipe.early_stopping_metric != "loss":
        if recipe.validation_share == 0:
            problems.append(f"{key}.early_stopping_metric: {recipe.early_stopping_metric!r} needs {key}.validation_share > 0")
        problems += _early_stopping_metric_problems(key, recipe.early_stopping_metric, task)
    if recipe.loss_weights != "uniform":
        if key == "model.pretrain":
            problems.append(f"{key}.loss_weights: the base trains on human answers only, where every weight is 1")
        for i, arm in enumerate(cfg.arms):
            if arm.data != "human":
                problems.append(f"{key}.loss_weights: {recipe.loss_weights!r} scores answers against their human "
                                f"question's; arms.{i}.data {arm.data!r} has none")
    return problems


def _early_stopping_metric_problems(key: str, name: str, task: Task) -> list[str]:
    """Early stopping scores the validation split's answers alone (no synthetic data, no
    reference model) and keeps the highest score."""
    try:
        metric = metric_for_task(name, task)
    except (KeyError, ValueError) as e:
        return [f"{key}.early_stopping_metric: {e.args[0]}"]
    problems = []
    if set(metric.needs) != {"predictions"}:
        problems.append(f"{key}.early_stopping_metric: {name!r} needs {list(metric.needs)}; "
                        "the validation split has answers only")
    if not metric.higher_is_better:
        problems.append(f"{key}.early_stopping_metric: {name!r} is lower-is-better; early stopping keeps the highest")
    return problems


def _metric_problems(cfg: ExperimentConfig, task: Task) -> list[str]:
    """`evaluation.metrics`: names the registry knows for this task, and external-reference
    metrics the reference settings allow."""
    problems = []
    for i, name in enumerate(cfg.evaluation.metrics or []):
        try:
            metric_for_task(name, task)
        except (KeyError, ValueError) as e:
            problems.append(f"evaluation.metrics.{i}: {e.args[0]}")
            continue
        if not uses_reference(name):
            continue
        if cfg.evaluation.reference_model is None:
            problems.append(f"evaluation.metrics.{i}: {name!r} is scored by the external reference, and "
                            "evaluation.reference_model is null")
        elif get_metric(name).scope == "run":
            problems.append(f"evaluation.metrics.{i}: {name!r} is computed once per run whenever the reference model is "
                            "loaded (run_metrics.json); list only per-generation metrics")
    return problems


def _machine_problems(cfg: ExperimentConfig) -> list[str]:
    """What this machine lacks: a library a metric needs (it would fail after training), the
    generation backend asked for, a device that makes the precision sensible."""
    from collapselab.generation import generation_backend
    from collapselab.generation.sampling import GenerationError

    task = get_task(cfg.experiment.task)
    names = [n for n in cfg.evaluation.metrics or default_metrics(task) if n in all_metrics()]  # unknown ones: config_problems
    chosen = "evaluation.metrics" if cfg.evaluation.metrics else f"evaluation.metrics (the {task.name} defaults)"
    needing: dict[str, list[str]] = {}  # missing library -> the metrics that need it
    for name, module in missing_libraries(names):
        needing.setdefault(module, []).append(repr(name))
    problems = [f"{chosen}: metric{'s' * (len(ms) > 1)} {', '.join(ms)} need{'s' * (len(ms) == 1)} the {module} library, "
                f"which is not installed: {METRICS_EXTRA}" for module, ms in needing.items()]
    try:
        generation_backend(cfg.decoding)
    except GenerationError as e:
        problems.append(str(e))
    for key, recipe in (("training", cfg.training), ("model.pretrain", cfg.model.pretrain)):
        if recipe.precision == "bf16" and device() == "cpu":
            problems.append(f"{key}.precision: bf16 on a CPU is ~150x slower than fp32; use auto or fp32")
    return problems


def _size_problems(cfg: ExperimentConfig, human: HumanData) -> list[str]:
    """Arm sizes the human pool (and one generation's synthetic set, as large) cannot fill."""
    n = len(human.train)
    problems = []
    for i, arm in enumerate(cfg.arms):
        size = arm.size or n
        if arm.mix == "ratio" and (round(arm.ratio * size) > n or size - round(arm.ratio * size) > n):
            problems.append(f"arms.{i}.size: {size} at ratio {arm.ratio} needs more than the {n} human (or synthetic) records a generation has")
        if arm.mix == "accumulate_subsample" and size > 2 * n:
            problems.append(f"arms.{i}.size: {size} is larger than generation 1's accumulated pool ({2 * n} records)")
    return problems
