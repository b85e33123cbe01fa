"""A tiny experiment for end-to-end tests of sweeps and outlets: a made-up corpus and a
config whose run takes seconds (tiny random model, 8 training blocks, 2 generations)."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import yaml

WORDS = {
    "subject": ["the cat", "a dog", "the old man", "my sister", "the teacher", "a small bird"],
    "verb": ["saw", "liked", "found", "painted", "carried", "followed"],
    "object": ["the red ball", "a big tree", "the river", "a blue car", "the garden", "an apple"],
    "end": ["in the morning.", "after school.", "near the lake.", "with a smile."],
}


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(3)
    for split, n in (("train", 60), ("test", 20)):
        with (folder / f"{split}.jsonl").open("w") as f:
            for i in range(n):
                text = " ".join(f"{rng.choice(WORDS['subject']).capitalize()} {rng.choice(WORDS['verb'])} "
                                f"{rng.choice(WORDS['object'])} {rng.choice(WORDS['end'])}" for _ in range(4))
                f.write(json.dumps({"id": f"{split}-{i}", "text": text}) + "\n")
    return folder


def tiny_config(data: Path, out: Path, **blocks: Any) -> dict[str, Any]:
    return {
        "experiment": {"name": "tiny", "task": "lm", "generations": 2, "seeds": [0], "output_dir": str(out)},
        "data": {"dataset": "jsonl", "path": str(data), "train_size": 8, "test_size": 4, "block_tokens": 8},
        "model": {
            "name": "scratch",
            "scratch": {"architecture": "llama", "vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "max_positions": 64},
            "pretrain": {"epochs": 1, "lr": 0.01, "batch_tokens": 512, "seq_len": 32},
        },
        "training": {"epochs": 1, "lr": 0.005, "batch_tokens": 512, "seq_len": 32},
        "decoding": {"method": "sample", "top_p": 0.9, "batch_tokens": 2048},
        "evaluation": {"metrics": ["perplexity", "cross_entropy"]},
        "arms": [{"name": "ratio", "init": "previous", "mix": "ratio", "ratio": 0.5}],
        **blocks,
    }


def write_config(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def ray_processes(ray_tmp: str) -> list[int]:
    """Pids of the live processes of the Ray started with RAY_TMPDIR=`ray_tmp`: those with it
    in their environment, and Ray's agents, which are started with an environment of their
    own but keep their logs open under it. Zombies are left out (nothing left to stop)."""
    marker, found = f"RAY_TMPDIR={ray_tmp}".encode(), []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            if (p / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if marker in (p / "environ").read_bytes().split(b"\0") or any(
                os.readlink(fd).startswith(ray_tmp) for fd in (p / "fd").iterdir()
            ):
                found.append(int(p.name))
        except OSError:
            pass
    return found


def wait_gone(ray_tmp: str, timeout_s: float) -> list[int]:
    """Wait until that Ray has no process left; returns the pids still there after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while (left := ray_processes(ray_tmp)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def kill_all(pids: list[int]) -> None:
    """SIGKILL each pid (the test's own processes, found by `ray_processes`)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
