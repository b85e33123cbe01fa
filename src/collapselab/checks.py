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

import copy
import difflib
import itertools
import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

from collapselab.config import (
    DECODING_ROLES,
    DecodingBlock,
    ExperimentConfig,
    TrainingBlock,
    apply_override,
    config_from_dict,
)
from collapselab.datasets.registry import DATASETS
from collapselab.datasets.resolve import OFFLINE_VARS
from collapselab.errors import ConfigError, ConfigErrors
from collapselab.lab import HumanData, Task
from collapselab.metrics import all_metrics, default_metrics, get_metric, metric_for_task
from collapselab.metrics.external import uses_reference, wanted
from collapselab.metrics.mmlu import SUBJECT_GROUP
from collapselab.metrics.registry import (
    METRICS_EXTRA,
    computed_metric_names,
    metric_info,
    missing_libraries,
)
from collapselab.metrics.sanity import gibberish_problems
from collapselab.models.catalogue import CATALOGUE, hub_id
from collapselab.models.loading import device, found_without_hub
from collapselab.refinery.verifier import SEED_FILTERS
from collapselab.tasks import get_task

# Recipe keys that act only when the task supplies a validation split, a score and loss
# weights (`Task.training_extras`); their defaults leave them off.
TRAINING_EXTRAS = ("validation_share", "early_stopping_patience", "early_stopping_metric", "early_stopping_min_delta",
                   "eval_every", "loss_weights")
# Decoding keys only sampling reads: with greedy or beam search they would be ignored.
SAMPLING_ONLY = ("temperature", "top_p", "top_k")


def check_experiment(
    cfg: ExperimentConfig,
    *,
    here: bool = False,
    human: HumanData | None = None,
    tokenizer: Any = None,
    max_positions: int | None = None,
    background: Sequence[str] | None = None,
    source: str | None = None,
) -> None:
    """Raise one `ConfigErrors` listing every problem of `cfg`, or return.

    Args:
        cfg: A config the schema accepted.
        here: Also what this machine lacks for it: a metric's library, a generation backend,
            a device for the precision.
        human: The prepared human data: also the arm sizes it cannot fill, and what the task
            cannot score in it (with `tokenizer`, the run's).
        tokenizer: With `human`, the tokenizer the run prepared it with.
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
        if tokenizer is not None:
            problems += get_task(cfg.experiment.task).data_problems(cfg, human, tokenizer)
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
    problems += _experiment_problems(cfg) + _data_problems(cfg, task)
    problems += task.config_problems(cfg)
    problems += _verify_problems(cfg, task)
    problems += _model_problems(cfg)
    for key, recipe in (("training", cfg.training), ("model.pretrain", cfg.model.pretrain)):
        problems += _recipe_problems(cfg, task, key, recipe)
    problems += _decoding_problems(cfg)
    problems += _arm_problems(cfg) + _generator_problems(cfg, task)
    return problems + _metric_problems(cfg, task)


def _verify_problems(cfg: ExperimentConfig, task: Task) -> list[str]:
    """`arms[].verify`: the refinery's filters judge question-answer records, and in the loop
    the filters that compare a record with the human seed would reject the right answers."""
    problems = []
    for i, arm in enumerate(cfg.arms):
        if not arm.verify:
            continue
        if not task.answers_questions:
            problems.append(f"arms.{i}.verify: True, but the refinery's filters judge question-answer records; the {task.name} task writes texts")
        seeded = [f for f in cfg.refinery.filters.order if f in SEED_FILTERS]
        if seeded:
            problems.append(f"arms.{i}.verify: True, and refinery.filters.order lists {seeded}, which compare a record with the human seed; "
                            "in the loop every record keeps its human question, so they would reject the right answers: "
                            "leave them out of refinery.filters.order")
    return problems


def _experiment_problems(cfg: ExperimentConfig) -> list[str]:
    """A seed listed twice would run into the same seed folders twice; every point of a sweep
    grid must make a valid config (the planner checks each against the tasks too)."""
    seeds = cfg.experiment.seeds
    problems = [f"experiment.seeds: {s} is listed twice in {seeds}" for s, n in Counter(seeds).items() if n > 1]
    grid = cfg.sweep.grid if cfg.sweep is not None else {}
    problems += [f"sweep.grid.{key}: no values" for key, values in grid.items() if not values]
    if not grid or not all(grid.values()):
        return problems
    base = cfg.model_dump(mode="json", exclude={"sweep"})
    for point in itertools.product(*grid.values()):
        data = copy.deepcopy(base)
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in zip(grid, point, strict=True))
        try:
            for key, value in zip(grid, point, strict=True):
                apply_override(data, key.split("."), value, name=f"sweep.grid.{key}")
            config_from_dict(data, source=f"sweep.grid: {shown}")
        except ConfigErrors as e:
            problems += [f"sweep.grid: {shown}: {p}" for p in e.problems]
        except ConfigError as e:
            problems.append(str(e))
    return problems


def _data_problems(cfg: ExperimentConfig, task: Task) -> list[str]:
    """The dataset names the registry knows, and records with the fields the task reads."""
    problems = []
    d = cfg.data
    source = DATASETS.get(d.dataset)
    if source is None:
        problems.append(f"data.dataset: unknown dataset {d.dataset!r}; known: {', '.join(DATASETS)}")
    elif source.fields is not None and not set(task.record_fields) <= set(source.fields):
        problems.append(f"data.dataset: {d.dataset!r} records have {list(source.fields)}; task {task.name!r} needs "
                        f"{list(task.record_fields)}")
    elif source.folder is None and d.path is None:
        problems.append(f"data.path: None, but dataset {d.dataset!r} needs one: a .jsonl/.csv/.parquet records file or a "
                        "folder with train.* and test.*")
    background = cfg.evaluation.gibberish_background
    if background is not None and background not in DATASETS:
        problems.append(f"evaluation.gibberish_background: unknown dataset {background!r}; known: {', '.join(DATASETS)}")
    if d.topic is not None and d.topic.mmlu_subject not in SUBJECT_GROUP:
        problems.append(f"data.topic.mmlu_subject: unknown MMLU subject {d.topic.mmlu_subject!r}")
    return problems


def _model_problems(cfg: ExperimentConfig) -> list[str]:
    """A scratch model's shape must build: heads that split the width evenly (and, for
    llama's rotary positions, into an even number of dims each)."""
    if cfg.model.name != "scratch":
        return []
    a = cfg.model.scratch
    if a.d_model % a.n_heads:
        return [f"model.scratch.n_heads: {a.n_heads} heads do not divide model.scratch.d_model {a.d_model}; "
                "use a divisor of d_model"]
    if a.architecture == "llama" and (a.d_model // a.n_heads) % 2:
        return [f"model.scratch.n_heads: {a.n_heads} heads of model.scratch.d_model {a.d_model} get {a.d_model // a.n_heads} "
                "dims each; llama's rotary positions need an even number"]
    return []


def _decoding_problems(cfg: ExperimentConfig) -> list[str]:
    """Sampling settings that greedy or beam search would silently ignore, in `decoding` and
    in each role's block; a role block no arm of the run generates in."""
    problems = []
    dec = cfg.decoding
    if dec.method != "sample":
        problems += [f"decoding.{f}: {getattr(dec, f)!r} is read by sampling only; decoding.method is {dec.method!r}"
                     for f in SAMPLING_ONLY if getattr(dec, f) != DecodingBlock.model_fields[f].default
                     and not any(getattr(dec, r) is not None and getattr(dec, r).method == "sample" for r in DECODING_ROLES)]
    for role in DECODING_ROLES:
        own = getattr(dec, role)
        if own is None:
            continue
        resolved = dec.for_role(role)
        if resolved.method != "sample":
            problems += [f"decoding.{role}.{f}: {getattr(own, f)!r} is read by sampling only; this role decodes by {resolved.method!r}"
                         for f in SAMPLING_ONLY if getattr(own, f) is not None]
        # every generation writes (the last one's data is measured), so only the refinery's roles can go unread
        builder = {"contamination": "contaminated", "synthesis": "synthetic"}.get(role)
        if builder is not None and not any(a.data == builder for a in cfg.arms):
            problems.append(f"decoding.{role}: set, but no arm has data {builder!r}; nothing decodes in this role")
    return problems


def _arm_problems(cfg: ExperimentConfig) -> list[str]:
    """Sizes only some mix policies read; schedule steps that are out of order, never reached,
    incomplete or change nothing."""
    problems = []
    generations = cfg.experiment.generations
    for i, arm in enumerate(cfg.arms):
        if arm.size is not None and arm.mix not in ("ratio", "accumulate_subsample"):
            problems.append(f"arms.{i}.size: {arm.size} is read by mix ratio and accumulate_subsample only; "
                            f"arms.{i}.mix is {arm.mix!r}")
        before = arm
        for j, step in enumerate(arm.schedule):
            key = f"arms.{i}.schedule.{j}"
            if j and step.generation <= arm.schedule[j - 1].generation:
                problems.append(f"{key}.generation: {step.generation} does not come after {key[:-len(str(j))]}{j - 1}.generation "
                                f"{arm.schedule[j - 1].generation}; list the steps in increasing generation order")
            if step.generation >= generations:
                problems.append(f"{key}.generation: {step.generation} is never reached; experiment.generations is {generations} "
                                f"(g = 0..{generations - 1})")
            if step.mix == "ratio" and step.ratio is None:
                problems.append(f"{key}.ratio: required when {key}.mix is 'ratio'")
            if step.mix != "ratio" and step.ratio is not None:
                problems.append(f"{key}.ratio: only meaningful with mix 'ratio', got mix {step.mix!r} and ratio {step.ratio}")
            if step.size is not None and step.mix not in ("ratio", "accumulate_subsample"):
                problems.append(f"{key}.size: {step.size} is read by mix ratio and accumulate_subsample only; {key}.mix is {step.mix!r}")
            if (step.mix, step.ratio, step.size) == (before.mix, before.ratio, before.size):
                problems.append(f"{key}: mix {step.mix!r} (ratio {step.ratio}, size {step.size}) is already the arm's policy "
                                f"before generation {step.generation}; the step changes nothing")
            before = step
    return problems


def _generator_problems(cfg: ExperimentConfig, task: Task) -> list[str]:
    """`refinery.generator_*`: read only by the refinery's builders and by arms whose writer is
    the generator; a second model must be a pretrained one (a scratch model is the trained
    model's own base)."""
    r = cfg.refinery
    problems = []
    users = [a for a in cfg.arms if a.data != "human" or a.writer == "generator"]
    if r.generator_model == "scratch":
        problems.append("refinery.generator_model: 'scratch' is no second model; name a pretrained causal LM, or null for "
                        "the trained model's own base")
    if not users:
        nobody = "no arm has data 'contaminated' or 'synthetic' or writer 'generator'; nothing would use it"
        if r.generator_model is not None:
            problems.append(f"refinery.generator_model: {r.generator_model!r}, but {nobody}")
        if not r.generator_fine_tune:
            problems.append(f"refinery.generator_fine_tune: False, but {nobody}")
    if r.generator_fine_tune and not task.data_builders:
        # the generator learns the refinery's QA and question-generation formats
        problems += [f"arms.{i}.writer: 'generator' is fine-tuned on the human seed in the refinery's QA formats, which the "
                     f"{task.name} task has not; set refinery.generator_fine_tune: false (it writes as it is)"
                     for i, a in enumerate(cfg.arms) if a.writer == "generator"]
    return problems


def _recipe_problems(cfg: ExperimentConfig, task: Task, key: str, recipe: TrainingBlock) -> list[str]:
    """The training extras of one recipe (`training` or `model.pretrain`)."""
    if not task.training_extras:
        return [
            f"{key}.{f}: {getattr(recipe, f)!r}: the {task.name} task has no validation split or loss weights"
            for f in TRAINING_EXTRAS
            if getattr(recipe, f) != TrainingBlock.model_fields[f].default
        ]
    problems = []
    if recipe.early_stopping_patience is not None and recipe.validation_share == 0:
        problems.append(f"{key}.early_stopping_patience: {recipe.early_stopping_patience} needs {key}.validation_share > 0 (a split to stop on)")
    if recipe.eval_every is not None and recipe.validation_share == 0:
        problems.append(f"{key}.eval_every: {recipe.eval_every} needs {key}.validation_share > 0 (a split to validate on)")
    if recipe.early_stopping_min_delta != 0 and recipe.early_stopping_patience is None:
        problems.append(f"{key}.early_stopping_min_delta: {recipe.early_stopping_min_delta} is read by early stopping "
                        f"only; {key}.early_stopping_patience is null")
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
    listed = cfg.evaluation.metrics
    if listed is not None and not listed:
        problems.append("evaluation.metrics: [] scores nothing; list metrics, or null for the task's defaults")
    for i, name in enumerate(listed or []):
        if name in listed[:i]:
            problems.append(f"evaluation.metrics.{i}: {name!r} is listed twice")
            continue
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
    # Metric names other blocks refer to: the one a sweep report plots, those a notification
    # shows (the task checks its own: qa's refinery.success.metric).
    named = [("sweep.metric", cfg.sweep.metric)] if cfg.sweep is not None and cfg.sweep.metric is not None else []
    for key, name in named:
        try:
            metric_for_task(name, task)
        except (KeyError, ValueError) as e:
            problems.append(f"{key}: {e.args[0]}")
    for i, name in enumerate(cfg.notify.metrics or [] if cfg.notify is not None else []):
        problem = _recorded_metric_problem(name, task)
        if problem is not None:
            problems.append(f"notify.metrics.{i}: {problem}")
    mmlu = cfg.evaluation.mmlu
    if mmlu is not None:
        problems += [f"evaluation.mmlu.subjects.{i}: unknown MMLU subject {s!r}" for i, s in enumerate(mmlu.subjects) if s not in SUBJECT_GROUP]
        problems += [f"evaluation.mmlu.formats.{i}: {f!r} is listed twice" for i, f in enumerate(mmlu.formats) if f in mmlu.formats[:i]]
    return problems


def _recorded_metric_problem(name: str, task: Task) -> str | None:
    """What is wrong with naming `name` as a metric a generation records: one the task scores,
    or one the engine adds beside them (zero_shot_f1, collapse_stage, mmlu_accuracy ...)."""
    try:
        metric_for_task(name, task)
        return None
    except ValueError as e:  # a metric of another task
        return str(e.args[0])
    except KeyError:
        pass
    try:
        metric_info(name)
        return None
    except KeyError:
        close = difflib.get_close_matches(name, sorted({*all_metrics(), *computed_metric_names()}), n=1, cutoff=0.6)
        return f"unknown metric {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")


def _machine_problems(cfg: ExperimentConfig) -> list[str]:
    """What this machine lacks: a library a metric needs (it would fail after training), the
    generation backend asked for, a device that makes the precision sensible, a model it
    cannot load with the hub off."""
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
    return problems + _model_name_problems(cfg, task)


def _model_name_problems(cfg: ExperimentConfig, task: Task) -> list[str]:
    """Model names this machine cannot load with the hub off (a hub id is looked up when the
    model loads, before any run directory; offline, a name not found here never loads)."""
    off = [v for v in OFFLINE_VARS if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")]
    if not off:
        return []
    named = [("model.name", cfg.model.name)] if cfg.model.name != "scratch" else []
    if cfg.refinery.generator_model not in (None, "scratch") and any(a.data != "human" or a.writer == "generator" for a in cfg.arms):
        named.append(("refinery.generator_model", cfg.refinery.generator_model))
    if all(n in all_metrics() for n in cfg.evaluation.metrics or []) and wanted(cfg, task):  # unknown ones: config_problems
        named.append(("evaluation.reference_model", cfg.evaluation.reference_model))
    return [f"{key}: {name!r}{_stands_for(name)} is not a catalogue name ({', '.join(CATALOGUE)}), a local folder, a $COLLAPSELAB_MODELS name "
            f"or a cached hub model, and the hub is off ({off[0]}={os.environ[off[0]]})"
            for key, name in named if not found_without_hub(name)]


def _stands_for(name: str) -> str:
    """` (hub id X)` for a short name (`HUB_ALIASES`), else nothing."""
    return f" (hub id {hub_id(name)})" if hub_id(name) != name else ""


def _size_problems(cfg: ExperimentConfig, human: HumanData) -> list[str]:
    """Arm sizes the human pool (and one generation's synthetic set, as large) cannot fill."""
    n = len(human.train)
    problems = []
    if n < 2:  # one generation's synthetic texts are compared with each other (self-BLEU, duplicates)
        problems.append(f"data.train_size: the human training pool holds {n} record{'s' * (n != 1)}; a generation needs at least 2")
    if not human.test:
        problems.append("data.test_size: the held-out human test set is empty")
    for i, arm in enumerate(cfg.arms):
        policies = [(f"arms.{i}", arm, 1)] + [(f"arms.{i}.schedule.{j}", step, step.generation) for j, step in enumerate(arm.schedule)]
        for key, policy, first in policies:
            size = policy.size or n
            if policy.mix == "ratio" and policy.ratio is not None and (round(policy.ratio * size) > n or size - round(policy.ratio * size) > n):
                problems.append(f"{key}.size: {size} at ratio {policy.ratio} needs more than the {n} human (or synthetic) records a generation has")
            # the smallest accumulated pool the policy draws from: at its first generation, human + `first` synthetic sets
            if policy.mix == "accumulate_subsample" and size > (first + 1) * n:
                problems.append(f"{key}.size: {size} is larger than generation {first}'s accumulated pool ({(first + 1) * n} records)")
    return problems
