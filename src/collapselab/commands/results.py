"""`collapselab results|export|import`: read, export and load the results database."""

from __future__ import annotations

import csv
import io
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

DB_HELP = "Database URL (default: $COLLAPSELAB_DB, else sqlite:///runs/collapselab.db)."


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    md = "md"


WIDTH = 100  # the default table fits this many columns


def results(
    runs: Annotated[
        list[str] | None,
        typer.Argument(help="Run id or run directory; two to compare their metrics; omit to list the runs.", metavar="RUN"),
    ] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format; csv, json and md hold every metric and column.")] = Format.table,
    all_: Annotated[bool, typer.Option("--all", help="Every metric (every column of the run list), not only the headline ones.")] = False,
    arm: Annotated[str | None, typer.Option(help="Only this arm.")] = None,
    metric: Annotated[
        str | None, typer.Option(help="Compare the arms on this metric, generation by generation.")
    ] = None,
    question: Annotated[
        str | None, typer.Option(help="One test example's history across generations.")
    ] = None,
    sweep: Annotated[
        str | None, typer.Option(help="Compare the trials of this sweep (its name): grid keys, final metrics.")
    ] = None,
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
) -> None:
    """Print a run's headline metrics, arms side by side; two runs compared; one question's history; a sweep's trials."""
    from collapselab.store import Store

    runs = runs or []
    if len(runs) > 2:
        raise typer.BadParameter(f"at most two runs (to compare them), got {len(runs)}: {' '.join(runs)}")
    with Store(db) as store:
        if sweep is not None:
            _sweep_table(store, sweep, format)
            return
        if not runs:
            _run_list(store.list_runs(), format, every=all_)
            return
        run_ids = [store.resolve_run(r) for r in runs]
        if len(run_ids) == 2:
            if question is not None:
                raise typer.BadParameter("--question follows one run: give one run")
            _comparison(store, *run_ids, format=format, every=all_, arm=arm, metric=metric)
            return
        (run_id,) = run_ids
        if question is not None:
            h = store.question_history(run_id, question, arm=arm)
            if format is Format.json:
                typer.echo(json.dumps(h, indent=2, ensure_ascii=False))
                return
            rows = [
                {k: v for k, v in x.items() if k != "scores"} | x["scores"] for x in h["history"]
            ]
            if format in (Format.table, Format.md):
                typer.echo(
                    f"example {h['example_id']}\ninput: {h['input']}\nreference: {h['reference']}\n"
                )
            _emit(rows, format, title=f"{run_id}: question {question}")
        elif metric is not None:
            if arm is not None:
                raise typer.BadParameter(
                    "--arm and --metric do not combine: --metric shows every arm"
                )
            _emit(store.compare_arms(run_id, metric), format, title=f"{run_id}: {metric} by arm")
        elif format is Format.table:
            _headline_table(store, run_id, every=all_, arm=arm)
        else:
            _emit(store.metrics_table(run_id, arm=arm), format, title=f"{run_id}: metrics")


# The run list's columns in the default table; --all and the other formats show every one.
RUN_COLUMNS = ("run_id", "experiment", "task", "status", "generations", "arms", "created")


def _run_list(rows: list[dict[str, Any]], format: Format, *, every: bool) -> None:
    for r in rows:
        r["arms"] = ("," if every or format is not Format.table else ", ").join(r["arms"])
    if format is Format.table and not every:
        for r in rows:
            expected = r["generations_expected"]
            r["generations"] = f"{r['generations']}/{expected}" if expected is not None else str(r["generations"])
            r["created"] = (r["created"] or "")[:16].replace("T", " ")
            r["status"] = r["status"] or ""
        rows = [{c: r[c] for c in RUN_COLUMNS} for r in rows]
    _emit(rows, format, title="runs")


def _headline_table(store: Any, run_id: str, *, every: bool, arm: str | None) -> None:
    """The run's headline metrics (every metric with `every`): a row per metric and
    generation, the arms side by side, in at most `WIDTH` columns."""
    from collapselab.results import arms_side_by_side, headline_metrics

    run = store.run(run_id)
    rows = store.metrics(run_id, arm=arm, details=False)
    names = sorted({r["name"] for r in rows}) if every else headline_metrics(r["name"] for r in rows)
    arms = [a["arm"] for a in run["arms"] if arm is None or a["arm"] == arm]
    seeds = run["manifest"]["seeds"]
    note = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}"
    title = f"{run_id}: metrics ({run['experiment']}, {run['task']}, {note})"
    columns = {"metric": "metric", "generation": "gen", **{a: a for a in arms}}
    _print_table(arms_side_by_side(rows, names, arms), columns, title,
                 caption=None if every else "headline metrics; --all for every metric, --format csv/json/md for every value")


def _comparison(store: Any, a: str, b: str, *, format: Format, every: bool, arm: str | None, metric: str | None) -> None:
    """Two runs' metrics side by side: a row per metric, arm and generation."""
    from collapselab.results import compare_runs, headline_metrics

    if a == b:
        raise typer.BadParameter(f"both runs are {a!r}: give two different runs to compare")
    rows_a, rows_b = (store.metrics(r, arm=arm, details=False) for r in (a, b))
    names = {r["name"] for r in rows_a + rows_b}
    if metric is not None:
        if metric not in names:
            raise typer.BadParameter(f"neither run has metric {metric!r}; their metrics are {sorted(names)}")
        chosen = [metric]
    else:
        chosen = sorted(names) if every or format is not Format.table else headline_metrics(names)
    arms = list(dict.fromkeys(x["arm"] for r in (a, b) for x in store.run(r)["arms"] if arm is None or x["arm"] == arm))
    rows = compare_runs(rows_a, rows_b, chosen, arms)
    if format is not Format.table:
        _emit([{"metric": r["metric"], "arm": r["arm"], "generation": r["generation"], a: r["a"], b: r["b"], "change": r["change"]}
               for r in rows], format, title=f"{a} vs {b}")
        return
    for r in rows:
        r["percent"] = None if r["change"] is None or not r["a"] else 100 * r["change"] / abs(r["a"])
    columns = {"metric": "metric", "arm": "arm", "generation": "gen", "a": f"A {a}", "b": f"B {b}", "change": "B - A", "percent": "%"}
    _print_table(rows, columns, f"A {a} vs B {b}: mean over seeds",
                 caption=None if every or metric else "headline metrics; --all for every metric")


def _print_table(rows: list[dict[str, Any]], columns: dict[str, str], title: str, caption: str | None) -> None:
    """A table of metric rows in at most `WIDTH` columns: metric labels with their direction
    (higher or lower is better), values in each metric's format."""
    from rich.table import Table

    from collapselab.metrics.registry import display, metric_info
    from collapselab.results import metric_format

    def label(name: str) -> str:
        try:
            arrow = " ↑" if metric_info(name).higher_is_better else " ↓"
        except KeyError:  # a metric this version of collapselab does not register
            arrow = ""
        return display(name)[0] + arrow

    table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
    for key, head in columns.items():
        numeric = key not in ("metric", "arm")
        table.add_column(head, justify="right" if numeric else "left", no_wrap=numeric, overflow="ellipsis" if not numeric else "fold")
    previous = None
    for r in rows:
        shown = label(r["metric"]) if r["metric"] != previous else ""
        previous = r["metric"]
        cells = []
        for key in columns:
            v = r[key]
            if key == "metric":
                cells.append(shown)
            elif key == "percent":
                cells.append("" if v is None else f"{v:+.1f}")
            elif key == "change":
                cells.append("" if v is None else "+" * (v > 0) + metric_format(r["metric"]).format(v))
            elif isinstance(v, float):
                cells.append(metric_format(r["metric"]).format(v))
            else:
                cells.append("" if v is None else str(v))
        table.add_row(*cells)
    _console().print(table)


def _console() -> Any:
    """A console at most `WIDTH` columns wide (exactly `WIDTH` when output goes to a file)."""
    from rich.console import Console

    console = Console()
    return Console(width=min(console.width, WIDTH) if console.is_terminal else WIDTH)


def _sweep_table(store: Any, name: str, format: Format) -> None:
    """The sweep section (collapselab.sweep.compare): one row per trial x arm x seed."""
    from collapselab.sweep.compare import comparison_rows, from_store

    rows = comparison_rows(from_store(store, name))
    _emit(rows, format, title=f"sweep {name}: final generation of each trial")


def export(
    run: Annotated[str, typer.Argument(help="Run id or run directory.")],
    to: Annotated[Path, typer.Option(help="Folder to write the export to.")],
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
) -> None:
    """Export a run to Parquet, CSV and per-generation JSON."""
    from collapselab.store import export_run, require_database

    require_database(db)
    out = export_run(db, run, to)
    typer.echo(f"exported to {out}")


def import_(
    path: Annotated[
        Path, typer.Argument(help="An export folder (run.json) or a run directory (manifest.json).")
    ],
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
) -> None:
    """Load an export, or rebuild a run's rows from its run directory."""
    from collapselab.store import StoreError, import_export, import_run_dir

    if (path / "run.json").is_file():
        run_id = import_export(db, path)
        typer.echo(f"imported run {run_id} from export {path}")
    elif (path / "manifest.json").is_file():
        found = import_run_dir(db, path)
        typer.echo(f"imported {len(found)} finished generation(s) from run directory {path}")
    else:
        raise StoreError(
            f"{path}: neither an export (no run.json) nor a run directory (no manifest.json)"
        )


def _emit(rows: list[dict[str, Any]], format: Format, *, title: str) -> None:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    if format is Format.json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif format is Format.csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        typer.echo(buf.getvalue(), nl=False)
    elif format is Format.md:
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
        typer.echo("\n".join(lines))
    else:
        from rich.table import Table

        table = Table(title=title)
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*(_cell(r.get(c)) for c in columns))
        _console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def register(app: typer.Typer) -> None:
    app.command("results")(results)
    app.command("export")(export)
    app.command("import")(import_)
