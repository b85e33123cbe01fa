"""Wall time, peak memory and headline figures of every ready config at full size.

Each config runs as a user runs it (`collapselab run NAME --fresh`, `collapselab learn
configs/NAME.yaml --fresh` for a learner), one process at a time, into a temporary folder.
Peak memory is that process's largest resident set (`os.wait4`'s rusage, per config). The
headline figures are the last generation's (or learner step's) main metrics per arm.

    python benchmarks/bench_ready_configs.py                   # every ready config: hours on a 2-core CPU
    python benchmarks/bench_ready_configs.py quickstart kc-smollm2 --set experiment.generations=2
    nice -n 10 python benchmarks/bench_ready_configs.py quickstart   # on a shared machine

The cache is `$COLLAPSELAB_CACHE` (default ~/.cache/collapselab), so converted catalogue models
and scratch bases from earlier runs are reused; `--empty-cache` times a first run instead (each
config then pays its tokenizer, base model and catalogue conversion). The reproduction configs
(repro-*) are measured by `collapselab reproduce`, not here. Prints one Markdown table row per
config, for benchmarks/RESULTS.md ("Ready configs at full size").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
# the figures a reader looks at first, where a run has them
HEADLINE = ("perplexity", "has_ans_f1", "f1", "mmlu_accuracy", "gibberish_score", "distinct_2")


def ready_configs() -> list[str]:
    return sorted(p.stem for p in CONFIGS.glob("*.yaml") if not p.stem.startswith("repro-"))


def is_learner(name: str) -> bool:
    import yaml

    return "learner" in yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def run_one(name: str, overrides: list[str], env: dict[str, str], out: Path) -> tuple[int, float, float, str]:
    """(exit code, wall seconds, peak RSS GiB, stderr tail) of one config's process."""
    if is_learner(name):
        cmd = [sys.executable, "-m", "collapselab.cli", "learn", str(CONFIGS / f"{name}.yaml"), "--fresh",
               "--set", f"learner.output_dir={out}"]
    else:
        cmd = [sys.executable, "-m", "collapselab.cli", "run", name, "--fresh", "--quiet", "--set", f"experiment.output_dir={out}"]
    cmd += [a for kv in overrides for a in ("--set", kv)]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=out.parent)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err.seek(0)
        tail = err.read()[-2000:]
    return os.waitstatus_to_exitcode(status), wall, usage.ru_maxrss / 2**20, tail


def headline(run_root: Path) -> str:
    """`arm: metric value, ...` at the last generation of each arm (seed 0)."""
    parts = []
    for run_dir in sorted(p for p in run_root.glob("*/*") if p.is_dir()):
        for arm_dir in sorted(p for p in run_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            gens = sorted(arm_dir.glob("seed-0/gen-*/metrics.json"), key=lambda p: int(p.parent.name.split("-")[1]))
            if not gens:
                continue
            metrics = json.loads(gens[-1].read_text())["metrics"]
            shown = [f"{m} {metrics[m]['value']:.3g}" for m in HEADLINE if m in metrics and metrics[m]["value"] is not None]
            parts.append(f"{arm_dir.name} g{len(gens) - 1}: " + ", ".join(shown[:3]))
    return "; ".join(parts) or "(no metrics.json)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="*", help="ready config names (default: every one)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an override passed to every config")
    parser.add_argument("--empty-cache", action="store_true", help="a fresh cache per config: a first run's cost")
    args = parser.parse_args()
    names = args.configs or ready_configs()
    unknown = sorted(set(names) - set(ready_configs()))
    if unknown:
        parser.error(f"not ready configs: {', '.join(unknown)} (ready: {', '.join(ready_configs())})")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from common import machine

    print(f"machine: {machine()}; overrides: {args.set or 'none'}")
    print("| config | wall time | peak RSS | last generation |\n| --- | ---: | ---: | --- |")
    failed = 0
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "runs"
            out.mkdir()
            env = {**os.environ, "COLLAPSELAB_DB": f"sqlite:///{tmp}/db.sqlite"}
            env.setdefault("COLLAPSELAB_DATA", str(REPO.parent / "shared" / "data"))
            if args.empty_cache:
                env["COLLAPSELAB_CACHE"] = f"{tmp}/cache"
            code, wall, peak, tail = run_one(name, args.set, env, out)
            if code != 0:
                failed += 1
                print(f"| `{name}` | failed (exit {code}) after {wall:.0f} s | {peak:.2f} GiB | {tail.strip().splitlines()[-1] if tail.strip() else ''} |")
                continue
            minutes, seconds = divmod(round(wall), 60)
            print(f"| `{name}` | {minutes} min {seconds:02d} s | {peak:.2f} GiB | {headline(out)} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
