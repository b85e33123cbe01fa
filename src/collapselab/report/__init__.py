"""The experiment report: `write_report(run_dir, out_dir)` writes report.md, a
self-contained report.html (PNG plots embedded as data URIs) and figures/*.png.

The same sections serve three-arm refinery runs and recursive runs; a section that does
not apply to a run is left out. The report opens with what happened (the headline), the
Findings and the Limitations, all generated from the run's own numbers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from collapselab.records import atomic_write_text
from collapselab.report.document import Document, Figure
from collapselab.results import load_run
from collapselab.rundir.generation import finished

__all__ = ["ReportPaths", "up_to_date_report", "write_report"]


@dataclass(frozen=True, slots=True)
class ReportPaths:
    markdown: Path
    html: Path
    figures: list[Path]


def write_report(run_dir: Path, out_dir: Path | None = None) -> ReportPaths:
    """Write the report of the run in `run_dir` to `out_dir` (default: `<run_dir>/report`):
    every section of `report.sections.SECTIONS`, in order."""
    # matplotlib and scipy: imported only when a report is written
    from collapselab.report.sections import SECTIONS

    run = load_run(run_dir)
    out = out_dir or run_dir / "report"
    figdir = out / "figures"
    doc = Document(f"collapselab report: {run.cfg.experiment.name} ({run.manifest['run_id']})")
    for section in SECTIONS:
        section(run, doc, figdir)
    atomic_write_text(out / "report.md", doc.markdown(out))
    atomic_write_text(out / "report.html", doc.html())
    return ReportPaths(out / "report.md", out / "report.html", [b.path for b in doc.blocks if isinstance(b, Figure)])


_lock = threading.Lock()


def up_to_date_report(run_dir: Path) -> Path:
    """The run's report folder (`<run_dir>/report`), written unless the report there is newer
    than the run's last finished generation. The trackers' report writer: one writes at a
    time, so the MLflow and W&B trackers of one run write it once."""
    with _lock:
        folder = run_dir / "report"
        html = folder / "report.html"
        last_done = max((f.done.stat().st_mtime for f in finished(run_dir)), default=0.0)
        if not html.exists() or html.stat().st_mtime < last_done:
            write_report(run_dir, folder)
        return folder
