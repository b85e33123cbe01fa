"""A tiny generated QA dataset (context, question, answers, title) and a three-arm config.

Shared by the refinery and report unit tests: no real data, tiny random models.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

NAMES = ["Anna", "Boris", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Irene", "Jonas", "Karla", "Liam"]
CITIES = ["Paris", "Berlin", "Madrid", "Vienna", "Oslo", "Lisbon", "Prague", "Dublin"]
JOBS = ["teacher", "baker", "doctor", "pilot", "farmer", "painter"]
PETS = ["a black cat", "a small dog", "two birds", "a brown horse"]


def qa_record(i: int, rng: random.Random, prefix: str) -> dict:
    name, city, job, pet = rng.choice(NAMES), rng.choice(CITIES), rng.choice(JOBS), rng.choice(PETS)
    age = rng.randint(20, 70)
    context = (f"{name} lives in {city} with {pet}. {name} works as a {job} in the old town. "
               f"Last year {name} turned {age} and moved to a new house near the river. "
               f"On weekends {name} walks in the park with friends.")
    q, a = rng.choice([
        (f"Where does {name} live?", city),
        (f"What does {name} work as?", f"a {job}"),
        (f"How old did {name} turn last year?", str(age)),
        (f"What pet does {name} have?", pet),
        (f"Who does {name} walk with on weekends?", ""),  # unanswerable, as in SQuAD v2
    ])
    return {"id": f"{prefix}-{i}", "title": f"{prefix}-article-{i // 2}", "context": context, "question": q, "answers": [a] if a else []}


def write_tiny_qa(folder: Path, n_train: int = 40, n_test: int = 12) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        rng = random.Random(seed)
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(qa_record(i, rng, split)) + "\n" for i in range(n)))
    return folder


def three_arm_config(data_dir: Path, out_dir: Path, **refinery) -> dict:
    return {
        "experiment": {"name": "tiny-refinery", "task": "qa", "generations": 1, "seeds": [0], "output_dir": str(out_dir)},
        "data": {"dataset": "jsonl", "path": str(data_dir), "train_size": 40, "test_size": 12},
        "model": {
            "name": "scratch",
            "scratch": {"architecture": "llama", "vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "max_positions": 160},
            "pretrain": {"epochs": 2, "lr": 0.01, "batch_tokens": 2048, "seq_len": 64},
        },
        "training": {"epochs": 1, "lr": 0.005, "batch_tokens": 2048, "seq_len": 64},
        "decoding": {"method": "sample", "top_p": 0.9, "max_new_tokens": 8, "batch_tokens": 8192},
        "evaluation": {"metrics": ["exact_match", "f1", "rouge1", "rouge2", "rougeL"]},
        "refinery": {"generator_epochs": 1, "max_question_tokens": 12,
                     "filters": {"order": ["length_bounds", "answer_in_context", "exact_duplicate", "near_duplicate", "seed_ngram_overlap"]},
                     **refinery},
        "arms": [
            {"name": "A-human", "data": "human"},
            {"name": "B-contaminated", "data": "contaminated"},
            {"name": "C-synthetic", "data": "synthetic"},
        ],
    }
