"""`collapselab config validate|show`: check and resolve experiment configs."""

from __future__ import annotations

import typer

config_app = typer.Typer(help="Check and resolve experiment configs.", no_args_is_help=True)
FILE_HELP = "Experiment YAML, or the name of a ready config (e.g. quickstart)."


def _load(file: str, overrides: list[str] | None):
    """The config, refused with every problem `collapselab.checks` finds (not those of this
    machine: a config may be meant for another)."""
    from collapselab.checks import check_experiment
    from collapselab.config import load_config
    from collapselab.config.files import resolve_config

    cfg = load_config(resolve_config(file), overrides or [])
    check_experiment(cfg, source=file)
    return cfg


@config_app.command("validate")
def validate(
    file: str = typer.Argument(..., help=FILE_HELP),
    set_: list[str] = typer.Option(None, "--set", help="Override key.path=value (repeatable)."),
) -> None:
    """Check a config; exit 2 naming every bad key when it is invalid."""
    cfg = _load(file, set_)
    typer.echo(f"{file}: ok ({cfg.experiment.name}, {len(cfg.arms)} arms, {cfg.experiment.generations} generations, hash {cfg.config_hash()})")


@config_app.command("show")
def show(
    file: str = typer.Argument(..., help=FILE_HELP),
    set_: list[str] = typer.Option(None, "--set", help="Override key.path=value (repeatable)."),
) -> None:
    """Print the config resolved with every default filled in."""
    from collapselab.config import dump_config

    typer.echo(dump_config(_load(file, set_)), nl=False)


@config_app.command("reference")
def reference() -> None:
    """Print every experiment config key with its type, default and help text, as Markdown."""
    from collapselab.config.reference import reference_markdown

    typer.echo(reference_markdown(), nl=False)


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")
