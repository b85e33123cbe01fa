"""Dashboard first view on real sizes: every page's first script run on a results database of
10 runs x 3 arms x 10 generations x 2 seeds with 2,000 per-example predictions each.

The issue's target: any page's first view within 2 s. A first view here is one fresh
Streamlit session (AppTest, the same script the server runs) with the query cache
emptied, so every store query runs; the browser's drawing is not in it. Imports are paid
once before timing (a server pays them once at start). The runs are crafted the way the
engine writes them (tests/unit/store/run_factory.py) and imported with
`collapselab import`'s code path; building the database is timed and printed apart.

    python benchmarks/bench_dashboard.py [--runs 10] [--arms 3] [--generations 10] [--seeds 2]
                                         [--examples 2000] [--repeat 3] [--db URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from common import machine  # noqa: E402

PAGES = ("runs", "generations", "question", "synthetic", "refinery")


def build(db: str, root: Path, args: argparse.Namespace) -> list[str]:
    """Write and import the runs; returns their ids."""
    import yaml
    from unit.store.run_factory import make_run

    from collapselab.store import import_run_dir

    arms = ("replace", "accumulate", "accumulate_subsample")[: args.arms]
    # a config every page can load: the SQuAD one, with this run's arms, seeds and G
    config = yaml.safe_load((ROOT / "configs" / "squad-selfplag.yaml").read_text())
    config["arms"] = [{"name": a, "init": "previous", "mix": a} for a in arms]
    ids = []
    for i in range(args.runs):
        run_dir = make_run(root, run_id=f"run-{i:02d}", arms=arms, seeds=tuple(range(args.seeds)),
                           generations=args.generations, examples=args.examples, experiment=f"bench-{i % 3}")
        config["experiment"].update(name=f"bench-{i % 3}", generations=args.generations, seeds=list(range(args.seeds)))
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        import_run_dir(db, run_dir)
        ids.append(run_dir.name)
    return ids


def first_view(db: str, page: str, run_id: str) -> float:
    """Seconds for one fresh session's first run of `page` with an empty query cache."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from collapselab.dashboard import APP

    st.cache_data.clear()
    os.environ["COLLAPSELAB_DB"] = db
    at = AppTest.from_file(str(APP), default_timeout=600)
    at.query_params["page"] = page
    at.query_params["run"] = run_id
    t = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - t
    if at.exception or at.error:
        raise SystemExit(f"page {page!r} failed: {[e.value for e in [*at.exception, *at.error]]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--arms", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--generations", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--examples", type=int, default=2000, help="per-example predictions per generation")
    parser.add_argument("--repeat", type=int, default=3, help="first views per page (median printed)")
    parser.add_argument("--db", default=None, help="database URL (default: a SQLite file in a temp dir)")
    args = parser.parse_args()

    print(machine())
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or f"sqlite:///{Path(tmp) / 'results.db'}"
        t = time.perf_counter()
        ids = build(db, Path(tmp) / "runs", args)
        n = args.runs * args.arms * args.generations * args.seeds
        print(f"database: {args.runs} runs, {n} generations, {n * args.examples:,} predictions; "
              f"built and imported in {time.perf_counter() - t:.1f} s")
        for page in PAGES:  # imports (pandas, altair, scipy...) paid once, as a server does
            first_view(db, page, ids[-1])
        worst = 0.0
        for page in PAGES:
            times = [first_view(db, page, ids[-1]) for _ in range(args.repeat)]
            worst = max(worst, statistics.median(times))
            print(f"{page:12s} first view median {statistics.median(times):.2f} s "
                  f"(of {', '.join(f'{x:.2f}' for x in times)})")
        print(f"slowest page: {worst:.2f} s (target: 2 s)")
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
