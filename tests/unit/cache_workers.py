"""Processes for the cache concurrency test: each fills the same cold cache entry.

Each counts the builds it runs by appending a line to `builds` (so the test sees how many
processes built the entry) and writes a JSON report instead of raising, so the test shows
what went wrong in another process.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

from tiny import tiny_corpus

BUILD_S = 1.0  # a slow build: the other processes arrive while it runs


def fill(kind: str, builds: str, barrier, report: str) -> None:
    """Fill the cache entry of `kind` ("gibberish" or "tokenizer") after every process is ready."""
    texts = [d["text"] for d in tiny_corpus(60, 1, "train")]
    try:
        if kind == "gibberish":
            from collapselab.metrics import gibberish

            gibberish.fit_gibberish_scorer = _counted(gibberish.fit_gibberish_scorer, builds)
            barrier.wait(timeout=120)
            scorer = gibberish.cached_gibberish_scorer(texts[:40], heldout_texts=texts[40:])
            result = scorer.score("The cat saw the river in the morning.")
        else:
            from collapselab.models import loading

            loading.train_tokenizer = _counted(loading.train_tokenizer, builds)
            barrier.wait(timeout=120)
            result = loading.cached_tokenizer(texts, 300)("The cat saw the river.")["input_ids"]
        out = {"result": result, "error": None}
    except BaseException:  # noqa: BLE001 - the report carries it to the test
        out = {"result": None, "error": traceback.format_exc()}
    Path(report).write_text(json.dumps(out))


def _counted(build, builds: str):
    def counted(*args, **kwargs):
        with open(builds, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(BUILD_S)
        return build(*args, **kwargs)

    return counted
