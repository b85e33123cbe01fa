"""`collapselab reproduce`: the published collapse findings, one command each, the paper's
figures beside ours.

    collapselab reproduce                          the claims: name, paper, CPU and GPU cost
    collapselab reproduce gerstgrasser [--set k=v] run (or continue) its laptop-size config, print the verdicts
    collapselab reproduce gerstgrasser --gpu       the paper-size config instead
    collapselab reproduce --all --report docs      every claim, then one page of every verdict
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from collapselab.commands.run import DB_HELP, QUIET_HELP, SET_HELP, _console
from collapselab.commands.run import _run as run_config
from collapselab.errors import EXIT_FAILED, ConfigError


def reproduce(
    name: str = typer.Argument(None, help="A claim's name or a claim file; none: list the claims."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    gpu: bool = typer.Option(False, "--gpu", help="Run the claim's paper-size config (needs a GPU) instead of its laptop-size one."),
    all_: bool = typer.Option(False, "--all", help="Every claim, one after the other; a claim whose run fails is shown as failed."),
    report: Path = typer.Option(None, "--report", help="Also write one page of every verdict here: reproductions.md, reproductions.html, figures/."),
    claims: Path = typer.Option(None, "--claims", help="Folder of claim files for the list and --all (default: the shipped configs/reproductions)."),
    fresh: bool = typer.Option(False, "--fresh", help="Start new runs instead of continuing the latest ones."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """List the reproductions of published collapse findings, or run one (or all) and print the verdicts."""
    from collapselab.reproduce.claims import claim_names, claims_dir, load_claim

    if name is not None and all_:
        raise ConfigError("give a claim's name or --all, not both")
    folder = claims or claims_dir()
    if name is None and not all_:
        if report is not None:
            raise ConfigError("--report writes the page of the claims run: give a claim's name or --all")
        _list([load_claim(folder / f"{n}.yaml") for n in claim_names(folder)])
        return
    targets = [load_claim(name)] if name is not None else [load_claim(folder / f"{n}.yaml") for n in claim_names(folder)]
    results, failures = [], []
    for claim in targets:
        try:
            results.append(_reproduce(claim, set_ or [], gpu, fresh, db, quiet))
        except Exception as e:  # noqa: BLE001 -- --all goes on: the page shows the claim as failed
            if not all_:
                raise
            from collapselab.reproduce.suite import failed

            results.append(failed(claim, e, size="paper" if gpu else "laptop"))
            failures.append(f"{claim.name} ({results[-1]['error']})")
            typer.echo(f"error: claim {claim.name!r} failed: {results[-1]['error']}", err=True)
    if report is not None:
        from collapselab.report.reproductions import write_page

        md, html = write_page(results, report)
        typer.echo(f"wrote {md} and {html}")
    if failures:
        typer.echo(f"error: {len(failures)} of {len(targets)} claims failed: {'; '.join(failures)}", err=True)
        raise typer.Exit(EXIT_FAILED)


def _list(claims: list[Any]) -> None:
    from rich.table import Table

    table = Table(title="reproductions (collapselab reproduce NAME runs one)")
    for col in ("claim", "finding", "paper", "CPU cost (laptop size)", "GPU cost (paper size)"):
        table.add_column(col, overflow="fold")
    for c in claims:
        table.add_row(c.name, c.title, c.paper.reference(), c.cost.cpu, c.cost.gpu)
    _console().print(table)


def _reproduce(claim: Any, overrides: list[str], gpu: bool, fresh: bool, db: str | None, quiet: bool) -> dict[str, Any]:
    """Run (or continue) the claim's config as `collapselab run` does, write reproduction.json
    and the run's report, print the verdict table."""
    from rich.table import Table

    from collapselab.report import write_report
    from collapselab.reproduce.suite import evaluate_claim, prepare, write_reproduction
    from collapselab.reproduce.verdicts import ours_text, paper_text

    path, _ = prepare(claim, overrides, gpu)  # the checks against the config, before anything runs
    run_dir = run_config(str(path), overrides, fresh, None, None, db, quiet)
    result = evaluate_claim(claim, run_dir, size="paper" if gpu else "laptop", config=claim.paper_config if gpu else claim.config,
                            overrides=overrides)
    written = write_reproduction(run_dir, result)
    paths = write_report(run_dir)
    table = Table(title=f"{claim.name}: {claim.title} ({claim.paper.reference()})")
    for col in ("check", "claim", "paper figure", "our figure (95 % interval, seeds)", "verdict"):
        table.add_column(col, overflow="fold")
    for c in result["checks"]:
        table.add_row(f"{c['expr']} ({c['expect']})", c["claim"], paper_text(c), ours_text(c), c["verdict"])
    console = _console()
    console.print(table)
    console.print(f"verdict: {result['verdict']} ({len(result['seeds'])} seeds; {written}; report {paths.markdown})")
    return result


def register(app: typer.Typer) -> None:
    app.command()(reproduce)
