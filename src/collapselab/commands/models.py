"""`collapselab models`: the models this machine can use, and how to get the missing ones."""

from __future__ import annotations

import typer


def models() -> None:
    """List the pretrained models available here: catalogue, $COLLAPSELAB_MODELS, scratch bases."""
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
    missing = [r for r in rows if r.action]
    for r in missing:
        typer.echo(f"to use {r.name}: {r.action}")
    if any(r.status == "installed, converted on first use" for r in rows):
        typer.echo("an installed catalogue model is dequantized once when first named (model.name), then cached")


def _millions(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:.1f}M"


def _gib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def register(app: typer.Typer) -> None:
    app.command("models")(models)
