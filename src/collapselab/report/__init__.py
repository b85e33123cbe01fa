"""The experiment report: `write_report(run_dir, out_dir)` writes report.md, a
self-contained report.html (PNG plots embedded as data URIs) and figures/*.png.

The same sections serve three-arm refinery runs and recursive runs; a section that does
not apply to a run says so in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["ReportPaths", "write_report"]


@dataclass(frozen=True, slots=True)
class ReportPaths:
    markdown: Path
    html: Path
    figures: list[Path]


def write_report(run_dir: Path, out_dir: Path | None = None) -> ReportPaths:
    """Write the report of the run in `run_dir` to `out_dir` (default: `<run_dir>/report`)."""
    from collapselab.records import atomic_write_text
    from collapselab.report import details, outcomes
    from collapselab.report.data import load_run
    from collapselab.report.document import Document, Figure

    run = load_run(run_dir)
    out = out_dir or run_dir / "report"
    figdir = out / "figures"
    doc = Document(f"collapselab report: {run.cfg.experiment.name} ({run.manifest['run_id']})")
    outcomes.overview(run, doc)
    outcomes.success_criteria(run, doc)
    outcomes.main_table(run, doc)
    outcomes.comparisons(run, doc, figdir)
    outcomes.per_generation(run, doc, figdir)
    outcomes.knowledge_and_stages(run, doc)
    details.dataset_statistics(run, doc)
    details.filter_effectiveness(run, doc, figdir)
    details.sample_predictions(run, doc)
    details.training_details(run, doc, figdir)
    details.reproducibility(run, doc)
    atomic_write_text(out / "report.md", doc.markdown(out))
    atomic_write_text(out / "report.html", doc.html())
    return ReportPaths(out / "report.md", out / "report.html", [b.path for b in doc.blocks if isinstance(b, Figure)])
