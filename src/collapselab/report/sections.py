"""The report's sections, in order.

A section is a function `(run, doc, figdir)` that adds its blocks to the document (figures
as PNG files under `figdir`), or adds nothing when it does not apply to the run: a report
never prints a section only to say it does not apply. A new section is one function with
that signature and one line in `SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from collapselab.report import details, discussion, headline, outcomes, reproductions
from collapselab.report.document import Document
from collapselab.results import RunData

Section = Callable[[RunData, Document, Path], None]

SECTIONS: list[Section] = [
    headline.what_happened,  # the headline in three lines, one prompt at generation 0 and at the end
    discussion.findings,
    discussion.limitations,
    headline.under_collapse,  # metrics whose "better" inverts for synthetic data
    outcomes.overview,
    reproductions.section,  # a run of a published claim: its verdicts (reproduction.json)
    outcomes.success_criteria,
    outcomes.main_table,
    outcomes.comparisons,
    outcomes.per_generation,
    outcomes.knowledge_and_stages,
    details.dataset_statistics,
    details.filter_effectiveness,
    details.sample_predictions,
    details.training_details,
    details.reproducibility,
]
