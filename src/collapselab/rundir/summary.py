"""Per-generation summary tables, read from a run directory's metrics.json files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collapselab.metrics.registry import display
from collapselab.rundir.folders import load_run_config
from collapselab.rundir.generation import planned

# (metric, format) shown when present, in this order; each column is titled with the
# metric's label from the registry.
COLUMNS: list[tuple[str, str]] = [
    ("perplexity", "{:.2f}"),
    ("reference_perplexity", "{:.2f}"),
    ("unigram_perplexity", "{:.1f}"),
    ("synthetic_perplexity", "{:.2f}"),
    ("external_synthetic_perplexity", "{:.2f}"),
    ("exact_match", "{:.2f}"),
    ("f1", "{:.2f}"),
    ("has_ans_f1", "{:.2f}"),
    ("no_ans_accuracy", "{:.1f}"),
    ("zero_shot_f1", "{:.2f}"),
    ("zero_shot_has_ans_f1", "{:.2f}"),
    ("answer_length", "{:.1f}"),
    ("synthetic_success_rate", "{:.3f}"),
    ("mmlu_accuracy", "{:.3f}"),
    ("distinct_2", "{:.3f}"),
    ("duplicate_rate", "{:.3f}"),
    ("gibberish_score", "{:.2f}"),
    ("gibberish_rate", "{:.3f}"),
]


def generation_rows(run_dir: Path) -> list[dict[str, Any]]:
    """One row per arm x seed x generation: status and headline numbers."""
    rows = []
    for f in planned(run_dir, load_run_config(run_dir)):
        row: dict[str, Any] = {"arm": f.arm, "seed": f.seed, "generation": f.generation, "status": f.status()}
        if f.is_done():
            data = f.read_metrics()
            row["metrics"] = {k: v for k, v in data.values().items() if v is not None and v == v}  # NaN: not computable
            if "collapse_stage" in data.metrics:
                row["stage"] = data.metrics["collapse_stage"].details["stage"]
            row["train_records"] = data.sizes.train_records
            row["synthetic_share"] = data.sizes.train_synthetic_share
            row["train_loss"] = data.train.losses[-1] if data.train.losses else None
            row["seconds"] = sum(v for v in data.timings.values() if v is not None)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]], title: str):
    from rich.table import Table

    present = [c for c in COLUMNS if any(c[0] in r.get("metrics", {}) for r in rows)]
    t = Table(title=title, show_lines=False)
    staged = any("stage" in r for r in rows)
    for name in ["arm", "seed", "gen", "status", "train (syn %)", "loss"] + [display(c[0])[0] for c in present] + (["stage"] if staged else []) + ["time s"]:
        t.add_column(name, justify="left" if name in ("arm", "status", "stage") else "right")
    for r in rows:
        m = r.get("metrics", {})
        share = r.get("synthetic_share")
        recs = f"{r['train_records']} ({100 * share:.0f}%)" if "train_records" in r else ""
        loss = f"{r['train_loss']:.3f}" if r.get("train_loss") is not None else ""
        cells = [fmt.format(m[k]) if k in m else "" for k, fmt in present]
        secs = f"{r['seconds']:.1f}" if "seconds" in r else ""
        stage = [r.get("stage", "")] if staged else []
        t.add_row(r["arm"], str(r["seed"]), str(r["generation"]), r["status"], recs, loss, *cells, *stage, secs)
    return t
