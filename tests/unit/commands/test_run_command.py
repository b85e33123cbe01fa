"""`collapselab run` as a user meets it, on one tiny run made through the CLI with output going
to a file (as in a log): it says which config file ran, shows progress as plain lines (no
progress bars, no library warnings), ends with the run directory and the three commands that
read it, and writes files that colleagues can read (umask 022: 0644 files, 0755 folders;
atomic writes go through temporary names, which mkstemp/mkdtemp and safetensors leave
private). `status` then finds the run by id, with the status the engine recorded."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import pytest
from tiny import tiny_config, tiny_corpus, write_config
from typer.testing import CliRunner

from collapselab.cli import app


def _write_corpus(folder: Path) -> Path:
    import json

    folder.mkdir(parents=True)
    for split, n, seed in (("train", 120, 1), ("test", 30, 2)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in tiny_corpus(n, seed, split)))
    return folder


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One tiny run (one arm, two generations) through `collapselab run`, then `report` and
    `export`, all under umask 022; returns (home, run_dir, db, the run's result)."""
    import tiny_runs

    home = tmp_path_factory.mktemp("cli-run")
    old_mask, old_cwd = os.umask(0o022), os.getcwd()
    with pytest.MonkeyPatch.context() as mp:
        tiny_runs.isolate(mp, home)
        os.chdir(home)
        try:
            cfg = tiny_config(_write_corpus(home / "text"), home / "runs", generations=2)
            cfg["arms"] = cfg["arms"][:1]
            config = write_config(cfg, home / "tiny.yaml")
            db = f"sqlite:///{home / 'lab.db'}"
            runner = CliRunner()
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                ran = runner.invoke(app, ["run", "tiny.yaml", "--db", db])
            assert ran.exit_code == 0, ran.output
            (run_dir,) = (home / "runs" / "tiny").iterdir()
            assert runner.invoke(app, ["report", str(run_dir), "--db", db]).exit_code == 0
            exported = runner.invoke(app, ["export", run_dir.name, "--to", str(home / "out"), "--db", db])
            assert exported.exit_code == 0, exported.output
            yield home, run_dir, db, ran, config, [str(w.message) for w in seen]
        finally:
            os.chdir(old_cwd)
            os.umask(old_mask)


def test_the_run_names_its_config_file_and_ends_with_what_to_do_next(cli_run):
    _, run_dir, db, ran, config, _ = cli_run
    lines = ran.stdout.splitlines()
    assert f"config {config.resolve()}" in lines
    assert lines[-5:-3] == [f"run directory: {run_dir}", "next:"]
    assert [ln.split("#")[0].split() for ln in lines[-3:]] == [
        ["collapselab", "results", str(run_dir), "--db", db],
        ["collapselab", "report", str(run_dir), "--db", db],
        ["collapselab", "dashboard", "--db", db],
    ]


def test_progress_in_a_log_is_plain_lines_without_library_noise(cli_run):
    *_, ran, _, seen = cli_run
    assert "\r" not in ran.stderr and "%|" not in ran.stderr  # no bar redraws
    assert "Loading weights" not in ran.stderr and "Writing model shards" not in ran.stderr
    lines = ran.stderr.splitlines()
    assert any(ln.startswith("train replace g1: ") and " steps (100 %)" in ln for ln in lines), ran.stderr
    assert any(ln.startswith("generate g0: ") and " prompts (100 %)" in ln for ln in lines), ran.stderr
    assert not [m for m in seen if "past_key_values" in m]  # transformers' deprecation, not the user's business


def _not_shared(root: Path) -> list[str]:
    """Files under `root` that group or others cannot read, folders they cannot enter."""
    bad = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        need = 0o755 if path.is_dir() else 0o644
        if not path.is_symlink() and mode & need != need:
            bad.append(f"{path.relative_to(root)} {oct(mode)}")
    return bad


def test_a_run_its_report_export_and_cache_are_readable_by_group_and_others(cli_run):
    home, run_dir, *_ = cli_run
    written = [p.name for p in run_dir.rglob("*") if p.is_file()]
    assert {"config.yaml", "manifest.json", "model.safetensors", "metrics.json", "report.html"} <= set(written)
    assert any((home / "out").rglob("*.parquet"))
    assert _not_shared(run_dir) == []
    assert _not_shared(home / "out") == []
    assert _not_shared(home / "cache") == []  # the scratch tokenizer and base the run cached


def test_status_finds_the_run_by_id_and_says_how_it_ended(cli_run):
    _, run_dir, db, *_ = cli_run
    by_id = CliRunner().invoke(app, ["status", run_dir.name, "--db", db], env={"COLUMNS": "200"})
    assert by_id.exit_code == 0, by_id.output
    lines = by_id.stdout.splitlines()
    assert lines[-2] == "2/2 generations done" and lines[-1].startswith("recorded status: done at ")
    by_folder = CliRunner().invoke(app, ["status", str(run_dir)], env={"COLUMNS": "200"})
    assert by_folder.stdout.splitlines()[-1] == "2/2 generations done"  # no --db: the folder alone
