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


def results(
    run: Annotated[
        str | None, typer.Argument(help="Run id or run directory; omit to list the runs.")
    ] = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
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
    """Print a run's metrics, arms side by side, one question's history, or a sweep's trials."""
    from collapselab.store import Store

    with Store(db) as store:
        if sweep is not None:
            _sweep_table(store, sweep, format)
            return
        if run is None:
            rows = store.list_runs()
            for r in rows:
                r["arms"] = ",".join(r["arms"])
            _emit(rows, format, title="runs")
            return
        run_id = store.resolve_run(run)
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
        else:
            _emit(store.metrics_table(run_id, arm=arm), format, title=f"{run_id}: metrics")


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
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        for c in columns:
            table.add_column(c, overflow="fold")
        for r in rows:
            table.add_row(*(_cell(r.get(c)) for c in columns))
        Console().print(table)


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
