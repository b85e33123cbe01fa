"""Every key of the config reference at its edges: refused before a run starts, naming the key
and the value, or accepted (and, for a representative set, a tiny run that finishes).

`EDGES` is the contract, one entry per key the pydantic models have: the key list is derived
from the models (as docs/reference/config.md is), so a new key without edge values
fails `test_every_key_has_edge_values`. `model.pretrain.*` is the `training` recipe again:
its keys take `training`'s edges. A refused value must be named in one problem line with its
key (`arms.0.name` for a list item) and the value; several refusals come in one message.
"""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass, field
from typing import Any

import pytest
from tiny import tiny_config

from collapselab.checks import check_experiment
from collapselab.config import ExperimentConfig, apply_override, config_from_dict
from collapselab.config.loading import block_of
from collapselab.engine import run_experiment
from collapselab.errors import ConfigError, ConfigErrors
from collapselab.rundir.generation import GenerationFolder

QA = {"experiment.task": "qa", "evaluation.metrics": None}
BEAM = {"decoding.method": "beam", "decoding.num_beams": 2, "decoding.top_p": 1.0}
RATIO = {"arms.0.mix": "ratio", "arms.0.ratio": 0.5}
CONTAMINATED = {**QA, "arms.0.data": "contaminated"}
SYNTHETIC = {**QA, "arms.0.data": "synthetic"}
STEP = {"arms.0.schedule": [{"generation": 2, "mix": "accumulate"}]}  # arm 0 mixes by 'replace' until then

# Optional blocks absent from the base config, as they are first filled in for a key under them.
OPTIONAL_BLOCKS: dict[str, dict[str, Any]] = {
    "data.topic": {"mmlu_subject": "high_school_biology"},
    "model.lora": {},
    "evaluation.mmlu": {},
    "sweep": {},
    "tracking": {},
    "tracking.mlflow": {},
    "tracking.wandb": {},
    "hub": {"repo_id": "me/runs"},
    "notify": {"webhook": {}},
    "notify.webhook": {},
    "notify.telegram": {},
    "decoding.contamination": {},
    "decoding.synthesis": {},
    "decoding.generation": {},
}


@dataclass(frozen=True)
class Edge:
    value: Any
    refused: bool
    with_: dict[str, Any] = field(default_factory=dict)  # other keys set first
    names: str | None = None  # the key the problem names, when not this one (a repeated arm name)


def ok(value: Any, **with_: Any) -> Edge:
    return Edge(value, False, _keys(with_))


def bad(value: Any, names: str | None = None, **with_: Any) -> Edge:
    return Edge(value, True, _keys(with_), names)


def _keys(with_: dict[str, Any]) -> dict[str, Any]:
    # keyword arguments spell key paths with `__` for `.`: decoding__method="beam"
    out: dict[str, Any] = {}
    for k, v in with_.items():
        out.update(v if k == "also" else {k.replace("__", "."): v})
    return out


def _role_edges(role: str, used: dict[str, Any]) -> dict[str, list[Edge]]:
    """One decoding role's block and keys; `used`: the keys that give the role an arm to decode for."""
    key = f"decoding.{role}"
    greedy, beam = {**used, f"{key}.method": "greedy"}, {**used, f"{key}.method": "beam"}
    unused = [bad({}, names=key)] if role != "generation" else []  # the loop's role always decodes
    return {
        key: [ok({}, also=used), ok(None), bad([]), *unused],
        f"{key}.method": [ok("greedy", also=used), ok("beam", also={**used, f"{key}.num_beams": 2}),
                          bad("beam", names=f"{key}.num_beams", also=used), bad("nucleus", also=used)],
        f"{key}.temperature": [ok(0.3, also=used), bad(0, also=used), bad(0.5, also=greedy)],
        f"{key}.top_p": [ok(0.9, also=used), bad(1.5, also=used), bad(0.5, also=greedy)],
        f"{key}.top_k": [ok(40, also=used), bad(-1, also=used), bad(5, also=greedy)],
        f"{key}.num_beams": [ok(2, also=beam), bad(2, also=used), bad(0, also=used)],
        f"{key}.repetition_penalty": [ok(1.2, also=used), bad(0, also=used)],
    }


EDGES: dict[str, list[Edge]] = {
    # blocks themselves
    "experiment": [bad(None), bad("x")],
    "data": [bad(None)],
    "model": [ok({})],
    "training": [ok({"seq_len": 32}), bad({}, names="training.seq_len")],  # the default 128 > the base's 64 positions
    "decoding": [ok({}), bad([])],
    "prompts": [ok({})],
    "evaluation": [ok({})],
    "refinery": [ok({})],
    "arms[]": [bad([]), bad(None)],
    "sweep": [ok(None), ok({})],
    "tracking": [ok(None), ok({})],
    "hub": [ok(None), bad({}, names="hub.repo_id")],
    "notify": [ok(None), bad({})],
    "data.topic": [ok(None), ok({"mmlu_subject": "anatomy"})],
    "model.scratch": [ok({}), bad(None)],
    "model.pretrain": [ok({"seq_len": 32}), bad({}, names="model.pretrain.seq_len"), bad(None)],
    "model.lora": [ok(None), ok({})],
    "evaluation.stages": [ok({})],
    "evaluation.mmlu": [ok(None), ok({})],
    "refinery.filters": [ok({})],
    "refinery.success": [ok({})],
    "sweep.resources": [ok({})],
    "tracking.mlflow": [ok(None), ok({})],
    "tracking.wandb": [ok(None), ok({})],
    "notify.webhook": [ok(None, notify__telegram={}), bad(None, names="notify")],  # neither webhook nor telegram
    "notify.telegram": [ok(None), ok({})],
    # experiment
    "experiment.name": [ok("tiny-2.b_c"), bad(""), bad(" "), bad("../../etc"), bad(".."), bad("."), bad("a/b"), bad("a\\b")],
    "experiment.task": [ok("qa", evaluation__metrics=None), bad("mcq"), bad("qa", names="evaluation.metrics.0")],  # the base's lm metrics
    "experiment.generations": [ok(1), ok(50), bad(0), bad(-1), bad("two")],
    "experiment.seeds": [ok([0, 1]), ok([-1]), bad([]), bad([0, 0])],
    "experiment.output_dir": [ok("elsewhere"), bad("")],
    # data
    "data.dataset": [ok("tinystories"), bad("foo"), bad("squad_v2"), bad("mmlu"), ok("squad_v2", also=QA)],
    "data.path": [ok("/somewhere/else"), bad(""), bad(None)],  # jsonl names no folder of its own
    "data.train_size": [ok(2), ok(None), bad(1), bad(0)],
    "data.test_size": [ok(2), ok(None), bad(1), bad(0)],  # 2 blocks of 16 = one perplexity block of 32
    "data.block_tokens": [ok(8), ok(24), bad(7), bad(40)],  # 40 + 40 > 64 positions
    "data.prompt_tokens": [ok(1), ok(16), ok(None), bad(17), bad(0), bad(4, also=QA)],
    "data.split_seed": [ok(-5), ok(2**40), bad("x")],
    "data.topic.mmlu_subject": [ok("anatomy"), bad("astrology"), bad(""), bad("anatomy", names="data.topic", also=QA)],
    "data.topic.articles": [ok(1), bad(0)],
    # model
    "model.name": [ok("scratch"), ok("someone/some-model"), bad(""), bad("someone/some-model", arms__0__init="scratch")],
    "model.kind": [ok("causal"), bad("seq2seq"), bad("encoder")],
    "model.scratch.architecture": [ok("gpt2"), bad("bert")],
    "model.scratch.vocab_size": [ok(258), bad(257), bad(64)],  # 256 bytes + EOS + PAD are always there
    "model.scratch.d_model": [ok(8), ok(34, model__scratch__architecture="gpt2"), bad(7), bad(30), bad(34)],  # 34/2: odd rotary dims
    "model.scratch.n_layers": [ok(1), bad(0)],
    "model.scratch.n_heads": [ok(1), ok(16), bad(0), bad(3), bad(32)],
    "model.scratch.d_ff": [ok(None), ok(1), bad(0)],
    "model.scratch.max_positions": [ok(64), ok(4096), bad(15), bad(31)],  # 31: a training block of 32
    "model.lora.r": [ok(1), bad(0)],
    "model.lora.alpha": [ok(1), bad(0)],
    "model.lora.dropout": [ok(0.0), bad(1.0), bad(-0.1)],
    "model.lora.target_modules": [ok(["q_proj"]), ok("all-linear"), bad([]), bad("")],
    # training (and model.pretrain)
    "training.epochs": [ok(0.0001), ok(100), bad(0), bad(-1)],
    "training.max_steps": [ok(1), ok(None), bad(0)],
    "training.lr": [ok(1.0), ok(1e-9), bad(0), bad(1.5)],
    "training.weight_decay": [ok(0), ok(1), bad(-0.1), bad(2)],
    "training.warmup_ratio": [ok(0), ok(0.99), bad(1), bad(-0.1)],
    "training.batch_tokens": [ok(32), bad(31), bad(15)],  # less than one block of seq_len 32
    "training.grad_accum": [ok(1), ok(8), bad(0)],
    "training.seq_len": [ok(8), ok(64), bad(7), bad(65)],
    "training.max_grad_norm": [ok(0.001), bad(0)],
    "training.compile": [ok(True), bad("maybe")],
    "training.precision": [ok("fp32"), bad("fp16")],
    "training.validation_share": [ok(0.0), bad(0.2), bad(1.0), ok(0.2, also=QA)],  # lm has no validation split
    "training.early_stopping_patience": [ok(None), bad(2), bad(0), bad(2, also=QA), ok(2, also={**QA, "training.validation_share": 0.2})],
    "training.early_stopping_metric": [ok("loss"), bad("f1"), bad("nope", also=QA)],
    "training.early_stopping_min_delta": [ok(0.0), bad(0.1), bad(-1)],
    "training.eval_every": [ok(None), bad(5), bad(0), bad(5, also=QA), ok(5, also={**QA, "training.validation_share": 0.2})],
    "training.loss_weights": [ok("uniform"), bad("bertscore_f1"), bad("x")],
    # decoding
    "decoding.method": [ok("greedy", decoding__top_p=1.0), bad("greedy", names="decoding.top_p"), bad("beam", names="decoding.num_beams"),
                        ok("beam", decoding__num_beams=2, decoding__top_p=1.0), bad("nucleus")],
    "decoding.temperature": [ok(1e-6), ok(5.0), bad(0), bad(-1), bad(0.5, also={"decoding.method": "greedy", "decoding.top_p": 1.0})],
    "decoding.top_p": [ok(1.0), ok(0.01), bad(0), bad(1.5), bad(0.5, also=BEAM)],
    "decoding.top_k": [ok(0), ok(100000), bad(-1), bad(5, also={"decoding.method": "greedy", "decoding.top_p": 1.0})],
    "decoding.num_beams": [ok(1), ok(4, also=BEAM), bad(2), bad(0), bad(1, also={"decoding.method": "beam", "decoding.top_p": 1.0})],
    "decoding.repetition_penalty": [ok(1e-9), ok(3.0), bad(0)],
    "decoding.max_new_tokens": [ok(1), ok(48), ok(None), bad(49), bad(0)],  # 16 + 48 = the 64 positions
    "decoding.batch_tokens": [ok(64), bad(63), bad(64, also={**BEAM, "decoding.num_beams": 4})],  # (16 + 16) x 4 beams
    "decoding.backend": [ok("transformers"), ok("vllm"), bad("tgi")],
    **_role_edges("contamination", CONTAMINATED),
    **_role_edges("synthesis", SYNTHETIC),
    **_role_edges("generation", {}),
    # prompts
    "prompts.format": [ok("chat"), bad("markdown")],
    "prompts.qa_instruction": [ok(""), ok("Reply {unanswerable} when unsure.")],
    "prompts.qg_instruction": [ok("")],
    "prompts.unanswerable": [ok("none"), bad("")],
    # evaluation
    "evaluation.metrics": [ok(None), ok(["perplexity"]), bad([]), bad(["perplexity", "perplexity"]), bad(["f1"]), bad(["nope"])],
    "evaluation.batch_tokens": [ok(64), bad(63), bad(64, model__scratch__max_positions=128, training__seq_len=100)],
    "evaluation.stages.retained": [ok(1.0), bad(0), bad(1.1)],
    "evaluation.stages.chance_margin": [ok(0), bad(1), bad(-0.1)],
    "evaluation.stages.gibberish_floor": [ok(3), bad(3.1), bad(-1)],
    "evaluation.mmlu.subjects": [ok([]), ok(["anatomy"]), bad(["astrology"])],
    "evaluation.mmlu.groups": [ok(["STEM"]), bad(["sports"])],
    "evaluation.mmlu.formats": [ok(["few_shot", "zero_shot"]), bad([]), bad(["zero_shot", "zero_shot"]), bad(["essay"])],
    "evaluation.mmlu.scoring": [ok("generate"), bad("vote")],
    "evaluation.mmlu.per_subject": [ok(None), ok(1), bad(0)],
    "evaluation.mmlu.greedy_check": [ok(True), bad("often")],
    "evaluation.mmlu.batch_tokens": [ok(64), bad(63)],
    "evaluation.mmlu.path": [ok(None), ok("/data/mmlu"), bad("")],
    "evaluation.reference_model": [ok(None), ok("smollm2-135m-instruct"), bad("")],
    "evaluation.gibberish_background": [ok(None), ok("tinystories"), bad("foo"), bad("")],
    "evaluation.reference_sequences": [ok(1), bad(0)],
    # refinery
    "refinery.contamination_share": [ok(0), ok(1), bad(1.1), bad(-0.1)],
    "refinery.expansion_factor": [ok(0.1), bad(0)],
    "refinery.oversample": [ok(1), bad(0.9)],
    "refinery.strategies": [ok(["answer_expansion"]), bad([]), bad(["answer_expansion", "answer_expansion"]), bad(["x"])],
    "refinery.generator_epochs": [ok(0.5), bad(0)],
    "refinery.generator_model": [ok(None), ok("smollm2-135m-instruct", also=CONTAMINATED), bad("smollm2-135m-instruct"),  # no refinery arm
                                 bad("scratch", also=CONTAMINATED), bad("", also=CONTAMINATED)],
    "refinery.generator_fine_tune": [ok(True), ok(False, also=SYNTHETIC), bad(False), bad("maybe")],
    "refinery.max_question_tokens": [ok(4), bad(3)],
    "refinery.max_expansion_words": [ok(1), bad(0)],
    "refinery.filters.order": [ok([]), ok(["gibberish"]), bad(["gibberish", "gibberish"]), bad(["nope"])],
    "refinery.filters.min_question_words": [ok(0), bad(-1), bad(41)],  # above max_question_words 40
    "refinery.filters.max_question_words": [ok(3), bad(0), bad(2)],  # below min_question_words 3
    "refinery.filters.min_answer_words": [ok(0), bad(-1), bad(31)],
    "refinery.filters.max_answer_words": [ok(1), bad(0)],
    "refinery.filters.gibberish_min_score": [ok(0), ok(3), bad(3.1)],
    "refinery.filters.near_duplicate_jaccard": [ok(1), bad(0)],
    "refinery.filters.minhash_num_perm": [ok(8), ok(512), bad(7), bad(513)],
    "refinery.filters.seed_ngram_n": [ok(1), bad(0)],
    "refinery.filters.seed_ngram_max_overlap": [ok(1), bad(0)],
    "refinery.filters.seed_embedding_max_similarity": [ok(1), bad(0)],
    "refinery.success.metric": [ok("has_ans_f1", also=QA), bad("nope", also=QA), bad("perplexity", also=QA)],
    "refinery.success.tolerance": [ok(0), bad(-1)],
    # arms
    "arms[].name": [ok("a.b-c_1"), bad(""), bad(".."), bad("a/b"), bad("accumulate", names="arms.1.name")],
    "arms[].init": [ok("base"), ok("scratch"), bad("scratch", model__name="someone/some-model"), bad("random")],
    "arms[].mix": [ok("accumulate"), ok("ratio", arms__0__ratio=0.5), bad("ratio", names="arms.0.ratio"), bad("blend")],
    "arms[].ratio": [ok(0.0, arms__0__mix="ratio"), ok(1.0, arms__0__mix="ratio"), bad(1.5, arms__0__mix="ratio"),
                     bad(-0.1, arms__0__mix="ratio"), bad(0.5)],  # ratio with mix replace
    "arms[].size": [ok(2, also=RATIO), ok(None, also=RATIO), bad(0, also=RATIO), bad(5)],  # mix replace reads no size
    "arms[].data": [ok("human"), bad("synthetic"), bad("contaminated"), bad("x"), ok("synthetic", also=QA)],
    # the refinery's filters judge question-answer records; those comparing with the human seed are left out in the loop
    "arms[].verify": [ok(False), bad(True), bad(True, names="arms.0.verify", also=QA), bad("sometimes"),
                      ok(True, also={**QA, "refinery.filters.order": ["length_bounds", "answer_in_context", "near_duplicate"]})],
    "arms[].writer": [ok("self"), ok("generator", also=QA), ok("generator", refinery__generator_fine_tune=False),
                      bad("generator"), bad("teacher")],  # lm: no QA formats to fine-tune the generator in
    # a schedule: arm 0 ('replace', 3 generations) changes its mix policy from a generation on
    "arms[].schedule[]": [ok([]), ok([{"generation": 1, "mix": "accumulate"}, {"generation": 2, "mix": "ratio", "ratio": 0.5}]),
                          bad([{"generation": 3, "mix": "accumulate"}], names="arms.0.schedule.0.generation"),  # never reached
                          bad([{"generation": 1, "mix": "replace"}], names="arms.0.schedule.0"),  # changes nothing
                          bad([{"generation": 2, "mix": "accumulate"}, {"generation": 1, "mix": "ratio", "ratio": 0.5}],
                              names="arms.0.schedule.1.generation"),  # out of order
                          bad(None)],
    "arms[].schedule[].generation": [ok(1, also=STEP), ok(2, also=STEP), bad(0, also=STEP), bad(3, also=STEP)],
    "arms[].schedule[].mix": [ok("ratio", also={**STEP, "arms.0.schedule.0.ratio": 0.5}), bad("ratio", names="arms.0.schedule.0.ratio", also=STEP),
                              bad("replace", names="arms.0.schedule.0", also=STEP), bad("blend", also=STEP)],
    "arms[].schedule[].ratio": [ok(0.5, also={**STEP, "arms.0.schedule.0.mix": "ratio"}), bad(1.5, also={**STEP, "arms.0.schedule.0.mix": "ratio"}),
                                bad(0.5, also=STEP)],  # ratio with mix accumulate
    "arms[].schedule[].size": [ok(2, also={**STEP, "arms.0.schedule.0.mix": "ratio", "arms.0.schedule.0.ratio": 0.5}),
                               bad(0, also={**STEP, "arms.0.schedule.0.mix": "ratio", "arms.0.schedule.0.ratio": 0.5}),
                               bad(5, also=STEP)],  # mix accumulate reads no size
    # sweep
    "sweep.name": [ok("grid-1"), ok(None), bad(".."), bad(""), bad("a/b")],
    "sweep.grid": [ok({}), ok({"training.lr": [0.001, 0.002]}), ok({"arms.0.mix": ["ratio"], "arms.0.ratio": [0.1, 0.5]}),  # a valid pair
                   bad({"training.lrr": [1]}, names="sweep.grid: training.lrr=1: unknown key 'training.lrr'"),
                   bad({"training.lr": [0.001, 5]}, names="sweep.grid: training.lr=5: training.lr: Input should be less than or equal to 1"),
                   bad({"training.lr": []}, names="sweep.grid.training.lr: no values")],
    "sweep.resources.cpus": [ok(0.5), bad(0)],
    "sweep.resources.gpus": [ok(0), ok(0.5), bad(-1)],
    "sweep.address": [ok(None), ok("10.0.0.1:6379"), bad("")],
    "sweep.num_cpus": [ok(None), ok(1), bad(0)],
    "sweep.metric": [ok(None), ok("perplexity"), bad("nope"), bad("")],
    # tracking
    "tracking.mlflow.tracking_uri": [ok("sqlite:///x.db"), bad("")],
    "tracking.mlflow.experiment": [ok(None), ok("x"), bad("")],
    "tracking.wandb.project": [ok("p"), bad("")],
    "tracking.wandb.entity": [ok(None), bad("")],
    "tracking.wandb.mode": [ok("online"), bad("cloud")],
    "tracking.wandb.dir": [ok(None), bad("")],
    "tracking.drain_s": [ok(0), bad(-1)],
    # hub
    "hub.repo_id": [ok("me/runs"), ok("runs"), bad(""), bad("a/b/c"), bad("has space")],
    "hub.prefix": [ok(""), ok("{experiment}/{run_id}")],
    "hub.private": [ok(False), bad("sometimes")],
    "hub.endpoint": [ok(None), ok("http://localhost:1"), bad("")],
    "hub.token_env": [ok("MY_TOKEN"), bad(""), bad("1BAD")],
    "hub.retries": [ok(0), bad(-1)],
    "hub.drain_s": [ok(0), bad(-1)],
    # notify
    "notify.webhook.url": [ok(None), ok("http://x"), bad("")],
    "notify.telegram.token_env": [ok("T"), bad("")],
    "notify.telegram.chat_id_env": [ok("C"), bad("bad name")],
    "notify.telegram.api_url": [ok("http://x"), bad("")],
    "notify.events": [ok(["run_finished"]), bad([]), bad(["started"])],
    "notify.max_messages": [ok(1), bad(0)],
    "notify.metrics": [ok(None), ok(["perplexity"]), bad(["nope"])],
    "notify.timeout_s": [ok(0.1), bad(0)],
    "notify.retries": [ok(0), bad(-1)],
    "notify.drain_s": [ok(0), bad(-1)],
}


def reference_keys() -> list[str]:
    """Every key the config models have, as the config reference lists them (`arms[].name`),
    under every block that holds them (`training.lr` and `model.pretrain.lr`)."""
    keys: list[str] = []

    def walk(prefix: str, cls: type) -> None:
        for name, f in cls.model_fields.items():
            path = f"{prefix}{name}" + ("[]" if typing.get_origin(f.annotation) is list and block_of(f.annotation) else "")
            keys.append(path)
            sub = block_of(f.annotation)
            if sub is not None:
                walk(path + ".", sub)

    walk("", ExperimentConfig)
    return keys


def cases() -> list[tuple[str, Edge]]:
    out = [(key, edge) for key, edges in EDGES.items() for edge in edges]
    # model.pretrain is a training recipe: training's edges, under its own key
    out += [("model.pretrain." + key.removeprefix("training."), _as_pretrain(edge)) for key, edge in out if key.startswith("training.")]
    return out


def _as_pretrain(edge: Edge) -> Edge:
    pretrain = {k.replace("training.", "model.pretrain.", 1) if k.startswith("training.") else k: v for k, v in edge.with_.items()}
    return Edge(edge.value, edge.refused, pretrain, edge.names)


def base() -> dict[str, Any]:
    return tiny_config("/data/tiny", "/runs")  # a valid lm config; nothing here reads its folders


def with_value(cfg: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """`cfg` with `value` at `key` (`arms[]` and `arms[].x` set the first arm), optional blocks
    above it filled in first."""
    parts = key.replace("[]", ".0").split(".")
    if key.endswith("[]"):  # a list key sets the whole list
        parts = parts[:-1]
    for i in range(1, len(parts)):
        above = ".".join(parts[:i])
        node = cfg
        for p in parts[: i - 1]:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if above in OPTIONAL_BLOCKS and not isinstance(node, list) and node.get(parts[i - 1]) is None:
            node[parts[i - 1]] = copy.deepcopy(OPTIONAL_BLOCKS[above])
    apply_override(cfg, parts, copy.deepcopy(value))
    return cfg


def problems_of(cfg: dict[str, Any]) -> list[str]:
    """What `collapselab config validate` refuses (and, with the model's positions known,
    the engine before any run directory): one line per problem."""
    try:
        loaded = config_from_dict(cfg, source="x.yaml")
    except ConfigErrors as e:
        return e.problems
    except ConfigError as e:
        return [str(e)]
    try:
        check_experiment(loaded, max_positions=loaded.model.scratch.max_positions)
    except ConfigErrors as e:
        return e.problems
    return []


def test_every_key_has_edge_values():
    keys = reference_keys()
    covered = {key for key, _ in cases()}
    missing = [k for k in keys if k not in covered]
    assert not missing, f"config keys without edge values in EDGES: {missing}"
    assert covered <= set(keys), f"EDGES names keys the models do not have: {sorted(covered - set(keys))}"
    assert len(keys) > 150  # the walk reaches every block


def test_the_base_config_is_accepted():
    assert problems_of(base()) == []


@pytest.mark.parametrize(("key", "edge"), cases(), ids=[f"{k}={e.value!r}" + ("+" if e.with_ else "") for k, e in cases()])
def test_edge_value_is_refused_naming_key_and_value_or_accepted(key, edge):
    cfg = base()
    for other, value in edge.with_.items():
        with_value(cfg, other, value)
    problems = problems_of(with_value(cfg, key, edge.value))
    if not edge.refused:
        assert problems == [], f"{key}={edge.value!r} was refused: {problems}"
        return
    if edge.names is not None:  # a check between two keys, named by the other one
        assert any(edge.names in p for p in problems), f"{key}={edge.value!r}: no problem names {edge.names!r}; got {problems}"
        return
    named = key.replace("[]", ".0").removesuffix(".0")
    shown = {repr(edge.value), str(edge.value)} if not isinstance(edge.value, dict) else {named}  # a block: its key says it
    if isinstance(edge.value, list):  # a list's problem may name its item (`evaluation.metrics.1: 'f1' ...`)
        shown |= {repr(v) for v in edge.value}
    lines = [p for p in problems if named in p and any(s in p for s in shown)]
    assert lines, f"{key}={edge.value!r}: no problem names {named!r} and the value; got {problems}"


def test_all_problems_come_at_once():
    cfg = base()
    for key, value in (("training.lr", 5), ("data.block_tokens", 4), ("arms.1.name", "../x")):
        with_value(cfg, key, value)
    assert len(problems_of(cfg)) == 3  # the schema's, in one message
    cfg = base()
    for key, value in (("model.scratch.n_heads", 3), ("experiment.seeds", [1, 1]), ("decoding.batch_tokens", 64),
                       ("decoding.max_new_tokens", 48), ("arms.0.size", 4), ("data.test_size", 1)):
        with_value(cfg, key, value)
    found = problems_of(cfg)
    assert [p.split(":")[0] for p in found] == ["experiment.seeds", "data.test_size", "model.scratch.n_heads", "arms.0.size"], found


# ---- accepted edges run: a tiny run of each set, generation folders finished


RUNS = {
    "sampling": {
        "experiment.generations": 2, "experiment.seeds": [-1], "data.train_size": 2, "data.test_size": 2, "data.block_tokens": 16,
        "data.prompt_tokens": 1, "model.scratch.vocab_size": 258, "model.scratch.d_model": 8, "model.scratch.n_heads": 2,
        "model.scratch.d_ff": 1, "model.pretrain.epochs": 0.0001, "model.pretrain.batch_tokens": 32, "training.epochs": 0.0001,
        "training.warmup_ratio": 0.99, "training.batch_tokens": 32, "decoding.temperature": 1e-6, "decoding.top_k": 100000,
        "decoding.repetition_penalty": 1e-9, "decoding.max_new_tokens": 1, "decoding.batch_tokens": 64,
        "evaluation.metrics": ["perplexity", "self_bleu", "distinct_2"], "evaluation.batch_tokens": 64,
        "arms": [{"name": "r0", "mix": "ratio", "ratio": 0.0, "size": 2}, {"name": "r1", "mix": "ratio", "ratio": 1.0}],
    },
    "beam": {
        "experiment.generations": 2, "data.train_size": 3, "data.block_tokens": 8, "model.scratch.architecture": "gpt2",
        "model.scratch.n_heads": 1, "model.scratch.n_layers": 1, "model.scratch.max_positions": 16, "training.seq_len": 16,
        "model.pretrain.seq_len": 8, "model.pretrain.max_steps": 1, "training.max_steps": 1, "training.grad_accum": 8,
        "decoding.method": "beam", "decoding.num_beams": 2, "decoding.top_p": 1.0, "decoding.max_new_tokens": 8,
        "decoding.repetition_penalty": 3.0, "decoding.batch_tokens": 64,
        "arms": [{"name": "sub", "mix": "accumulate_subsample", "size": 2}],
    },
}


@pytest.mark.parametrize("name", RUNS)
def test_accepted_edges_run(name, tiny_lm_data, tmp_path):
    cfg = tiny_config(tiny_lm_data, tmp_path / "runs")
    for key, value in RUNS[name].items():
        with_value(cfg, key, value)
    cfg["evaluation"]["gibberish_background"] = None  # no wikitext2 in a unit test
    run_dir = run_experiment(config_from_dict(cfg))
    loaded = config_from_dict(cfg)
    for arm in loaded.arms:
        for g in range(loaded.experiment.generations):
            for seed in loaded.experiment.seeds:
                folder = GenerationFolder(run_dir, arm.name, seed, g)
                assert folder.is_done(), folder.path
                values = folder.read_metrics().values()
                assert values["perplexity"] is not None and values["perplexity"] > 0
