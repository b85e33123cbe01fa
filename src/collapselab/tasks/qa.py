"""The question-answering task: answer human questions, train the next generation on the answers.

The model answers every human training question on its human context; the next
generation trains on those answers as labels (SelfPlagAI). An empty answer means "no
answer" (SQuAD v2). Prompts come from `collapselab.models.prompts` (plain for base models, the
chat template for instruct models); the answer length is `max_new_tokens` everywhere: the
training targets are cut to it and generation and evaluation produce at most that many.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from collapselab.datasets import subset
from collapselab.errors import RunError
from collapselab.lab import Evaluation, HumanData
from collapselab.lab.provenance import generator_tag
from collapselab.metrics.qa import ZERO_SHOT_METRICS
from collapselab.metrics.registry import (
    SYNTHETIC_DEFAULTS,
    Metric,
    default_metrics,
    entries,
    entry,
    metric_for_task,
)
from collapselab.models.loading import device
from collapselab.models.prompts import ANSWER
from collapselab.records import Record
from collapselab.tasks.scoring import (
    eval_inputs,
    metric_names,
    per_example,
    score,
    synthetic_score_rows,
)

if TYPE_CHECKING:
    from collapselab.config import ArmConfig, ExperimentConfig, TrainingBlock
    from collapselab.lab import Lab
    from collapselab.models.prompts import Prompt

MIN_PROMPT_TOKENS = 32  # a prompt needs room for at least the question


class QATask:
    name = "qa"
    record_fields = ("context", "question")
    data_builders = ("contaminated", "synthetic")
    test_unit = "question"
    main_metrics = ("exact_match", "f1", "has_ans_f1", "no_ans_accuracy", "rouge1", "rouge2", "rougeL", "bertscore")
    answers_questions = True  # predictions are answers judged against references
    training_extras = True  # a validation split of the questions, scores of greedy answers, BERTScore loss weights
    percent_metrics = ("exact_match", "f1", "has_ans_f1", "no_ans_accuracy")
    default_metrics = (
        "exact_match", "f1", "has_ans_f1", "no_ans_accuracy", "rouge1", "rouge2", "rougeL", "jaccard", "bertscore",
        "semantic_similarity", "answer_in_context", "answer_length", "synthetic_success_rate",
        # a short answer's perplexity without its question means little: not a qa default
        *(n for n in SYNTHETIC_DEFAULTS if n != "synthetic_perplexity"),
    )
    reference_metrics: tuple[str, ...] = ()  # the external reference scores qa runs only when evaluation.metrics names it
    yardstick_metrics: tuple[str, ...] = ()

    def primary_metric(self, cfg: ExperimentConfig) -> str:
        return cfg.refinery.success.metric  # the metric the three-arm criteria are judged on

    def scores(self, metric: Metric) -> bool:
        return metric.task in ("any", self.name)

    def config_problems(self, cfg: ExperimentConfig) -> list[str]:
        problems = ["data.topic: choosing articles by MMLU subject is for the lm task"] if cfg.data.topic else []
        if cfg.data.prompt_tokens is not None:
            problems.append(f"data.prompt_tokens: {cfg.data.prompt_tokens} cuts lm prompts; a qa prompt is its context and question")
        try:  # the primary metric: the three-arm criteria, the report's headline, a sweep's default
            metric_for_task(cfg.refinery.success.metric, self)
        except (KeyError, ValueError) as e:
            problems.append(f"refinery.success.metric: {e.args[0]}")
        return problems

    def position_problems(self, cfg: ExperimentConfig, max_positions: int) -> list[str]:
        n = self.max_new_tokens(cfg)
        if max_positions - n < MIN_PROMPT_TOKENS:
            return [f"decoding.max_new_tokens: {n} leaves fewer than {MIN_PROMPT_TOKENS} of the model's {max_positions} positions for the prompt"]
        return []

    def data_problems(self, cfg: ExperimentConfig, human: HumanData, tokenizer: Any) -> list[str]:
        return []

    def max_new_tokens(self, cfg: ExperimentConfig) -> int:
        """An answer of at most 32 tokens (also the length training targets are cut to),
        unless `decoding.max_new_tokens` says."""
        n = cfg.decoding.max_new_tokens
        return 32 if n is None else n

    def human_pools(self, cfg: ExperimentConfig, splits: Any) -> tuple[list[Record], list[Record]]:
        """Seeded subsets of `train_size` (`test_size`) questions."""

        d = cfg.data
        return subset(splits.train, d.train_size, d.split_seed), subset(splits.test, d.test_size, d.split_seed)

    def tokenizer_texts(self, pool: list[Record]) -> list[str]:
        return [f"{r.context}\n{r.question}\n{' '.join(r.answers)}" for r in pool]

    def prepare_human(self, cfg: ExperimentConfig, pools: tuple[list[Record], list[Record]], tokenizer: Any) -> HumanData:
        return HumanData(*pools)

    # ---- training

    def train(self, lab: Lab, model: Any, records: list[Record], recipe: TrainingBlock, seed: int, desc: str):
        """Supervised training on the records' answers, with SelfPlagAI's extras when the recipe
        asks: a seeded validation split of `validation_share` of the records (early stopping on
        its token loss or on `early_stopping_metric` of greedy answers to it), and per-example
        loss weights (`loss_weights`)."""
        from collapselab.training.early_stopping import validation_split
        from collapselab.training.loop import train_supervised

        kept, held = validation_split(len(records), recipe.validation_share, seed)
        train, validation = [records[i] for i in kept], [records[i] for i in held]
        pairs = training_pairs(lab, train)
        by_metric = bool(validation) and recipe.early_stopping_metric != "loss"
        return train_supervised(
            model, pairs, recipe, pad_id=lab.tokenizer.pad_token_id, seed=seed, desc=desc,
            weights=bertscore_weights(lab, train) if recipe.loss_weights == "bertscore_f1" else None,
            validation=training_pairs(lab, validation) if validation and not by_metric else None,
            score=validation_score(lab, validation, recipe.early_stopping_metric, seed) if by_metric else None,
        )

    # ---- generation

    def write_synthetic(self, lab: Lab, model: Any, arm: ArmConfig, generation: int, seed: int) -> list[Record]:
        fmt = lab.prompt_format
        answers = answer_questions(lab, model, lab.human.train, lab.cfg.decoding.for_role("generation"), seed, f"generate g{generation}")
        tag = generator_tag(lab.cfg, arm.name, generation, seed, **fmt.describe(ANSWER))
        return [
            r.derive(id=f"{r.id}@g{generation}", source="synthetic", generation=generation, parent_id=r.id, generator=tag,
                     answers=(a,) if a else ())
            for r, a in zip(lab.human.train, answers, strict=True)
        ]

    # ---- evaluation

    def evaluate(self, lab: Lab, model: Any, generation0: Any, synthetic: list[Record] | None, seed: int) -> Evaluation:
        inputs = eval_inputs(lab, model, generation0, synthetic, seed)
        inputs.predictions = greedy_answers(lab, model, lab.human.test, seed, "evaluate")
        results = score(metric_names(lab, default_metrics(self)), inputs)
        ids = [r.id for r in lab.human.test]
        scores = per_example(results, ids, "test")
        rows = [
            {"example_id": r.id, "input": f"{r.question}\n\n{r.context}", "reference": json.dumps(list(r.answers)),
             "prediction": p, "scores": json.dumps(scores[r.id])}
            for r, p in zip(lab.human.test, inputs.predictions, strict=True)
        ]
        return Evaluation(entries(results), rows, synthetic_score_rows(results, synthetic))

    def baselines(self, lab: Lab, load_base: Any, seed: int) -> dict[str, dict[str, Any]]:
        """The zero-shot score of the starting model before any fine-tuning (pretrained
        models only: a scratch base has never seen the task's format)."""
        base_model = load_base()
        if base_model is None:
            return {}
        from collapselab.metrics import evaluate as run_metrics

        inputs = eval_inputs(lab, base_model, None, None, seed)
        inputs.predictions = greedy_answers(lab, base_model, lab.human.test, seed, "zero-shot base")
        return {f"zero_shot_{name}": entry(f"zero_shot_{name}", r.value, {**r.details, "what": f"{lab.cfg.model.name} before fine-tuning"})
                for name, r in run_metrics(list(ZERO_SHOT_METRICS), inputs).items()}

    def stage_inputs(self, metrics: dict[str, dict[str, Any]]) -> tuple[float, float] | None:
        f1 = metrics.get("f1")
        return None if f1 is None else (f1["value"] / 100.0, 0.0)


# ---------------------------------------------------------------- shared with the refinery


def training_pairs(lab: Lab, records: list[Record]) -> list[tuple[list[int], list[int]]]:
    """(prompt, target) ids of QA records: the first reference answer is the target."""
    fmt, limit, n = lab.prompt_format, lab.max_positions, lab.max_new_tokens
    pairs = []
    for r in records:
        target = fmt.target(r.answers[0] if r.answers else "", n)
        pairs.append((fmt.qa(r.context or "", r.question or "", limit - len(target)).ids, target))
    return pairs


def bertscore_weights(lab: Lab, records: list[Record]) -> list[float]:
    """SelfPlagAI's loss weights: BERTScore F1 of each record's answer against the answers of the
    human question it answers (its `parent_id`; a human record is its own reference, weight 1),
    with the SQuAD v2 no-answer rule (an empty answer to an unanswerable question scores 1)."""
    from collapselab.metrics.semantic import bertscore_f1

    human = {r.id: r for r in lab.human.train}
    refs = []
    for r in records:
        parent = r if r.source == "human" else human.get(r.parent_id or "")
        if parent is None:
            raise RunError(f"training.loss_weights: record {r.id!r} answers no question of the human pool (parent_id {r.parent_id!r})")
        refs.append(list(parent.answers))
    weights = bertscore_f1([r.answers[0] if r.answers else "" for r in records], refs, device=device())
    if not any(weights):
        raise RunError(f"training.loss_weights: every one of {len(records)} answers has BERTScore F1 0 against its human answers")
    return weights


def validation_score(lab: Lab, records: list[Record], metric: str, seed: int) -> Any:
    """The score callback of early stopping: `metric` of the model's greedy answers to the
    held-out records, against the answers they would have been trained on."""
    from collapselab.metrics import EvalInputs, evaluate

    def score(model: Any) -> float:
        predictions = greedy_answers(lab, model, records, seed, "validate")
        inputs = EvalInputs(task="qa", test=records, predictions=predictions, tokenizer=lab.tokenizer,
                            device=device(), seed=seed)
        return evaluate([metric], inputs)[metric].value

    return score


def qa_prompts(lab: Lab, records: list[Record]) -> list[Prompt]:
    fmt, room = lab.prompt_format, lab.max_positions - lab.max_new_tokens
    return [fmt.qa(r.context or "", r.question or "", room) for r in records]


def answer_questions(lab: Lab, model: Any, records: list[Record], decoding: Any, seed: int, desc: str) -> list[str]:
    """The model's answers to `records` with `decoding` (empty: no answer)."""
    from collapselab.generation import generate

    prompts = qa_prompts(lab, records)
    # instruction + context first: every question about one context shares its KV cache
    outs = generate(model, lab.tokenizer, [p.ids for p in prompts], decoding, max_new_tokens=lab.max_new_tokens,
                    seed=seed, prefix_lengths=[len(p.prefix) for p in prompts], desc=desc)
    return [lab.prompt_format.answer(o) for o in outs]


def greedy_answers(lab: Lab, model: Any, records: list[Record], seed: int, desc: str) -> list[str]:
    """Evaluation answers: greedy, whatever the experiment's decoding."""
    d = lab.cfg.decoding
    greedy = d.model_copy(update={"method": "greedy", "temperature": 1.0, "top_p": 1.0, "top_k": 0, "num_beams": 1,
                                  "repetition_penalty": 1.0})
    return answer_questions(lab, model, records, greedy, seed, desc)
