"""The models a server can answer with: one named model, a run's generations, or a learner's
checkpoints, loaded on first use and held (least recently used dropped) up to a limit.

A learner's `latest` is re-read every few seconds: a new checkpoint is loaded beside the old
one and swapped in under a lock, so a batch already decoding finishes on the model it
started with, and a checkpoint that fails to load leaves the old one serving (logged).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collapselab.config import ConfigError
from collapselab.errors import CollapselabError
from collapselab.models.loading import load_model
from collapselab.results import resolve_run_dir
from collapselab.rundir.folders import load_run_config
from collapselab.rundir.generation import GenerationFolder
from collapselab.serve.config import DEFAULT_MODEL, SourceBlock

log = logging.getLogger("collapselab.serve")
LATEST = "latest"


class UnknownModel(CollapselabError, KeyError):
    """A request named a model id the server does not serve."""


@dataclass(slots=True)
class Served:
    """A loaded model and what it is: its id, the generation (or learner step) it is."""

    id: str
    model: Any
    tokenizer: Any
    generation: int | None
    origin: str  # what a person reads: the model name, run/arm/generation or checkpoint
    max_positions: int


def _positions(model: Any, tokenizer: Any) -> int:
    cfg = model.config
    n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    return int(n) if n else min(int(tokenizer.model_max_length), 4096)


def _load_folder(folder: Path) -> tuple[Any, Any]:
    loaded = load_model(folder, for_training=False)
    return loaded.model, loaded.tokenizer


class ModelPool:
    """What `source` makes available, by id; `get(id)` loads a model the first time."""

    def __init__(self, source: SourceBlock, max_loaded: int = 2):
        self.source = source
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[str, Served] = OrderedDict()
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._latest_name: str | None = None  # the checkpoint folder `latest` pointed at when loaded
        self._failed: str | None = None  # a pointer target that failed to load (not retried)
        self.reloads = 0
        if source.learner is not None:
            self.kind = "learner"
            self.learner_dir = Path(source.learner)
            self.default_id = LATEST
        elif source.run is not None:
            self.kind = "run"
            self._open_run()
        else:
            self.kind = "model"
            self.name = source.model or DEFAULT_MODEL
            self.default_id = self.name

    # ------------------------------------------------------------ what is served

    def _open_run(self) -> None:
        run = Path(self.source.run)
        if not (run / "manifest.json").is_file():
            run = resolve_run_dir(str(run), self.source.db)
        self.run_dir = run
        try:
            cfg = load_run_config(run)
        except ConfigError as e:
            raise CollapselabError(f"--run {run}: {e}") from None
        if cfg.model.kind != "causal":
            raise CollapselabError(f"--run {run}: model.kind is {cfg.model.kind!r}; the chat server serves causal models")
        arms = [a.name for a in cfg.arms]
        arm = self.source.arm or arms[0]
        if arm not in arms:
            raise CollapselabError(f"--arm {arm!r}: not an arm of {run}; arms are {arms}")
        seed = self.source.seed if self.source.seed is not None else cfg.experiment.seeds[0]
        if seed not in cfg.experiment.seeds:
            raise CollapselabError(f"--seed {seed}: not a seed of {run}; seeds are {cfg.experiment.seeds}")
        self.run_seed, self.run_arms = seed, arms
        gens = self._run_generations(arm)
        if not gens:
            raise CollapselabError(f"--run {run}: arm {arm!r} seed {seed} has no finished generation with a saved model yet")
        g = self.source.generation if self.source.generation is not None else gens[-1]
        if g not in gens:
            raise CollapselabError(f"--generation {g}: arm {arm!r} of {run} has saved models for generations {gens}")
        self.default_id = f"{arm}/gen-{g}"

    def _run_generations(self, arm: str) -> list[int]:
        """The generations of `arm` (the served seed) whose model is saved, finished or not."""

        seed_dir = GenerationFolder(self.run_dir, arm, self.run_seed, 0).path.parent
        numbers = [int(d.name[4:]) for d in seed_dir.glob("gen-*") if d.name[4:].isdigit()]
        return sorted(g for g in numbers if (GenerationFolder(self.run_dir, arm, self.run_seed, g).model / "config.json").is_file())

    def _checkpoints(self) -> list[int]:
        folder = self.learner_dir / "checkpoints"
        steps = [int(d.name[5:]) for d in folder.glob("step-*") if d.name[5:].isdigit() and (d / "config.json").is_file()]
        return sorted(steps)

    def ids(self) -> list[str]:
        """Every model id a request may name."""
        if self.kind == "model":
            return [self.name]
        if self.kind == "run":
            return [f"{arm}/gen-{g}" for arm in self.run_arms for g in self._run_generations(arm)]
        return [LATEST, *(f"step-{k}" for k in self._checkpoints())]

    def describe(self, model_id: str) -> dict[str, Any]:
        """The id's generation (or learner step) and origin, without loading it."""
        if model_id not in self.ids():
            raise UnknownModel(model_id)
        if self.kind == "model":
            return {"id": model_id, "generation": None, "origin": self.name}
        if self.kind == "run":
            arm, g = model_id.rsplit("/gen-", 1)
            return {"id": model_id, "generation": int(g), "origin": f"{self.run_dir.name} arm {arm} generation {g}"}
        if model_id == LATEST:
            with self._lock:
                served = self._loaded.get(LATEST)
            step = served.generation if served else None
            return {"id": model_id, "generation": step, "origin": f"learner {self.learner_dir.name} newest checkpoint"}
        return {"id": model_id, "generation": int(model_id[5:]), "origin": f"learner {self.learner_dir.name} {model_id}"}

    # ------------------------------------------------------------ loading

    def get(self, model_id: str) -> Served:
        """The loaded model for `model_id` (loading it, and dropping the least recently used)."""
        with self._lock:
            if model_id in self._loaded:
                self._loaded.move_to_end(model_id)
                return self._loaded[model_id]
        if model_id not in self.ids():
            raise UnknownModel(model_id)
        with self._load_lock:  # one load at a time: two requests for a new id load it once
            with self._lock:
                if model_id in self._loaded:
                    return self._loaded[model_id]
            served = self._load(model_id)
        with self._lock:
            self._loaded[model_id] = served
            while len(self._loaded) > self.max_loaded:
                oldest = next(iter(self._loaded))
                if oldest == model_id:
                    break
                self._loaded.pop(oldest)
        return served

    def _load(self, model_id: str) -> Served:
        if self.kind == "model":
            loaded = load_model(self.name, for_training=False)
            model, tok = loaded.model, loaded.tokenizer
            return Served(model_id, model, tok, None, self.name, _positions(model, tok))
        if self.kind == "run":
            arm, g = model_id.rsplit("/gen-", 1)
            model, tok = _load_folder(GenerationFolder(self.run_dir, arm, self.run_seed, int(g)).model)
            return Served(model_id, model, tok, int(g), self.describe(model_id)["origin"], _positions(model, tok))
        if model_id == LATEST:
            name = self.latest_pointer()
            if name is None:
                raise UnknownModel(f"{LATEST}: {self.learner_dir} has published no checkpoint yet")
            served = self._load_checkpoint(name, LATEST)
            self._latest_name = name
            return served
        return self._load_checkpoint(model_id, model_id)

    def _load_checkpoint(self, name: str, model_id: str) -> Served:
        model, tok = _load_folder(self.learner_dir / "checkpoints" / name)
        step = int(name.removeprefix("step-"))
        return Served(model_id, model, tok, step, f"learner {self.learner_dir.name} {name}", _positions(model, tok))

    def latest_pointer(self) -> str | None:
        """The checkpoint folder name the learner's `latest` file names, or None before the first."""
        path = self.learner_dir / "checkpoints" / LATEST
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def refresh(self) -> bool:
        """Load the learner's newest checkpoint if `latest` moved; True when it was swapped in.

        A checkpoint that fails to load is logged and the model already serving stays.
        """
        if self.kind != "learner":
            return False
        name = self.latest_pointer()
        if name is None or name in (self._latest_name, self._failed):
            return False
        try:
            served = self._load_checkpoint(name, LATEST)
        except Exception as e:  # any load failure (missing file, bad weights) keeps the old model
            self._failed = name
            log.error("checkpoint %s failed to load (%s: %s); still serving %s", name, e.__class__.__name__, e, self._latest_name)
            return False
        with self._lock:
            self._loaded[LATEST] = served
            self._latest_name = name
        self.reloads += 1
        log.info("now serving %s", name)
        return True

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)
