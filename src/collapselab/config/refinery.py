"""Config blocks of the data refinery: builders of generation-0 data and the quality filters.

Embedded in ExperimentConfig as `refinery:`. Arms opt in with `arms[].data:
contaminated | synthetic`; human arms ignore this block.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from collapselab.config.loading import Block

Strategy = Literal["question_paraphrase", "question_variants", "context_augmentation", "answer_expansion"]
FilterName = Literal[
    "length_bounds", "answer_in_context", "gibberish", "exact_duplicate", "near_duplicate",
    "seed_ngram_overlap", "seed_embedding_similarity",
]
ALL_STRATEGIES: list[Strategy] = ["question_paraphrase", "question_variants", "context_augmentation", "answer_expansion"]
# Cheap, record-local filters first; set-level ones next; the encoder last (it only embeds
# what survived everything else).
DEFAULT_FILTERS: list[FilterName] = [
    "length_bounds", "answer_in_context", "gibberish", "exact_duplicate", "near_duplicate",
    "seed_ngram_overlap", "seed_embedding_similarity",
]


class FiltersConfig(Block):
    order: list[FilterName] = Field(default_factory=lambda: list(DEFAULT_FILTERS), description="Filters applied to synthetic candidates, in this order; a record is rejected by the first that fails it.")
    min_question_words: int = Field(3, ge=0, description="length_bounds: fewest words in a question (too_short).")
    max_question_words: int = Field(40, ge=1, description="length_bounds: most words in a question (too_long).")
    min_answer_words: int = Field(0, ge=0, description="length_bounds: fewest words in an answer (0 keeps SQuAD v2 no-answer records).")
    max_answer_words: int = Field(30, ge=1, description="length_bounds: most words in an answer (too_long).")
    gibberish_min_score: float = Field(0.5, ge=0, le=3, description="gibberish: lowest gibberish score of question + answer (0 random characters, 1 word salad, 3 like the seed's own questions); 0.5 rejects text nearer random characters than word salad, and 0.1-1 % of held-out human SQuAD questions on the seed's articles (benchmarks/RESULTS.md).")
    near_duplicate_jaccard: float = Field(0.8, gt=0, le=1, description="near_duplicate: MinHash-estimated Jaccard of word 3-gram shingles at or above which a later candidate is a near-duplicate of an earlier one.")
    minhash_num_perm: int = Field(64, ge=8, le=512, description="near_duplicate: MinHash permutations (more: finer Jaccard estimates, slower).")
    seed_ngram_n: int = Field(8, ge=1, description="seed_ngram_overlap: word n-gram size.")
    seed_ngram_max_overlap: float = Field(0.5, gt=0, le=1, description="seed_ngram_overlap: reject when at least this share of the candidate's n-grams occur in some seed example.")
    seed_embedding_max_similarity: float = Field(0.85, gt=0, le=1, description="seed_embedding_similarity: reject when the cosine to the nearest seed example (local MiniLM) is at least this.")

    @model_validator(mode="after")
    def _check(self) -> FiltersConfig:
        problems = []
        if len(set(self.order)) != len(self.order):
            problems.append(f"refinery.filters.order: a filter is listed twice in {self.order}")
        for what in ("question", "answer"):
            low, high = getattr(self, f"min_{what}_words"), getattr(self, f"max_{what}_words")
            if low > high:
                problems.append(f"refinery.filters.min_{what}_words: {low} is larger than refinery.filters.max_{what}_words {high}")
        if problems:
            raise ValueError("\n".join(problems))  # one problem a line
        return self


class SuccessConfig(Block):
    metric: str = Field("f1", description="Test metric the three-arm success criteria are judged on.")
    tolerance: float = Field(5.0, ge=0, description="C is 'within tolerance of A' when |C - A| <= this (in the metric's units; F1 is 0-100).")


class RefineryConfig(Block):
    contamination_share: float = Field(0.2, ge=0, le=1, description="contaminated arm: share of records whose answer is a paraphrase of the human answer instead of the generator's own answer.")
    expansion_factor: float = Field(1.0, gt=0, description="synthetic arm: size of its training set as a multiple of the human pool (1 = equal sizes).")
    oversample: float = Field(2.0, ge=1, description="synthetic arm: candidates generated per wanted record; the filters reject the rest.")
    strategies: list[Strategy] = Field(default_factory=lambda: list(ALL_STRATEGIES), min_length=1, description="synthetic arm: strategies, used in turn over the human seed records.")
    generator_model: str | None = Field(None, min_length=1, description="The causal LM that writes the contaminated and synthetic data, when it is not the trained model (e.g. gemma-3-270m writing for smollm2-135m-instruct): a catalogue name, a local HF folder, a $COLLAPSELAB_MODELS name or a hub id, with its own tokenizer and prompt format; loaded once per seed and freed before training. Also the writer of arms with writer 'generator'. Null: the trained model's base (model.name).")
    generator_fine_tune: bool = Field(True, description="Fine-tune the generator on the human seed (QA and question generation, generator_epochs, the training recipe and model.lora) before it writes; false: it writes as it is.")
    generator_epochs: float = Field(2.0, gt=0, description="Epochs that fine-tune the generator on the human seed in QA and question-generation format.")
    max_question_tokens: int = Field(32, ge=4, description="Most tokens of a generated question.")
    max_expansion_words: int = Field(8, ge=1, description="answer_expansion: most words an answer is extended by.")
    filters: FiltersConfig = Field(default_factory=FiltersConfig)
    success: SuccessConfig = Field(default_factory=SuccessConfig)

    @model_validator(mode="after")
    def _check(self) -> RefineryConfig:
        if len(set(self.strategies)) != len(self.strategies):
            raise ValueError(f"refinery.strategies: a strategy is listed twice in {self.strategies}")
        return self
