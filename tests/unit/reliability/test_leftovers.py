"""What a killed writer leaves behind is removed by the next one that may: the holder of a
run's lock removes the temporaries inside the run, the maker of a run folder removes half-made
run folders beside it; results, the lock and the superseded generations stay."""

from __future__ import annotations

import json

from collapselab.rundir.folders import create_run_folder, lock_run, temporaries


def test_the_lock_holder_removes_what_killed_writers_left_and_nothing_else(tmp_path):
    run = tmp_path / "run"
    gen = run / "replace" / "seed-0" / "gen-1"
    gen.mkdir(parents=True)
    left = [gen / ".train.parquet.0123456789abcdef.tmp", gen / ".model.fedcba9876543210", run / "replace" / "seed-0" / ".gen-0.copy"]
    left[0].write_bytes(b"PAR1 half")
    for folder in left[1:]:
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"\0" * 10)
    kept = [gen / "train.parquet", gen / "DONE", run / ".superseded" / "x" / ".metrics.json.0123456789abcdef.tmp"]
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    assert temporaries(run) == sorted(left)
    lock = lock_run(run)
    try:
        assert temporaries(run) == [] and all(p.exists() for p in kept)
        assert not any(p.exists() for p in left)
    finally:
        lock.release()


def test_a_run_folder_appears_whole_and_a_half_made_one_is_cleared(tmp_path):
    experiment = tmp_path / "runs" / "tiny"
    experiment.mkdir(parents=True)
    half = experiment / ".20261208-001500.0123456789abcdef"  # a maker killed after its config, before its manifest
    half.mkdir()
    (half / "config.yaml").write_text("experiment: {}\n")

    def write(tmp):
        assert tmp.parent == experiment and tmp.name.startswith(".r1.")  # hidden while it is filled
        (tmp / "manifest.json").write_text(json.dumps({"run_id": "r1"}))

    create_run_folder(experiment / "r1", write)
    assert [p.name for p in experiment.iterdir()] == ["r1"]
    assert json.loads((experiment / "r1" / "manifest.json").read_text()) == {"run_id": "r1"}
