"""Generation-0 data of the contaminated and synthetic arms (the engine calls `build_arm_data`).

- contaminated: the generator answers every human training question; a share
  (`refinery.contamination_share`, default 20 %) of the records carry a paraphrase of the
  human answer instead. Unfiltered: it stands for data scraped after AI text got in.
- synthetic: candidates from the human seed by the configured strategies
  (`strategies.py`), `expansion_factor x oversample` of them, through the filters
  (`pipeline.py`); the first `expansion_factor x |human|` that pass are the arm's data.

The generator is the trained model's base, or `refinery.generator_model` (a second model
with its own tokenizer and prompt format, e.g. a larger model writing for a smaller one),
fine-tuned on the human seed only (QA and question generation) unless
`refinery.generator_fine_tune` is false; a fine-tuned generator is saved once per seed under
`<run>/refinery-generator/seed-<s>/` so a resumed run reuses it. `build_arms_data` loads it
once for every refinery arm of a seed and frees it before any training. Every record it
writes names it (`model`) in its provenance, with the decoding of its role
(`decoding.contamination`, `decoding.synthesis`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collapselab.lab.starts import (
    base_source,
    fine_tune_start,
    load_for_inference,
    load_for_training,
)
from collapselab.metrics.qa import token_f1
from collapselab.models.loading import (
    apply_lora,
    load_model,
    load_tokenizer,
    max_positions,
    save_model,
)
from collapselab.models.prompts import ANSWER, QUESTION, prompt_format
from collapselab.records import Record
from collapselab.refinery import strategies as st
from collapselab.refinery.filters import answer_present, normalize
from collapselab.refinery.pipeline import run_filters
from collapselab.seeds import step_seed as derive_seed
from collapselab.tasks.qa import answer_questions, training_pairs

if TYPE_CHECKING:
    from collapselab.config import DecodingRoleName
    from collapselab.lab.contract import Lab


@dataclass(slots=True)
class BuiltData:
    records: list[Record]  # the arm's generation-0 training set
    rejected: list[Record] = field(default_factory=list)  # with reasons in generator JSON
    stats: dict[str, Any] = field(default_factory=dict)  # refinery.json / metrics.json "refinery"


def build_arms_data(lab: Lab, arms: list, seed: int, step_seed: int) -> list[BuiltData]:
    """The generation-0 data of `contaminated` and `synthetic` arms (engine contract), in
    order, from one generator loaded once and freed before the engine trains anything."""
    for arm in arms:
        if arm.data not in ("contaminated", "synthetic"):
            raise ValueError(f"arms: {arm.name!r} has data {arm.data!r}; the refinery builds 'contaminated' or 'synthetic'")
    writer = writer_lab(lab)
    model, log = generator(writer, seed)
    out = []
    for arm in arms:
        build = build_contaminated if arm.data == "contaminated" else build_synthetic
        built = build(writer, model, seed, step_seed)
        built.stats["generator"] = {k: log.get(k) for k in ("steps", "tokens", "seconds", "base", "fine_tuned")} | {
            "model": generator_name(lab), "final_loss": (log.get("losses") or [None])[-1]}
        out.append(built)
    del model
    release_memory()
    return out


def build_arm_data(lab: Lab, arm, seed: int, step_seed: int) -> BuiltData:
    """The generation-0 data of one `contaminated` or `synthetic` arm (engine contract)."""
    return build_arms_data(lab, [arm], seed, step_seed)[0]


def write_with_generator(lab: Lab, arm, seed: int, generation: int, step_seed: int) -> list[Record]:
    """What the generator writes for `arm`'s next generation in place of model_g
    (`arms[].writer: generator`): the task's own synthetic step, run by the generator with
    its tokenizer and the loop's decoding; each record names the generator as its model."""
    writer = writer_lab(lab)
    model, _ = generator(writer, seed)
    written = lab.task.write_synthetic(writer, model, arm, generation, step_seed)
    del model
    release_memory()
    out = []
    for r in written:
        tag = json.loads(r.generator or "{}")
        tag.update(model=generator_name(lab), writer=_describe(lab))
        out.append(r.derive(generator=json.dumps(tag, sort_keys=True)))
    return out


# ---------------------------------------------------------------- the generator


def generator_name(lab: Lab) -> str:
    """The model that writes the refinery's data: `refinery.generator_model`, else the base."""
    return lab.cfg.refinery.generator_model or lab.cfg.model.name


def writer_lab(lab: Lab) -> Lab:
    """`lab` as the generator sees it: a second model brings its own tokenizer, positions and
    prompt format (the records it writes are text, so the trained model reads them in its own)."""
    name = lab.cfg.refinery.generator_model
    if name is None:
        return lab
    tokenizer = load_tokenizer(name)
    return dataclasses.replace(lab, tokenizer=tokenizer, max_positions=max_positions(name, tokenizer),
                               prompt_format=prompt_format(tokenizer, lab.cfg.prompts))


def generator_dir(lab: Lab, seed: int) -> Path:
    return lab.run_dir / "refinery-generator" / f"seed-{seed}"


def generator(lab: Lab, seed: int) -> tuple[Any, dict[str, Any]]:
    """The generator, loaded to write: fine-tuned on the human seed in QA + QG format (trained
    once per seed, then read from its folder), or as it is. `lab` is the writer's (`writer_lab`)."""
    from collapselab.training.loop import train_supervised

    cfg, folder = lab.cfg, generator_dir(lab, seed)
    second = cfg.refinery.generator_model
    source = second if second is not None else base_source(lab, seed)
    if not cfg.refinery.generator_fine_tune:
        return _load(lab, source, for_training=False), {"base": source, "fine_tuned": False}
    if not (folder / "config.json").exists():
        # The same start as an `init: base` arm (fp32, LoRA if configured), from the generator's own model.
        model = fine_tune_start(lab, seed) if second is None else _load(lab, second, for_training=True)
        if second is not None and cfg.model.lora:
            model = apply_lora(model, cfg.model.lora, seed=derive_seed(seed, 0, "refinery-generator-lora"))
        # The generator learns the QA + QG format on the human seed: no split, no weights.
        recipe = cfg.training.model_copy(update={
            "epochs": cfg.refinery.generator_epochs, "max_steps": None, "validation_share": 0.0,
            "early_stopping_patience": None, "early_stopping_metric": "loss", "loss_weights": "uniform"})
        result = train_supervised(model, generator_pairs(lab), recipe, pad_id=lab.tokenizer.pad_token_id,
                                  seed=derive_seed(seed, 0, "refinery-generator"), desc="train refinery generator")
        log = {"losses": result.losses, "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds,
               "base": source, "fine_tuned": True}
        save_model(model, lab.tokenizer, folder, extra_json={"train_log.json": log})
        del model  # its fp32 training copy; the inference copy loads next
        release_memory()
    log = json.loads((folder / "train_log.json").read_text())
    return _load(lab, folder, for_training=False), log


def _load(lab: Lab, source: str | Path, *, for_training: bool) -> Any:
    """A second generator is a causal LM; the trained model's own base loads as `model.kind` says."""
    if lab.cfg.refinery.generator_model is None:
        return load_for_training(lab, source) if for_training else load_for_inference(lab, source)
    return load_model(source, seq2seq=False, for_training=for_training).model


def release_memory() -> None:
    """Give back the memory of models no longer referenced now (on a GPU the cache too),
    before the next model loads."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def generator_pairs(lab: Lab) -> list[tuple[list[int], list[int]]]:
    """(prompt, target) ids: every human record once as QA and once as question generation."""
    fmt, limit = lab.prompt_format, lab.max_positions
    q_max = lab.cfg.refinery.max_question_tokens
    pairs = []
    for r, qa in zip(lab.human.train, training_pairs(lab, lab.human.train), strict=True):
        pairs.append(qa)
        q = fmt.target(r.question or "", q_max)
        pairs.append((fmt.qg(r.context or "", st.answer_of(r), limit - len(q)).ids, q))
    return pairs


def _questions(lab: Lab, model, drafts: list[tuple[str, str]], seed: int, desc: str) -> list[str]:
    """Generated questions for (context, answer) drafts (one line each)."""
    from collapselab.generation import generate

    fmt, q_max = lab.prompt_format, lab.cfg.refinery.max_question_tokens
    prompts = [fmt.qg(c, a, lab.max_positions - q_max) for c, a in drafts]
    outs = generate(model, lab.tokenizer, [p.ids for p in prompts], lab.cfg.decoding.for_role("synthesis"), max_new_tokens=q_max, seed=seed,
                    prefix_lengths=[len(p.prefix) for p in prompts], desc=desc)
    return [lab.tokenizer.decode(o, skip_special_tokens=True).strip().split("\n", 1)[0].strip() for o in outs]


def _describe(lab: Lab) -> str:
    """The generator in words, for provenance: which model, and whether it was fine-tuned."""
    r = lab.cfg.refinery
    how = "fine-tuned on the human seed (QA + question generation)" if r.generator_fine_tune else "not fine-tuned"
    return f"{'base' if r.generator_model is None else 'second model'}, {how}"


def _tag(lab: Lab, seed: int, strategy: str, role: DecodingRoleName) -> str:
    cfg = lab.cfg
    return json.dumps({"model": generator_name(lab), "generator": _describe(lab),
                       "decoding": cfg.decoding.for_role(role).model_dump(mode="json"), "strategy": strategy, "seed": seed,
                       **lab.prompt_format.describe(QUESTION if strategy.startswith(("question", "context")) else ANSWER)}, sort_keys=True)


# ---------------------------------------------------------------- contaminated


def build_contaminated(lab: Lab, model, seed: int, step_seed: int) -> BuiltData:
    human, share = lab.human.train, lab.cfg.refinery.contamination_share
    rng = random.Random(step_seed)
    paraphrased = set(rng.sample(range(len(human)), round(share * len(human))))
    ai = [i for i in range(len(human)) if i not in paraphrased]
    generated = answer_questions(lab, model, [human[i] for i in ai], lab.cfg.decoding.for_role("contamination"), step_seed,
                                 "contaminate: answer")
    answers = dict(zip(ai, generated, strict=True))
    records, in_context, changed = [], 0, 0
    for i, r in enumerate(human):
        strategy = "answer_paraphrase" if i in paraphrased else "generator_answer"
        a = st.paraphrase_answer(st.answer_of(r), r.context or "", rng) if i in paraphrased else answers[i]
        in_context += (not a) or f" {normalize(a)} " in f" {normalize(r.context or '')} "
        changed += normalize(a) != normalize(st.answer_of(r))
        records.append(r.derive(id=f"{r.id}@contaminated", source="contaminated", generation=0, parent_id=r.id,
                                generator=_tag(lab, seed, strategy, "contamination"), answers=(a,) if a else ()))
    n = len(human)
    stats = {
        "kind": "contaminated", "attempts": n, "passed": n, "rejected": {},
        "strategies": {"generator_answer": {"attempts": len(ai), "passed": len(ai), "success_rate": 1.0 if ai else None},
                       "answer_paraphrase": {"attempts": len(paraphrased), "passed": len(paraphrased), "success_rate": 1.0 if paraphrased else None}},
        "contamination_share": share,
        "answer_validation": {"answer_in_context_rate": in_context / n, "answer_changed_rate": changed / n},
    }
    return BuiltData(records, [], stats)


# ---------------------------------------------------------------- synthetic


def build_synthetic(lab: Lab, model, seed: int, step_seed: int) -> BuiltData:
    rc, human = lab.cfg.refinery, lab.human.train
    target = max(1, round(rc.expansion_factor * len(human)))
    rng = random.Random(step_seed)
    order = list(range(len(human)))
    rng.shuffle(order)
    # Strategies in turn over the shuffled seed; each pass over the seed shifts the turn,
    # so every human record meets every strategy once the factor allows.
    plan = [(human[order[k % len(human)]], rc.strategies[(k + k // len(human)) % len(rc.strategies)])
            for k in range(math.ceil(target * rc.oversample))]
    per = {s: {"planned": 0, "not_applicable": 0, "attempts": 0, "passed": 0, "used": 0} for s in rc.strategies}
    drafts = []  # (parent, strategy, context, answer, question or None = to generate, span)
    for parent, s in plan:
        per[s]["planned"] += 1
        c, a = parent.context or "", st.answer_of(parent)
        if s == "question_paraphrase":
            drafts.append((parent, s, c, a, None, None))
        elif s == "context_augmentation":
            c2 = st.augment_context(c, a, rng)
            drafts.append((parent, s, c2, a, None, None) if c2 else None)
        elif s == "question_variants":
            span = st.variant_span(c, a, rng)
            drafts.append((parent, s, c, span, None, span) if span else None)
        else:  # answer_expansion
            longer = st.expand_answer(c, a, rc.max_expansion_words)
            drafts.append((parent, s, c, longer, parent.question, None) if longer else None)
        if drafts[-1] is None:
            per[s]["not_applicable"] += 1
    drafts = [d for d in drafts if d is not None]
    ask = [i for i, d in enumerate(drafts) if d[4] is None]
    asked = _questions(lab, model, [(drafts[i][2], drafts[i][3]) for i in ask], step_seed, "refinery: questions")
    questions = dict(zip(ask, asked, strict=True))
    variants = [i for i in ask if drafts[i][1] == "question_variants"]
    probe = [Record(id="q", context=drafts[i][2], question=questions[i]) for i in variants]
    answered = dict(zip(variants, answer_questions(lab, model, probe, lab.cfg.decoding.for_role("synthesis"), step_seed + 1, "refinery: answers"), strict=True))
    candidates = []
    for i, (parent, s, c, a, q, _span) in enumerate(drafts):
        answer = answered.get(i, a)
        candidates.append(parent.derive(
            id=f"{parent.id}@syn{i}", source="synthetic", generation=0, parent_id=parent.id, generator=_tag(lab, seed, s, "synthesis"),
            context=c, question=q if q is not None else questions[i], answers=(answer,) if answer else (),
        ))
        per[s]["attempts"] += 1
    out = run_filters(candidates, human, rc.filters)
    used = out.passed[:target]
    strategy_of = {r.id: json.loads(r.generator)["strategy"] for r in candidates}
    for r in out.passed:
        per[strategy_of[r.id]]["passed"] += 1
    for r in used:
        per[strategy_of[r.id]]["used"] += 1
    for v in per.values():
        v["success_rate"] = v["passed"] / v["planned"] if v["planned"] else None
    spans = {i: drafts[i][5] for i in variants}
    agree = [token_f1(answered[i], [spans[i]]) >= 0.5 for i in variants]
    in_ctx = [i for i in variants if answer_present([probe[variants.index(i)].derive(answers=(answered[i],))], None)[0] is None]
    stats = {
        **out.stats, "kind": "synthetic", "target": target, "expansion_factor": rc.expansion_factor,
        "used": len(used), "surplus": len(out.passed) - len(used), "shortfall": target - len(used),
        "not_applicable": sum(v["not_applicable"] for v in per.values()), "strategies": per,
        "answer_validation": {
            "generated_answers": len(variants),
            "answer_in_context_rate": len(in_ctx) / len(variants) if variants else None,
            "round_trip_agreement_rate": sum(agree) / len(agree) if agree else None,
        },
    }
    return BuiltData(used, out.rejected, stats)
