"""Hub push (`hub:` block): each finished generation's model folder and metrics.json uploaded
to a Hugging Face Hub repository, at `<prefix>/<arm>/seed-<s>/gen-<g>/`, through
`huggingface_hub`.

One commit per generation (every file of its folder, DONE included, so a generation on the
Hub is whole or absent). Uploads run in the background (`collapselab.outlets.outbox`): a failed
one is retried, then reported; none fails or blocks the run. When a run starts, the
repository is listed once: a generation whose metrics.json is there is not uploaded again,
and finished generations that are missing (an earlier attempt's uploads failed, or the run
had no `hub:` block then) are uploaded; the run's manifest.json goes to `<prefix>/` once.

Resuming elsewhere (`restore_generations`): before a run continues, the generations its run
directory lacks and the Hub holds whole (a DONE file there, pushed from another machine)
are downloaded into it, when the Hub's manifest has the run's config hash: the engine then
continues after them as after its own.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from collapselab.config.operations import HubBlock
from collapselab.errors import ConfigError, RunError
from collapselab.lab.events import (
    Event,
    GenerationFailed,
    GenerationFinished,
    RunFinished,
    RunStarted,
)
from collapselab.outlets.outbox import Outbox
from collapselab.rundir.generation import DONE, METRICS, GenerationFolder, finished, planned

if TYPE_CHECKING:
    from collapselab.config import ExperimentConfig

MANIFEST = "manifest.json"


class HubFiles(Protocol):
    """What restoring needs of the Hub (`huggingface_hub.HfApi` has both; a test hands in a
    local folder standing in for it)."""

    def list_repo_files(self, repo_id: str) -> list[str]: ...

    def hf_hub_download(self, repo_id: str, filename: str, *, local_dir: str) -> str: ...


class HubPusher:
    """Listener that pushes every finished generation to the Hub (see the module docstring)."""

    def __init__(self, block: HubBlock, say: Callable[[str], None]) -> None:
        token = os.environ.get(block.token_env)
        if not token:
            raise ConfigError(f"hub.token_env: ${block.token_env} is not set (a Hub write token for {block.repo_id})")
        from huggingface_hub import HfApi

        # A generation's parquet files are part of it (a run resumes from them elsewhere), not
        # a data set put in a model repository by mistake, as huggingface_hub warns per file.
        warnings.filterwarnings("ignore", message="It seems that you are about to commit a data file", category=UserWarning)
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
            manifest = event.run_dir / MANIFEST
            self.outbox.put(f"list {self.block.repo_id}", lambda: self._list_and_backfill(done, manifest))
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

    def _list_and_backfill(self, done: list[Path], manifest: Path) -> None:
        """List the repository, then queue the run's manifest and the finished generation
        folders `done` it lacks."""
        self.api.create_repo(self.block.repo_id, private=self.block.private, exist_ok=True)
        files = self.api.list_repo_files(self.block.repo_id)
        self.there |= {f.rsplit("/", 1)[0] for f in files if f.endswith(f"/{METRICS}")}
        if _in_repo(self.prefix, MANIFEST) not in files:
            self.outbox.put(f"upload {_in_repo(self.prefix, MANIFEST)}", lambda: self._upload_manifest(manifest))
        for folder in done:
            if self.path_in_repo(folder) not in self.there:
                self._queue(folder)

    def _upload_manifest(self, manifest: Path) -> None:
        self.api.upload_file(path_or_fileobj=str(manifest), path_in_repo=_in_repo(self.prefix, MANIFEST), repo_id=self.block.repo_id,
                             commit_message=f"collapselab: {_in_repo(self.prefix, MANIFEST)}")

    def _upload(self, folder: Path, path: str) -> None:
        if path in self.there:
            return
        from huggingface_hub import CommitOperationAdd

        # every file: another machine resumes from a generation only when it is whole (DONE)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        ops = [CommitOperationAdd(path_in_repo=f"{path}/{p.relative_to(folder).as_posix()}", path_or_fileobj=str(p)) for p in files]
        self.api.create_commit(self.block.repo_id, ops, commit_message=f"collapselab: {path}")
        self.there.add(path)
        self.uploaded.append(path)


def _in_repo(prefix: str, path: str) -> str:
    return f"{prefix}/{path}" if prefix else path


def restore_generations(cfg: ExperimentConfig, run_dir: Path, run_id: str, api: HubFiles | None = None) -> list[str]:
    """Download into `run_dir` the generations it lacks that the Hub holds whole, each arm
    and seed from generation 0 up to its first gap (a later one would follow a generation
    this run recomputes). Returns the repository paths restored.

    Raises:
        RunError: The Hub's manifest of this prefix has another config hash (another
            experiment's generations are never mixed into this run).
    """
    block = cfg.hub
    assert block is not None  # the engine calls this for runs with a `hub:` block
    if api is None:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import RepositoryNotFoundError

        api = HfApi(endpoint=block.endpoint, token=os.environ.get(block.token_env) or None)
        try:
            files = set(api.list_repo_files(block.repo_id))
        except RepositoryNotFoundError:  # nothing pushed yet
            return []
    else:
        files = set(api.list_repo_files(block.repo_id))
    prefix = block.prefix.format(run_id=run_id, experiment=cfg.experiment.name).strip("/")
    wanted = [f for f in planned(run_dir, cfg) if not f.is_done()]
    on_hub = [f for f in wanted if f"{_path(prefix, f)}/{DONE}" in files]
    if not on_hub:
        return []
    if _in_repo(prefix, MANIFEST) in files:
        with tempfile.TemporaryDirectory() as tmp:
            theirs = json.loads(Path(api.hf_hub_download(block.repo_id, _in_repo(prefix, MANIFEST), local_dir=tmp)).read_text())
        ours = json.loads((run_dir / MANIFEST).read_text())
        if theirs.get("config_hash") != ours.get("config_hash"):
            raise RunError(f"hub {block.repo_id}/{prefix or '.'}: its generations are of config {theirs.get('config_hash')}, this run's is "
                           f"{ours.get('config_hash')}; give hub.prefix a folder of this run's own (e.g. '{{run_id}}')")
    restored = []
    for f in wanted:
        if f.generation > 0 and not GenerationFolder(run_dir, f.arm, f.seed, f.generation - 1).is_done():
            continue  # a gap below: this generation will be recomputed after it
        path = _path(prefix, f)
        if f"{path}/{DONE}" not in files:
            continue
        _download(api, block.repo_id, sorted(x for x in files if x.startswith(f"{path}/")), path, f)
        restored.append(path)
    return restored


def resume_from_hub(cfg: ExperimentConfig, run_dir: Path) -> list[str]:
    """`restore_generations` for the engine, as lines to tell the user. A Hub that cannot be
    reached does not stop the run: it says so, and the run computes what it lacks here."""
    assert cfg.hub is not None
    try:
        restored = restore_generations(cfg, run_dir, run_dir.name)
    except RunError:  # another config's generations: the user's to sort out
        raise
    except Exception as e:  # offline, unreachable, refused: huggingface_hub's and its HTTP client's errors, named below
        return [f"hub: could not look for generations to resume from on {cfg.hub.repo_id} ({type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}); this run computes what it lacks"]
    return [f"hub: resumed {p} from {cfg.hub.repo_id}" for p in restored]


def _path(prefix: str, f: GenerationFolder) -> str:
    return _in_repo(prefix, f"{f.arm}/seed-{f.seed}/gen-{f.generation}")


def _download(api: HubFiles, repo_id: str, files: list[str], path: str, folder: GenerationFolder) -> None:
    """The generation's files into a hidden folder beside its own, then renamed into place
    (DONE arrives with the rest, never before it); a partial folder of an earlier attempt goes."""
    from collapselab.cache import new_folder_beside

    folder.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = new_folder_beside(folder.path)
    try:
        download_root = tmp / ".download"
        for name in files:
            got = Path(api.hf_hub_download(repo_id, name, local_dir=str(download_root)))
            dest = tmp / name[len(path) + 1:]
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(got), dest)
        shutil.rmtree(download_root, ignore_errors=True)
        if folder.path.exists():
            shutil.rmtree(folder.path)
        os.replace(tmp, folder.path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
