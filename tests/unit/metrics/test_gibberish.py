"""The gibberish scorer orders graded corruptions of held-out text, scores a text the same
alone and in a batch, round-trips through its cache, and says when it cannot calibrate."""

from __future__ import annotations

import random

import numpy as np
import pytest

from collapselab.metrics.corruption import graded_sets, misspell, misspell_words
from collapselab.metrics.gibberish import (
    LEVELS,
    VERSION,
    CalibrationError,
    GibberishScorer,
    cached_gibberish_scorer,
    fit_gibberish_scorer,
)

SUBJECTS = ("the old farmer|a young girl|the small dog|my neighbour|the village teacher|a tired soldier|"
            "the baker|her brother|the mayor|a quiet student").split("|")
VERBS = ("walked to|looked at|talked about|ran towards|painted|cleaned|visited|remembered|carried water to|"
         "sang near").split("|")
OBJECTS = ("the river|a red barn|the market square|an empty house|the green field|a broken fence|the church|"
           "the station|a narrow bridge|the bakery").split("|")
ENDINGS = ("in the morning|after the storm|before dinner|with great care|for a long time|without a word|"
           "every Sunday|at night|in the rain|before the harvest").split("|")


def grammar_text(rng: random.Random, sentences: int = 4) -> str:
    """English-like text from a small grammar: real words in a sensible order."""
    return " ".join(f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} "
                    f"{rng.choice(ENDINGS)}." for _ in range(sentences))


@pytest.fixture(scope="module")
def scorer():
    rng = random.Random(1)
    return fit_gibberish_scorer([grammar_text(rng, 20) for _ in range(300)], [grammar_text(rng) for _ in range(150)])


def test_graded_sets_of_held_out_text_are_strictly_ordered(scorer):
    rng = random.Random(2)
    held_out = [grammar_text(rng) for _ in range(150)]
    means = {name: float(np.mean(scorer.scores(texts)))
             for name, texts in graded_sets(held_out, list(scorer.alphabet), None, seed=3).items()}
    assert list(means) == list(LEVELS)
    values = list(means.values())
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), means
    assert means["human"] >= 2.7 and means["random characters"] <= 0.1
    # each level's texts score near the level they are calibrated to
    for name, level in LEVELS.items():
        assert abs(means[name] - level) < 0.35, (name, means[name])


def test_a_text_scores_the_same_alone_and_in_any_batch(scorer):
    rng = random.Random(4)
    texts = [grammar_text(rng, 2) for _ in range(5)] + ["", "   ", "?!", "qq zx", "İstanbul Ünal 1996", "Anna Anna Anna lives",
                                                        "the", misspell_words(grammar_text(rng), 0.3, rng)]
    batch = scorer.scores(texts)
    alone = [scorer.score(t) for t in texts]
    reversed_batch = scorer.scores(texts[::-1])[::-1]
    assert np.allclose(batch, alone, atol=1e-12) and np.allclose(batch, reversed_batch, atol=1e-12)
    assert scorer.score("") == 0.0 and scorer.score("   ") == 0.0
    assert ((batch >= 0) & (batch <= 3)).all()


def test_misspelling_changes_every_chosen_word_and_keeps_its_punctuation():
    rng = random.Random(5)
    for word in ["river,", "(a)", "Harvest.", "to", "x", "bookkeeper"]:
        out = misspell(word, rng)
        assert out.lower() != word.lower()
        assert out[-1] == word[-1] if not word[-1].isalpha() else True
    assert misspell("1996", rng) == "1996"  # no letter: nothing to misspell
    text = " ".join(["word"] * 40)
    shares = [sum(w != "word" for w in misspell_words(text, 0.15, rng).split()) / 40 for _ in range(400)]
    assert np.mean(shares) == pytest.approx(0.15, abs=0.01)  # exact on average (randomised rounding)


def test_unknown_words_repeated_in_the_text_or_capitalised_inside_a_sentence_count_as_words(scorer):
    validity = scorer.statistics(["The farmer looked at Zorbulat in the rain.", "The farmer looked at zorbulat in the rain.",
                                  "The zorbulat visited the zorbulat.", "Zorbulat walked to the river."])[:, 1]
    assert validity[0] == 1.0  # a name inside a sentence
    assert validity[1] == pytest.approx(7 / 8)  # a lower-case unknown word once
    assert validity[2] == 1.0  # repeated: a term the text is about
    assert validity[3] == pytest.approx(4 / 5)  # capitalised at the start of a sentence proves nothing


def test_scorer_round_trips_and_is_cached(scorer, tmp_path, monkeypatch):
    scorer.save(tmp_path / "g.npz")
    again = GibberishScorer.load(tmp_path / "g.npz")
    text = "The old farmer looked at the river before dinner."
    assert again.score(text) == pytest.approx(scorer.score(text))
    assert again.calibration_means() == pytest.approx(scorer.calibration_means())
    assert int(again.pair_min_count) == int(scorer.pair_min_count)
    rng = random.Random(3)
    corpus = [grammar_text(rng) for _ in range(80)]
    monkeypatch.setenv("COLLAPSELAB_CACHE", str(tmp_path / "cache"))
    first = cached_gibberish_scorer(corpus)
    assert len(list((tmp_path / "cache" / "gibberish").glob(f"v{VERSION}-*.npz"))) == 1
    assert cached_gibberish_scorer(corpus).score(text) == pytest.approx(first.score(text))


def test_too_little_human_text_is_an_error_that_says_what_to_do():
    with pytest.raises(ValueError, match=r"too few or too short to calibrate.*evaluation.metrics"):
        fit_gibberish_scorer(["the cat sat on a mat today"], ["a dog ran in the park now"])


def test_one_or_two_word_held_out_texts_are_refused_as_too_short_not_a_numeric_failure():
    # SQuAD answers: a one-word text is its own word salad and 5 % misspelling leaves it
    # whole, so the levels cannot be told apart (refinery-squad); and the random characters
    # of a two-character answer can be blank, which had no statistics and broke the least
    # squares fit ("SVD did not converge", squad-selfplag).
    rng = random.Random(8)
    train = [grammar_text(rng, 20) for _ in range(300)]
    answers = [rng.choice([*SUBJECTS, *OBJECTS, "42", "90", "7", "1066", "Paris", "farmer"]) for _ in range(150)]
    with pytest.raises(CalibrationError, match=r"150 held-out texts of 2 words \(median\) are too few or too short to calibrate"):
        fit_gibberish_scorer(train, answers)


def test_word_order_is_judged_on_pairs_of_frequent_words_only():
    # A pair of rare words is unseen whether or not it is in order, so it is no evidence of
    # order: reversing it changes nothing, reversing frequent neighbours does.
    rng = random.Random(6)
    fit = [grammar_text(rng, 20) for _ in range(300)] + ["The mayor saw a zebra quagga."] * 3
    scorer = fit_gibberish_scorer(fit, [grammar_text(rng) for _ in range(150)])
    assert int(scorer.pair_min_count) == 10
    base = "The baker painted the river in the rain and the mayor saw a"
    order = scorer.statistics([f"{base} zebra quagga.", f"{base} quagga zebra.",
                               "The baker painted the river in the rain.", "Baker the painted river the in rain the."])[:, 2]
    assert order[0] == pytest.approx(order[1])
    assert order[2] > order[3] + 1.0


def test_a_small_fitting_text_falls_back_to_pairs_of_rarer_words():
    # 10 short texts: no content word is seen 10 times, so the rule relaxes until the
    # graded sets come out in order instead of failing to calibrate.
    rng = random.Random(7)
    small = fit_gibberish_scorer([grammar_text(rng, 1) for _ in range(10)], [grammar_text(rng) for _ in range(30)])
    assert int(small.pair_min_count) < 10
    means = list(small.calibration_means().values())
    assert all(a > b for a, b in zip(means, means[1:], strict=False)), small.calibration_means()
