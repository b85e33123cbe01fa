"""Run directories: where a run lives, its manifest, and how models are run.

runs/<experiment>/<run_id>/
  config.yaml  manifest.json  .lock (while a command writes the run)
  <arm>/seed-<s>/gen-<g>/   one generation (`rundir/generation.py`: its files, writer and reader)
Every file is written atomically (temp file, then rename), so a file that exists is
complete; a generation's `DONE` is written last. A crashed run resumes at the first missing file.
One process writes a run at a time (`lock_run`).
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from collapselab.cache import new_folder_beside
from collapselab.config import DecodingBlock, ExperimentConfig, config_from_dict, dump_config
from collapselab.config.loading import folder_name_problem
from collapselab.errors import RunError, RunLocked
from collapselab.models.loading import device, model_dtype
from collapselab.records import atomic_write_json, atomic_write_text
from collapselab.rundir.generation import planned
from collapselab.rundir.metrics_file import Runtime
from collapselab.textio import read_json, read_yaml

RUN_LOCK = ".lock"  # hidden: no reader of a run directory takes it for a run file
PACKAGES = ["collapselab", "torch", "transformers", "tokenizers", "peft", "numpy", "pydantic", "pyarrow", "sqlalchemy"]


def git_sha() -> str:
    """The source tree's commit, `-dirty` when it has uncommitted changes; `unknown` outside git."""
    src = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=src, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def hardware() -> dict[str, Any]:
    import torch

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    hw: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform()}
    try:
        hw["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    if torch.cuda.is_available():
        hw["gpu"] = torch.cuda.get_device_name(0)
    return hw


def runtime(decoding: DecodingBlock, *, infers_in_training_dtype: bool = False) -> dict[str, str]:
    """How models are run: the one dtype policy's choices (`models.model_dtype`) and the
    generation backend `decoding` gets; recorded in the manifest and in every generation's
    metrics.json. `infers_in_training_dtype`: the model generates and is scored as it was
    trained, not reloaded for inference (the continuous learner evaluates the model it trains)."""
    from collapselab.generation import generation_backend

    return Runtime(device=device(), train_dtype=model_dtype(for_training=True), infer_dtype=model_dtype(for_training=infers_in_training_dtype),
                   generation_backend=generation_backend(decoding)).model_dump()


def manifest(cfg: ExperimentConfig, run_id: str) -> dict[str, Any]:
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            versions[p] = None
    return {
        "run_id": run_id, "experiment": cfg.experiment.name, "created": datetime.now(UTC).isoformat(),
        "config_hash": cfg.config_hash(), "git_sha": git_sha(), "packages": versions, "python": sys.version.split()[0],
        "seeds": cfg.experiment.seeds, "hardware": hardware(), "runtime": runtime(cfg.decoding), "command": sys.argv,
        **_data_generator(cfg),
    }


def _data_generator(cfg: ExperimentConfig) -> dict[str, Any]:
    """The model that writes the refinery arms' generation-0 data and the loop data of arms
    with `writer: generator`, when a run has such arms."""
    arms = [a.name for a in cfg.arms if a.data != "human" or a.writer == "generator"]
    if not arms:
        return {}
    r = cfg.refinery
    return {"data_generator": {"model": r.generator_model or cfg.model.name, "second_model": r.generator_model is not None,
                               "fine_tuned": r.generator_fine_tune, "arms": arms}}


def load_run_config(run_dir: Path) -> ExperimentConfig:
    path = run_dir / "config.yaml"
    data = read_yaml(path, error=RunError)
    if not isinstance(data, dict):
        raise RunError(f"{path}: top level must be a mapping of blocks, got {type(data).__name__}")
    return config_from_dict(data, source=str(path))


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """A run's manifest.json, checked to be an object with the keys a run is found by."""
    path = run_dir / "manifest.json"
    data = read_json(path, error=RunError)
    for key in ("created", "config_hash"):
        if not isinstance(data, dict) or not isinstance(data.get(key), str):
            raise RunError(f"{path}: key {key!r} is missing or not a string; the run directory is damaged")
    return data


def check_run_id(run_id: str | None) -> None:
    """Refuse a run id that is not one folder name (`../x` would put the run elsewhere)."""
    if run_id is not None and folder_name_problem(run_id) is not None:
        raise RunError(f"--run-id {run_id!r}: {folder_name_problem(run_id)}")


def open_run(cfg: ExperimentConfig, *, fresh: bool = False, run_id: str | None = None) -> Path:
    """The run directory to use: the named run, else the experiment's latest run, else a new one.

    An existing run continues only with the same resolved config: anything else is an error
    that leaves the run untouched (use --fresh for a new run).
    """
    check_run_id(run_id)
    root = Path(cfg.experiment.output_dir) / cfg.experiment.name
    if run_id is None and not fresh:
        existing = [p for p in root.glob("*") if (p / "manifest.json").exists()] if root.exists() else []
        # the newest by creation time, not by name (a named run must not shadow later ones)
        existing.sort(key=lambda p: (read_manifest(p)["created"], p.name))
        run_id = existing[-1].name if existing else None
    if run_id is None:
        run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        while (root / run_id).exists():
            run_id += "x"
    run_dir = root / run_id
    if (run_dir / "manifest.json").exists():
        old = read_manifest(run_dir)["config_hash"]
        if old != cfg.config_hash():
            raise RunError(
                f"{run_dir}: existing run has config hash {old}, this config is {cfg.config_hash()}; "
                "use --fresh to start a new run (the existing run is left untouched)"
            )
        return run_dir
    if run_dir.exists():  # a folder named by --run-id, made by hand: filled in place
        atomic_write_text(run_dir / "config.yaml", dump_config(cfg))
        atomic_write_json(run_dir / "manifest.json", manifest(cfg, run_id))
        return run_dir

    def write(tmp: Path) -> None:
        atomic_write_text(tmp / "config.yaml", dump_config(cfg))
        atomic_write_json(tmp / "manifest.json", manifest(cfg, run_id))

    create_run_folder(run_dir, write)
    return run_dir


def create_run_folder(run_dir: Path, write: Callable[[Path], None]) -> None:
    """Make the new run folder `run_dir` whole: `write` fills a temporary folder beside it
    (config, manifest), which is then renamed to `run_dir`. A kill meanwhile leaves a hidden
    temporary, never a run folder without a manifest.

    Run folders of one experiment are made one at a time, under an exclusive `flock` on the
    experiment's folder itself (a few milliseconds each; sweep trials start together): so
    the holder knows that any temporary it finds there was left by a killed maker, and
    removes it. The kernel drops the lock of a process that dies.
    """
    root = run_dir.parent
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)  # a lock with no file of its own among the runs
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        for left in root.iterdir():
            if left.is_dir() and TEMPORARY_NAME.match(left.name):
                shutil.rmtree(left, ignore_errors=True)
        tmp = new_folder_beside(run_dir)
        try:
            write(tmp)
            os.rename(tmp, run_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    finally:
        os.close(fd)


@dataclass
class RunLock:
    """This process's claim on a run directory: an exclusive `flock` on `<run>/.lock`, which
    names the holder (host, pid, start, command) for whoever is refused."""

    path: Path
    fd: int
    taken_over: dict[str, Any] | None  # what a holder that died without releasing left in the file

    def release(self) -> None:
        """Give the run up. The file goes while still locked: a process that opened it just
        before finds it gone once it gets the lock, and tries again on a new one."""
        self.path.unlink(missing_ok=True)
        os.close(self.fd)  # drops the flock


def lock_run(run_dir: Path) -> RunLock:
    """Claim `run_dir` for this process until `RunLock.release` (or its exit: the kernel drops
    the lock of a process that dies, so a killed run never blocks the next one).

    A lock file left by a dead process on this host is taken over (`RunLock.taken_over` says
    whose). One left by another host is refused, as a live holder is: this host cannot tell
    whether that process still runs.

    Raises:
        RunLocked: another process holds the run; the message names it (exit code 2).
    """
    path = run_dir / RUN_LOCK
    me = {"host": socket.gethostname(), "pid": os.getpid(), "started": datetime.now(UTC).isoformat(), "command": sys.argv}
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            os.close(fd)
            raise RunLocked(f"{run_dir}: {_describe(holder)} is writing this run; wait for it to finish, or stop it") from None
        try:
            current = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)  # the holder released (removed) the file between our open and our lock
    previous = _lock_holder(fd)
    if previous is not None and previous.get("host") != me["host"]:
        os.close(fd)
        raise RunLocked(f"{run_dir}: {_describe(previous)} holds this run; this host cannot tell whether it still runs: "
                        f"if it does not, delete {path}")
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    remove_temporaries(run_dir)  # the lock is ours: whatever a writer left half-written is dead
    return RunLock(path, fd, previous)


# What atomic writers leave behind when killed mid-write: `.<name>.<16 hex>.tmp` files
# (`records.atomic_write_*`), `.<name>.<16 hex>` folders (`cache.new_folder_beside`: model
# folders) and `.gen-<g>.copy` (the engine's copy of a shared generation 0).
TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{16}(\.tmp)?$|^\.gen-\d+\.copy$")


def temporaries(root: Path) -> list[Path]:
    """Every temporary file or folder an interrupted writer left under `root` (not inside
    another temporary folder), sorted. `.superseded/` (results moved aside) is kept data."""
    found = []
    for folder, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            if TEMPORARY_NAME.match(name):
                found.append(Path(folder) / name)
        dirs[:] = [d for d in dirs if not TEMPORARY_NAME.match(d) and d != ".superseded"]
    return sorted(found)


def remove_temporaries(root: Path) -> list[Path]:
    """Delete what `temporaries` finds; only its holder may call this on a run (`lock_run`
    does): a live writer's temporary would vanish under it. Returns what was removed."""
    found = temporaries(root)
    for path in found:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return found


def _lock_holder(fd: int) -> dict[str, Any] | None:
    """What a run's lock file says about its holder; None when empty (a released lock, or a
    holder that has not written itself yet)."""
    text = os.pread(fd, 1 << 16, 0)
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return {"note": text[:200].decode(errors="replace")}
    return data if isinstance(data, dict) else {"note": str(data)[:200]}


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "another process (starting)"
    if "pid" not in holder:
        return f"another process (lock file: {holder.get('note')!r})"
    command = " ".join(holder.get("command") or [])
    return f"pid {holder['pid']} on {holder.get('host')} since {holder.get('started')}" + (f" ({command})" if command else "")


def supersede_from(run_dir: Path, cfg: ExperimentConfig, generation: int) -> list[tuple[str, int, int]]:
    """Move generation `generation` and later of every arm and seed aside (not deleted:
    `<run>/.superseded/<time>/...`), so they are redone; returns (arm, seed, g) moved."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    moved = []
    for f in planned(run_dir, cfg, first=generation):
        if f.path.exists():
            dest = run_dir / ".superseded" / stamp / f.path.relative_to(run_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(f.path), dest)
            moved.append((f.arm, f.seed, f.generation))
    return moved
