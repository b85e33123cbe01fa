"""Tiny random chat models saved as HF folders, and a run directory of them: built in
seconds, no downloads. Plain functions (no fixtures) so the e2e tests load this file too."""

from __future__ import annotations

import json
from pathlib import Path

TEXT = (
    "the cat sat on the mat and the dog sat on the log. "
    "a model trained on its own output slowly forgets the tails of the distribution. "
    "hello there, how are you today? i am fine, thank you. "
) * 20
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tiny_tokenizer(chat: bool):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>"]
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TEXT], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
    fast.padding_side = "left"
    if chat:
        fast.chat_template = TEMPLATE
    return fast


def tiny_model(tokenizer, seed: int, max_positions: int = 256):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=max_positions, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # peaked logits: greedy choices are not decided by float rounding
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    return model.eval()


def save_tiny(folder: Path, *, chat: bool = True, seed: int = 0, max_positions: int = 256) -> Path:
    from collapselab.models.loading import save_model

    tok = tiny_tokenizer(chat)
    save_model(tiny_model(tok, seed, max_positions), tok, folder)
    return folder


def make_run(root: Path, generations: int = 3) -> Path:
    """A run directory with one arm whose generations each saved a (different) tiny model."""
    import yaml

    from collapselab.config import config_from_dict, dump_config

    run = root / "runs" / "tiny" / "run-1"
    cfg = config_from_dict({
        "experiment": {"name": "tiny", "task": "lm", "generations": generations, "output_dir": str(root / "runs")},
        "data": {"dataset": "jsonl", "path": str(root)},
        "arms": [{"name": "replace", "mix": "replace"}],
    })
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(cfg))
    (run / "manifest.json").write_text(json.dumps({"run_id": "run-1", "experiment": "tiny", "created": "2025-01-01T00:00:00", "config_hash": cfg.config_hash(), "git_sha": "x"}))
    for g in range(generations):
        save_tiny(run / "replace" / "seed-0" / f"gen-{g}" / "model", chat=False, seed=10 + g)
    assert yaml.safe_load((run / "config.yaml").read_text())["arms"][0]["name"] == "replace"
    return run
