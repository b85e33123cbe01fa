"""Pydantic models for every config block. YAML is only input; these are the truth.

Precedence: CLI (`--set key.path=value`) > YAML > defaults. Every error names the YAML
key path and the bad value. `ExperimentConfig._cross_checks` holds the checks between a
config's own fields; what a config means to the tasks, metrics, models and data is checked
above them, in `collapselab.checks` (this schema imports no task).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from collapselab.config.loading import Block, FolderName, load_model_file, model_from_dict

# `--set` parsing lives with the loader; re-exported because api and sweep apply overrides too.
from collapselab.config.loading import apply_override as apply_override
from collapselab.config.loading import parse_override as parse_override
from collapselab.config.operations import HubBlock, NotifyBlock, SweepBlock, TrackingBlock
from collapselab.config.refinery import RefineryConfig
from collapselab.errors import ConfigError

# The scratch tokenizer is a byte-level BPE: its 256 byte symbols and its EOS and PAD are
# always in it, so a smaller vocabulary is not what the model gets.
MIN_VOCAB = 256 + 2

# Blocks that say how a run is carried out and watched, not what it computes: they are
# left out of the config hash, so adding a tracker or a sweep grid keeps a run resumable.
OPERATIONAL_BLOCKS = frozenset({"sweep", "tracking", "hub", "notify"})


# Keys added after runs were started from configs without them: at these values they mean
# what their absence meant, so they stay out of the config hash and those runs still resume
# (so do arms[].schedule while empty and arms[].writer while 'self').
HASH_NEUTRAL: dict[tuple[str, str], Any] = {
    ("decoding", "contamination"): None, ("decoding", "synthesis"): None, ("decoding", "generation"): None,
    ("refinery", "generator_model"): None, ("refinery", "generator_fine_tune"): True,
}


class ExperimentBlock(Block):
    name: FolderName = Field(description="Experiment name; runs go to <output_dir>/<name>/<run_id>.")
    task: Literal["lm", "qa"] = Field(description="lm: continue human text blocks; qa: answer human questions.")
    generations: int = Field(4, ge=1, description="Number of generations G (g = 0..G-1).")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, description="One run of every arm per seed.")
    output_dir: str = Field("runs", min_length=1, description="Root folder of run directories.")


class TopicBlock(Block):
    mmlu_subject: str = Field(description="lm: the MMLU subject whose domain the training text is drawn from (e.g. high_school_biology); its dev and val questions are the query, never its test questions.")
    articles: int = Field(20, ge=1, description="Training articles kept: those ranked highest by BM25 against the query (datasets/topic.py); the held-out test text stays the dataset's own.")


class DataBlock(Block):
    dataset: str = Field(description="Dataset name in the registry: wikitext2, tinystories, squad_v2, squad_v1.1, cosmosqa, mmlu, jsonl.")
    path: str | None = Field(None, min_length=1, description="Explicit file or folder; else $COLLAPSELAB_DATA/<dataset>.")
    train_size: int | None = Field(None, ge=2, description="Human training pool size (lm: blocks, qa: questions); None = all.")
    test_size: int | None = Field(None, ge=1, description="Held-out human test size (lm: blocks, qa: questions); None = all.")
    block_tokens: int = Field(64, ge=8, description="lm: tokens per human text block; the prompt and the continuation length.")
    prompt_tokens: int | None = Field(None, ge=1, description="lm: tokens of each human block used as the prompt (default: block_tokens).")
    split_seed: int = Field(0, description="Seed of the deterministic subset and train/test split.")
    topic: TopicBlock | None = Field(None, description="lm: train only on the articles most about one MMLU subject (the knowledge-collapse framework's --mmlu_topic); None = all articles.")


class ScratchArchitecture(Block):
    architecture: Literal["llama", "gpt2"] = Field("llama", description="Llama-style (RMSNorm, RoPE, SwiGLU) or GPT-2-style blocks.")
    vocab_size: int = Field(2048, ge=MIN_VOCAB, description="BPE vocabulary trained on the human training text.")
    d_model: int = Field(128, ge=8, description="Hidden size.")
    n_layers: int = Field(4, ge=1, description="Transformer blocks.")
    n_heads: int = Field(4, ge=1, description="Attention heads.")
    d_ff: int | None = Field(None, ge=1, description="Feed-forward width (default 4*d_model for gpt2, 8/3*d_model for llama).")
    max_positions: int = Field(256, ge=16, description="Longest sequence (prompt + continuation, training block).")


class LoraBlock(Block):
    r: int = Field(8, ge=1, description="LoRA rank.")
    alpha: int = Field(16, ge=1, description="LoRA scaling alpha.")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the adapter input.")
    target_modules: list[str] | str = Field("all-linear", min_length=1, description="peft target_modules.")


class TrainingBlock(Block):
    epochs: float = Field(1.0, gt=0, description="Passes over the generation's training set.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    lr: float = Field(5e-4, gt=0, le=1, description="Peak AdamW learning rate (linear warmup, then decay).")
    weight_decay: float = Field(0.01, ge=0, le=1, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of steps spent warming up.")
    batch_tokens: int = Field(8192, ge=16, description="Tokens per micro-batch (batch size comes from this budget).")
    grad_accum: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    seq_len: int = Field(128, ge=8, description="lm: packed block length for training and perplexity.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    compile: bool = Field(False, description="torch.compile the model (kept off unless measured faster).")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 on CUDA, fp32 on CPU.")
    validation_share: float = Field(0.0, ge=0, lt=1, description="qa: share of the training questions held out (seeded) as the validation split of early stopping; 0 = none.")
    early_stopping_patience: int | None = Field(None, ge=1, description="Stop after this many validations without improvement and restore the best validation's weights; None = off (qa; needs validation_share > 0).")
    early_stopping_metric: str = Field("loss", description="'loss' (validation token loss, lower is better) or a metric the task scores the validation split with, higher is better (e.g. bertscore, f1).")
    early_stopping_min_delta: float = Field(0.0, ge=0, description="An improvement smaller than this counts as none.")
    eval_every: int | None = Field(None, ge=1, description="Optimizer steps between validations; None = once per epoch (always once more after the last step).")
    loss_weights: Literal["uniform", "bertscore_f1"] = Field("uniform", description="qa: 'bertscore_f1' weights each example's token losses by a BERTScore F1 the task computes before training (a constant: only the cross-entropy is differentiated; the weights reweight examples).")


class ModelBlock(Block):
    name: str = Field("scratch", min_length=1, description="'scratch', a catalogue name (smollm2-135m-instruct, gemma-3-270m), a local HF folder, a name under $COLLAPSELAB_MODELS, or a hub id.")
    kind: Literal["causal", "seq2seq"] = Field("causal", description="Decoder-only or encoder-decoder (hub models).")
    scratch: ScratchArchitecture = Field(default_factory=ScratchArchitecture)
    pretrain: TrainingBlock = Field(
        default_factory=lambda: TrainingBlock(epochs=3.0, lr=2e-3),
        description="Recipe that trains a scratch model from random init (the cached base, and init: scratch).",
    )
    lora: LoraBlock | None = Field(None, description="LoRA adapters; None = full fine-tuning.")


class DecodingBlock(Block):
    method: Literal["sample", "greedy", "beam"] = Field("sample", description="Ancestral sampling, greedy, or beam search.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass (1 = off).")
    top_k: int = Field(0, ge=0, description="0 = no top-k truncation.")
    num_beams: int = Field(1, ge=1, description="Beams for method 'beam'.")
    repetition_penalty: float = Field(1.0, gt=0, description="CTRL-style repetition penalty (1 = off).")
    max_new_tokens: int | None = Field(None, ge=1, description="New tokens per generated record; lm default: block_tokens; qa default: 32 (also the length QA training targets are cut to).")
    batch_tokens: int = Field(16384, ge=64, description="Token budget per generation batch (prompt + new tokens).")
    backend: Literal["auto", "transformers", "vllm"] = Field("auto", description="auto: vLLM when installed and a GPU is present.")


DecodingRoleName = Literal["contamination", "synthesis", "generation"]
DECODING_ROLES: tuple[DecodingRoleName, ...] = ("contamination", "synthesis", "generation")


class DecodingRole(Block):
    """The sampling keys one role of generation sets apart from `decoding`; a key left out
    (null) keeps `decoding`'s own value. Lengths, budgets and the backend stay shared."""

    method: Literal["sample", "greedy", "beam"] | None = Field(None, description="As decoding.method, for this role.")
    temperature: float | None = Field(None, gt=0, description="As decoding.temperature, for this role.")
    top_p: float | None = Field(None, gt=0, le=1, description="As decoding.top_p, for this role.")
    top_k: int | None = Field(None, ge=0, description="As decoding.top_k, for this role.")
    num_beams: int | None = Field(None, ge=1, description="As decoding.num_beams, for this role.")
    repetition_penalty: float | None = Field(None, gt=0, description="As decoding.repetition_penalty, for this role.")


class RunDecodingBlock(DecodingBlock):
    """An experiment's decoding: one block for every role, and per role the keys it changes."""

    contamination: DecodingRole | None = Field(None, description="The refinery's contaminated arm answering the human questions; null: decoding as it is (the CosmosQA report template: temperature 0.3).")
    synthesis: DecodingRole | None = Field(None, description="The refinery's synthetic arm writing questions and answers; null: decoding as it is (the CosmosQA report template: temperature 0.7).")
    generation: DecodingRole | None = Field(None, description="The recursive loop: what model_g writes for generation g+1; null: decoding as it is.")

    def for_role(self, role: DecodingRoleName) -> DecodingBlock:
        """The settings `role` generates with: this block, with the keys its role block sets."""
        own = self.model_dump(exclude=set(DECODING_ROLES))
        override = getattr(self, role)
        changes = override.model_dump(exclude_none=True) if override is not None else {}
        return DecodingBlock.model_validate({**own, **changes})


class StageBlock(Block):
    retained: float = Field(0.9, gt=0, le=1, description="Stage A while a generation keeps at least this share of generation 0's above-chance accuracy.")
    chance_margin: float = Field(0.02, ge=0, lt=1, description="Stage C when accuracy (a fraction) is within this of chance.")
    gibberish_floor: float = Field(1.5, ge=0, le=3, description="Stage C when the synthetic data's mean gibberish score (0-3) is below this.")


MMLUGroup = Literal["STEM", "humanities", "social sciences", "other"]
MMLUFormat = Literal["zero_shot", "few_shot", "short_answer", "no_instruction"]


class MMLUBlock(Block):
    subjects: list[str] = Field(default_factory=list, description="MMLU subjects, e.g. high_school_biology (with groups: their union; both empty: all 57).")
    groups: list[MMLUGroup] = Field(default_factory=list, description="MMLU subject groups whose subjects are evaluated.")
    formats: list[MMLUFormat] = Field(default_factory=lambda: ["zero_shot"], min_length=1, description="Prompt formats (metrics/mmlu.py); the first gives mmlu_accuracy and the collapse stage.")
    scoring: Literal["loglik", "generate"] = Field("loglik", description="loglik: the option with the highest log-likelihood; generate: parse a greedy answer.")
    per_subject: int | None = Field(20, ge=1, description="Questions per subject (the first N of its test split); None = all.")
    greedy_check: bool = Field(False, description="Also generate greedily and report the share of questions where it agrees with the scored choice.")
    batch_tokens: int = Field(8192, ge=64, description="Token budget per MMLU scoring batch.")
    path: str | None = Field(None, min_length=1, description="The MMLU folder (dev/ test/); else $COLLAPSELAB_DATA/mmlu.")


class EvaluationBlock(Block):
    metrics: list[str] | None = Field(None, description="Metric names from the registry; None = the task's defaults.")
    batch_tokens: int = Field(16384, ge=64, description="Token budget per evaluation batch.")
    stages: StageBlock = Field(default_factory=StageBlock, description="Thresholds of the collapse stage A/B/C per generation (metrics/stages.py).")
    mmlu: MMLUBlock | None = Field(None, description="MMLU at every generation (knowledge retention); None = off.")
    reference_model: str | None = Field(
        "smollm2-135m-instruct", min_length=1,
        description="The fixed external reference: a pretrained LM, loaded once per run, independent of the arms and of "
        "generation 0, with its own tokenizer; it scores every generation's synthetic text and, once per run, the human test "
        "set (lm task; metrics/external.py). A catalogue name, a local folder or a $COLLAPSELAB_MODELS name; null: none "
        "(also not loaded when `metrics` lists no external_* metric).",
    )
    gibberish_background: str | None = Field(
        "wikitext2", min_length=1,
        description="General human text of the language added to the gibberish scorer's vocabulary and word pairs: the "
        "training split of this dataset (read like data.dataset, through $COLLAPSELAB_DATA first), so fluent text in "
        "another register than the run's human pool is not read as misspelt (benchmarks/RESULTS.md). Loaded at the start "
        "of runs whose metrics include gibberish_score or gibberish_rate; null: the run's human pool only.",
    )
    reference_sequences: int = Field(
        64, ge=1,
        description="Most texts the reference model scores per evaluation (a seeded sample). Its cost per evaluation and the "
        "precision of a sample of this size: benchmarks/bench_external.py (figures in benchmarks/RESULTS.md).",
    )


class PromptsBlock(Block):
    format: Literal["auto", "plain", "chat"] = Field("auto", description="qa prompts: plain 'Context/Question/Answer:' (base models) or the tokenizer's chat template (instruct models); auto picks chat when the tokenizer has a template.")
    qa_instruction: str = Field(
        "Answer the question with a short span copied from the context. If the context does not contain the answer, reply exactly: {unanswerable}",
        description="chat: the system instruction of QA prompts ({unanswerable} is replaced).",
    )
    qg_instruction: str = Field(
        "Write one question about the context whose answer is the given answer.",
        description="chat: the system instruction of question-generation prompts (the refinery).",
    )
    unanswerable: str = Field("unanswerable", min_length=1, description="chat: the reply that means 'no answer' (read back as the SQuAD v2 empty answer).")


MixPolicy = Literal["replace", "accumulate", "accumulate_subsample", "ratio"]


class ScheduleStep(Block):
    generation: int = Field(ge=1, description="From this generation on (until a later step) the arm mixes by this step's policy; generation 0 is always data_0.")
    mix: MixPolicy = Field(description="As arms[].mix, from `generation` on (e.g. 'accumulate': the human pool returns, with every synthetic set so far).")
    ratio: float | None = Field(None, ge=0, le=1, description="As arms[].ratio, for mix 'ratio' from `generation` on.")
    size: int | None = Field(None, ge=1, description="As arms[].size, for mix 'ratio' or 'accumulate_subsample' from `generation` on.")


class ArmConfig(Block):
    name: FolderName = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="Arm name (a folder name in the run).")
    init: Literal["scratch", "base", "previous"] = Field("previous", description="Where each generation's training starts.")
    mix: MixPolicy = Field("replace", description="What generation g>0 trains on (see lab/mixing.py); `schedule` may change it at later generations.")
    ratio: float | None = Field(None, ge=0, le=1, description="mix=ratio: share of synthetic data in a fixed-size set.")
    size: int | None = Field(None, ge=1, description="Training set size for ratio / accumulate_subsample (default: human pool size).")
    data: Literal["human", "contaminated", "synthetic"] = Field(
        "human", description="What generation 0 trains on: the human pool, AI-contaminated data, or synthetic-from-human data through the refinery."
    )
    verify: bool = Field(False, description="The verifier in the loop (Feng et al. 2024): every generation's synthetic data passes the refinery's filters (`refinery.filters`) before the next generation's mix draws on it; the rejects, with their reasons, go to that generation's rejected.parquet and the counts per filter to its refinery.json (qa).")
    writer: Literal["self", "generator"] = Field("self", description="Who writes each generation's synthetic data in the loop: 'self' (model_g, the self-consuming loop) or 'generator' (the refinery's generator, refinery.generator_model or the base, fine-tuned on the human seed as refinery.generator_fine_tune says; loaded once per generation after training and freed before the next). The records name the writer in their provenance.")
    schedule: list[ScheduleStep] = Field(default_factory=list, description="Changes of the mix policy at later generations, e.g. [{generation: 5, mix: accumulate}] after four generations of 'replace': recovery from collapse as one arm. Empty: `mix` for every generation.")

    def at_generation(self, generation: int) -> ArmConfig:
        """The arm as it mixes `generation`: its own mix, ratio and size, or those of the latest
        schedule step that starts at or before it."""
        started = [s for s in self.schedule if s.generation <= generation]
        if not started:
            return self
        step = max(started, key=lambda s: s.generation)
        return self.model_copy(update={"mix": step.mix, "ratio": step.ratio, "size": step.size, "schedule": []})


class ExperimentConfig(Block):
    experiment: ExperimentBlock
    data: DataBlock
    model: ModelBlock = Field(default_factory=ModelBlock)
    training: TrainingBlock = Field(default_factory=TrainingBlock)
    decoding: RunDecodingBlock = Field(default_factory=RunDecodingBlock)
    prompts: PromptsBlock = Field(default_factory=PromptsBlock)
    evaluation: EvaluationBlock = Field(default_factory=EvaluationBlock)
    refinery: RefineryConfig = Field(default_factory=RefineryConfig)
    arms: list[ArmConfig] = Field(min_length=1)
    sweep: SweepBlock | None = Field(None, description="A grid of overrides run as one trial each on Ray (`collapselab sweep`); `collapselab run` ignores it.")
    tracking: TrackingBlock | None = Field(None, description="Experiment trackers (MLflow, W&B): one tracker run per arm and seed.")
    hub: HubBlock | None = Field(None, description="Push each finished generation's model and metrics to a Hugging Face Hub repository.")
    notify: NotifyBlock | None = Field(None, description="Messages to a webhook or Telegram as generations start, finish or fail.")

    @model_validator(mode="after")
    def _cross_checks(self) -> ExperimentConfig:
        problems = []  # all of them at once, `; `-joined as the field errors are
        names = [a.name for a in self.arms]
        for i, arm in enumerate(self.arms):
            if arm.name in names[:i]:
                problems.append(f"arms.{i}.name: {arm.name!r} is also arms.{names.index(arm.name)}.name; arm names are folders, one each")
            if arm.mix == "ratio" and arm.ratio is None:
                problems.append(f"arms.{i}.ratio: required when arms.{i}.mix is 'ratio'")
            if arm.mix != "ratio" and arm.ratio is not None:
                problems.append(f"arms.{i}.ratio: only meaningful with mix 'ratio', got mix {arm.mix!r} and ratio {arm.ratio}")
            if arm.init == "scratch" and self.model.name != "scratch":
                problems.append(f"arms.{i}.init: 'scratch' needs model.name 'scratch', got {self.model.name!r}")
        decodings = [("decoding", self.decoding)] + [
            (f"decoding.{role}", self.decoding.for_role(role)) for role in DECODING_ROLES if getattr(self.decoding, role) is not None]
        for key, dec in decodings:
            if dec.method == "beam" and dec.num_beams < 2:
                problems.append(f"{key}.num_beams: beam search needs at least 2 beams, got {dec.num_beams}")
            if dec.method != "beam" and dec.num_beams != 1:
                problems.append(f"{key}.num_beams: {dec.num_beams} beams need {key}.method 'beam' (method is {dec.method!r})")
        if self.model.name == "scratch":
            if self.model.kind != "causal":
                problems.append(f"model.kind: {self.model.kind!r}: scratch models are causal")
            limit = self.model.scratch.max_positions
            for key, recipe in (("training", self.training), ("model.pretrain", self.model.pretrain)):
                if recipe.seq_len > limit:
                    problems.append(f"{key}.seq_len: {recipe.seq_len} exceeds model.scratch.max_positions {limit}")
        if problems:
            raise ValueError("\n".join(problems))  # one problem a line
        return self

    def config_hash(self) -> str:
        """Hash of the resolved config (defaults filled in, operational blocks left out),
        stable across key order."""
        data = self.model_dump(mode="json", exclude=set(OPERATIONAL_BLOCKS))
        for (block, key), neutral in HASH_NEUTRAL.items():
            if data[block][key] == neutral:
                del data[block][key]
        for arm in data["arms"]:
            if arm["schedule"] == []:
                del arm["schedule"]
            if arm["writer"] == "self":
                del arm["writer"]
        blob = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load and validate a YAML config, applying `key.path=value` overrides first."""
    return load_model_file(ExperimentConfig, path, overrides or [], error=ConfigError, several=True)


def config_from_dict(data: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    return model_from_dict(ExperimentConfig, data, source, error=ConfigError, several=True)


def dump_config(config: ExperimentConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
