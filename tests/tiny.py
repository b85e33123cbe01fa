"""The tests' tiny experiments: made-up corpora, configs whose runs take seconds, and tiny
random models. No real data, no downloads; every tier imports it (tests/ is on sys.path)."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the teacher", "a small bird", "the farmer", "our neighbour"]
VERBS = ["saw", "liked", "found", "painted", "carried", "followed", "helped", "called"]
OBJECTS = ["the red ball", "a big tree", "the river", "a blue car", "the garden", "an apple", "the little house", "a kite"]
ENDINGS = ["in the morning.", "after school.", "near the lake.", "with a smile.", "on a sunny day.", "before dinner."]

def tiny_corpus(n_docs: int, seed: int, prefix: str) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n_docs):
        sentences = [
            f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(ENDINGS)}"
            for _ in range(rng.randint(3, 6))
        ]
        docs.append({"id": f"{prefix}-{i}", "text": " ".join(sentences), "title": f"{prefix}-doc-{i}"})
    return docs


def tiny_config(data_dir: Path, out_dir: Path, **experiment) -> dict:
    cfg = {
        "experiment": {"name": "tiny", "task": "lm", "generations": 3, "seeds": [0], "output_dir": str(out_dir), **experiment},
        "data": {"dataset": "jsonl", "path": str(data_dir), "train_size": 24, "test_size": 8, "block_tokens": 16},
        "model": {
            "name": "scratch",
            "scratch": {"architecture": "llama", "vocab_size": 300, "d_model": 32, "n_layers": 1, "n_heads": 2, "max_positions": 64},
            "pretrain": {"epochs": 2, "lr": 0.01, "batch_tokens": 512, "seq_len": 32},
        },
        "training": {"epochs": 1, "lr": 0.005, "batch_tokens": 512, "seq_len": 32},
        "decoding": {"method": "sample", "top_p": 0.9, "batch_tokens": 2048},
        # the engine's own metrics; the metric families are tested in tests/unit/metrics
        "evaluation": {"metrics": ["perplexity", "cross_entropy", "reference_perplexity"]},
        "arms": [
            {"name": "replace", "init": "previous", "mix": "replace"},
            {"name": "accumulate", "init": "previous", "mix": "accumulate"},
        ],
    }
    return cfg


def write_config(cfg: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def tiny_reference(folder: Path) -> Path:
    """A tiny random causal LM saved as an HF folder, with a word-level BPE unlike the run's
    byte-level scratch tokenizer: an external reference model in small (`evaluation.reference_model`)."""
    if (folder / "config.json").exists():
        return folder
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator([d["text"] for d in tiny_corpus(60, 7, "ref")], trainers.BpeTrainer(vocab_size=150, special_tokens=["<unk>", "<eos>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, max_position_embeddings=256)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder

