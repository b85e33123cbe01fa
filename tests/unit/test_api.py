"""The Python API on a tiny real run: run, load, metrics, compare, predictions, synthetic,
question, report; the same errors as the CLI; a light import; the executed notebook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import tiny_config, tiny_corpus, write_config
from typer.testing import CliRunner

import collapselab
from collapselab.cli import app
from collapselab.errors import CollapselabError, ConfigError, StoreError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-arm x 2-generation lm run recorded in its own database, shared by this module."""
    tmp = tmp_path_factory.mktemp("api")
    data = tmp / "text"
    data.mkdir()
    for split, n, seed in (("train", 120, 1), ("test", 30, 2)):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in tiny_corpus(n, seed, split)))
    cfg = tiny_config(data, tmp / "runs", generations=2)
    cfg["evaluation"]["metrics"] += ["distinct_2"]
    path = write_config(cfg, tmp / "tiny.yaml")
    db = f"sqlite:///{tmp / 'results.db'}"
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: the autouse isolation is per test
        mp.setenv("COLLAPSELAB_CACHE", str(tmp / "cache"))
        run = collapselab.run(path, db=db)
    return run, path, db


def test_run_twice_continues_instead_of_recomputing(tiny_run, monkeypatch):
    run, path, db = tiny_run
    done = sorted(run.run_dir.glob("*/seed-*/gen-*/DONE"))
    stamps = [p.read_text() for p in done]
    again = collapselab.run(path, db=db)
    assert again.run_dir == run.run_dir and len(done) == 4
    assert [p.read_text() for p in done] == stamps  # nothing was redone


def test_load_run_by_id_and_by_directory_give_equal_frames(tiny_run):
    run, _, db = tiny_run
    by_id, by_dir = collapselab.load_run(run.run_id, db=db), collapselab.load_run(run.run_dir, db=db)
    assert by_id == by_dir
    assert by_id.metrics().equals(by_dir.metrics())
    assert by_id.predictions("replace", 1).equals(by_dir.predictions("replace", 1))


def test_metrics_equal_what_the_results_command_prints(tiny_run):
    run, _, db = tiny_run
    result = CliRunner().invoke(app, ["results", run.run_id, "--format", "json", "--db", db])
    assert result.exit_code == 0, result.output
    printed = {(r["arm"], r["seed"], r["generation"], k): v for r in json.loads(result.output)
               for k, v in r.items() if k not in ("arm", "seed", "generation") and v is not None}  # None: not measured there
    frame = run.metrics()
    mine = {(r.arm, r.seed, r.generation, r.metric): r.value for r in frame.itertuples()}
    assert mine == printed and len(mine) == 2 * 2 * 4 + 2  # 4 metrics per generation, the unigram baseline at g0
    assert list(frame.columns) == ["arm", "seed", "generation", "metric", "value", "version", "higher_is_better"]


def test_every_reader_of_a_run(tiny_run, tmp_path):
    run, _, db = tiny_run
    run = collapselab.load_run(run.run_id, db=db)
    wide = run.compare("perplexity")
    assert list(wide.columns) == ["replace", "accumulate"] and list(wide.index) == [0, 1]
    assert wide.loc[0, "replace"] == wide.loc[0, "accumulate"]  # generation 0 is shared
    syn = run.synthetic("replace", 1)
    assert {"id", "source", "generation", "parent_id", "generator", "text"} <= set(syn.columns)
    assert set(syn["source"]) == {"synthetic"} and set(syn["generation"]) == {1}
    preds = run.predictions("replace", 0)
    assert {"example_id", "input", "perplexity"} <= set(preds.columns)
    q = run.question(preds["example_id"].iloc[0])
    assert len(q) == 4 and q.attrs["input"] == preds["input"].iloc[0]  # 2 arms x 2 generations
    assert run.config.experiment.name == "tiny" and run.manifest["run_id"] == run.run_id
    md = run.report(tmp_path / "report")
    assert md.name == "report.md" and "perplexity" in md.read_text()
    assert len(collapselab.runs(db=db)) == 1 and collapselab.runs(experiment="other", db=db).empty


def test_bad_input_raises_the_named_error_with_the_cli_message(tmp_path, tiny_run):
    _, path, db = tiny_run
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("generations: 2", "generations: 2\n  generatons: 3"))
    with pytest.raises(ConfigError) as raised:
        collapselab.run(bad)
    result = CliRunner().invoke(app, ["run", str(bad)])
    assert result.exit_code == 2 and result.output.strip() == f"error: {raised.value}"
    with pytest.raises(StoreError, match="unknown run 'nope'"):
        collapselab.load_run("nope", db=db)
    with pytest.raises(CollapselabError, match="no arm 'ghost'"):
        collapselab.load_run(tiny_run[0].run_id, db=db).predictions("ghost", 0)


def test_import_collapselab_stays_light():
    code = "import sys, collapselab; print(sorted(m for m in ('torch', 'transformers', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_api_reference_page_is_generated_from_the_docstrings():
    from collapselab.manual.api import api_markdown

    assert (REPO / "docs" / "api.md").read_text() == api_markdown()


def test_the_example_notebook_runs_headless_and_draws_its_figures(tiny_run, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    run, _, db = tiny_run
    monkeypatch.setenv("COLLAPSELAB_RUN", run.run_id)
    monkeypatch.setenv("COLLAPSELAB_DB", db)
    nb = nbformat.read(REPO / "examples" / "first-look.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": os.getcwd()}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 2  # perplexity per arm, distinct-2 per arm
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "gen 0:" in text and "gen 1:" in text  # one prompt's continuations across generations
