"""The dashboard's pages: each module has one `render(ctx)` that draws its page.

`Context` is what the app resolved before any page draws: the database at one data
version, every run, and the run chosen in the sidebar (None on an empty database).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collapselab.dashboard.source import Source
from collapselab.report.palette import arm_colors
from collapselab.tasks import get_task


@dataclass(frozen=True, slots=True)
class Context:
    source: Source
    runs: list[dict[str, Any]]  # Store.list_runs(), filtered by the chosen experiment
    run: dict[str, Any] | None  # the chosen run's list_runs row

    @property
    def run_id(self) -> str:
        assert self.run is not None
        return self.run["run_id"]

    @property
    def arms(self) -> list[str]:
        assert self.run is not None
        return self.run["arms"]

    @property
    def colors(self) -> dict[str, str]:
        """Every arm of the chosen run -> its colour, as the report colours it."""
        return arm_colors(self.arms)

    @property
    def task(self) -> str | None:
        return None if self.run is None else self.run["task"]

    @property
    def answers_questions(self) -> bool:
        """The chosen run's predictions are answers to test questions (its task says so)."""
        assert self.run is not None
        return get_task(self.run["task"]).answers_questions


def status_of(run: dict[str, Any]) -> str:
    """running / done / failed as recorded; for a run recorded before the store kept a
    status, done when every planned generation is recorded, else 'not recorded'."""
    if run["status"] is not None:
        return run["status"]
    expected = run["generations_expected"]
    return "done" if expected is not None and run["generations"] >= expected else "not recorded"


def progress_of(run: dict[str, Any]) -> str:
    """'7 of 12' generations (arms x seeds x G), or the count alone when G is unknown."""
    expected = run["generations_expected"]
    return f"{run['generations']} of {expected}" if expected is not None else str(run["generations"])
