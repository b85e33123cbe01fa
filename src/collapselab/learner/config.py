"""The continuous learner's config. Training, model and decoding blocks are the engine's own,
so a learner step trains exactly as a generation does."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from collapselab.config import ConfigError, DecodingBlock, ModelBlock, TrainingBlock
from collapselab.config.loading import Block, load_model_file, model_from_dict
from collapselab.errors import CollapselabError

SOURCE_KINDS = ("wikitext2", "folder", "jsonl", "wikipedia")


class LearnerBlock(Block):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="Learner name; its run goes to <output_dir>/<name>/<run_id>.")
    output_dir: str = Field("runs", description="Root folder of run directories.")
    seed: int = Field(0, description="Seed of the document order, self-fed continuations and training.")
    docs_per_step: int = Field(8, ge=1, description="Documents per fine-tune step (N): a step trains on N documents, then publishes a checkpoint.")
    steps: int = Field(10, ge=1, description="Steps to run before stopping (a later run of the same config continues).")
    self_feed: float = Field(0.0, ge=0, le=1, description="Share r of each step's documents that are the model's own continuations of that step's human documents (0 = human only).")
    self_feed_prompt_tokens: int = Field(32, ge=1, description="Tokens of a human document given as the prompt of a self-fed continuation.")
    self_feed_tokens: int = Field(128, ge=1, description="Tokens of each self-fed continuation.")
    max_doc_tokens: int = Field(1024, ge=8, description="A document is cut to this many tokens before training.")
    keep_checkpoints: int | None = Field(3, ge=1, description="Published checkpoints kept (the newest; step 0, the base, always stays). None = all.")


class SourceBlock(Block):
    kind: Literal["wikitext2", "folder", "jsonl", "wikipedia"] = Field(description="wikitext2: WikiText-2 articles in a seeded random order (offline Wikipedia); folder: *.txt files; jsonl: one {text, id?, title?} per line; wikipedia: the random-article API (online).")
    path: str | None = Field(None, description="wikitext2: the dataset folder (default $COLLAPSELAB_DATA/wikitext2); folder / jsonl: the folder or file.")
    split: Literal["train", "valid", "test"] = Field("train", description="wikitext2: which split's articles.")
    api_url: str = Field("https://en.wikipedia.org/w/api.php", description="wikipedia: the MediaWiki action API endpoint.")
    timeout_s: float = Field(20.0, gt=0, description="wikipedia: seconds per HTTP request.")


class EvaluationBlock(Block):
    held_out: SourceBlock = Field(default_factory=lambda: SourceBlock(kind="wikitext2", split="test"), description="Held-out human text (in its file order); never a source of training documents.")
    tokens: int = Field(4096, ge=16, description="Tokens of held-out text scored for perplexity at every checkpoint.")
    seq_len: int = Field(128, ge=8, description="Block length of the perplexity stream.")
    continuations: int = Field(16, ge=1, description="Fixed held-out prompts continued at every checkpoint (same prompts and seed each time).")
    prompt_tokens: int = Field(16, ge=1, description="Tokens of each continuation prompt.")
    continuation_tokens: int = Field(48, ge=1, description="Tokens of each sampled continuation.")
    metrics: list[str] = Field(default_factory=lambda: ["perplexity", "cross_entropy", "distinct_1", "distinct_2", "entropy"], description="Registry metrics computed at every checkpoint.")
    batch_tokens: int = Field(8192, ge=64, description="Token budget per evaluation batch.")


class LearnerConfig(Block):
    learner: LearnerBlock
    source: SourceBlock
    model: ModelBlock = Field(default_factory=lambda: ModelBlock(name="smollm2-135m-instruct"))
    training: TrainingBlock = Field(default_factory=lambda: TrainingBlock(lr=5e-5, seq_len=256, batch_tokens=2048, warmup_ratio=0.0))
    decoding: DecodingBlock = Field(default_factory=lambda: DecodingBlock(top_p=0.95))
    evaluation: EvaluationBlock = Field(default_factory=EvaluationBlock)

    @model_validator(mode="after")
    def _cross_checks(self) -> LearnerConfig:
        if self.model.name == "scratch":
            raise ValueError("model.name: the learner continues a trained model; name one (or a run generation's model folder), not 'scratch'")
        if self.model.kind != "causal":
            raise ValueError("model.kind: the learner trains causal language models")
        if self.source.kind == "wikitext2" and self.evaluation.held_out.kind == "wikitext2" and self.source.split == self.evaluation.held_out.split:
            raise ValueError(f"evaluation.held_out.split: {self.source.split!r} is also the source's split; held-out text must be unseen")
        if self.decoding.method == "beam":
            raise ValueError("decoding.method: continuations are sampled or greedy, not beam")
        return self


def load_learner_config(path: str | Path, overrides: list[str] | None = None) -> LearnerConfig:
    """Load and validate a learner YAML, applying `key.path=value` overrides first."""
    return load_model_file(LearnerConfig, path, overrides or [], error=ConfigError)


def learner_config_from_dict(data: dict[str, Any], source: str = "<learner config>") -> LearnerConfig:
    return model_from_dict(LearnerConfig, data, source, error=ConfigError)


def is_learner_config(data: Any) -> bool:
    """A YAML mapping with a top-level `learner` block is a learner config (configs/ holds both)."""
    return isinstance(data, dict) and "learner" in data


class LearnerError(CollapselabError, RuntimeError):
    """The learner cannot go on as asked; the message says what and where."""
