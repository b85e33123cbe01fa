"""Where a run's events go beyond the console: trackers, the Hub, notifications.

`outlets(cfg, say, write_report)` builds the listeners the config's `tracking:`, `hub:` and
`notify:` blocks ask for; `with_outlets(cfg, listeners, write_report)` adds them to the
engine's listeners, with
what they could not deliver said to those listeners as `Message` events when the run ends
(in the engine's thread, like every event). A block whose secret is missing from the
environment is a config error here, before the run starts; the network never is.

The trackers log the run's report, which they do not write themselves: the report is a face
above the loop, so whoever starts the run (the CLI, the Python API, a sweep trial) hands in
`write_report`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from collapselab.lab.events import GenerationFailed, Listener, Message, RunFinished, emit
from collapselab.outlets.hub import HubPusher
from collapselab.outlets.notify import Notifier
from collapselab.outlets.trackers import MlflowTracker, WandbTracker


def outlets(cfg, say: Callable[[str], None], write_report: Callable[[Path], Path] | None = None) -> list[Listener]:
    """The listeners `cfg` asks for (none without tracking/hub/notify blocks).

    Args:
        cfg: the resolved `ExperimentConfig`.
        say: where each outlet says, at the end of the run, what it could not deliver.
        write_report: writes a run directory's report and returns its folder, which the
            trackers log when the run ends; None: they log the config without a report.

    Raises:
        ConfigError: a block's token or chat id is not in the environment.
    """
    out: list[Listener] = []
    if cfg.tracking is not None and cfg.tracking.mlflow is not None:
        out.append(MlflowTracker(cfg.tracking, say, write_report))
    if cfg.tracking is not None and cfg.tracking.wandb is not None:
        out.append(WandbTracker(cfg.tracking, say, write_report))
    if cfg.hub is not None:
        out.append(HubPusher(cfg.hub, say))
    if cfg.notify is not None:
        out.append(Notifier(cfg.notify, say))
    return out


def with_outlets(cfg, listeners: Sequence[Listener], write_report: Callable[[Path], Path] | None = None) -> list[Listener]:
    """`listeners` followed by `cfg`'s outlets, whose reports go to `listeners` as Messages."""
    shown = list(listeners)
    found = outlets(cfg, lambda text: emit(shown, Message(text)), write_report)
    return shown + ([Outlets(found)] if found else [])


class Outlets:
    """One listener for every outlet: each event goes to all of them; when the run ends (or
    a generation fails and so does the run), every outlet first queues its last jobs, then
    each is waited for in turn. Their threads work meanwhile, so the wait is the slowest
    outlet's, not the sum."""

    def __init__(self, members: list[Listener]) -> None:
        self.members = members

    def __call__(self, event) -> None:
        for member in self.members:
            member(event)
        if isinstance(event, RunFinished | GenerationFailed):
            for member in self.members:
                member.close()
