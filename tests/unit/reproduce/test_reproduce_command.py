"""`collapselab reproduce` end to end on tiny claims with tiny models: a claim that holds
(replace ends above accumulate on the tiny scratch run, 3 seeds) and the same claim turned
round (it does not hold): the printed verdict table, reproduction.json, the run report's
Reproduction section, and the `--all` page with a claim whose run fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from tiny import tiny_config, write_config
from typer.testing import CliRunner

from collapselab.cli import app
from collapselab.reproduce.claims import claim_names


def _claim(folder: Path, name: str, config: str, expect: str) -> Path:
    claim = {
        "name": name, "title": "replace ends above accumulate",
        "paper": {"title": "A tiny paper", "authors": "Someone", "year": 2024, "venue": "Tests", "arxiv": "0000.00000"},
        "setting": "tiny scratch models on a tiny corpus", "config": config, "paper_config": config,
        "cost": {"cpu": "seconds", "gpu": "seconds"}, "metric": "cross_entropy",
        "figures": [{"arm": "replace", "generation": 0, "value": 1.82, "source": "Table 2"},
                    {"arm": "replace", "generation": 2, "value": 2.39, "source": "Table 2"},
                    {"quote": "it collapses", "source": "the abstract"}],
        "checks": [{"id": "replace-above", "claim": "replace ends above accumulate", "expr": "replace.g2 - accumulate.g2",
                    "expect": expect, "paper": {"value": 0.65, "source": "Table 2: 2.39 - 1.74"}}],
        "notes": "a test claim",
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(claim, sort_keys=False))
    return path


@pytest.fixture
def claims(tiny_lm_data, tmp_path) -> Path:
    folder, configs = tmp_path / "claims", tmp_path / "configs"
    folder.mkdir()
    configs.mkdir()
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs", seeds=[0, 1, 2])
    cfg["evaluation"]["metrics"] = ["cross_entropy", "perplexity"]
    write_config(cfg, configs / "tiny.yaml")
    broken = dict(cfg, data={**cfg["data"], "path": str(tmp_path / "no-such-data")}, experiment={**cfg["experiment"], "name": "broken"})
    write_config(broken, configs / "broken.yaml")
    _claim(folder, "holds", "../configs/tiny.yaml", "positive")  # a path is read relative to the claim file
    _claim(folder, "turned-round", "../configs/tiny.yaml", "negative")
    _claim(folder, "fails", str(configs / "broken.yaml"), "positive")
    return folder


def _invoke(*args: str):
    return CliRunner().invoke(app, ["reproduce", *args], catch_exceptions=False)


def test_reproduce_runs_a_claim_prints_its_verdicts_and_writes_them_into_the_run(claims, tmp_path):
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    held = _invoke(str(claims / "holds.yaml"), "--db", db)
    assert held.exit_code == 0, held.output
    run_dir = next((tmp_path / "runs" / "tiny").iterdir())
    result = json.loads((run_dir / "reproduction.json").read_text())["claims"]["holds"]
    (check,) = result["checks"]
    assert result["claim"] == "holds" and result["size"] == "laptop" and result["seeds"] == [0, 1, 2]
    assert sorted(check["values"]) == ["0", "1", "2"] and check["n"] == 3
    assert check["ci_low"] > 0, f"replace should end above accumulate in every seed: {check}"
    assert check["verdict"] == result["verdict"] == "reproduced"
    assert [p["generation"] for p in result["curves"]["cross_entropy"]["replace"]] == [0, 1, 2]
    assert all(p["n"] == 3 for p in result["curves"]["cross_entropy"]["accumulate"])
    out = " ".join(held.output.split())
    assert "replace.g2 - accumulate.g2 (positive)" in out and "+0.65 (Table 2: 2.39 - 1.74)" in out
    assert f"[{check['ci_low']:+.4g}, {check['ci_high']:+.4g}] (3 seeds)" in out and "verdict: reproduced" in out
    report = (run_dir / "report" / "report.md").read_text()
    assert "## Reproduction" in report and "**Verdict: reproduced**" in report and "Table 2: 2.39 - 1.74" in report
    assert (run_dir / "report" / "figures" / "reproduction-holds.png").is_file()

    # the same run, the claim turned round: continues the finished run, does not hold
    turned = _invoke(str(claims / "turned-round.yaml"), "--db", db)
    assert turned.exit_code == 0, turned.output
    assert [p.name for p in (tmp_path / "runs" / "tiny").iterdir()] == [run_dir.name]
    both = json.loads((run_dir / "reproduction.json").read_text())["claims"]
    assert list(both) == ["holds", "turned-round"] and both["holds"] == result  # one run, two claims: each its entry
    again = both["turned-round"]
    assert again["verdict"] == again["checks"][0]["verdict"] == "not reproduced" and again["config"] == "../configs/tiny.yaml"
    assert again["checks"][0]["values"] == check["values"]
    rewritten = CliRunner().invoke(app, ["report", str(run_dir)])
    assert rewritten.exit_code == 0, rewritten.output
    report = (run_dir / "report" / "report.md").read_text()
    assert "### holds: replace ends above accumulate" in report and "### turned-round: replace ends above accumulate" in report
    assert "verdict: not reproduced" in " ".join(turned.output.split())

    # every claim of the folder, one page; the broken claim is shown as failed, the others written
    page = _invoke("--all", "--claims", str(claims), "--report", str(tmp_path / "page"), "--db", db)
    assert page.exit_code == 1
    assert "error: 1 of 3 claims failed: fails (" in " ".join(page.output.split())
    md = (tmp_path / "page" / "reproductions.md").read_text()
    html = (tmp_path / "page" / "reproductions.html").read_text()
    for name, verdict in (("holds", "reproduced"), ("turned-round", "not reproduced"), ("fails", "failed")):
        assert f"| `{name}` | Someone (2024), \"A tiny paper\", Tests, arXiv:0000.00000 | **{verdict}** |" in md
        assert f"\">{name}: replace ends above accumulate</h2>" in html
    assert "**Verdict: failed.** The run stopped:" in md and "no-such-data" in md
    assert md.count("![") == 3  # each claim's curves beside the paper's numbers (the failed one: the paper's only)
    assert "\"it collapses\"" in md and "data:image/png;base64," in html


def test_reproduce_lists_the_shipped_claims_with_their_costs():
    listed = _invoke()
    assert listed.exit_code == 0, listed.output
    for name in claim_names():
        assert name in listed.output
    assert "CPU cost" in listed.output and "arXiv:2404.01413" in " ".join(listed.output.split())
