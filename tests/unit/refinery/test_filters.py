"""Every filter on crafted records with known verdicts (one test per reason code, plus
pass-through), the pipeline's order and statistics, and the fast paths' agreement with
the reference implementations (datasketch MinHash, GibberishScorer, normalize_answer)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from collapselab.config.refinery import FiltersConfig, RefineryConfig
from collapselab.records import Record
from collapselab.refinery import filters as F
from collapselab.refinery.pipeline import rejection_of, run_filters

from .qa_fixtures import qa_record

SEED = [Record(id=f"seed-{i}", **{k: v for k, v in qa_record(i, random.Random(i), "s").items() if k != "id"})
        for i in range(30)]
SEED = [r.derive(answers=tuple(r.answers)) for r in SEED]
CONTEXT = "Anna lives in Paris with a black cat. Anna works as a teacher in the old town."


def cand(i: int, question: str, answer: str = "Paris", context: str = CONTEXT) -> Record:
    return Record(id=f"c{i}", source="synthetic", generation=0, context=context, question=question, answers=(answer,) if answer else ())


def verdicts(name: str, records: list[Record], **cfg) -> list[F.Rejection | None]:
    return F.FILTERS[name](records, F.FilterContext(SEED, FiltersConfig(**cfg)))


def test_length_bounds_too_short_and_too_long():
    out = verdicts("length_bounds", [cand(0, "Where?"), cand(1, " ".join(["word"] * 41) + "?"),
                                     cand(2, "Where does Anna live?", " ".join(["x"] * 31)), cand(3, "Where does Anna live?")])
    assert [(v.reason, v.detail) if v else None for v in out] == [
        (F.TOO_SHORT, "question"), (F.TOO_LONG, "question"), (F.TOO_LONG, "answer"), None]
    assert out[0].value == 1 and out[0].threshold == 3


def test_answer_not_in_context_and_no_answer_passes():
    out = verdicts("answer_in_context", [cand(0, "Where does Anna live?", "London"), cand(1, "Where does Anna live?", "the PARIS!"),
                                         cand(2, "Who is Bob?", "")])
    assert [v.reason if v else None for v in out] == [F.ANSWER_NOT_IN_CONTEXT, None, None]


def test_gibberish_rejects_random_characters_and_keeps_fluent_text():
    fluent = SEED[0].question
    out = verdicts("gibberish", [cand(0, "xq zzkv qwpt jjyx vvbq", "kkqz"), cand(1, fluent, SEED[0].answers[0] if SEED[0].answers else "")])
    assert out[0] is not None and out[0].reason == F.GIBBERISH and out[0].value < 1.5
    assert out[1] is None


def test_exact_duplicate_of_seed_and_of_earlier_candidate():
    s = SEED[0]
    copy = s.derive(id="copy", source="synthetic", question=s.question.upper() + " ", context=s.context.replace(".", " ."))
    out = verdicts("exact_duplicate", [copy, cand(1, "Where does Anna live?"), cand(2, "where does anna live"), cand(3, "Who is Anna?")])
    assert [v.reason if v else None for v in out] == [F.EXACT_DUPLICATE, None, F.EXACT_DUPLICATE, None]
    assert out[0].detail == s.id and out[2].detail == "c1"


def test_near_duplicate_keeps_the_first_of_a_group():
    q = "In which large European city near the river does the teacher Anna live with her black cat today?"
    out = verdicts("near_duplicate", [cand(0, q), cand(1, q.replace("today", "now")), cand(2, "What does Anna work as in the old town?")],
                   near_duplicate_jaccard=0.7, minhash_num_perm=128)
    assert out[0] is None and out[2] is None
    assert out[1] is not None and out[1].reason == F.NEAR_DUPLICATE and out[1].detail == "c0" and out[1].value >= 0.7


def test_seed_ngram_overlap_rejects_a_copied_question():
    s = next(r for r in SEED if len(r.question.split()) >= 5)
    out = verdicts("seed_ngram_overlap", [cand(0, s.question, s.answers[0] if s.answers else ""),
                                          cand(1, "Which town has the old market by the sea?", "Oslo")], seed_ngram_n=3)
    assert out[0] is not None and out[0].reason == F.SEED_NGRAM_OVERLAP and out[0].value >= 0.5
    assert out[1] is None
    assert verdicts("seed_ngram_overlap", [cand(0, "Too short")], seed_ngram_n=8) == [None]  # no 8-grams: passes


def _bag_of_words(texts, **_):
    # A deterministic stand-in encoder: hashed bag of words, unit length (the real MiniLM
    # runs in the integration test).
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in F.normalize(t).split():
            out[i, sum(map(ord, w)) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_seed_embedding_similarity_rejects_the_nearest_copy(monkeypatch):
    import collapselab.metrics.semantic as semantic

    monkeypatch.setattr(semantic, "embed", _bag_of_words)
    s = SEED[3]
    out = verdicts("seed_embedding_similarity", [cand(0, s.question, s.answers[0] if s.answers else ""),
                                                 cand(1, "Which violin concerto premiered in winter?", "Brahms")])
    assert out[0] is not None and out[0].reason == F.SEED_EMBEDDING_SIMILARITY and out[0].value >= 0.85
    assert out[0].detail in {r.id for r in SEED if r.question == s.question}
    assert out[1] is None


def test_pipeline_order_stats_and_reasons_kept():
    cands = [cand(0, "Where?"), cand(1, "Where does Anna live now?", "London"), cand(2, "Where does Anna live now?"),
             cand(3, "where does anna live now"), cand(4, "What does Anna work as today?", "a teacher")]
    cfg = FiltersConfig(order=["length_bounds", "answer_in_context", "exact_duplicate"])
    out = run_filters(cands, SEED, cfg)
    assert [r.id for r in out.passed] == ["c2", "c4"]
    assert out.stats["attempts"] == 5 and out.stats["passed"] == 2
    assert out.stats["rejected"] == {F.TOO_SHORT: 1, F.ANSWER_NOT_IN_CONTEXT: 1, F.EXACT_DUPLICATE: 1}
    assert [out.stats["filters"][n]["checked"] for n in out.stats["filter_order"]] == [5, 4, 3]
    assert {r.id: rejection_of(r)["reason"] for r in out.rejected} == {"c0": F.TOO_SHORT, "c1": F.ANSWER_NOT_IN_CONTEXT, "c3": F.EXACT_DUPLICATE}
    assert rejection_of(out.passed[0]) is None


def test_config_rejects_a_filter_listed_twice():
    with pytest.raises(ValueError, match="listed twice"):
        RefineryConfig(filters={"order": ["gibberish", "gibberish"]})


def test_vectorised_minhash_equals_datasketch():
    from datasketch import MinHash, MinHashLSH

    from collapselab.refinery.minhash import near_duplicate_of, signatures, word_shingles

    rng = random.Random(0)
    texts = [" ".join(rng.choice("abcdefghij") for _ in range(rng.randint(0, 12))) for _ in range(60)] + ["a b c d e f g"] * 2
    shingles = [word_shingles(t.split()) for t in texts]
    sigs = signatures(shingles, num_perm=32)
    lsh, expected = MinHashLSH(threshold=0.5, num_perm=32), []
    for i, sh in enumerate(shingles):
        m = MinHash(num_perm=32)
        m.update_batch(sh)
        assert np.array_equal(m.hashvalues, sigs[i])
        if sh:  # datasketch: query, keep the record when no earlier kept one is that similar
            hits = [j for j in lsh.query(m) if float(np.mean(sigs[int(j)] == sigs[i])) >= 0.5]
            expected.append(bool(hits))
            if not hits:
                lsh.insert(str(i), m)
        else:
            expected.append(False)
    assert [x is not None for x in near_duplicate_of(sigs, 0.5)] == expected
    assert expected[-1]  # the repeated text is caught


def test_gibberish_levels_are_those_of_the_seed_questions():
    # Calibrated on the seed's own question + answer texts: a human-like question scores
    # near 3 although its words ("what", "does") are not in the contexts the statistics
    # come from, and the same question with a third of its words misspelt scores lower.
    from collapselab.metrics.corruption import misspell_words

    fluent = [cand(i, f"What does {n} work as?", "a teacher") for i, n in enumerate(("Anna", "Boris", "Clara"))]
    assert verdicts("gibberish", fluent, gibberish_min_score=2.5) == [None, None, None]
    rng = random.Random(0)
    broken = [cand(i, misspell_words(f"Where does {n} live with the black cat?", 0.5, rng), "Oslo") for i, n in enumerate(("Anna", "Hugo"))]
    out = verdicts("gibberish", broken, gibberish_min_score=2.0)
    assert all(v is not None and v.reason == F.GIBBERISH and v.threshold == 2.0 for v in out), out


def test_fast_normalize_equals_squad_normalisation():
    from collapselab.metrics.qa import normalize_answer

    for t in ["The  Cat's hat!", "an Apple, a day", "théâtre—the end", "A", "Mr. Smith (1999)", "\tthe\nend "]:
        assert F.normalize(t) == normalize_answer(t)
