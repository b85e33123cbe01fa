"""Per-generation summary tables, read from a run directory's metrics.json files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collapselab.rundir import gen_dir, is_done, load_run_config

# (metric, column title, format) shown when present, in this order
COLUMNS: list[tuple[str, str, str]] = [
    ("perplexity", "test ppl", "{:.2f}"),
    ("reference_perplexity", "ref ppl (g0)", "{:.2f}"),
    ("unigram_perplexity", "unigram ppl", "{:.1f}"),
    ("synthetic_perplexity", "syn ppl (g0)", "{:.2f}"),
    ("exact_match", "EM", "{:.2f}"),
    ("f1", "F1", "{:.2f}"),
    ("distinct_2", "syn distinct-2", "{:.3f}"),
    ("duplicate_rate", "syn dup rate", "{:.3f}"),
    ("gibberish_rate", "syn gibberish", "{:.3f}"),
]


def generation_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One row per arm x seed x generation: status and headline numbers."""
    cfg = load_run_config(run_dir)
    rows = []
    for arm in cfg.arms:
        for seed in cfg.experiment.seeds:
            for g in range(cfg.experiment.generations):
                d = gen_dir(run_dir, arm.name, seed, g)
                row: dict[str, Any] = {"arm": arm.name, "seed": seed, "generation": g, "status": _status(d)}
                m = d / "metrics.json"
                if is_done(d) and m.exists():
                    data = json.loads(m.read_text())
                    row["metrics"] = {k: v["value"] for k, v in data["metrics"].items()}
                    row["train_records"] = data["sizes"]["train_records"]
                    row["synthetic_share"] = data["sizes"].get("train_synthetic_share")
                    losses = data["train"].get("losses") or []
                    row["train_loss"] = losses[-1] if losses else None
                    row["seconds"] = sum(v for v in data["timings"].values() if isinstance(v, int | float))
                rows.append(row)
    return rows


def _status(d: Path) -> str:
    if is_done(d):
        return "done"
    if not d.exists():
        return "pending"
    steps = [n for n in ("train.parquet", "model", "synthetic.parquet", "predictions.parquet") if (d / n).exists()]
    return "partial: " + (", ".join(steps) if steps else "started")


def table(rows: list[dict[str, Any]], title: str):
    from rich.table import Table

    present = [c for c in COLUMNS if any(c[0] in r.get("metrics", {}) for r in rows)]
    t = Table(title=title, show_lines=False)
    for name in ["arm", "seed", "gen", "status", "train (syn %)", "loss"] + [c[1] for c in present] + ["time s"]:
        t.add_column(name, justify="left" if name in ("arm", "status") else "right")
    for r in rows:
        m = r.get("metrics", {})
        share = r.get("synthetic_share")
        recs = f"{r['train_records']} ({100 * share:.0f}%)" if "train_records" in r else ""
        loss = f"{r['train_loss']:.3f}" if r.get("train_loss") is not None else ""
        cells = [fmt.format(m[k]) if k in m else "" for k, _, fmt in present]
        secs = f"{r['seconds']:.1f}" if "seconds" in r else ""
        t.add_row(r["arm"], str(r["seed"]), str(r["generation"]), r["status"], recs, loss, *cells, secs)
    return t
