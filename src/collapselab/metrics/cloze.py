"""Knowledge of the training articles' own facts, by cloze: a probe a small model can pass.

MMLU is at chance for a 135M model, so knowledge collapse (Keisha et al. 2025) cannot show
on it. `cloze_accuracy` asks instead about facts the model was trained on: in a human
training block, a year or a name (a capitalised word run that does not start a sentence)
is cut out; the model reads the text before it and ranks the true span against
`CHOICES - 1` distractors of the same kind drawn from other blocks of the same articles,
by the mean log-probability of each span's tokens (the geometric-mean probability
Keisha et al. rank MMLU choices by). Chance is 1 / CHOICES.

The items depend only on the human training pool (a fixed seed), so every generation and
arm of a run answers the same questions: differences between generations are paired.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from collapselab.batching import token_budget_batches
from collapselab.metrics.registry import EvalInputs, MetricValue, register_metric

ITEMS = 100  # questions per evaluation: a standard error of about 0.05 at 50 % accuracy
CHOICES = 4
PREFIX_TOKENS = 48  # the text before the span the model reads
MIN_PREFIX_WORDS = 6
# Years and other 2-4 digit numbers (not WikiText's split thousands "1 @,@ 000"), and names.
_NUMBER = re.compile(r"(?<!@ )(?<![.,])\b\d{2,4}\b(?![.,]\d| @)")
_NAME = re.compile(r"\b[A-Z][a-z]{2,}(?: [A-Z][a-z]{2,})*")
_SENTENCE_START = re.compile(r"(^|[.!?\"]\s*)$")


@dataclass(frozen=True, slots=True)
class ClozeItem:
    prefix: str  # the text before the span
    answer: str
    choices: tuple[str, ...]  # the answer and its distractors, in a seeded order
    kind: str  # "number" or "name"


def cloze_items(texts: list[str], n: int = ITEMS, choices: int = CHOICES, seed: int = 0) -> list[ClozeItem]:
    """At most `n` items, at most one per text, from the spans of `texts` (see the module)."""
    spans: list[tuple[int, str, str, str]] = []  # (text index, kind, prefix, answer)
    for i, text in enumerate(texts):
        for kind, pattern in (("number", _NUMBER), ("name", _NAME)):
            for m in pattern.finditer(text):
                prefix = text[: m.start()]
                if len(prefix.split()) < MIN_PREFIX_WORDS or m.group() in prefix:
                    continue  # too little to read, or copied from what it reads
                if kind == "name" and _SENTENCE_START.search(prefix):
                    continue  # a capital at a sentence start says nothing
                spans.append((i, kind, prefix, m.group()))
    pool = {k: sorted({a for _, kind, _, a in spans if kind == k}) for k in ("number", "name")}
    rng = random.Random(seed)
    rng.shuffle(spans)
    items, used = [], set()
    for i, kind, prefix, answer in spans:
        others = [a for a in pool[kind] if a != answer]
        if i in used or len(others) < choices - 1:
            continue
        options = [answer, *rng.sample(others, choices - 1)]
        rng.shuffle(options)
        items.append(ClozeItem(prefix, answer, tuple(options), kind))
        used.add(i)
        if len(items) == n:
            break
    return items


def span_logprobs(model, tokenizer, pairs: list[tuple[str, str]], batch_tokens: int, device: str = "cpu") -> list[float]:
    """Mean log-probability of each span's tokens after its prefix (the last PREFIX_TOKENS)."""
    import torch

    seqs, starts = [], []
    for prefix, span in pairs:
        p = tokenizer(prefix.rstrip(), add_special_tokens=False)["input_ids"][-PREFIX_TOKENS:]
        s = tokenizer(" " + span.strip(), add_special_tokens=False)["input_ids"]
        seqs.append(p + s)
        starts.append(len(p))
    out = [0.0] * len(seqs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.eval()
    with torch.inference_mode():
        for batch in token_budget_batches([len(q) for q in seqs], batch_tokens):
            width = max(len(seqs[i]) for i in batch)
            x = torch.full((len(batch), width), pad, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                x[row, : len(seqs[i])] = torch.tensor(seqs[i])
                mask[row, : len(seqs[i])] = 1
            logp = model(input_ids=x.to(device), attention_mask=mask.to(device)).logits.float().log_softmax(-1)  # (B, T, V)
            for row, i in enumerate(batch):
                pos = torch.arange(starts[i], len(seqs[i]))  # the span's tokens, each predicted from the one before
                out[i] = logp[row, pos - 1, x[row, pos]].mean().item()
    return out


@register_metric(
    "cloze_accuracy", task="lm", higher_is_better=True, version="1", label="cloze accuracy",
    unit=f"facts of the training articles, {CHOICES} choices", needs=("model", "tokenizer", "human_train"),
)
def cloze_accuracy(inputs: EvalInputs) -> MetricValue:
    """Share of cloze questions on the human training text (a year or a name cut out) whose true span the model ranks first."""
    items = cloze_items([r.text for r in inputs.human_train if r.text])
    if not items:
        raise ValueError("cloze_accuracy: the human training text has no year or name with enough text before it to ask about")
    pairs = [(it.prefix, c) for it in items for c in it.choices]
    scores = span_logprobs(inputs.model, inputs.tokenizer, pairs, inputs.batch_tokens, inputs.device)
    right, by_kind = [], {}
    for k, it in enumerate(items):
        mine = scores[k * CHOICES : (k + 1) * CHOICES]
        ok = it.choices[mine.index(max(mine))] == it.answer
        right.append(ok)
        by_kind.setdefault(it.kind, []).append(ok)
    details = {"items": len(items), "choices": CHOICES, "chance": 1 / CHOICES, "correct": sum(right),
               **{f"{kind}_accuracy": sum(v) / len(v) for kind, v in sorted(by_kind.items())},
               **{f"{kind}_items": len(v) for kind, v in sorted(by_kind.items())}}
    return MetricValue(sum(right) / len(right), None, details)
