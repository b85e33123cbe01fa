"""The `collapselab` command line. Thin: parse, build config, call the library."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="collapselab",
    help="A laboratory for model collapse: recursive training, its metrics, the data refinery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module registers its commands on `app`; a module that does not exist yet is a
# bug, not an option, so import errors propagate.
COMMAND_MODULES = ["run", "config", "results", "score", "report", "sweep", "models", "serve", "learn"]
for _name in COMMAND_MODULES:
    importlib.import_module(f"collapselab.commands.{_name}").register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
