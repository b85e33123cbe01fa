"""The command-line reference page (docs/reference/cli.md), generated from the commands
themselves: every command's usage, its docstring and each argument and option with its value
name, default and help, as `--help` shows them. A test keeps the committed page equal to this
output (`python scripts/gen_reference.py`).
"""

from __future__ import annotations

import inspect
from typing import Any

import typer

from collapselab.cli import app, value_name

PAGE_HEAD = """# Command-line reference

Generated from the commands' own help by `python scripts/gen_reference.py` (a test fails when
this page is not its current output); `collapselab COMMAND -h` prints the same. Exit codes, the
same for every command: 0 done; 1 the command failed while running; 2 bad input; 3 the results
database cannot be opened or reached; 130 / 143 stopped by Ctrl-C / SIGTERM
([Exit codes and errors](../errors.md)).
"""


def _default(param: Any) -> str:
    if param.required or param.default is None or (getattr(param, "is_flag", False) and not param.default):
        return ""
    default = param.default
    if isinstance(default, list | tuple):
        return ", ".join(map(str, default)) if default else ""
    return str(getattr(default, "value", default))


def _row(param: Any) -> str:
    if param.param_type_name == "argument":
        name = (param.metavar or param.name).upper()
    else:
        name = ", ".join([*param.opts, *param.secondary_opts])
    value = value_name(param) or ""
    help_ = " ".join((getattr(param, "help", None) or "").split()).replace("|", "/")
    default = _default(param)
    cells = [f"`{name}`", f"`{value}`" if value else "", f"`{default}`" if default else "", help_]
    return "| " + " | ".join(cells) + " |"


def _usage_pieces(command: Any) -> list[str]:
    """`[OPTIONS] RUN [RUN_B]`: the arguments by name, as `--help` writes them."""
    pieces = ["[OPTIONS]"] if any(p.param_type_name == "option" for p in command.params) else []
    for p in command.params:
        if p.param_type_name == "argument":
            name = (p.metavar or p.name).upper() + ("..." if p.nargs == -1 else "")
            pieces.append(name if p.required else f"[{name}]")
    if getattr(command, "commands", None):
        pieces.append("COMMAND")
    return pieces


def _command(path: str, command: Any, parent: Any) -> list[str]:
    ctx = typer.Context(command, info_name=path.split()[-1], parent=parent)
    usage = " ".join([path, *_usage_pieces(command)])
    doc = inspect.cleandoc(command.help or "")
    out = [f"## `{path}`", "", "```text", usage, "```", "", doc, ""]
    params = [p for p in command.params if not getattr(p, "hidden", False)]
    if params:
        out += ["| argument or option | value | default | meaning |", "| --- | --- | --- | --- |"]
        out += [_row(p) for p in params]
        out.append("")
    subcommands = getattr(command, "commands", {})
    for name in command.list_commands(ctx) if subcommands else []:
        out += _command(f"{path} {name}", command.get_command(ctx, name), ctx)
    return out


def cli_page() -> str:
    """docs/reference/cli.md: every command and subcommand of `collapselab`."""
    root = typer.main.get_command(app)
    ctx = typer.Context(root, info_name="collapselab")
    out = [PAGE_HEAD]
    listing = [f"- [`collapselab {name}`](#collapselab-{name}): {inspect.cleandoc(root.get_command(ctx, name).get_short_help_str(200))}"
               for name in root.list_commands(ctx)]
    out += ["Commands:", "", *listing, ""]
    for name in root.list_commands(ctx):
        out += _command(f"collapselab {name}", root.get_command(ctx, name), ctx)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(cli_page(), end="")
