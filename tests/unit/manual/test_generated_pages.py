"""The documentation pages generated from the code are committed as their generator writes
them now: a config field, a command or a docstring changed without `python
scripts/gen_reference.py` fails here, not on the site."""

from __future__ import annotations

from pathlib import Path

import pytest

from collapselab.manual.pages import generated_pages

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("rel", sorted(generated_pages()))
def test_committed_page_is_its_generators_output(rel):
    page = generated_pages()[rel]()
    assert (REPO / rel).read_text() == page, f"{rel} is stale: run python scripts/gen_reference.py"


def test_config_reference_lists_every_key_with_type_default_and_meaning():
    from collapselab.config import ExperimentConfig
    from collapselab.manual.config import config_page

    page = config_page()
    for block in ("experiment", "data", "model.scratch", "decoding", "evaluation.mmlu", "refinery.filters", "arms[]"):
        assert f"### `{block}`" in page
    # a key's row: name, type, default, its field's description
    assert "| `generations` | `int` | `4` | Number of generations G (g = 0..G-1). |" in page
    assert "| `method` | `'sample' or 'greedy' or 'beam'` | `'sample'` |" in page
    assert "| `name` | `str` | `required` |" in page
    for name, field in ExperimentConfig.model_fields["decoding"].annotation.model_fields.items():
        assert f"| `{name}` | " in page and (field.description or "") in page
    # the learner's, the chat server's and the claims' files too
    for heading in ("## Learner configs", "## Chat server configs", "## Reproduction claims"):
        assert heading in page


def test_cli_reference_lists_every_command_and_option():
    from typer.testing import CliRunner

    from collapselab.cli import app
    from collapselab.manual.cli import cli_page

    page = cli_page()
    for command in ("run", "results", "report", "serve", "config validate", "models pull"):
        assert f"## `collapselab {command}`" in page
    # what `run -h` lists is in its section, with click's value names, not Python types
    run = page[page.index("## `collapselab run`"):page.index("## `collapselab quickstart`")]
    assert "collapselab run [OPTIONS] CONFIG" in run
    assert "| `--restart-from-generation` | `INTEGER` |" in run and "| `--quiet, -q` |" in run
    help_ = CliRunner().invoke(app, ["run", "-h"], env={"COLUMNS": "200"}).stdout
    for option in ("--set", "--fresh", "--run-id", "--db", "--quiet"):
        assert option in help_ and f"`{option}" in run
