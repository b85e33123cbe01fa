"""The reproductions page from runs as far as they got, without running them further.

    python benchmarks/reproductions_page.py OUT CLAIM=RUN_DIR [CLAIM=RUN_DIR ...]
    python benchmarks/reproductions_page.py docs gerstgrasser=runs/repro-gerstgrasser/20261208-000436 \
        kazdan=runs/repro-gerstgrasser/20261208-000436

`collapselab reproduce --all --report OUT` runs (or continues) every claim's config before it
writes the page; a run stopped before its end (a measurement session that ran out of time)
would be continued. This does the command's steps after the run, and only them: each
claim's verdicts on the run directory as it is (`evaluate_claim`: a check whose generation
is not finished has no value for that seed, and fewer than 3 seeds give "inconclusive (n
seeds)"), its reproduction.json, then the same page (`write_page`). It prints each check's
per-seed values, mean and 95 % interval, so the figures quoted elsewhere can be checked.
CLAIM is a claim's name or a claim file's path.
"""

from __future__ import annotations

import sys
from pathlib import Path

from collapselab.report.reproductions import write_page
from collapselab.reproduce.claims import load_claim
from collapselab.reproduce.suite import evaluate_claim, write_reproduction


def main(out: Path, pairs: list[str]) -> None:
    results = []
    for pair in pairs:
        name, run_dir = pair.split("=", 1)
        claim = load_claim(name)
        result = evaluate_claim(claim, Path(run_dir), size="laptop", config=claim.config)
        write_reproduction(Path(run_dir), result)
        results.append(result)
        print(f"{claim.name}: {result['verdict']} (seeds with data: {result['seeds']}, run {run_dir})")
        for c in result["checks"]:
            print(f"  {c['id']}: {c['expr']} ({c['expect']}) per seed {c['values']} mean {c['mean']} "
                  f"95 % [{c['ci_low']}, {c['ci_high']}] n {c['n']}: {c['verdict']}"
                  + (f"; missing {c['missing']}" if c["missing"] else ""))
        for metric, arms in result["curves"].items():
            for arm, points in arms.items():
                print(f"  curve {metric} {arm}: " + ", ".join(f"g{p['generation']} {p['mean']:.4f} (n {p['n']})" for p in points))
    md, html = write_page(results, out)
    # the page says which command wrote it; this is not that command (it did not run the claims)
    said = "Written by `collapselab reproduce --all --report`"
    for path, now in ((md, "Written by `benchmarks/reproductions_page.py` (the page of `collapselab reproduce --all --report`, "
                           "from runs as far as they got)"),
                      (html, "Written by <code>benchmarks/reproductions_page.py</code> (the page of <code>collapselab reproduce "
                             "--all --report</code>, from runs as far as they got)")):
        text = path.read_text()
        before = said if path == md else "Written by <code>collapselab reproduce --all --report</code>"
        if before not in text:
            sys.exit(f"{path}: no {before!r} to correct: the page writer changed, look at this script")
        path.write_text(text.replace(before, now, 1))
    print(f"wrote {md} and {html}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2:])
