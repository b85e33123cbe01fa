"""arms[].schedule in a run: the mix policy switches at the named generation, and a run
stopped before the switch resumes into it."""

from __future__ import annotations

import pytest
from tiny import tiny_config

from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.records import read_records


def test_a_run_stopped_before_the_switch_resumes_with_the_new_policy(tiny_lm_data, tmp_path, monkeypatch):
    import collapselab.engine as engine

    raw = tiny_config(tiny_lm_data, tmp_path / "runs", generations=3)
    raw["arms"] = [{"name": "recover", "init": "previous", "mix": "replace", "schedule": [{"generation": 2, "mix": "accumulate"}]}]
    cfg = config_from_dict(raw)

    real_mix = engine.mix

    def stop_at_the_switch(arm, g, *args, **kwargs):
        if g == 2:
            raise KeyboardInterrupt  # as Ctrl-C between generation 1 and 2
        return real_mix(arm, g, *args, **kwargs)

    monkeypatch.setattr(engine, "mix", stop_at_the_switch)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg)
    monkeypatch.setattr(engine, "mix", real_mix)
    (run_dir,) = [p for p in (tmp_path / "runs" / "tiny").iterdir() if p.is_dir()]
    done = {g: (run_dir / f"recover/seed-0/gen-{g}/DONE").stat().st_mtime_ns for g in (0, 1)}
    assert not (run_dir / "recover/seed-0/gen-2").exists()

    assert run_experiment(cfg) == run_dir  # the same run continues
    assert {g: (run_dir / f"recover/seed-0/gen-{g}/DONE").stat().st_mtime_ns for g in (0, 1)} == done  # not redone
    gen = [read_records(run_dir / f"recover/seed-0/gen-{g}/{name}") for g, name in ((0, "train.parquet"), (0, "synthetic.parquet"),
                                                                                    (1, "train.parquet"), (1, "synthetic.parquet"),
                                                                                    (2, "train.parquet"))]
    human, syn0, train1, syn1, train2 = gen
    assert [r.id for r in train1] == [r.id for r in syn0]  # generation 1: replace, the last output only
    # generation 2: accumulate, the human pool back with every synthetic set so far
    assert [r.id for r in train2] == [r.id for r in human + syn0 + syn1]
    assert sum(r.source == "human" for r in train2) == len(human) == 24
