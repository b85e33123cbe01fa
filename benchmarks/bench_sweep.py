"""Wall time of the test sweep (2 x 2: ratio x seed of the tiny e2e config) run serially, as
one `collapselab run` after another, against `collapselab sweep` on a local Ray with 2 CPUs
(two trials at a time, one torch thread each). Both start from an empty cache and database
and make the same four runs (the script prints how far their final perplexities differ:
one torch thread against two sums in another order).

    python benchmarks/bench_sweep.py [--repeats 2]

Each repeat runs the two cases alternately; the table gives every repeat and the median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from tiny_lab import tiny_config, write_config, write_corpus  # noqa: E402

GRID = ["arms.0.ratio=0.25,0.75", "experiment.seeds=[0],[1]"]


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "COLLAPSELAB_CACHE": str(tmp / "cache"), "COLLAPSELAB_DB": f"sqlite:///{tmp}/db.sqlite",
            "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": str(tmp / "ray")}


def _final_metrics(folder: Path) -> dict[str, float]:
    """grid point (the run id's last part: the sweep name differs with the temp folder) ->
    the final generation's perplexity."""
    out = {}
    for m in folder.glob("**/ratio/seed-*/gen-1/metrics.json"):
        out[m.parents[3].name.rsplit("-", 1)[1]] = json.loads(m.read_text())["metrics"]["perplexity"]["value"]
    return out


def serial(tmp: Path) -> tuple[float, dict[str, float]]:
    """The four trials, one `collapselab run` each, one after another."""
    from collapselab.config import dump_config, load_config
    from collapselab.sweep.plan import plan_sweep

    config = _config(tmp)
    plan = plan_sweep(load_config(config), GRID)
    t0 = time.perf_counter()
    for trial in plan.trials:
        path = tmp / f"{trial.run_id}.yaml"
        path.write_text(dump_config(trial.config))
        subprocess.run([sys.executable, "-m", "collapselab.cli", "run", str(path), "--run-id", trial.run_id],
                       env=_env(tmp), check=True, capture_output=True, cwd=tmp)
    return time.perf_counter() - t0, _final_metrics(plan.folder)


def on_ray(tmp: Path) -> tuple[float, dict[str, float]]:
    """`collapselab sweep` on a local Ray with 2 CPUs, 1 CPU per trial."""
    config = _config(tmp)
    (tmp / "ray").mkdir()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "collapselab.cli", "sweep", str(config), *(a for g in GRID for a in ("--grid", g))],
                   env=_env(tmp), check=True, capture_output=True, cwd=tmp)
    from collapselab.config import load_config
    from collapselab.sweep.plan import plan_sweep

    return time.perf_counter() - t0, _final_metrics(plan_sweep(load_config(config), GRID).folder)


def _config(tmp: Path) -> Path:
    data = write_corpus(tmp / "data")
    return write_config(tiny_config(data, tmp / "runs", sweep={"num_cpus": 2, "resources": {"cpus": 1}}), tmp / "tiny.yaml")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    times: dict[str, list[float]] = {"serial": [], "ray": []}
    for r in range(args.repeats):
        results = {}
        for name, case in (("serial", serial), ("ray", on_ray)):
            with tempfile.TemporaryDirectory(prefix="clbench") as tmp:
                seconds, metrics = case(Path(tmp))
            times[name].append(seconds)
            results[name] = metrics
            print(f"repeat {r + 1}: {name:6s} {seconds:6.1f} s  final perplexities {sorted(round(v, 2) for v in metrics.values())}", flush=True)
        assert results["serial"].keys() == results["ray"].keys() and len(results["ray"]) == 4, results
        diff = max(abs(results["ray"][k] / results["serial"][k] - 1) for k in results["ray"])
        print(f"repeat {r + 1}: largest relative difference of a final perplexity, Ray vs serial: {diff:.1e}")
    print("\n| case | " + " | ".join(f"repeat {i + 1} (s)" for i in range(args.repeats)) + " | median (s) |")
    print("|---|" + "---:|" * (args.repeats + 1))
    for name, label in (("serial", "4 x `collapselab run`, one after another (2 torch threads)"),
                        ("ray", "`collapselab sweep`, local Ray, 2 CPUs, 1 per trial")):
        print(f"| {label} | " + " | ".join(f"{t:.1f}" for t in times[name]) + f" | {statistics.median(times[name]):.1f} |")
    print(f"\nspeed-up (median serial / median Ray): {statistics.median(times['serial']) / statistics.median(times['ray']):.2f}x")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
