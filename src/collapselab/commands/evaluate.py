"""`collapselab evaluate`: score a model or a run's generation on a task's held-out human test set."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from collapselab.commands.results import DB_HELP
from collapselab.commands.run import _output


def evaluate(
    model: Annotated[str | None, typer.Argument(help="A catalogue name (smollm2-135m-instruct), a local HF folder (a learner's checkpoint), a name under $COLLAPSELAB_MODELS or a hub id; omit with --run.", show_default=False)] = None,
    task: Annotated[str | None, typer.Option(help="lm or qa (with --run: the run's).")] = None,
    dataset: Annotated[str | None, typer.Option(help="data.dataset: squad_v2, squad_v1.1, cosmosqa, wikitext2, tinystories, jsonl (with --run: default the run's).")] = None,
    data_path: Annotated[str | None, typer.Option("--data-path", help="data.path: an explicit file or folder of the dataset.")] = None,
    test_size: Annotated[int | None, typer.Option(help="data.test_size: held-out test examples (qa: questions, lm: blocks); default all (with --run: the run's).", min=1)] = None,
    metrics: Annotated[str | None, typer.Option(help="evaluation.metrics, comma-separated (default: the task's; with --run: the run's).")] = None,
    split_seed: Annotated[int, typer.Option(help="data.split_seed: which test subset is drawn, as in a run's config.")] = 0,
    run: Annotated[str | None, typer.Option(help="A run directory or run id: evaluate one of its generations (with --arm, --generation).")] = None,
    arm: Annotated[str | None, typer.Option(help="With --run: the arm.")] = None,
    generation: Annotated[int | None, typer.Option(help="With --run: the generation.", min=0)] = None,
    seed: Annotated[int | None, typer.Option(help="With --run: the seed (default the run's first).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for predictions.parquet, metrics.json and config.yaml (default evaluations/<model>-<dataset>-<time>).")] = None,
    db: Annotated[str | None, typer.Option(help=DB_HELP + " Finds a --run given as a run id.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress lines or bars.")] = False,
) -> None:
    """Score a model or a run's generation on a task's held-out human test set, as a generation is scored."""
    from collapselab.evaluation import evaluate_model, generation_config, model_config
    from collapselab.metrics.registry import metric_label
    from collapselab.results import resolve_run_dir

    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics is not None else None
    source = None
    if run is not None:
        if model is not None:
            raise typer.BadParameter(f"give a MODEL ({model!r}) or --run, not both")
        if arm is None or generation is None:
            raise typer.BadParameter("--run needs --arm and --generation")
        if _given(task=task):
            raise typer.BadParameter("--task: a run's generation is evaluated on its run's task")
        cfg, source = generation_config(resolve_run_dir(run, db), arm, generation, seed, dataset=dataset, path=data_path,
                                        test_size=test_size, metrics=names)
        label = f"{source.run_dir.name}-{arm}-g{generation}"
    else:
        if model is None:
            raise typer.BadParameter("give a MODEL to evaluate, or --run with --arm and --generation")
        if _given(arm=arm, generation=generation, seed=seed):
            raise typer.BadParameter(f"{', '.join(_given(arm=arm, generation=generation, seed=seed))}: these go with --run")
        if len(_given(task=task, dataset=dataset)) < 2:
            raise typer.BadParameter("a MODEL is evaluated with --task and --dataset")
        cfg = model_config(model, task, dataset, path=data_path, test_size=test_size, metrics=names, split_seed=split_seed)
        label = Path(model).name or model
    out = out or Path("evaluations") / f"{label}-{cfg.data.dataset}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    with _output(quiet):  # progress as a run shows it, without the libraries' bars
        doc = evaluate_model(cfg, out, source=source)
    typer.echo(f"{doc.model} on {doc.dataset} ({doc.task}, {doc.test_examples} test examples, split seed {doc.split_seed}): {doc.seconds:.1f} s")
    width = max(len(metric_label(n)) for n in doc.metrics)
    for name, entry in doc.metrics.items():
        value = "n/a" if entry.value is None else f"{entry.value:.4f}"
        typer.echo(f"  {metric_label(name):<{width}}  {value}")
    typer.echo(f"predictions and metrics.json in {out}")


def _given(**options: object) -> list[str]:
    """The options of `options` given on the command line (not None), as --names."""
    return ["--" + name.replace("_", "-") for name, value in options.items() if value is not None]


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
