"""What each task means for the loop: its human data, how a model trains on records, what
it generates for the next generation, and how it is evaluated on the human test set.

lm: human text is one running stream cut into blocks of `data.block_tokens` tokens. The
    model continues each human block (the prompt) by `max_new_tokens` tokens; those
    continuations are the synthetic set, one per human block, so it has the same size.
    Records are slices of running text, so training concatenates them with no separator
    (an EOS after every block would teach the model to stop after one block).
qa: the model answers the human questions on the human contexts; the next generation
    trains on those answers as labels. An empty answer means "no answer" (SQuAD v2).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from collapselab.config import ExperimentConfig
from collapselab.records import Record

LM_DOC_SEPARATOR = "\n"  # documents (paragraphs, stories) are joined as running text
QA_ANSWER_TOKENS = 32


@dataclass(slots=True)
class HumanData:
    """The human side of an experiment: training pool and held-out test set."""

    train: list[Record]
    test: list[Record]
    tokenizer_texts: list[str] = field(default_factory=list)  # what a scratch tokenizer learns from


# ---------------------------------------------------------------- human data


def select_docs(docs: list[Record], tokens_needed: int | None, seed: int, tag: str) -> list[Record]:
    """A seeded subset of documents holding about `tokens_needed` tokens (4 chars/token
    estimate, with margin), kept in their original order; all documents when None."""
    if tokens_needed is None:
        return docs
    order = list(range(len(docs)))
    random.Random(f"{tag}-{seed}").shuffle(order)
    chosen, chars = [], 0
    for i in order:
        chosen.append(i)
        chars += len(docs[i].text or "")
        if chars >= tokens_needed * 6:  # generous: BPE on small vocabularies is ~3-4 chars/token
            break
    return [docs[i] for i in sorted(chosen)]


def lm_blocks(docs: list[Record], tokenizer, block_tokens: int, n_blocks: int | None, split: str) -> list[Record]:
    """Cut the running text of `docs` into records of `block_tokens` tokens.

    Blocks are cut in the text at the first character of a block's first token, so a
    multi-byte character split across two byte-level tokens is never torn in half (which
    would decode to U+FFFD on both sides and look like garbage); the blocks still join back
    into the original text exactly.
    """
    text = LM_DOC_SEPARATOR.join(d.text for d in docs if d.text)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    n = len(ids) // block_tokens
    if n_blocks is not None:
        if n < n_blocks:
            from collapselab.datasets import DatasetError

            key = "train_size" if split == "train" else "test_size"
            raise DatasetError(f"data.{key}: the {split} text holds {n} blocks of {block_tokens} tokens, fewer than the {n_blocks} asked for")
        n = n_blocks
    cuts = [offsets[i * block_tokens][0] for i in range(n)] + [offsets[n * block_tokens][0] if n * block_tokens < len(ids) else len(text)]
    return [Record(id=f"{split}-{i:06d}", source="human", text=text[cuts[i] : cuts[i + 1]]) for i in range(n)]


# ---------------------------------------------------------------- prompts


def qa_prompt(r: Record) -> str:
    return f"Context: {r.context}\nQuestion: {r.question}\nAnswer:"


def qa_target(answer: str) -> str:
    # An unanswerable question's target is nothing: the model learns to emit EOS at once.
    return f" {answer}" if answer else ""


def qa_prompt_ids(tokenizer, r: Record, max_len: int) -> list[int]:
    """Prompt ids, the context cut from the left if the whole prompt is longer than `max_len`
    (the question and the answer cue are never cut)."""
    tail = tokenizer(f"\nQuestion: {r.question}\nAnswer:", add_special_tokens=False)["input_ids"]
    head = tokenizer(f"Context: {r.context}", add_special_tokens=False)["input_ids"]
    keep = max(0, max_len - len(tail))
    return head[-keep:] + tail if keep else tail[-max_len:]


# ---------------------------------------------------------------- training


def train_on(model, tokenizer, records: list[Record], cfg: ExperimentConfig, recipe, seed: int, max_positions: int, desc: str):
    """Train `model` on `records` with the `recipe` (a TrainingBlock)."""
    from collapselab.training import train_lm, train_supervised

    if cfg.experiment.task == "lm":
        stream: list[int] = []
        for ids in tokenizer([r.text or "" for r in records], add_special_tokens=False)["input_ids"]:
            stream.extend(ids)
        return train_lm(model, [stream], recipe, eos_id=tokenizer.eos_token_id, seed=seed, desc=desc)
    pairs = []
    for r in records:
        answer = r.answers[0] if r.answers else ""
        target = tokenizer(qa_target(answer), add_special_tokens=False)["input_ids"][:QA_ANSWER_TOKENS] + [tokenizer.eos_token_id]
        prompt = qa_prompt_ids(tokenizer, r, max_positions - len(target))
        pairs.append((prompt, target))
    return train_supervised(model, pairs, recipe, pad_id=tokenizer.pad_token_id, seed=seed, desc=desc)


# ---------------------------------------------------------------- generation


def generator_tag(cfg: ExperimentConfig, arm: str, generation: int, seed: int) -> str:
    return json.dumps(
        {"model": cfg.model.name, "arm": arm, "generation": generation, "seed": seed, "decoding": cfg.decoding.model_dump(mode="json")},
        sort_keys=True,
    )


def write_synthetic(model, tokenizer, human: HumanData, cfg: ExperimentConfig, arm: str, generation: int, seed: int, max_positions: int) -> list[Record]:
    """The data model_g writes for the next generation, one record per human training record."""
    from collapselab.generation import generate

    tag = generator_tag(cfg, arm, generation, seed)
    new = cfg.max_new_tokens
    if cfg.experiment.task == "lm":
        n_prompt = cfg.data.prompt_tokens or cfg.data.block_tokens
        prompts = [tokenizer(r.text, add_special_tokens=False)["input_ids"][:n_prompt] for r in human.train]
    else:
        prompts = [qa_prompt_ids(tokenizer, r, max_positions - new) for r in human.train]
    outputs = generate(model, tokenizer, prompts, cfg.decoding, max_new_tokens=new, seed=seed, desc=f"generate g{generation}")
    out = []
    for r, ids in zip(human.train, outputs, strict=True):
        # a continuation cut at max_new_tokens may end inside a multi-byte character
        text = tokenizer.decode(ids, skip_special_tokens=cfg.experiment.task == "qa").removesuffix("\ufffd")
        common = {"id": f"{r.id}@g{generation}", "source": "synthetic", "generation": generation, "parent_id": r.id, "generator": tag}
        if cfg.experiment.task == "lm":
            out.append(Record(text=text, **common))
        else:
            out.append(r.derive(answers=(text.strip(),), **common))
    return out


# ---------------------------------------------------------------- evaluation


def evaluate(model, tokenizer, reference_model, human: HumanData, synthetic: list[Record] | None, cfg: ExperimentConfig, seed: int, max_positions: int, extra_metrics: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score model_g on the human test set; returns (metrics, per-example prediction rows)."""
    from collapselab.metrics import EvalInputs, default_metrics
    from collapselab.metrics import evaluate as run_metrics
    from collapselab.models import device

    task = cfg.experiment.task
    names = list(cfg.evaluation.metrics or default_metrics(task)) + [m for m in extra_metrics if m not in (cfg.evaluation.metrics or [])]
    inputs = EvalInputs(
        task=task, test=human.test, model=model, tokenizer=tokenizer, reference_model=reference_model,
        synthetic=synthetic, human_train=human.train, seq_len=cfg.training.seq_len,
        batch_tokens=cfg.evaluation.batch_tokens, device=device(), seed=seed,
    )
    if task == "qa":
        from collapselab.config import DecodingBlock
        from collapselab.generation import generate

        greedy = DecodingBlock(method="greedy", batch_tokens=cfg.decoding.batch_tokens, backend=cfg.decoding.backend)
        prompts = [qa_prompt_ids(tokenizer, r, max_positions - QA_ANSWER_TOKENS) for r in human.test]
        outs = generate(model, tokenizer, prompts, greedy, max_new_tokens=QA_ANSWER_TOKENS, seed=seed, desc="evaluate")
        inputs.predictions = [tokenizer.decode(o, skip_special_tokens=True).strip() for o in outs]
    results = run_metrics([n for n in names if _applies(n, inputs)], inputs)
    metrics = {
        name: {"value": r.value, "version": r.version, "higher_is_better": r.higher_is_better, "details": r.details}
        for name, r in results.items()
    }
    rows = _prediction_rows(task, human, inputs, results)
    return metrics, rows


def _applies(name: str, inputs) -> bool:
    """Metrics of synthetic data are computed only where this generation wrote some."""
    from collapselab.metrics import get_metric

    return all(getattr(inputs, need) is not None for need in get_metric(name).needs if need == "synthetic")


def _prediction_rows(task: str, human: HumanData, inputs, results) -> list[dict[str, Any]]:
    if task == "qa":
        n = len(human.test)
        per = {k: r.per_example for k, r in results.items() if r.per_example is not None and len(r.per_example) == n}
        return [
            {
                "example_id": r.id, "input": f"{r.question}\n\n{r.context}", "reference": json.dumps(list(r.answers)),
                "prediction": p, "scores": json.dumps({k: v[i] for k, v in per.items()}),
            }
            for i, (r, p) in enumerate(zip(human.test, inputs.predictions, strict=True))
        ]
    # lm: one row per scored test block, with its perplexity under the current model
    blocks = inputs.extra.get(("test_blocks", inputs.seq_len), [])
    per = {k: r.per_example for k, r in results.items() if r.per_example is not None and len(r.per_example) == len(blocks)}
    return [
        {
            "example_id": f"test-block-{i:05d}", "input": inputs.tokenizer.decode(b), "reference": "",
            "prediction": "", "scores": json.dumps({k: v[i] for k, v in per.items()}),
        }
        for i, b in enumerate(blocks)
    ]


def unigram_perplexity(tokenizer, train: list[Record], test_blocks: list[list[int]]) -> float:
    """Perplexity of the test targets under an add-one unigram model of the training tokens:
    the floor a model that learned nothing about context would reach."""
    import math
    from collections import Counter

    counts: Counter[int] = Counter()
    for ids in tokenizer([r.text or "" for r in train], add_special_tokens=False)["input_ids"]:
        counts.update(ids)
    total, vocab = sum(counts.values()), len(tokenizer)
    nll, n = 0.0, 0
    for b in test_blocks:
        for t in b[1:]:  # the same targets the model is scored on
            nll -= math.log((counts[t] + 1) / (total + vocab))
            n += 1
    return math.exp(nll / n)
