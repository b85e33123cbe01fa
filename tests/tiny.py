"""The tests' tiny world, the one place it is built: made-up corpora, configs whose runs take
seconds, BPE tokenizers trained on the fly and tiny random models (Llama, GPT-2, T5), alone
or saved as HF folders. No real data, no downloads; every tier imports it (tests/ is on
sys.path under pytest). torch, transformers and tokenizers are imported by the builders.

Sizes and seeds are fixed: tests assert on what these models do (a loss that falls, greedy
text equal across batch shapes), so a change here is a change to many tests.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

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


def write_tiny_qa(folder: Path) -> Path:
    """A small extractive QA set in `folder` (one unanswerable question per article), split by title."""
    folder.mkdir(parents=True)
    rng = random.Random(5)
    for split, n in (("train", 40), ("test", 12)):
        with (folder / f"{split}.jsonl").open("w") as f:
            for i in range(n):
                who, what = rng.choice(SUBJECTS), rng.choice(OBJECTS)
                context = f"{who.capitalize()} {rng.choice(VERBS)} {what} {rng.choice(ENDINGS)} Then it rained."
                rows = [
                    {"question": f"What did {who} see?", "answers": [what]},
                    {"question": "Who owned the moon?", "answers": []},
                ]
                for j, qa in enumerate(rows):
                    f.write(json.dumps({"id": f"{split}-{i}-{j}", "title": f"{split}-article-{i}", "context": context, **qa}) + "\n")
    return folder


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


# --- Builders ---------------------------------------------------------------------------

# One shape for every tiny model unless a test says otherwise: 32 wide, 64 feed-forward.
LLAMA = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
         "max_position_embeddings": 128, "tie_word_embeddings": True}
GPT2 = {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 128}
T5 = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 4, "dropout_rate": 0.0}


def llama(vocab_size: int, *, seed: int = 0, attn: str = "sdpa", **config: Any):
    """A random `LlamaForCausalLM` of `LLAMA`'s shape (`config` overrides LlamaConfig keys),
    drawn after `torch.manual_seed(seed)`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM._from_config(LlamaConfig(vocab_size=vocab_size, **{**LLAMA, **config}), attn_implementation=attn)


def gpt2(vocab_size: int, *, seed: int = 0, **config: Any):
    """A random `GPT2LMHeadModel` of `GPT2`'s shape, drawn after `torch.manual_seed(seed)`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, **{**GPT2, **config}))


def t5(vocab_size: int, *, seed: int = 0, **config: Any):
    """A random `T5ForConditionalGeneration` of `T5`'s shape, drawn after `torch.manual_seed(seed)`."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    return T5ForConditionalGeneration(T5Config(vocab_size=vocab_size, **{**T5, **config}))


def peaked(model, seed: int | None = None):
    """`model` in eval mode with every matrix redrawn from N(0, 0.3): a larger init than the
    default makes a random model's logits peaked, so greedy and beam choices are not decided
    by float rounding between near-equal logits. `seed`: start a fresh random stream first
    (else the draws continue the one the model was built from)."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    return model.eval()


SPECIAL_ROLES = {"<pad>": "pad_token", "<eos>": "eos_token", "<unk>": "unk_token", "<s>": "bos_token"}


def bpe_tokenizer(texts: list[str], vocab_size: int, specials: list[str], *, byte_level: bool = True, full_alphabet: bool = False):
    """A BPE trained on `texts` in a moment, as a `PreTrainedTokenizerFast`; `<pad>`, `<eos>`,
    `<unk>` and `<s>` among `specials` become its pad, eos, unk and bos tokens.

    byte_level: byte-level pieces (any text encodes), else whitespace-split words with
    `<unk>` for the rest; full_alphabet: all 256 bytes in the vocabulary, not only those seen.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if byte_level:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
    alphabet = {"initial_alphabet": pre_tokenizers.ByteLevel.alphabet()} if full_alphabet else {}
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False, **alphabet))
    return PreTrainedTokenizerFast(tokenizer_object=tok, **{SPECIAL_ROLES[s]: s for s in specials if s in SPECIAL_ROLES})


# --- Token-id models, no tokenizer: the training tests ---------------------------------

VOCAB, PAD, EOS = 64, 0, 1


def id_llama():
    """A Llama over `VOCAB` bare token ids (default init: it learns)."""
    return llama(VOCAB, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=None)


def id_t5():
    """A one-block T5 over `VOCAB` bare token ids."""
    return t5(VOCAB, pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD)


def id_docs(n: int = 24) -> list[list[int]]:
    """A tiny repeated corpus of token ids: a few patterns of mixed lengths, easy to memorise."""
    import torch

    g = torch.Generator().manual_seed(1)
    patterns = [list(range(2 + k, 2 + k + 5 + 3 * k)) for k in range(4)]
    return [patterns[int(torch.randint(0, 4, (1,), generator=g))] for _ in range(n)]


def id_pairs(n: int = 16) -> list[tuple[list[int], list[int]]]:
    """(prompt, target) pairs of token ids; the target is a learnable function of the prompt."""
    import torch

    g = torch.Generator().manual_seed(2)
    out = []
    for _ in range(n):
        p = torch.randint(2, VOCAB, (int(torch.randint(1, 9, (1,), generator=g)),), generator=g).tolist()
        t = [(x * 7) % (VOCAB - 2) + 2 for x in p[:3]] + [EOS]
        out.append((p, t))
    return out


# --- Peaked models on a BPE: the generation tests ----------------------------------------

BPE_TEXT = (
    "the cat sat on the mat and the dog sat on the log. "
    "a model trained on its own output slowly forgets the tails of the distribution. "
    "every generation of data is a little less diverse than the one before it. "
) * 20


def generation_tokenizer():
    """A 300-piece byte-level BPE of `BPE_TEXT` with `<pad>` and `<eos>`."""
    return bpe_tokenizer([BPE_TEXT], 300, ["<pad>", "<eos>"])


def peaked_llama(tokenizer, attn: str = "sdpa", kv_heads: int = 4):
    """A peaked Llama for `tokenizer`, its linear layers routed as `load_model` routes them."""
    from collapselab.models import kernels

    model = llama(len(tokenizer), attn=attn, num_key_value_heads=kv_heads, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    return kernels.install(peaked(model, seed=0))


def peaked_gpt2(tokenizer):
    ids = tokenizer.pad_token_id, tokenizer.eos_token_id
    return peaked(gpt2(len(tokenizer), pad_token_id=ids[0], eos_token_id=ids[1], bos_token_id=ids[1]), seed=0)


def peaked_t5(tokenizer):
    """A two-block encoder-decoder."""
    model = t5(len(tokenizer), num_layers=2, num_decoder_layers=2, pad_token_id=tokenizer.pad_token_id,
               eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    return peaked(model, seed=0)


PEAKED = {"llama": peaked_llama, "gpt2": peaked_gpt2, "t5": peaked_t5}


def prompts_of(tokenizer, n: int = 7) -> list[list[int]]:
    """`n` prompts cut from `BPE_TEXT`: mixed lengths, unsorted, one of a single token."""
    ids = tokenizer(BPE_TEXT, add_special_tokens=False)["input_ids"]
    lengths = [3, 11, 5, 17, 1, 8, 13, 2, 9][:n]
    return [ids[7 * k : 7 * k + n_] for k, n_ in enumerate(lengths)]


# --- Chat models saved as HF folders: the server and the learner -------------------------

CHAT_TEXT = (
    "the cat sat on the mat and the dog sat on the log. "
    "a model trained on its own output slowly forgets the tails of the distribution. "
    "hello there, how are you today? i am fine, thank you. "
) * 20
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def chat_tokenizer(chat: bool):
    """A 320-piece byte-level BPE, padded on the left; `chat`: with a chat template (an
    instruct model), else none (a base model, read as a plain transcript)."""
    tok = bpe_tokenizer([CHAT_TEXT], 320, ["<pad>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>"], full_alphabet=True)
    tok.padding_side = "left"
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


def chat_model(tokenizer, seed: int, max_positions: int = 256):
    """A peaked Llama for `tokenizer`; different seeds answer differently."""
    model = llama(len(tokenizer), seed=seed, max_position_embeddings=max_positions, tie_word_embeddings=False,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.eos_token_id)
    return peaked(model)


def save_chat_model(folder: Path, *, chat: bool = True, seed: int = 0, max_positions: int = 256) -> Path:
    """`chat_model` and its tokenizer saved as an HF folder, as collapselab saves models."""
    from collapselab.models.loading import save_model

    tok = chat_tokenizer(chat)
    save_model(chat_model(tok, seed, max_positions), tok, folder)
    return folder


def chat_run(root: Path, generations: int = 3) -> Path:
    """A run directory with one arm whose generations each saved a (different) tiny model."""
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
        save_chat_model(run / "replace" / "seed-0" / f"gen-{g}" / "model", chat=False, seed=10 + g)
    assert yaml.safe_load((run / "config.yaml").read_text())["arms"][0]["name"] == "replace"
    return run


# --- A reference model: the external scorer of a run --------------------------------------


def tiny_reference(folder: Path) -> Path:
    """A tiny random causal LM saved as an HF folder, with a word-level BPE unlike the run's
    byte-level scratch tokenizer: an external reference model in small (`evaluation.reference_model`)."""
    if (folder / "config.json").exists():
        return folder
    tokenizer = bpe_tokenizer([d["text"] for d in tiny_corpus(60, 7, "ref")], 150, ["<unk>", "<eos>"], byte_level=False)
    # LlamaConfig's own token ids (bos 1, eos 2, no pad) and untied embeddings, as saved before.
    model = llama(len(tokenizer), num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                  tie_word_embeddings=False, pad_token_id=None, bos_token_id=1, eos_token_id=2)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
