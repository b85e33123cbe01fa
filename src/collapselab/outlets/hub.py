"""Hub push (`hub:` block): each finished generation's model folder and metrics.json uploaded
to a Hugging Face Hub repository, at `<prefix>/<arm>/seed-<s>/gen-<g>/`, through
`huggingface_hub`.

One commit per generation (the model files and metrics.json together, so a generation on
the Hub is whole or absent). Uploads run in the background (`collapselab.outlets.outbox`): a failed
one is retried, then reported; none fails or blocks the run. When a run starts, the
repository is listed once: a generation whose metrics.json is there is not uploaded again,
and finished generations that are missing (an earlier attempt's uploads failed, or the run
had no `hub:` block then) are uploaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from collapselab.config.operations import HubBlock
from collapselab.errors import ConfigError
from collapselab.lab.events import (
    Event,
    GenerationFailed,
    GenerationFinished,
    RunFinished,
    RunStarted,
)
from collapselab.outlets.outbox import Outbox
from collapselab.rundir.generation import METRICS, MODEL, finished


class HubPusher:
    """Listener that pushes every finished generation to the Hub (see the module docstring)."""

    def __init__(self, block: HubBlock, say: Callable[[str], None]) -> None:
        token = os.environ.get(block.token_env)
        if not token:
            raise ConfigError(f"hub.token_env: ${block.token_env} is not set (a Hub write token for {block.repo_id})")
        from huggingface_hub import HfApi

        self.block, self.say = block, say
        self.api = HfApi(endpoint=block.endpoint, token=token)
        self.outbox = Outbox("hub", retries=block.retries)
        self.there: set[str] = set()  # generation folders in the repo (their metrics.json is)
        self.uploaded: list[str] = []
        self.prefix = ""
        self.closed = False

    def __call__(self, event: Event) -> None:
        if self.closed:
            return
        if isinstance(event, RunStarted):
            self.prefix = self.block.prefix.format(run_id=event.run_id, experiment=event.experiment).strip("/")
            done = [f.path for f in finished(event.run_dir)]  # before this invocation
            self.outbox.put(f"list {self.block.repo_id}", lambda: self._list_and_backfill(done))
        elif isinstance(event, GenerationFinished):
            self._queue(event.folder)
        elif isinstance(event, RunFinished | GenerationFailed):
            self.closed = True  # the run ends: nothing more to queue; close() waits

    def close(self) -> None:
        """Wait (at most `drain_s`) for queued uploads and say what was not uploaded."""
        missing = self.outbox.close(self.block.drain_s)
        self.say(f"hub: {len(self.uploaded)} generation(s) uploaded to {self.block.repo_id}")
        for m in missing:
            self.say(f"hub: not uploaded: {m.what.removeprefix('upload ')} ({m.error})")

    def path_in_repo(self, folder: Path) -> str:
        """`<prefix>/<arm>/seed-<s>/gen-<g>` of a generation folder `<run>/<arm>/seed-<s>/gen-<g>`."""
        parts = [self.prefix, *folder.parts[-3:]] if self.prefix else list(folder.parts[-3:])
        return "/".join(parts)

    def _queue(self, folder: Path) -> None:
        path = self.path_in_repo(folder)
        self.outbox.put(f"upload {path}", lambda: self._upload(folder, path))

    def _list_and_backfill(self, done: list[Path]) -> None:
        """List the repository, then queue the finished generation folders `done` it lacks."""
        self.api.create_repo(self.block.repo_id, private=self.block.private, exist_ok=True)
        files = self.api.list_repo_files(self.block.repo_id)
        self.there |= {f.rsplit("/", 1)[0] for f in files if f.endswith(f"/{METRICS}")}
        for folder in done:
            if self.path_in_repo(folder) not in self.there:
                self._queue(folder)

    def _upload(self, folder: Path, path: str) -> None:
        if path in self.there:
            return
        from huggingface_hub import CommitOperationAdd

        files = sorted(p for p in (folder / MODEL).rglob("*") if p.is_file()) + [folder / METRICS]
        ops = [CommitOperationAdd(path_in_repo=f"{path}/{p.relative_to(folder).as_posix()}", path_or_fileobj=str(p)) for p in files]
        self.api.create_commit(self.block.repo_id, ops, commit_message=f"collapselab: {path}")
        self.there.add(path)
        self.uploaded.append(path)
