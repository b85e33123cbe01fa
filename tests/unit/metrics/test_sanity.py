"""Sanity metrics make a broken synthetic set visible; the gibberish scorer separates its levels."""

from __future__ import annotations

import random
import re

import pytest

from collapselab.metrics import EvalInputs, evaluate
from collapselab.metrics.sanity import non_ascii_share, sanity_report
from collapselab.records import Record

SUBJECTS = "the old farmer|a young girl|the small dog|my neighbour|the village teacher|a tired soldier".split("|")
VERBS = "walked to|looked at|talked about|ran towards|painted|cleaned".split("|")
OBJECTS = "the river|a red barn|the market square|an empty house|the green field|a broken fence".split("|")
ENDINGS = "in the morning|after the storm|before dinner|with great care|for a long time|without a word".split("|")


def grammar_text(rng: random.Random, sentences: int = 4) -> str:
    """English-like text from a tiny grammar: real words in a sensible order."""
    return " ".join(f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
                    f"{rng.choice(ENDINGS)}." for _ in range(sentences))


def _synthetic(texts):
    return [Record(id=f"s{i}", source="synthetic", generation=1, text=t) for i, t in enumerate(texts)]


def test_one_garbage_string_filling_half_the_set_is_visible():
    rng = random.Random(0)
    texts = [grammar_text(rng) for _ in range(50)] + ["@@ ### garbage ### @@"] * 50
    test = [Record(id="h", text=grammar_text(rng))]
    out = evaluate(["top_output_share", "duplicate_rate", "empty_rate"],
                   EvalInputs(task="lm", test=test, synthetic=_synthetic(texts)))
    assert out["top_output_share"].value == pytest.approx(0.5)
    assert out["top_output_share"].details["top_output"] == "@@ ### garbage ### @@"
    assert out["duplicate_rate"].value == pytest.approx(49 / 100)  # 49 repeats of the first garbage copy
    assert sum(out["duplicate_rate"].per_example) == 49
    assert out["empty_rate"].value == 0.0


def test_sanity_report_by_hand():
    r = sanity_report(["abc", "", "  ", "é!"], gibberish_scores=[3.0, 0.0, 0.0, 1.0])
    assert r["empty_rate"] == pytest.approx(0.5)
    assert r["non_ascii_rate"] == pytest.approx(1 / 7)  # one non-ASCII of 3 + 0 + 2 + 2 characters
    assert r["gibberish_rate"] == pytest.approx(0.75) and r["gibberish_score_mean"] == pytest.approx(1.0)
    assert non_ascii_share("ab€€") == 0.5


def test_registered_gibberish_metrics_fit_on_the_pool_and_calibrate_on_the_test_set():
    rng = random.Random(4)
    human_train = [Record(id=f"h{i}", text=grammar_text(rng, 10)) for i in range(100)]
    test = [Record(id=f"t{i}", text=grammar_text(rng)) for i in range(40)]
    texts = [grammar_text(rng) for _ in range(10)] + ["xq zvv kkpw qqz"] * 10
    out = evaluate(["gibberish_rate", "gibberish_score"],
                   EvalInputs(task="lm", test=test, synthetic=_synthetic(texts), human_train=human_train))
    assert out["gibberish_rate"].value == pytest.approx(0.5)
    assert out["gibberish_rate"].per_example == [0.0] * 10 + [1.0] * 10
    calibration = out["gibberish_score"].details["calibration_means"]
    assert list(calibration) == ["human", "misspelt 5 %", "misspelt 15 %", "misspelt 30 %", "word salad", "random characters"]
    assert calibration["human"] > calibration["misspelt 5 %"] > calibration["random characters"]


def test_background_text_makes_words_outside_the_pool_real_words():
    # The pool never says "lighthouse keeper"; general text of the language does. With it as
    # background, a fluent sentence about one is not read as misspelt.
    rng = random.Random(5)
    human_train = [Record(id=f"h{i}", text=grammar_text(rng, 10)) for i in range(100)]
    test = [Record(id=f"t{i}", text=grammar_text(rng)) for i in range(40)]
    background = [f"The lighthouse keeper polished the brass lantern {e}." for e in ENDINGS] * 20
    texts = ["The old farmer talked about the lighthouse keeper and the brass lantern before dinner."]

    def score(**kw):
        return evaluate(["gibberish_score"], EvalInputs(task="lm", test=test, synthetic=_synthetic(texts), human_train=human_train,
                                                        **kw))["gibberish_score"].value

    assert score(background_texts=background) > score() + 0.3


def _wikitext(root, lines):
    folder = root / "wikitext2"
    folder.mkdir(parents=True)
    (folder / "wiki.train.raw").write_text(" \n = Lighthouses = \n \n" + "".join(f" {line} \n" for line in lines), encoding="utf-8")
    (folder / "wiki.test.raw").write_text(" \n = Test = \n \n The test paragraph has some words in it . \n", encoding="utf-8")


def test_run_background_is_read_only_for_gibberish_metrics_and_a_missing_one_names_its_key(tmp_path, monkeypatch):
    from collapselab.config import config_from_dict
    from collapselab.datasets import DatasetError
    from collapselab.metrics.sanity import gibberish_background
    from collapselab.tasks import get_task

    lm = get_task("lm")
    raw = {"experiment": {"name": "bg", "task": "lm"}, "data": {"dataset": "tinystories"}, "model": {"name": "scratch"},
           "arms": [{"name": "replace"}]}
    monkeypatch.setenv("COLLAPSELAB_DATA", str(tmp_path))
    with pytest.raises(DatasetError, match=r"^evaluation.gibberish_background: .*wikitext2"):
        gibberish_background(config_from_dict(raw), lm)  # the lm defaults score gibberish
    assert gibberish_background(config_from_dict({**raw, "evaluation": {"metrics": ["perplexity"]}}), lm) == []
    assert gibberish_background(config_from_dict({**raw, "evaluation": {"gibberish_background": None}}), lm) == []
    _wikitext(tmp_path, ["The keeper lit the lamp at dusk every night .", "Too short ."])
    assert gibberish_background(config_from_dict(raw), lm) == ["The keeper lit the lamp at dusk every night ."]


def _qa(rng: random.Random, i: int, answer: str | None = None, **kw) -> Record:
    """A SQuAD-like record: a question about a sentence of its context, a one- or two-word answer."""
    who, verb, what, when = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(ENDINGS)
    return Record(id=f"q{i}", context=f"{who.capitalize()} {verb} {what} {when}. {grammar_text(rng, 3)}",
                  question=f"Where did {who} go {when}?", answers=(what if answer is None else answer,) if answer != "" else (), **kw)


def test_qa_records_are_scored_as_question_and_answer():
    # One- or two-word answers alone cannot calibrate the levels (refinery-squad failed with
    # "misspelt 30 % vs word salad not separated"); a question with its answer can.
    from collapselab.metrics.gibberish import CalibrationError, cached_gibberish_scorer

    rng = random.Random(6)
    human_train = [_qa(rng, i) for i in range(120)]
    test = [_qa(rng, i) for i in range(40)]
    with pytest.raises(CalibrationError, match="too short"):
        cached_gibberish_scorer([r.answers[0] for r in human_train], heldout_texts=[r.answers[0] for r in test])
    good = [_qa(rng, i, source="synthetic", generation=0) for i in range(10)]
    garbage = [_qa(rng, i, "qxz vkkp wzzq jjv qqxb zvv", source="synthetic", generation=0) for i in range(10)]
    no_answer = [_qa(rng, i, "", source="synthetic", generation=0) for i in range(5)]  # SQuAD v2's "no answer"
    out = evaluate(["gibberish_score"], EvalInputs(task="qa", test=test, synthetic=good + garbage + no_answer, human_train=human_train))
    per = out["gibberish_score"].per_example
    calibration = list(out["gibberish_score"].details["calibration_means"].values())
    assert all(a > b for a, b in zip(calibration, calibration[1:], strict=False)), calibration
    assert min(per[:10]) > max(per[10:20]) + 0.5
    assert min(per[20:]) > 2.0  # an abstention is not gibberish (the empty answer alone scored 0)


def test_gibberish_metrics_its_data_cannot_calibrate_are_refused_naming_them():
    from collapselab.config import config_from_dict
    from collapselab.metrics.sanity import gibberish_problems
    from collapselab.tasks import get_task

    raw = {"experiment": {"name": "g", "task": "lm"}, "data": {"dataset": "tinystories"}, "model": {"name": "scratch"},
           "arms": [{"name": "replace"}], "evaluation": {"gibberish_background": None}}
    rng = random.Random(7)
    few = [Record(id=f"h{i}", text=grammar_text(rng)) for i in range(3)]
    [problem] = gibberish_problems(config_from_dict(raw), get_task("lm"), few, few, [])
    assert re.match(r"^evaluation.metrics \(the lm defaults\): gibberish_score and gibberish_rate cannot be "
                    r"computed on this run's data: .*at least 5 human texts", problem), problem
    without = config_from_dict({**raw, "evaluation": {"metrics": ["perplexity"], "gibberish_background": None}})
    assert gibberish_problems(without, get_task("lm"), few, few, []) == []  # not computed: nothing to check
