"""Wall time and peak memory of `collapselab quickstart`, from an empty cache.

The cache is emptied first, so the figure includes training the scratch tokenizer and
base model (a second run on the same machine reuses them and is faster). Peak memory is
the largest resident set of the quickstart process (RUSAGE_CHILDREN).

    python benchmarks/bench_quickstart.py [--keep DIR]   # needs COLLAPSELAB_DATA or ../shared/data

`--keep DIR` runs in DIR (emptied first) and keeps the run there, for its report.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> int:
    import argparse
    import contextlib
    import shutil

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="run in this folder (emptied first) and keep it")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config override passed on to the quickstart, e.g. evaluation.reference_model=null")
    args = parser.parse_args()
    data = os.environ.get("COLLAPSELAB_DATA", str(REPO.parent / "shared" / "data"))
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
    with (contextlib.nullcontext(str(args.keep)) if args.keep else tempfile.TemporaryDirectory()) as tmp:
        env = {**os.environ, "COLLAPSELAB_DATA": data, "COLLAPSELAB_CACHE": f"{tmp}/cache", "COLLAPSELAB_DB": f"sqlite:///{tmp}/db.sqlite"}
        cmd = [sys.executable, "-m", "collapselab.cli", "quickstart", "--fresh", "--set", f"experiment.output_dir={tmp}/runs"]
        cmd += [a for kv in args.set for a in ("--set", kv)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        run_dir = next(Path(tmp, "runs", "quickstart").iterdir())
        last = {}
        for arm_dir in sorted(p for p in run_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            gens = sorted(arm_dir.glob("seed-0/gen-*/metrics.json"), key=lambda p: int(p.parent.name.split("-")[1]))
            docs = [json.loads(g.read_text())["metrics"] for g in gens]
            last[arm_dir.name] = {m: [round(d[m]["value"], 3) if m in d and d[m]["value"] is not None else None for d in docs]
                                  for m in ("perplexity", "external_synthetic_perplexity", "gibberish_score", "distinct_2")}
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, python {platform.python_version()}; overrides: {args.set or 'none'}")
    print(f"quickstart wall time: {wall:.1f} s (limit 300 s), peak RSS: {peak_gib:.2f} GiB (limit 2 GiB)")
    for arm, by_metric in last.items():
        for metric, values in by_metric.items():
            print(f"  {arm:<12} {metric} by generation: {values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
