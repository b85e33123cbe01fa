"""Generation-0 data of the contaminated and synthetic arms (the engine calls `build_arm_data`).

- contaminated: the generator answers every human training question; a share
  (`refinery.contamination_share`, default 20 %) of the records carry a paraphrase of the
  human answer instead. Unfiltered: it stands for data scraped after AI text got in.
- synthetic: candidates from the human seed by the configured strategies
  (`strategies.py`), `expansion_factor x oversample` of them, through the filters
  (`pipeline.py`); the first `expansion_factor x |human|` that pass are the arm's data.

The generator is the base model fine-tuned on the human seed only (QA and question
generation), saved once per seed under `<run>/refinery-generator/seed-<s>/` so a
resumed run and the other refinery arm reuse it.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collapselab.records import Record
from collapselab.refinery import strategies as st
from collapselab.refinery.pipeline import run_filters
from collapselab.tasks import QA_ANSWER_TOKENS, qa_prompt_ids, qa_target


@dataclass(slots=True)
class BuiltData:
    records: list[Record]  # the arm's generation-0 training set
    rejected: list[Record] = field(default_factory=list)  # with reasons in generator JSON
    stats: dict[str, Any] = field(default_factory=dict)  # refinery.json / metrics.json "refinery"


def build_arm_data(lab, arm, seed: int, step_seed: int) -> BuiltData:
    """The generation-0 data of a `contaminated` or `synthetic` arm (engine contract)."""
    model, log = generator(lab, seed)
    if arm.data == "contaminated":
        built = build_contaminated(lab, model, seed, step_seed)
    elif arm.data == "synthetic":
        built = build_synthetic(lab, model, seed, step_seed)
    else:
        raise ValueError(f"arms: {arm.name!r} has data {arm.data!r}; the refinery builds 'contaminated' or 'synthetic'")
    built.stats["generator"] = {k: log.get(k) for k in ("steps", "tokens", "seconds", "base")} | {
        "final_loss": (log.get("losses") or [None])[-1]}
    return built


# ---------------------------------------------------------------- the generator


def generator_dir(lab, seed: int) -> Path:
    return lab.run_dir / "refinery-generator" / f"seed-{seed}"


def generator(lab, seed: int) -> tuple[Any, dict[str, Any]]:
    """The base model fine-tuned on the human seed in QA + QG format (trained once per seed)."""
    from collapselab.engine import _load, prepare_scratch_base, step_seed
    from collapselab.models import apply_lora, load_pretrained, save_model
    from collapselab.training import train_supervised

    cfg, folder = lab.cfg, generator_dir(lab, seed)
    if not (folder / "config.json").exists():
        if cfg.model.name == "scratch":
            base = prepare_scratch_base(lab, seed)
            model, base_name = _load(base, cfg).model, f"scratch base {base.name}"
        else:
            model, base_name = load_pretrained(cfg.model.name, cfg.model).model, cfg.model.name
            model = apply_lora(model, cfg.model.lora) if cfg.model.lora else model
        recipe = cfg.training.model_copy(update={"epochs": cfg.refinery.generator_epochs, "max_steps": None})
        result = train_supervised(model, generator_pairs(lab), recipe, pad_id=lab.tokenizer.pad_token_id,
                                  seed=step_seed(seed, 0, "refinery-generator"), desc="train refinery generator")
        log = {"losses": result.losses, "steps": result.steps, "tokens": result.tokens, "seconds": result.seconds, "base": base_name}
        save_model(model, lab.tokenizer, folder, extra_json={"train_log.json": log})
    log = json.loads((folder / "train_log.json").read_text())
    return _load(folder, cfg).model, log


def generator_pairs(lab) -> list[tuple[list[int], list[int]]]:
    """(prompt, target) ids: every human record once as QA and once as question generation."""
    tok, limit = lab.tokenizer, lab.max_positions
    q_max = lab.cfg.refinery.max_question_tokens
    pairs = []
    for r in lab.human.train:
        answer = st.answer_of(r)
        target = tok(qa_target(answer), add_special_tokens=False)["input_ids"][:QA_ANSWER_TOKENS] + [tok.eos_token_id]
        pairs.append((qa_prompt_ids(tok, r, limit - len(target)), target))
        q = tok(f" {r.question}", add_special_tokens=False)["input_ids"][:q_max] + [tok.eos_token_id]
        pairs.append((st.qg_prompt_ids(tok, r.context or "", answer, limit - len(q)), q))
    return pairs


def _texts(lab, model, prompts: list[list[int]], max_new: int, seed: int, desc: str) -> list[str]:
    from collapselab.generation import generate

    outs = generate(model, lab.tokenizer, prompts, lab.cfg.decoding, max_new_tokens=max_new, seed=seed, desc=desc)
    return [lab.tokenizer.decode(o, skip_special_tokens=True).strip() for o in outs]


def _tag(lab, seed: int, strategy: str) -> str:
    cfg = lab.cfg
    return json.dumps({"model": cfg.model.name, "generator": "base fine-tuned on the human seed (QA + question generation)",
                       "decoding": cfg.decoding.model_dump(mode="json"), "strategy": strategy, "seed": seed}, sort_keys=True)


# ---------------------------------------------------------------- contaminated


def build_contaminated(lab, model, seed: int, step_seed: int) -> BuiltData:
    from collapselab.refinery.filters import normalize

    human, share = lab.human.train, lab.cfg.refinery.contamination_share
    rng = random.Random(step_seed)
    paraphrased = set(rng.sample(range(len(human)), round(share * len(human))))
    ai = [i for i in range(len(human)) if i not in paraphrased]
    prompts = [qa_prompt_ids(lab.tokenizer, human[i], lab.max_positions - QA_ANSWER_TOKENS) for i in ai]
    answers = dict(zip(ai, _texts(lab, model, prompts, QA_ANSWER_TOKENS, step_seed, "contaminate: answer"), strict=True))
    records, in_context, changed = [], 0, 0
    for i, r in enumerate(human):
        strategy = "answer_paraphrase" if i in paraphrased else "generator_answer"
        a = st.paraphrase_answer(st.answer_of(r), r.context or "", rng) if i in paraphrased else answers[i]
        in_context += (not a) or f" {normalize(a)} " in f" {normalize(r.context or '')} "
        changed += normalize(a) != normalize(st.answer_of(r))
        records.append(r.derive(id=f"{r.id}@contaminated", source="contaminated", generation=0, parent_id=r.id,
                                generator=_tag(lab, seed, strategy), answers=(a,) if a else ()))
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


def build_synthetic(lab, model, seed: int, step_seed: int) -> BuiltData:
    from collapselab.metrics.qa import token_f1
    from collapselab.refinery.filters import answer_present

    rc, human, tok = lab.cfg.refinery, lab.human.train, lab.tokenizer
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
    q_prompts = [st.qg_prompt_ids(tok, drafts[i][2], drafts[i][3], lab.max_positions - rc.max_question_tokens) for i in ask]
    questions = dict(zip(ask, _texts(lab, model, q_prompts, rc.max_question_tokens, step_seed, "refinery: questions"), strict=True))
    variants = [i for i in ask if drafts[i][1] == "question_variants"]
    probe = [Record(id="q", context=drafts[i][2], question=questions[i]) for i in variants]
    a_prompts = [qa_prompt_ids(tok, r, lab.max_positions - QA_ANSWER_TOKENS) for r in probe]
    answered = dict(zip(variants, _texts(lab, model, a_prompts, QA_ANSWER_TOKENS, step_seed + 1, "refinery: answers"), strict=True))
    candidates = []
    for i, (parent, s, c, a, q, _span) in enumerate(drafts):
        answer = answered.get(i, a)
        candidates.append(parent.derive(
            id=f"{parent.id}@syn{i}", source="synthetic", generation=0, parent_id=parent.id, generator=_tag(lab, seed, s),
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
