"""First load (GGUF -> fp32 HF folder) and cached load of each catalogue model.

    python benchmarks/bench_catalogue.py [names...]

Each case runs in its own process against a fresh, empty cache (so "first load" is what
a user's first `model.name: <name>` costs: reassembly, sha256 check, tokenizer and weight
conversion, saving), then the cached load (`load_model` by name: tokenizer plus a
safetensors `from_pretrained`) twice, each in a new process. Peak RSS is the process's own.
Run it on a quiet machine (nothing else running).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from common import machine, peak_rss_mib, run_in_own_process


def _case(name: str, args: tuple[str, str], queue) -> None:
    cache, what = args
    os.environ["COLLAPSELAB_CACHE"] = cache
    from collapselab.models.loading import load_model, load_tokenizer, resolve_model_path

    start = time.perf_counter()
    if what == "first":
        folder = resolve_model_path(name)
        out = {"seconds": time.perf_counter() - start, "folder": folder}
    else:
        load_tokenizer(name)
        tok_s = time.perf_counter() - start
        loaded = load_model(name, for_training=True)  # fp32, as training loads it
        out = {"seconds": time.perf_counter() - start, "tokenizer_seconds": tok_s,
               "parameters": sum(p.numel() for p in loaded.model.parameters())}
    out["peak_rss_mib"] = peak_rss_mib()
    queue.put(out)


def main(names: list[str]) -> None:
    from collapselab.models.catalogue import CATALOGUE

    print(machine())
    for name in names or list(CATALOGUE):
        with tempfile.TemporaryDirectory(prefix="bench-catalogue-") as cache:
            first = run_in_own_process(_case, name, (cache, "first"))
            size = sum(f.stat().st_size for f in Path(first["folder"]).iterdir()) / 2**30
            print(f"{name}: first load {first['seconds']:.1f} s, peak RSS {first['peak_rss_mib'] / 1024:.2f} GiB, cached folder {size:.2f} GiB")
            for i in range(2):
                c = run_in_own_process(_case, name, (cache, "cached"))
                print(f"{name}: cached load #{i + 1} {c['seconds']:.1f} s (tokenizer {c['tokenizer_seconds']:.1f} s), "
                      f"peak RSS {c['peak_rss_mib'] / 1024:.2f} GiB, {c['parameters'] / 1e6:.1f}M parameters")
    print(machine())


if __name__ == "__main__":
    main(sys.argv[1:])
