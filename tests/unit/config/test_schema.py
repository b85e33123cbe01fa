import copy
from pathlib import Path

import pytest
from tiny import tiny_config, write_config

from collapselab.checks import check_experiment, config_problems
from collapselab.config import ConfigError, config_from_dict, dump_config, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs").glob("*.yaml"))


def test_configs_folder_is_not_empty():
    names = {p.stem for p in CONFIGS}
    assert {"quickstart", "squad-selfplag", "shumailov-wikitext2", "gerstgrasser-tinystories", "kc-wikitext2-ratio"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_validates(path):
    from collapselab.learner.config import (
        is_learner_config,
        learner_config_from_dict,
        load_learner_config,
    )

    if is_learner_config(__import__("yaml").safe_load(path.read_text())):  # configs/learn-*.yaml
        learner = load_learner_config(path)
        assert learner_config_from_dict(learner.model_dump(mode="json")) == learner
        return
    cfg = load_config(path)
    assert config_problems(cfg) == []  # also against the tasks, metrics and models
    # show -> load again gives the same resolved config
    again = config_from_dict(__import__("yaml").safe_load(dump_config(cfg)))
    assert again.config_hash() == cfg.config_hash()


def test_quickstart_is_what_the_issue_asks_for():
    cfg = load_config(CONFIGS[[p.stem for p in CONFIGS].index("quickstart")])
    assert cfg.experiment.task == "lm" and cfg.experiment.generations >= 4
    assert cfg.data.dataset in ("wikitext2", "tinystories") and cfg.model.name == "scratch"
    assert {(a.mix, a.ratio) for a in cfg.arms} == {("replace", None), ("accumulate", None), ("ratio", 0.1)}


def test_unknown_key_is_named(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path)
    cfg["training"]["learning_rate"] = 0.1
    with pytest.raises(ConfigError, match=r"unknown key 'training.learning_rate'"):
        config_from_dict(cfg, source="x.yaml")


def test_mistyped_value_names_key_and_value(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path)
    cfg["experiment"]["generations"] = "many"
    with pytest.raises(ConfigError, match=r"experiment.generations: .*'many'"):
        config_from_dict(cfg, source="x.yaml")


def test_cross_field_check_names_arm_key(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path)
    cfg["arms"][1] = {"name": "r", "mix": "ratio"}
    with pytest.raises(ConfigError, match=r"arms.1.ratio: required"):
        config_from_dict(cfg)


def test_overrides_take_precedence_and_reach_list_items(tmp_path):
    path = write_config(tiny_config(tmp_path, tmp_path), tmp_path / "c.yaml")
    cfg = load_config(path, ["experiment.generations=7", "arms.1.mix=accumulate_subsample", "decoding.top_k=5"])
    assert cfg.experiment.generations == 7 and cfg.arms[1].mix == "accumulate_subsample" and cfg.decoding.top_k == 5
    with pytest.raises(ConfigError, match=r"arms.5"):
        load_config(path, ["arms.5.mix=replace"])
    with pytest.raises(ConfigError, match=r"expected key.path=value"):
        load_config(path, ["generations"])


def test_config_hash_ignores_key_order_but_not_values(tmp_path):
    a = tiny_config(tmp_path, tmp_path)
    b = copy.deepcopy(dict(reversed(list(a.items()))))
    assert config_from_dict(a).config_hash() == config_from_dict(b).config_hash()
    a["training"]["lr"] = 0.002
    assert config_from_dict(a).config_hash() != config_from_dict(b).config_hash()


def test_scratch_positions_must_fit_prompt_and_continuation(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path)
    cfg["data"]["block_tokens"] = 48
    loaded = config_from_dict(cfg)  # the schema knows no task: the lm task's continuation length is checked above it
    with pytest.raises(ConfigError, match=r"model.scratch.max_positions: 64 is shorter than a prompt plus its continuation \(96 tokens: data.block_tokens 48 \+ data.block_tokens 48\)"):
        check_experiment(loaded)


def _shipped(stem: str):
    return load_config(CONFIGS[[p.stem for p in CONFIGS].index(stem)])


def test_smollm2_qa_configs_are_what_issue_10_asks_for():
    from collapselab.metrics import get_metric

    selfplag = _shipped("selfplag-smollm2")
    assert selfplag.model.name == "smollm2-135m-instruct" and selfplag.model.lora is not None
    assert selfplag.data.dataset == "squad_v2" and selfplag.experiment.generations >= 3
    assert [(a.init, a.mix, a.data) for a in selfplag.arms] == [("previous", "replace", "human")]
    assert {"has_ans_f1", "no_ans_accuracy", "answer_length", "synthetic_success_rate"} <= set(selfplag.evaluation.metrics)
    for stem, dataset in (("refinery-squad-smollm2", "squad_v2"), ("refinery-cosmosqa-smollm2", "cosmosqa")):
        cfg = _shipped(stem)
        assert cfg.model.name == "smollm2-135m-instruct" and cfg.data.dataset == dataset
        assert sorted(a.data for a in cfg.arms) == ["contaminated", "human", "synthetic"]
        assert len(cfg.experiment.seeds) >= 2
        assert cfg.refinery.success.metric in cfg.evaluation.metrics  # the criteria's metric is computed
    # SQuAD v2: judged on HasAns F1, never overall F1 (all-"no answer" scores ~50)
    assert _shipped("refinery-squad-smollm2").refinery.success.metric == "has_ans_f1"
    for stem in ("selfplag-smollm2", "refinery-squad-smollm2", "refinery-cosmosqa-smollm2"):
        for name in _shipped(stem).evaluation.metrics:
            assert get_metric(name).task in ("qa", "any"), (stem, name)


def test_smollm2_lm_configs_are_what_issue_10_asks_for():
    from collapselab.metrics import get_metric

    shumailov = _shipped("shumailov-smollm2")
    assert shumailov.model.name == "smollm2-135m-instruct" and shumailov.data.dataset == "wikitext2"
    assert shumailov.data.block_tokens == 64 and shumailov.decoding.method == "beam" and shumailov.decoding.num_beams == 5
    assert shumailov.decoding.repetition_penalty > 1
    assert {(a.init, a.mix, a.ratio) for a in shumailov.arms} == {("base", "replace", None), ("base", "ratio", 0.9)}
    kc, domain = _shipped("kc-smollm2"), _shipped("kc-smollm2-domain")
    for cfg in (kc, domain):
        assert cfg.model.name == "smollm2-135m-instruct" and cfg.data.dataset == "wikitext2"
        assert [(a.mix, a.ratio) for a in cfg.arms] == [("ratio", 0.5)]
        assert {"perplexity", "entropy", "gibberish_score"} <= set(cfg.evaluation.metrics)
        assert cfg.evaluation.mmlu is not None and cfg.evaluation.mmlu.subjects
    for cfg in (shumailov, kc, domain):
        for name in cfg.evaluation.metrics:
            assert get_metric(name).task in ("lm", "any"), name
    assert kc.data.topic is None and 2 <= len(kc.evaluation.mmlu.subjects) <= 6
    assert domain.data.topic is not None and domain.evaluation.mmlu.subjects == [domain.data.topic.mmlu_subject]


def test_the_designs_configs_are_what_issue_27_asks_for():
    gemma, plain = _shipped("refinery-squad-gemma-smollm2"), _shipped("refinery-squad-smollm2")
    assert (gemma.refinery.generator_model, gemma.model.name) == ("gemma-3-270m", "smollm2-135m-instruct")
    assert sorted(a.data for a in gemma.arms) == ["contaminated", "human", "synthetic"]
    # otherwise the self-written experiment: same data, recipe and criteria
    assert (gemma.data, gemma.training, gemma.refinery.success) == (plain.data, plain.training, plain.refinery.success)
    for stem in ("refinery-cosmosqa", "refinery-cosmosqa-smollm2"):  # the CosmosQA report template's temperatures
        dec = _shipped(stem).decoding
        assert (dec.for_role("contamination").temperature, dec.for_role("synthesis").temperature) == (0.3, 0.7)
    selfplag = _shipped("selfplag-smollm2").training
    assert selfplag.loss_weights == "bertscore_f1" and selfplag.validation_share > 0 and selfplag.early_stopping_patience
    recovery = _shipped("recovery-quickstart")
    assert recovery.model == _shipped("quickstart").model  # the quickstart's model, so its cached base
    recover = next(a for a in recovery.arms if a.schedule)
    assert [recover.at_generation(g).mix for g in range(recovery.experiment.generations)] == ["replace"] * 5 + ["accumulate"] * 2
