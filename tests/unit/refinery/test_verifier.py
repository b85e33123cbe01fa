"""The verifier in the loop (`arms[].verify`) on a tiny QA run: every generation's answers
pass the refinery's filters before the next mix; the mix draws only on what passed, the
rejects are kept with their reasons and counted per filter per generation."""

from __future__ import annotations

import json

from collapselab.checks import config_problems
from collapselab.config import config_from_dict
from collapselab.engine import run_experiment
from collapselab.records import read_records
from collapselab.refinery.pipeline import rejection_of
from collapselab.report import write_report
from collapselab.results import load_run

from .qa_fixtures import three_arm_config, write_tiny_qa

ORDER = ["length_bounds", "answer_in_context", "near_duplicate"]


def _config(tmp_path, **arm) -> dict:
    cfg = three_arm_config(write_tiny_qa(tmp_path / "qa"), tmp_path / "runs")
    cfg["experiment"].update(name="tiny-verify", generations=3)
    cfg["evaluation"]["metrics"] = ["exact_match", "f1"]
    cfg["refinery"] = {"filters": {"order": ORDER}}
    cfg["arms"] = [{"name": "plain", "init": "previous", "mix": "accumulate"},
                   {"name": "verified", "init": "previous", "mix": "accumulate", "verify": True, **arm}]
    return cfg


def test_every_generation_is_filtered_and_the_mix_uses_only_what_passed(tmp_path):
    run_dir = run_experiment(config_from_dict(_config(tmp_path)), db_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    gen = lambda arm, g: run_dir / arm / "seed-0" / f"gen-{g}"  # noqa: E731
    rejected_somewhere = passed_somewhere = 0
    for g in (1, 2):
        stats = json.loads((gen("verified", g) / "refinery.json").read_text())
        written = read_records(gen("verified", g - 1) / "synthetic.parquet")
        rejected = read_records(gen("verified", g) / "rejected.parquet")
        # what generation g-1 wrote, all of it judged; every reject counted under its reason and its filter
        assert stats["kind"] == "verify" and stats["of_generation"] == g - 1
        assert stats["attempts"] == len(written) == 40
        assert stats["passed"] + len(rejected) == stats["attempts"]
        assert sum(stats["rejected"].values()) == len(rejected)
        assert stats["filter_order"] == ORDER and sum(stats["filters"][f]["rejected"] for f in ORDER) == len(rejected)
        assert stats["filters"]["length_bounds"]["checked"] == 40
        assert all(rejection_of(r)["reason"] in stats["rejected"] for r in rejected)
        assert {r.id for r in rejected} <= {r.id for r in written}
        rejected_somewhere += len(rejected)
        passed_somewhere += stats["passed"]
        # the counts are the generation's metrics.json "refinery", read back by results
        assert json.loads((gen("verified", g) / "metrics.json").read_text())["refinery"] == stats
    assert rejected_somewhere > 0 and passed_somewhere > 0  # a tiny model's answers: some in their context, some not

    # generation 2 trains on the human pool plus what passed of generations 0 and 1, nothing else
    dropped = {r.id for g in (1, 2) for r in read_records(gen("verified", g) / "rejected.parquet")}
    written = [r for g in (0, 1) for r in read_records(gen("verified", g) / "synthetic.parquet")]
    train = read_records(gen("verified", 2) / "train.parquet")
    assert [r.id for r in train if r.source == "synthetic"] == [r.id for r in written if r.id not in dropped]
    assert sum(r.source == "human" for r in train) == 40
    # the unfiltered arm trains on all of it, and has no refinery counts
    plain = read_records(gen("plain", 2) / "train.parquet")
    assert len(plain) == 40 + 80
    assert not (gen("plain", 2) / "refinery.json").exists() and not (gen("plain", 2) / "rejected.parquet").exists()
    run = load_run(run_dir)
    assert [(g.generation, g.refinery["passed"]) for g in run.gens if g.arm == "verified" and g.refinery] == [
        (g, json.loads((gen("verified", g) / "refinery.json").read_text())["passed"]) for g in (1, 2)]
    report = write_report(run_dir).markdown.read_text()  # one row per generation's filtering
    for g in (1, 2):
        stats = json.loads((gen("verified", g) / "refinery.json").read_text())
        assert f"| `verified` seed 0 gen {g} | verify | 40 | {stats['passed']} |" in report


def test_verify_is_refused_where_its_filters_cannot_judge(tmp_path):
    cfg = _config(tmp_path)
    cfg["refinery"]["filters"]["order"] = ["answer_in_context", "exact_duplicate", "seed_ngram_overlap"]
    assert config_problems(config_from_dict(cfg)) == [
        "arms.1.verify: True, and refinery.filters.order lists ['exact_duplicate', 'seed_ngram_overlap'], which compare a record with "
        "the human seed; in the loop every record keeps its human question, so they would reject the right answers: "
        "leave them out of refinery.filters.order"]
    from tiny import tiny_config

    lm = tiny_config(tmp_path, tmp_path)
    lm["refinery"] = {"filters": {"order": ORDER}}
    lm["arms"][0]["verify"] = True
    assert config_problems(config_from_dict(lm)) == [
        "arms.0.verify: True, but the refinery's filters judge question-answer records; the lm task writes texts"]
