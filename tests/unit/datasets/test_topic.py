"""data.topic: training text from one MMLU subject's domain (the knowledge-collapse `--mmlu_topic`).

Tiny crafted corpus of two domains (biology and football articles, two paragraphs each) and a
tiny MMLU folder; a tiny random scratch model runs the loop end to end.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from tiny import tiny_config

from collapselab.checks import check_experiment
from collapselab.config import ConfigError, config_from_dict
from collapselab.datasets import DatasetError
from collapselab.datasets.topic import topic_documents
from collapselab.engine import run_experiment
from collapselab.records import Record, read_records
from collapselab.rundir.metrics_file import read_metrics_file

BIOLOGY = ["the cell membrane surrounds the nucleus", "enzymes fold every protein in the cell",
           "the chromosome carries genes of the species", "mitochondria make energy for the cell",
           "a protein binds the enzyme inside the nucleus", "photosynthesis happens in the leaf cell"]
FOOTBALL = ["the striker scored a goal in the stadium", "the goalkeeper saved a penalty kick",
            "the referee showed the striker a card", "fans sang in the stadium after the goal",
            "the coach picked the goalkeeper for the league", "the league final ended with a late goal"]
BIOLOGY_WORDS = {w for s in BIOLOGY for w in s.split()}
FOOTBALL_ONLY = {w for s in FOOTBALL for w in s.split()} - BIOLOGY_WORDS


def _articles(sentences: list[str], prefix: str, n: int, rng: random.Random) -> list[dict]:
    rows = []
    for i in range(n):
        for p in range(2):  # two paragraphs (records) share one article title
            text = " ".join(rng.choice(sentences).capitalize() + "." for _ in range(12))
            rows.append({"id": f"{prefix}-{i}-{p}", "title": f"{prefix} article {i}", "text": text})
    return rows


@pytest.fixture
def two_domains(tmp_path: Path) -> Path:
    rng = random.Random(3)
    folder = tmp_path / "twodomains"
    folder.mkdir()
    train = _articles(BIOLOGY, "biology", 4, rng) + _articles(FOOTBALL, "football", 4, rng)
    rng.shuffle(train)
    test = _articles(BIOLOGY, "test-biology", 2, rng) + _articles(FOOTBALL, "test-football", 2, rng)
    for split, rows in (("train", train), ("test", test)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def _mmlu(root: Path) -> Path:
    questions = {
        "high_school_biology": [("What surrounds the nucleus of a cell?", "membrane", "goal", "stadium", "card", "A"),
                                ("Which molecule does an enzyme fold?", "penalty", "protein", "league", "kick", "B"),
                                ("Where are genes of a species carried?", "stadium", "coach", "chromosome", "fans", "C")],
        "sports_science": [("Who saves a penalty kick?", "enzyme", "cell", "nucleus", "goalkeeper", "D"),
                           ("Who scores a goal in the stadium?", "striker", "protein", "membrane", "leaf", "A"),
                           ("Who shows a card to the striker?", "gene", "referee", "cell", "enzyme", "B")],
    }
    for split in ("dev", "val", "test"):
        (root / split).mkdir(parents=True)
        for subject, rows in questions.items():
            (root / split / f"{subject}_{split}.csv").write_text("".join(",".join(q) + "\n" for q in rows))
    return root


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def test_topic_documents_keep_the_articles_of_the_subject_domain(two_domains, tmp_path):
    mmlu = _mmlu(tmp_path / "mmlu")
    docs = [Record(id=r["id"], source="human", title=r["title"], text=r["text"])
            for r in map(json.loads, (two_domains / "train.jsonl").read_text().splitlines())]
    for subject, prefix in (("high_school_biology", "biology"), ("sports_science", "football")):
        kept = topic_documents(docs, subject, 2, str(mmlu))
        titles = {d.title for d in kept}
        assert len(titles) == 2 and all(t.startswith(prefix) for t in titles), (subject, titles)
        assert len(kept) == 4  # both paragraphs of each kept article, in file order
        assert [d.id for d in kept] == [d.id for d in docs if d.title in titles]


def test_a_run_with_data_topic_trains_on_the_domain_and_scores_that_subject(two_domains, tmp_path):
    cfg = tiny_config(two_domains, tmp_path / "runs", generations=2)
    cfg["data"].update(train_size=20, test_size=6, topic={"mmlu_subject": "high_school_biology", "articles": 3})
    cfg["arms"] = [{"name": "ratio-0.5", "init": "previous", "mix": "ratio", "ratio": 0.5}]
    cfg["evaluation"]["mmlu"] = {"subjects": ["high_school_biology"], "per_subject": 3, "path": str(_mmlu(tmp_path / "mmlu"))}
    run_dir = run_experiment(config_from_dict(cfg))
    for g in (0, 1):
        gen = run_dir / f"ratio-0.5/seed-0/gen-{g}"
        human = [r for r in read_records(gen / "train.parquet") if r.source == "human"]
        assert human, g
        seen = set().union(*(_words(r.text or "") for r in human))
        assert seen & BIOLOGY_WORDS and not seen & FOOTBALL_ONLY, (g, seen & FOOTBALL_ONLY)
        m = read_metrics_file(gen / "metrics.json").metrics
        assert m["mmlu_accuracy"].details["n"] == 3 and "mmlu_accuracy.subject.high_school_biology" in m
        assert m["perplexity"].value > 1


def test_topic_needs_titled_articles_and_the_lm_task(two_domains, tmp_path):
    mmlu = str(_mmlu(tmp_path / "mmlu"))
    untitled = [Record(id="a", source="human", text="the cell membrane")]
    with pytest.raises(DatasetError, match=r"data.topic: .*no titles"):
        topic_documents(untitled, "high_school_biology", 1, mmlu)
    with pytest.raises(DatasetError, match=r"unknown subject"):
        topic_documents([Record(id="a", source="human", title="t", text="x")], "astrology", 1, mmlu)
    cfg = tiny_config(two_domains, tmp_path / "runs", task="qa")
    cfg["data"]["topic"] = {"mmlu_subject": "high_school_biology"}
    with pytest.raises(ConfigError, match=r"data.topic: .*lm task"):
        check_experiment(config_from_dict(cfg))
