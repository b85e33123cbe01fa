"""The fixed external reference: a pretrained LM that never changes during a run.

The generation-0 model is a moving part of the experiment (every arm's own first model);
the external reference (`evaluation.reference_model`, by default SmolLM2-135M-Instruct) is
independent of the arms, of generation 0 and of the run's tokenizer, so its numbers mean
the same at every generation of every arm and every run that names it.

Every text is scored on its own with the reference's tokenizer: its first token is
context only and every later token a target (no special tokens: an instruct model's chat
markers are not text), cut to `seq_len` tokens. At most `reference_sequences` texts are
scored per evaluation: a seeded sample (the evaluation seed), so an evaluation costs the
same whatever the synthetic set's size (the cost on this CPU is in benchmarks/RESULTS.md).

Per generation (synthetic data):
- `external_synthetic_perplexity`: median per-sequence perplexity (mean, p90, p99 and the
  sampled per-sequence values with the indices of their records in details, for the
  per-generation histogram; no per-record list, as only a sample is scored);
- `external_surprisal`: mean per-token surprisal in bits, a second fluency opinion beside
  the gibberish score (their per-text Spearman correlation is in details).
Once per run (scope "run", the fixed yardstick): the same two numbers for the human test
set, `external_test_perplexity` and `external_test_surprisal`.

The engine loads the reference once per run (`load_reference`: only when the run's
metrics use it), records it in the manifest (`ReferenceModel.manifest`), writes the
yardstick into run_metrics.json (`yardstick`) and each generation's summary into its
metrics.json (`generation_summary`, the `reference` block).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from collapselab.batching import token_budget_batches
from collapselab.metrics.diversity import human_texts, synthetic_texts
from collapselab.metrics.gibberish import CalibrationError
from collapselab.metrics.language import padded_nll
from collapselab.metrics.registry import (
    EvalInputs,
    MetricResult,
    MetricValue,
    TaskMetrics,
    evaluate,
    get_metric,
    register_metric,
    run_metrics,
)
from collapselab.metrics.sanity import gibberish_scores
from collapselab.models.loading import (
    ReferenceModel,
    count_parameters,
    load_model,
    resolve_model_path,
)

if TYPE_CHECKING:
    from collapselab.config import ExperimentConfig
    from collapselab.models.loading import ReferenceModel
    from collapselab.records import Record

LOGIT_BYTES = 1 << 29  # most bytes of fp32 logits per batch (a 49k-token vocabulary makes them the memory hog)


def uses_reference(name: str) -> bool:
    """The metric is computed under the external reference model."""
    return "external_model" in get_metric(name).needs


def wanted(cfg: ExperimentConfig, task: TaskMetrics) -> bool:
    """The run needs its reference model: one is configured, and the run's metrics use it
    (when `evaluation.metrics` is unset: the task's metrics under a reference, lm's)."""
    if cfg.evaluation.reference_model is None:
        return False
    if cfg.evaluation.metrics is None:
        return any(uses_reference(n) for n in (*task.reference_metrics, *task.yardstick_metrics))
    return any(uses_reference(n) for n in cfg.evaluation.metrics)


def load_reference(cfg: ExperimentConfig, task: TaskMetrics) -> ReferenceModel | None:
    """The run's reference model, or None when the run does not use one (`wanted`)."""
    if not wanted(cfg, task):
        return None

    name = cfg.evaluation.reference_model
    assert name is not None  # wanted() checked it
    loaded = load_model(name, for_training=False)
    return ReferenceModel(name, loaded.model, loaded.tokenizer, resolve_model_path(name), count_parameters(loaded.model))


def yardstick(reference: ReferenceModel, task: TaskMetrics, test: list[Record], *, sequences: int, seq_len: int,
              batch_tokens: int, device: str, seed: int) -> dict[str, MetricResult]:
    """The human test set under the reference model: the task's run-scope metrics, computed once per run."""
    inputs = EvalInputs(task=task.name, test=test, seq_len=seq_len, batch_tokens=batch_tokens, device=device, seed=seed,
                        **reference.inputs(sequences))
    return evaluate(run_metrics(task, inputs), inputs, scope="run")


def generation_summary(metrics: dict[str, dict[str, Any]], reference: ReferenceModel | None) -> dict[str, Any] | None:
    """metrics.json's `reference` block: this generation's synthetic data under the reference
    model (per-sequence perplexity quantiles, surprisal); None without a reference or before
    any synthetic data was scored."""
    ppl = metrics.get("external_synthetic_perplexity")
    if reference is None or ppl is None:
        return None
    d = ppl["details"]
    surprisal = metrics.get("external_surprisal")
    return {
        "model": reference.name,
        "synthetic_perplexity": {k: d[k] for k in ("mean", "median", "p90", "p99", "sequences", "of")},
        "synthetic_surprisal_bits": surprisal["value"] if surprisal else None,
        "gibberish_spearman": surprisal["details"].get("gibberish_spearman") if surprisal else None,
    }


def sample_indices(n: int, k: int, seed: int) -> list[int]:
    """`k` of `range(n)` (all when k >= n), seeded, in ascending order."""
    return list(range(n)) if k >= n else sorted(random.Random(seed).sample(range(n), k))


def text_nll(model, tokenizer, texts: Sequence[str], max_tokens: int, batch_tokens: int,
             device: str = "cpu") -> list[tuple[float, int]]:
    """Per text: (sum of next-token NLL in nats, number of targets) under `model`.

    A text is its first `max_tokens` tokens without special tokens; the first is context
    only, so a text of fewer than two tokens has no target: (nan, 0). Texts are sorted by
    length and right-padded in batches whose fp32 logits stay under LOGIT_BYTES.
    """

    seqs = [ids[:max_tokens] for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    vocab = model.get_output_embeddings().weight.shape[0]
    budget = max(max_tokens, min(batch_tokens, LOGIT_BYTES // (4 * vocab)))
    scored = [i for i, s in enumerate(seqs) if len(s) >= 2]
    out: list[tuple[float, int]] = [(math.nan, 0)] * len(seqs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = [[scored[j] for j in batch] for batch in token_budget_batches([len(seqs[i]) for i in scored], budget)]
    for rows, sums, counts in padded_nll(model, seqs, batches, pad, device):
        for r, (total, n) in enumerate(zip(sums.tolist(), counts.tolist(), strict=True)):
            out[rows[r]] = (total, int(n))
    return out


def _scored(inputs: EvalInputs, which: str) -> dict:
    """The sampled texts of `which` ("synthetic" or "test") and their NLL, computed once per inputs."""
    key = ("external", which)
    if key not in inputs.extra:
        texts = synthetic_texts(inputs) if which == "synthetic" else human_texts(inputs)
        chosen = sample_indices(len(texts), inputs.external_sequences, inputs.seed)
        nll = text_nll(inputs.external_model, inputs.external_tokenizer, [texts[i] for i in chosen], inputs.seq_len,
                       inputs.batch_tokens, inputs.device)
        keep = [j for j, (_, n) in enumerate(nll) if n > 0]
        inputs.extra[key] = {
            "indices": [chosen[j] for j in keep], "texts": [texts[chosen[j]] for j in keep],
            "nll": np.array([nll[j][0] for j in keep]), "targets": np.array([nll[j][1] for j in keep]),
            "of": len(texts), "sampled": len(chosen),
        }
    scored = inputs.extra[key]
    if not len(scored["nll"]):
        raise ValueError(f"external reference: none of the {scored['sampled']} sampled {which} texts has two tokens to score")
    return scored


def _common(inputs: EvalInputs, scored: dict) -> dict:
    return {"scored_by": inputs.external_name, "sequences": len(scored["nll"]), "sampled": scored["sampled"],
            "of": scored["of"], "max_tokens": inputs.seq_len}


def _perplexity(inputs: EvalInputs, which: str) -> MetricValue:
    scored = _scored(inputs, which)
    ppl = np.exp(scored["nll"] / scored["targets"])
    details = {
        "mean": float(ppl.mean()), "median": float(np.median(ppl)),
        "p90": float(np.percentile(ppl, 90)), "p99": float(np.percentile(ppl, 99)),
        **_common(inputs, scored), "per_sequence": [round(float(p), 4) for p in ppl], "indices": scored["indices"],
    }
    # per_example stays None: the values are of a sample, not of every record (details: which ones)
    return MetricValue(details["median"], None, details)


def _surprisal(inputs: EvalInputs, which: str) -> MetricValue:
    scored = _scored(inputs, which)
    bits = scored["nll"] / scored["targets"] / math.log(2)  # per text: mean bits per token
    chars = sum(len(t) for t in scored["texts"])
    details = {
        **_common(inputs, scored), "per_sequence": [round(float(b), 4) for b in bits],
        "bits_per_character": float(scored["nll"].sum() / math.log(2) / chars) if chars else math.nan,
    }
    if which == "synthetic" and inputs.human_train is not None:
        try:
            g = np.array(gibberish_scores(inputs))[scored["indices"]]
        except CalibrationError as e:  # too little human text for the gibberish score: surprisal stands alone, saying why
            details["gibberish_spearman"] = None
            details["gibberish_spearman_missing"] = str(e)
        else:
            details["gibberish_spearman"] = _spearman(g, bits)
    value = float(scored["nll"].sum() / scored["targets"].sum() / math.log(2))
    return MetricValue(value, None, details)


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when either side is constant."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(_ranks(a), _ranks(b))[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    r = np.empty(len(x))
    r[order] = np.repeat(first + (counts - 1) / 2, counts)  # tied values share their mean rank
    return r


_NEEDS = ("external_model", "external_tokenizer")


@register_metric("external_synthetic_perplexity", task="any", higher_is_better=False, version="1",
                 label="synthetic perplexity (external)", unit="synthetic, median per sequence, external model",
                 aggregation="distribution", needs=("synthetic", *_NEEDS))
def external_synthetic_perplexity(inputs: EvalInputs) -> MetricValue:
    """Median per-sequence perplexity of a sample of this generation's synthetic texts under the external reference."""
    return _perplexity(inputs, "synthetic")


@register_metric("external_surprisal", task="any", higher_is_better=False, version="1", needs=("synthetic", *_NEEDS),
                 label="surprisal (external)", unit="synthetic, bits/token, external model")
def external_surprisal(inputs: EvalInputs) -> MetricValue:
    """Mean per-token surprisal (bits) of a sample of this generation's synthetic texts under the external reference."""
    return _surprisal(inputs, "synthetic")


@register_metric("external_test_perplexity", task="any", higher_is_better=False, version="1",
                 label="human test perplexity (external)", unit="test, median per sequence, external model",
                 aggregation="distribution", needs=_NEEDS, scope="run")
def external_test_perplexity(inputs: EvalInputs) -> MetricValue:
    """Median per-sequence perplexity of a sample of the human test texts under the external reference (once per run)."""
    return _perplexity(inputs, "test")


@register_metric("external_test_surprisal", task="any", higher_is_better=False, version="1", needs=_NEEDS, scope="run",
                 label="human test surprisal (external)", unit="test, bits/token, external model")
def external_test_surprisal(inputs: EvalInputs) -> MetricValue:
    """Mean per-token surprisal (bits) of a sample of the human test texts under the external reference (once per run)."""
    return _surprisal(inputs, "test")
