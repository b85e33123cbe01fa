"""A learner's published checkpoints: `checkpoints/step-<k>/` (a full HF model folder with
`state.json`: the step, the source cursor and the documents trained on), and a `latest` file
naming the newest one, written last and atomically.

A reader (the chat server) that follows `latest` therefore only ever sees a complete
folder; a learner killed mid-step leaves at most a hidden temporary folder, which the next
publish of that step replaces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collapselab.models.loading import save_model
from collapselab.records import atomic_write_text

LATEST = "latest"
STATE = "state.json"


def checkpoint_dir(root: Path, step: int) -> Path:
    return root / "checkpoints" / f"step-{step}"


def publish(model: Any, tokenizer: Any, root: Path, step: int, state: dict[str, Any]) -> Path:
    """Save step `step` (LoRA adapters merged) with its `state`, then point `latest` at it."""

    folder = checkpoint_dir(root, step)
    save_model(model, tokenizer, folder, extra_json={STATE: {"step": step, **state}})
    atomic_write_text(root / "checkpoints" / LATEST, folder.name + "\n")
    return folder


def latest(root: Path) -> Path | None:
    """The folder `latest` names, or None before the first publish."""
    pointer = root / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    return root / "checkpoints" / pointer.read_text(encoding="utf-8").strip()


def read_state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / STATE).read_text(encoding="utf-8"))
