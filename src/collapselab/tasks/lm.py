"""The language-modelling task: continue human text, train on the continuations.

Human text is one running stream cut into blocks of `data.block_tokens` tokens. The model
continues each human block (the prompt: its first `data.prompt_tokens` tokens) by
`max_new_tokens` tokens; those continuations are the synthetic set, one per human block.

Training: human blocks are slices of running text, so they are packed as one stream with
no separator (an EOS after every block would teach the model to stop after one block).
Synthetic continuations are unrelated texts: each is trained as its own sequence, so no
token attends across two continuations that never followed each other (the per-block
training of the collapse papers; packing them would confound the replace arm's decay).
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from typing import TYPE_CHECKING, Any

from collapselab.datasets import DatasetError
from collapselab.datasets.topic import topic_documents
from collapselab.lab import Evaluation, HumanData
from collapselab.lab.provenance import generator_tag
from collapselab.metrics.registry import (
    EXTERNAL_DEFAULTS,
    EXTERNAL_YARDSTICK,
    SYNTHETIC_DEFAULTS,
    Metric,
    entries,
    entry,
)
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
    from collapselab.metrics import EvalInputs

DOC_SEPARATOR = "\n"  # documents (paragraphs, stories) are joined as running text


class LMTask:
    name = "lm"
    record_fields = ("text",)
    data_builders: tuple[str, ...] = ()
    test_unit = "scored block"
    main_metrics = ("perplexity", "cross_entropy")
    answers_questions = False  # predictions are answers judged against references
    training_extras = False  # no validation split, score or loss weights: trains on running text
    percent_metrics: tuple[str, ...] = ()
    # (reference_perplexity, the human test set under the generation-0 model, is registered
    # but not a default: it is generation 0's own perplexity again at every generation.
    # Encoder metrics (bertscore, semantic_similarity, mauve) are not defaults either: they
    # load a sentence encoder, too slow for the CPU quickstart.)
    default_metrics = ("perplexity", "cross_entropy", *SYNTHETIC_DEFAULTS)
    reference_metrics = tuple(EXTERNAL_DEFAULTS)
    yardstick_metrics = tuple(EXTERNAL_YARDSTICK)

    def primary_metric(self, cfg: ExperimentConfig) -> str:
        return "perplexity"

    def scores(self, metric: Metric) -> bool:
        return metric.task in ("any", self.name)

    def config_problems(self, cfg: ExperimentConfig) -> list[str]:
        problems = []
        d = cfg.data
        if d.prompt_tokens and d.prompt_tokens > d.block_tokens:
            problems.append(f"data.prompt_tokens: {d.prompt_tokens} must not exceed data.block_tokens {d.block_tokens}")
        if cfg.model.kind != "causal":
            problems.append("model.kind: the lm task continues text, which needs a causal model")
        if cfg.model.name == "scratch":
            need = (d.prompt_tokens or d.block_tokens) + self.max_new_tokens(cfg)
            if need > cfg.model.scratch.max_positions:
                problems.append(f"model.scratch.max_positions: {cfg.model.scratch.max_positions} is shorter than a prompt plus its "
                                f"continuation ({self._sequence(cfg)})")
        return problems + self._budget_problems(cfg)

    def _sequence(self, cfg: ExperimentConfig) -> str:
        """`32 tokens: data.block_tokens 16 + decoding.max_new_tokens 16`: a prompt plus its
        continuation, with the keys that set them."""
        d, n = cfg.data, cfg.decoding.max_new_tokens
        prompt = f"data.prompt_tokens {d.prompt_tokens}" if d.prompt_tokens else f"data.block_tokens {d.block_tokens}"
        new = f"decoding.max_new_tokens {n}" if n is not None else f"data.block_tokens {d.block_tokens}"
        return f"{(d.prompt_tokens or d.block_tokens) + self.max_new_tokens(cfg)} tokens: {prompt} + {new}"

    def _budget_problems(self, cfg: ExperimentConfig) -> list[str]:
        """Token budgets smaller than the one sequence they batch: a batch of one would pass
        the budget silently. And a test set shorter than one perplexity block scores nothing."""
        d, seq_len = cfg.data, cfg.training.seq_len
        problems = []
        recipes = [("training", cfg.training)] + ([("model.pretrain", cfg.model.pretrain)] if cfg.model.name == "scratch" else [])
        for key, recipe in recipes:
            if recipe.batch_tokens < recipe.seq_len:
                problems.append(f"{key}.batch_tokens: {recipe.batch_tokens} is less than one training block of {key}.seq_len "
                                f"{recipe.seq_len} tokens; give at least {recipe.seq_len}")
        if cfg.evaluation.batch_tokens < seq_len:
            problems.append(f"evaluation.batch_tokens: {cfg.evaluation.batch_tokens} is less than one perplexity block of "
                            f"training.seq_len {seq_len} tokens; give at least {seq_len}")
        beams = cfg.decoding.num_beams if cfg.decoding.method == "beam" else 1
        one = ((d.prompt_tokens or d.block_tokens) + self.max_new_tokens(cfg)) * beams
        if cfg.decoding.batch_tokens < one:
            problems.append(f"decoding.batch_tokens: {cfg.decoding.batch_tokens} is less than one prompt plus its continuation "
                            f"({one} tokens{f' for {beams} beams' if beams > 1 else ''}); give at least {one}")
        if d.test_size is not None and d.test_size * d.block_tokens < seq_len:
            problems.append(f"data.test_size: {d.test_size} blocks of {d.block_tokens} tokens are shorter than one perplexity "
                            f"block of training.seq_len {seq_len} tokens; give at least {math.ceil(seq_len / d.block_tokens)}")
        return problems

    def position_problems(self, cfg: ExperimentConfig, max_positions: int) -> list[str]:
        problems = []
        need = (cfg.data.prompt_tokens or cfg.data.block_tokens) + self.max_new_tokens(cfg)
        if need > max_positions:
            key = "decoding.max_new_tokens" if cfg.decoding.max_new_tokens is not None else "data.block_tokens"
            problems.append(f"{key}: a prompt plus its continuation ({self._sequence(cfg)}) exceeds the model's {max_positions} positions")
        if cfg.training.seq_len > max_positions:
            problems.append(f"training.seq_len: {cfg.training.seq_len} exceeds the model's {max_positions} positions")
        return problems

    def data_problems(self, cfg: ExperimentConfig, human: HumanData, tokenizer: Any) -> list[str]:
        """Perplexity packs the test text into blocks of training.seq_len tokens: at least one."""
        from collapselab.metrics.language import pack_test_blocks

        seq_len = cfg.training.seq_len
        if human.test and pack_test_blocks([r.text or "" for r in human.test], tokenizer, seq_len):
            return []
        return [f"data.test_size: the test text ({len(human.test)} blocks) holds fewer than training.seq_len {seq_len} tokens, "
                "one perplexity block"]

    def max_new_tokens(self, cfg: ExperimentConfig) -> int:
        """A continuation as long as a human block, unless `decoding.max_new_tokens` says."""
        n = cfg.decoding.max_new_tokens
        return cfg.data.block_tokens if n is None else n

    def human_pools(self, cfg: ExperimentConfig, splits: Any) -> tuple[list[Record], list[Record]]:
        """Seeded subsets of documents holding about `train_size` (`test_size`) blocks."""
        d = cfg.data
        need = d.train_size * d.block_tokens if d.train_size else None
        test_need = d.test_size * d.block_tokens if d.test_size else None
        train = splits.train
        if d.topic is not None:  # only one subject's articles (the test text stays the dataset's own)
            mmlu_path = cfg.evaluation.mmlu.path if cfg.evaluation.mmlu else None
            train = topic_documents(train, d.topic.mmlu_subject, d.topic.articles, mmlu_path)
        return select_docs(train, need, d.split_seed, "train"), select_docs(splits.test, test_need, d.split_seed, "test")

    def tokenizer_texts(self, pool: list[Record]) -> list[str]:
        return [d.text for d in pool if d.text]

    def prepare_human(self, cfg: ExperimentConfig, pools: tuple[list[Record], list[Record]], tokenizer: Any) -> HumanData:
        d = cfg.data
        train, test = pools
        return HumanData(
            lm_blocks(train, tokenizer, d.block_tokens, d.train_size, "train"),
            lm_blocks(test, tokenizer, d.block_tokens, d.test_size, "test"),
        )

    def train(self, lab: Lab, model: Any, records: list[Record], recipe: TrainingBlock, seed: int, desc: str):
        from collapselab.training.loop import train_lm

        tok = lab.tokenizer
        human = [r for r in records if r.source == "human"]
        generated = [r for r in records if r.source != "human"]
        stream: list[int] = []
        for ids in tok([r.text or "" for r in human], add_special_tokens=False)["input_ids"] if human else []:
            stream.extend(ids)
        sequences = tok([r.text or "" for r in generated], add_special_tokens=False)["input_ids"] if generated else []
        return train_lm(model, [stream] if stream else [], recipe, eos_id=tok.eos_token_id, seed=seed,
                        sequences=sequences, desc=desc)

    def write_synthetic(self, lab: Lab, model: Any, arm: ArmConfig, generation: int, seed: int) -> list[Record]:
        from collapselab.generation import continuation_text, generate

        cfg, tok = lab.cfg, lab.tokenizer
        n_prompt = cfg.data.prompt_tokens or cfg.data.block_tokens
        prompts = [tok(r.text, add_special_tokens=False)["input_ids"][:n_prompt] for r in lab.human.train]
        outputs = generate(model, tok, prompts, cfg.decoding.for_role("generation"), max_new_tokens=lab.max_new_tokens, seed=seed, desc=f"generate g{generation}")
        tag = generator_tag(cfg, arm.name, generation, seed)
        out = []
        for r, ids in zip(lab.human.train, outputs, strict=True):
            out.append(Record(id=f"{r.id}@g{generation}", source="synthetic", generation=generation, parent_id=r.id,
                              generator=tag, text=continuation_text(tok, ids)))
        return out

    def evaluate(self, lab: Lab, model: Any, generation0: Any, synthetic: list[Record] | None, seed: int) -> Evaluation:
        from collapselab.metrics import default_metrics

        inputs = eval_inputs(lab, model, generation0, synthetic, seed)
        return score_texts(metric_names(lab, default_metrics(self, inputs)), inputs)  # with the external reference's, when loaded

    def baselines(self, lab: Lab, load_base: Any, seed: int) -> dict[str, dict[str, Any]]:
        from collapselab.metrics.language import pack_test_blocks

        blocks = pack_test_blocks([r.text or "" for r in lab.human.test], lab.tokenizer, lab.cfg.training.seq_len)
        value = unigram_perplexity(lab.tokenizer, lab.human.train, blocks)
        return {"unigram_perplexity": entry("unigram_perplexity", value, {"what": "add-one unigram model of the human training tokens"})}

    def stage_inputs(self, metrics: dict[str, dict[str, Any]]) -> tuple[float, float] | None:
        return None  # no accuracy of its own; MMLU (evaluation.mmlu) gives one when configured


def score_texts(names: list[str], inputs: EvalInputs) -> Evaluation:
    """Score a model on held-out human text (and the continuations it wrote,
    `inputs.synthetic`) with the metrics `names`: metric entries, one prediction row per
    scored test block, one score row per continuation. The lm task's evaluation, and the
    continuous learner's at every checkpoint."""

    from collapselab.metrics.language import packed_test_blocks

    results = score(names, inputs)
    blocks = packed_test_blocks(inputs)  # the targets every model is scored on
    ids = [f"test-block-{i:05d}" for i in range(len(blocks))]
    scores = per_example(results, ids, "test")
    rows = [
        {"example_id": i, "input": inputs.tokenizer.decode(b), "reference": "", "prediction": "", "scores": json.dumps(scores[i])}
        for i, b in zip(ids, blocks, strict=True)
    ]
    return Evaluation(entries(results), rows, synthetic_score_rows(results, inputs.synthetic))


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
    text = DOC_SEPARATOR.join(d.text for d in docs if d.text)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    n = len(ids) // block_tokens
    if n_blocks is not None:
        if n < n_blocks:
            key = "train_size" if split == "train" else "test_size"
            raise DatasetError(f"data.{key}: the {split} text holds {n} blocks of {block_tokens} tokens, fewer than the {n_blocks} asked for")
        n = n_blocks
    cuts = [offsets[i * block_tokens][0] for i in range(n)] + [offsets[n * block_tokens][0] if n * block_tokens < len(ids) else len(text)]
    return [Record(id=f"{split}-{i:06d}", source="human", text=text[cuts[i] : cuts[i + 1]]) for i in range(n)]


def unigram_perplexity(tokenizer, train: list[Record], test_blocks: list[list[int]]) -> float:
    """Perplexity of the test targets under an add-one unigram model of the training tokens:
    the floor a model that learned nothing about context would reach."""
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
