"""Tasks as objects: what lm and qa mean to the loop (`base.Task`), and MMLU (`mcq`), an
evaluation that runs beside either of them at every generation.

`get_task(name)` is the one place a task's name is looked up; everything else asks the
task object.
"""

from __future__ import annotations

from collapselab.lab import Evaluation, Task
from collapselab.tasks.lm import LMTask
from collapselab.tasks.qa import QATask

TASK_NAMES = ("lm", "qa")

__all__ = ["TASK_NAMES", "Evaluation", "Task", "get_task"]


def get_task(name: str) -> Task:
    """The task object for `experiment.task`."""

    tasks: dict[str, Task] = {"lm": LMTask(), "qa": QATask()}
    if name not in tasks:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASK_NAMES)}")
    return tasks[name]
