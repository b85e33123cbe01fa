"""`collapselab runs`, `runs delete`, `runs prune`: a run's directory and its database rows
listed, deleted and pruned together, and nothing else touched."""

from __future__ import annotations

import json
import os

import pytest
from run_factory import make_run, write_generation
from typer.testing import CliRunner

from collapselab.cli import app
from collapselab.errors import RunError
from collapselab.rundir.folders import lock_run
from collapselab.store import Store, StoreError, import_run_dir, record_run, record_run_status
from collapselab.store.housekeeping import find_run, find_runs, folder_size, prune


@pytest.fixture
def three_runs(db_url, runs_root):
    """run-a and run-b recorded; run-c on disk only."""
    a = make_run(runs_root, "run-a", arms=("replace",), generations=2)
    b = make_run(runs_root, "run-b", arms=("replace", "accumulate"), generations=1)
    c = make_run(runs_root, "run-c", arms=("replace",), generations=1, experiment="other")
    import_run_dir(db_url, a)
    import_run_dir(db_url, b)
    record_run_status(db_url, a, "done")
    return a, b, c


def cli(*args, input=None):
    return CliRunner().invoke(app, [str(a) for a in args], input=input)


def test_the_list_shows_every_run_on_disk_or_in_the_database(db_url, runs_root, three_runs):
    a, b, c = three_runs
    places = {p.run_id: p for p in find_runs(db_url, [runs_root])}
    assert set(places) == {"run-a", "run-b", "run-c"}
    assert (places["run-a"].recorded, places["run-a"].status, places["run-a"].generations_done,
            places["run-a"].generations_expected) == (True, "done", 2, 2)
    assert places["run-b"].generations_done == 2 and places["run-b"].generations_expected == 2
    assert not places["run-c"].recorded and places["run-c"].experiment == "other"
    assert places["run-a"].size_bytes == folder_size(a) > 0
    res = cli("runs", "--db", db_url, "--root", runs_root)
    assert res.exit_code == 0, res.output
    lines = {line.split()[0]: line for line in res.output.splitlines()[1:] if line.startswith("run-")}
    assert "not recorded" in lines["run-c"] and " recorded" in lines["run-a"] and "2/2" in lines["run-a"]


def test_delete_removes_the_directory_and_the_rows_and_nothing_else(db_url, runs_root, three_runs):
    a, b, _ = three_runs
    with Store(db_url) as store:
        b_metrics = store.metrics("run-b")
    res = cli("runs", "delete", "run-a", "--yes", "--db", db_url, "--root", runs_root)
    assert res.exit_code == 0, res.output
    assert not a.exists() and not any(p.name.startswith(".deleting") for p in a.parent.iterdir())
    with Store(db_url) as store:
        assert [r["run_id"] for r in store.list_runs()] == ["run-b"]
        with pytest.raises(StoreError, match="run-a"):
            store.resolve_run("run-a")
        assert store.metrics("run-b") == b_metrics  # the other run untouched, rows and files
    assert (b / "replace/seed-0/gen-0/DONE").is_file()
    res = cli("results", "run-a", "--db", db_url)
    assert res.exit_code != 0 and "run-a" in res.output
    # a run directory names a run as well as its id does
    res = cli("runs", "delete", b, "--yes", "--db", db_url, "--root", runs_root)
    assert res.exit_code == 0 and not b.exists()


@pytest.mark.parametrize("answer", ["n\n", None])
def test_delete_asks_first_and_no_answer_deletes_nothing(db_url, runs_root, three_runs, answer):
    a, _, _ = three_runs
    res = cli("runs", "delete", "run-a", "--db", db_url, "--root", runs_root, input=answer)
    assert res.exit_code == 1 and "delete run run-a" in res.output and "not deleted" in res.output
    assert (a / "manifest.json").is_file()
    with Store(db_url) as store:
        assert store.resolve_run("run-a") == "run-a"
    res = cli("runs", "delete", "run-a", "--db", db_url, "--root", runs_root, input="y\n")
    assert res.exit_code == 0 and not a.exists()


def test_delete_is_refused_while_a_process_writes_the_run(db_url, runs_root, three_runs):
    a, _, _ = three_runs
    lock = lock_run(a)
    try:
        res = cli("runs", "delete", "run-a", "--yes", "--db", db_url, "--root", runs_root)
    finally:
        lock.release()
    assert res.exit_code == 2 and f"pid {os.getpid()}" in res.output
    assert (a / "manifest.json").is_file()
    with Store(db_url) as store:
        assert store.resolve_run("run-a") == "run-a"


def test_a_run_only_on_disk_or_only_in_the_database_is_deleted_too(db_url, runs_root, three_runs):
    import shutil

    a, _, c = three_runs
    cli("runs", "delete", "run-c", "--yes", "--db", db_url, "--root", runs_root)
    assert not c.exists()
    shutil.rmtree(a)  # removed by hand: its rows remain until deleted
    assert not find_run(db_url, "run-a", [runs_root]).run_dir
    res = cli("runs", "delete", "run-a", "--yes", "--db", db_url, "--root", runs_root)
    assert res.exit_code == 0 and "its database rows" in res.output
    with pytest.raises(RunError, match="run 'run-a': .* runs: run-b"):
        find_run(db_url, "run-a", [runs_root])


def test_prune_removes_leftovers_and_failed_runs_only(db_url, runs_root, three_runs):
    a, b, _ = three_runs
    superseded = a / ".superseded/20261201-000000/replace/seed-0/gen-1"
    superseded.mkdir(parents=True)
    (superseded / "metrics.json").write_text("{}")
    tmp_file = a / "replace/seed-0/gen-0/.metrics.json.0123456789abcdef.tmp"
    tmp_file.write_text("half")
    copy = b / "accumulate/seed-0/.gen-0.copy"
    copy.mkdir()
    failed = make_run(runs_root, "run-f", arms=("replace",), generations=0)
    write_generation(failed, "replace", 0, 0, done=False)
    record_run(db_url, failed)
    record_run_status(db_url, failed, "failed", error="RuntimeError: out of memory")
    keep = {p for p in runs_root.rglob("*") if p.is_file()} - {tmp_file, superseded / "metrics.json"} - set(failed.rglob("*"))

    res = cli("runs", "prune", "--dry-run", "--db", db_url, "--root", runs_root)
    assert res.exit_code == 0 and "would free" in res.output and tmp_file.exists() and failed.exists()
    assert "run-f" in res.output and ".superseded" in res.output and ".gen-0.copy" in res.output

    res = cli("runs", "prune", "--db", db_url, "--root", runs_root, input="n\n")
    assert res.exit_code == 1 and tmp_file.exists()
    res = cli("runs", "prune", "--yes", "--db", db_url, "--root", runs_root)
    assert res.exit_code == 0, res.output
    assert not (a / ".superseded").exists() and not tmp_file.exists() and not copy.exists() and not failed.exists()
    assert {p for p in runs_root.rglob("*") if p.is_file()} == keep  # every file of a good run kept
    with Store(db_url) as store:
        assert sorted(r["run_id"] for r in store.list_runs()) == ["run-a", "run-b"]
    assert prune(db_url, [runs_root], apply=False).paths == []


def test_prune_leaves_a_run_a_process_holds(db_url, runs_root, three_runs):
    a, _, _ = three_runs
    tmp_file = a / "replace/seed-0/gen-0/.train.parquet.0123456789abcdef.tmp"
    lock = lock_run(a)  # taking the lock clears dead writers' temporaries: write after it, as a holder does
    tmp_file.write_text("being written")
    try:
        done = prune(db_url, [runs_root], apply=True)
    finally:
        lock.release()
    assert tmp_file.exists() and any(str(a) in line for line in done.skipped)


def test_a_database_that_does_not_exist_is_not_created_by_the_list(tmp_path, runs_root):
    make_run(runs_root, "run-a", arms=("replace",), generations=1)
    db = tmp_path / "none.db"
    places = find_runs(f"sqlite:///{db}", [runs_root])
    assert [p.run_id for p in places] == ["run-a"] and not db.exists()
    assert json.loads((runs_root / "quick/run-a/manifest.json").read_text())["run_id"] == "run-a"
