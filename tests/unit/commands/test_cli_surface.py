"""The same surface on every command: help names values (INTEGER, TEXT, PATH) rather than
Python types, `-h` is `--help`, `--version` answers, a command line that does not parse is
one line (exit 2), and Ctrl-C or SIGTERM ends with one line and 128 + the signal."""

from __future__ import annotations

import re
import signal

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from collapselab import __version__
from collapselab.cli import CollapselabCommands, app
from collapselab.errors import Interrupted

PYTHON_TYPES = re.compile(r"<(bool|str|int|float|Path|list\[[^>]*\]|[A-Za-z]+\|[^>]*)>")


def _command_lines() -> list[list[str]]:
    """Every command and subcommand of the CLI, as argument lists."""
    out = [[]]
    for name, command in get_command(app).commands.items():
        out.append([name])
        out += [[name, sub] for sub in getattr(command, "commands", {})]
    return out


@pytest.mark.parametrize("words", _command_lines(), ids=lambda w: " ".join(w) or "collapselab")
def test_help_names_values_not_python_types_and_h_is_help(words):
    runner = CliRunner()
    result = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert not PYTHON_TYPES.search(result.stdout), PYTHON_TYPES.search(result.stdout)
    assert runner.invoke(app, [*words, "-h"], env={"COLUMNS": "200"}).stdout == result.stdout


def test_help_shows_click_value_names():
    help_ = {w: CliRunner().invoke(app, [w, "--help"], env={"COLUMNS": "200"}).stdout for w in ("run", "results", "report", "serve")}
    assert re.search(r"--restart-from-generation\s+INTEGER", help_["run"]) and re.search(r"--set\s+TEXT", help_["run"])
    assert re.search(r"--fresh\s+Start", help_["run"])  # a flag takes no value
    assert re.search(r"--format\s+-f\s+\[table\|csv\|json\|md\]", help_["results"])
    assert re.search(r"--out\s+PATH", help_["report"]) and re.search(r"--rate-per-minute\s+FLOAT", help_["serve"])


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"collapselab {__version__}\n")


@pytest.mark.parametrize(("args", "says"), [
    (["results", "--format", "xml"], "error: Invalid value for '--format' / '-f': "),
    (["frob"], "error: No such command 'frob'. (see collapselab --help)"),
    (["status"], "error: Missing argument 'run'. (see collapselab status --help)"),
    (["--bogus"], "error: No such option: --bogus (see collapselab --help)"),
    (["run", "quickstart", "--restart-from-generation", "two"], "error: Invalid value for '--restart-from-generation': "),
    (["results", "a", "b", "c"], "error: Invalid value: at most two runs (to compare them), got 3: a b c"),
    (["config", "validate"], "error: Missing argument 'file'. (see collapselab config validate --help)"),
])
def test_a_command_line_that_does_not_parse_is_one_line(args, says):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(says), result.stderr


def test_the_bare_command_still_shows_the_help():
    result = CliRunner().invoke(app, [])
    assert "Usage: collapselab" in result.output and "error:" not in result.output


def _app_raising(error: BaseException) -> typer.Typer:
    a = typer.Typer(cls=CollapselabCommands)

    @a.command("fail")
    def fail() -> None:
        raise error

    a.command("other")(lambda: None)
    return a


@pytest.mark.parametrize(("error", "code", "line"), [
    (KeyboardInterrupt(), 130, "error: interrupted (Ctrl-C)\n"),
    (Interrupted(signal.SIGTERM, "SIGTERM"), 143, "error: interrupted (SIGTERM)\n"),
])
def test_an_interrupted_command_is_one_line_and_128_plus_the_signal(error, code, line):
    result = CliRunner().invoke(_app_raising(error), ["fail"])
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", line)
