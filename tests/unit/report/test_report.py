"""A tiny three-arm refinery run and a tiny recursive lm run, end to end, then `report`:
every section is there with real numbers, no placeholder, and the HTML stands alone."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from collapselab.cli import app
from collapselab.records import read_records
from collapselab.refinery.filters import REASONS
from collapselab.refinery.pipeline import rejection_of

SECTIONS = ["What happened", "Findings", "Limitations", "Overview", "Success criteria", "Main results", "F1 comparison",
            "All main metrics", "Gap to the human baseline", "Dataset statistics", "Refinery and filter effectiveness",
            "Sample predictions", "every arm right", "wrong, `C-synthetic` right", "every arm wrong", "Training details",
            "Reproducibility"]
PLACEHOLDER = re.compile(r"TO BE FILLED|\b[Nn]a[Nn]\b|\bNone\b|TODO|TBD|[Pp]laceholder|\binf\b")
EMBEDDED_IMAGE = re.compile(r'data:image/[a-z]+;base64,[A-Za-z0-9+/=]+')


def _placeholder(text: str) -> re.Match | None:
    """A placeholder in the report's text; embedded images are data, not text (their base64
    may spell "TBD" by chance)."""
    return PLACEHOLDER.search(EMBEDDED_IMAGE.sub("data:image", text))


def _report(run_dir: Path, out: Path) -> tuple[str, str]:
    result = CliRunner().invoke(app, ["report", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return (out / "report.md").read_text(), (out / "report.html").read_text()


@pytest.fixture
def three_arm_run(tiny_three_arm_run) -> tuple[Path, str]:
    """The session's tiny three-arm run (tests/tiny_runs.py: shared with the dashboard tests)."""
    return tiny_three_arm_run.run_dir, tiny_three_arm_run.db


def test_builders_write_provenance_reasons_and_store_rows(three_arm_run):
    from collapselab.store import Store

    three_arm_run, db = three_arm_run
    g0 = three_arm_run / "B-contaminated/seed-0/gen-0"
    human = read_records(three_arm_run / "A-human/seed-0/gen-0/train.parquet")
    contaminated = read_records(g0 / "train.parquet")
    assert len(contaminated) == len(human) == 40
    assert [r.parent_id for r in contaminated] == [r.id for r in human]
    strategies = [json.loads(r.generator)["strategy"] for r in contaminated]
    assert strategies.count("answer_paraphrase") == 8  # 20 % of 40
    assert all(r.source == "contaminated" and r.generation == 0 for r in contaminated)
    c0 = three_arm_run / "C-synthetic/seed-0/gen-0"
    stats = json.loads((c0 / "refinery.json").read_text())
    synthetic, rejected = read_records(c0 / "train.parquet"), read_records(c0 / "rejected.parquet")
    assert 0 < len(synthetic) <= stats["target"] == 40 and stats["used"] == len(synthetic)
    assert stats["attempts"] == stats["passed"] + sum(stats["rejected"].values()) == stats["passed"] + len(rejected)
    assert {s for s in stats["strategies"]} == {"question_paraphrase", "question_variants", "context_augmentation", "answer_expansion"}
    assert all(r.source == "synthetic" and r.parent_id in {h.id for h in human} for r in synthetic)
    reasons = [rejection_of(r)["reason"] for r in rejected]
    assert set(reasons) <= set(REASONS) and {k: reasons.count(k) for k in set(reasons)} == stats["rejected"]
    with Store(db) as store:  # the engine recorded refinery.json through the store's shape
        rows = {(r["arm"], r["seed"]): r for r in store.refinery(store.resolve_run(three_arm_run))}
    assert rows[("C-synthetic", 0)]["rejected"] == stats["rejected"] and rows[("C-synthetic", 0)]["attempts"] == stats["attempts"]


def test_three_arm_report_has_every_section_and_no_placeholder(three_arm_run, tmp_path):
    md, html = _report(three_arm_run[0], tmp_path / "report")
    for s in SECTIONS:
        assert s in md, s
    assert not _placeholder(md) and not _placeholder(html)
    assert "recovery (C - B) / (A - B)" in md and "(1 seed)" not in md  # one seed: one note, not one per cell
    assert "Every metric per generation" not in md  # one generation: no curves, and no section saying so
    # the gap figure is drawn only where some gap is not 0; else the report says so (and the
    # gap table's every number is 0)
    gap = md.split("## Gap to the human baseline", 1)[1].split("\n## ", 1)[0]
    cells = [c.strip() for line in gap.splitlines() if line.startswith("| `") for c in line.split("|")[2:-1]]
    assert cells
    drawn = any(float(c) != 0 for c in cells)
    assert ("No difference: every gap" in gap) != drawn and ("figures/gap.png" in md) == drawn
    for f in ("primary", "metrics", *(["gap"] if drawn else []), "filters", "loss"):
        assert (tmp_path / "report/figures" / f"{f}.png").stat().st_size > 5000
        assert f"figures/{f}.png" in md
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)  # self-contained


def test_recursive_lm_report(tiny_lm_run, tmp_path):
    run_dir = tiny_lm_run.run_dir
    md, html = _report(run_dir, tmp_path / "out")
    assert not _placeholder(md) and not _placeholder(html)
    assert "Success criteria" not in md and "Refinery and filter effectiveness" not in md  # absent, not "does not apply"
    assert "perplexity comparison" in md and "gen 1" in md and "mean over 2 seeds" in md
    assert (tmp_path / "out/figures/generations-test.png").exists() and (tmp_path / "out/figures/generations-synthetic.png").exists()


def test_report_of_unknown_run_is_one_line_error(tmp_path):
    # A folder that is not a run directory: bad input (2), named in one line on stderr.
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"error: {tmp_path}: not a run directory (no manifest.json)\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)
    # A run id, with no results database to look it up in: the database's code (3).
    result = CliRunner().invoke(app, ["report", "20250101-000000", "--db", f"sqlite:///{tmp_path / 'none.db'}"])
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.startswith("error: no results database at ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
