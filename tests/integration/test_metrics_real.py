"""Metrics on the real data in ../shared/data, and the encoder metrics with the real local encoder.

The SQuAD reference below is a transcription of the official `evaluate-v2.0.py`
(rajpurkar/SQuAD-explorer, functions normalize_answer, get_tokens, compute_exact,
compute_f1, get_raw_scores, make_eval_dict), kept independent of collapselab's code so
that the comparison means something.
"""

from __future__ import annotations

import collections
import functools
import json
import random
import re
import string

import numpy as np
import pytest
from typer.testing import CliRunner

from collapselab.cli import app
from collapselab.datasets.squad import read_squad
from collapselab.metrics import EvalInputs, evaluate
from collapselab.metrics.qa import squad_eval
from collapselab.metrics.semantic import bertscore_f1, encoder_path, semantic_similarity
from collapselab.records import Record

pytestmark = pytest.mark.integration


# ---- official evaluate-v2.0.py, transcribed -----------------------------------------
def _official_normalize_answer(s):
    def remove_articles(text):
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def _official_get_tokens(s):
    if not s:
        return []
    return _official_normalize_answer(s).split()


def _official_compute_exact(a_gold, a_pred):
    return int(_official_normalize_answer(a_gold) == _official_normalize_answer(a_pred))


def _official_compute_f1(a_gold, a_pred):
    gold_toks = _official_get_tokens(a_gold)
    pred_toks = _official_get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def _official_evaluate(dataset, preds):
    exact_scores, f1_scores, qid_to_has_ans = {}, {}, {}
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid = qa["id"]
                qid_to_has_ans[qid] = bool(qa["answers"])
                gold_answers = [a["text"] for a in qa["answers"] if _official_normalize_answer(a["text"])]
                if not gold_answers:
                    gold_answers = [""]
                a_pred = preds[qid]
                exact_scores[qid] = max(_official_compute_exact(a, a_pred) for a in gold_answers)
                f1_scores[qid] = max(_official_compute_f1(a, a_pred) for a in gold_answers)

    def make_eval_dict(qid_list, prefix):
        total = len(qid_list)
        return {
            f"{prefix}exact": 100.0 * sum(exact_scores[k] for k in qid_list) / total,
            f"{prefix}f1": 100.0 * sum(f1_scores[k] for k in qid_list) / total,
            f"{prefix}total": total,
        }

    out = make_eval_dict(list(exact_scores), "")
    out.update(make_eval_dict([k for k, v in qid_to_has_ans.items() if v], "HasAns_"))
    out.update(make_eval_dict([k for k, v in qid_to_has_ans.items() if not v], "NoAns_"))
    return out, exact_scores, f1_scores


# ---- SQuAD v2 ------------------------------------------------------------------------
@pytest.fixture
def squad_dev(shared_data):
    path = shared_data / "squad_v2" / "dev-v2.0.explorer-eval.json"
    return path, json.loads(path.read_text())["data"], read_squad(path)


def _prediction_sets(records):
    """Prediction sets that exercise every branch: gold, empty, noisy spans, partial answers."""
    rng = random.Random(0)
    gold = {r.id: (r.answers[0] if r.answers else "") for r in records}
    empty = {r.id: "" for r in records}
    noisy = {}
    for r in records:
        words = r.context.split()
        i = rng.randrange(len(words))
        choice = rng.random()
        if choice < 0.25 and r.answers:
            noisy[r.id] = "The " + r.answers[-1].upper() + "!"  # EM after normalisation
        elif choice < 0.5 and r.answers:
            noisy[r.id] = " ".join(r.answers[0].split()[:-1] + words[i : i + 2])  # partial overlap
        elif choice < 0.7:
            noisy[r.id] = ""
        else:
            noisy[r.id] = " ".join(words[i : i + rng.randint(1, 6)])  # a random context span
    return {"gold": gold, "empty": empty, "noisy": noisy}


def test_all_no_answer_on_full_dev_scores_50_07(squad_dev):
    _, _, records = squad_dev
    assert len(records) == 11873
    out = squad_eval([""] * len(records), [r.answers for r in records])
    # The published "always no-answer" baseline of the SQuAD 2.0 dev set.
    assert round(out["exact"], 2) == 50.07 and round(out["f1"], 2) == 50.07
    assert out["HasAns_total"] == 5928 and out["NoAns_total"] == 5945


def test_em_f1_match_official_script_question_by_question(squad_dev):
    _, data, records = squad_dev
    refs = [r.answers for r in records]
    from collapselab.metrics.qa import exact_match, token_f1

    for name, preds in _prediction_sets(records).items():
        official, off_em, off_f1 = _official_evaluate(data, preds)
        ours = squad_eval([preds[r.id] for r in records], refs)
        for key, value in official.items():
            assert ours[key] == pytest.approx(value, abs=1e-9), (name, key)
        for r in records[::7]:
            assert exact_match(preds[r.id], r.answers) == off_em[r.id], (name, r.id)
            assert token_f1(preds[r.id], r.answers) == pytest.approx(off_f1[r.id]), (name, r.id)
    assert _official_evaluate(data, _prediction_sets(records)["gold"])[0]["exact"] == 100.0


def test_score_command_on_real_dev_set(squad_dev, tmp_path, monkeypatch, shared_data):
    _, data, records = squad_dev
    preds = _prediction_sets(records)["noisy"]
    (tmp_path / "preds.json").write_text(json.dumps(preds))
    monkeypatch.setenv("COLLAPSELAB_DATA", str(shared_data))
    res = CliRunner().invoke(app, ["score", "--dataset", "squad_v2", "--predictions", str(tmp_path / "preds.json")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    official = _official_evaluate(data, preds)[0]
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "total"):
        assert out[key] == pytest.approx(official[key], abs=1e-9), key


# ---- encoder metrics (the local all-MiniLM-L6-v2) -------------------------------------
PREDS = ["the Eiffel tower", "in 1066", "", "a red car", "Paris"]
REFS = [("Eiffel Tower", "the tower in Paris"), ("1066",), ("Normandy",), (), ()]


def test_bertscore_equals_bert_score_with_the_same_encoder():
    import bert_score

    ours = bertscore_f1(PREDS, REFS)
    # Direct, one reference at a time, best kept: a different route through bert_score.
    for i in (0, 1):
        _, _, f = bert_score.score([PREDS[i]] * len(REFS[i]), list(REFS[i]), model_type=encoder_path(), num_layers=6,
                                   use_fast_tokenizer=True)
        assert ours[i] == pytest.approx(f.max().item(), abs=1e-5)
    # No-answer rule: empty vs answerable 0, non-empty vs unanswerable 0, nothing vs nothing 1.
    assert ours[2] == 0.0 and ours[3] == 0.0
    assert bertscore_f1([""], [()]) == [1.0]


def test_semantic_similarity_is_the_best_cosine():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(encoder_path(), device="cpu")
    ours = semantic_similarity(PREDS, REFS)
    p, refs = model.encode([PREDS[0]]), model.encode(list(REFS[0]))
    cos = (refs @ p.T).ravel() / (np.linalg.norm(refs, axis=1) * np.linalg.norm(p))
    assert ours[0] == pytest.approx(float(cos.max()), abs=1e-5)
    assert ours[2:] == [0.0, 0.0, 0.0]


def test_registered_encoder_metrics_say_they_are_not_comparable():
    test = [Record(id=str(i), answers=r) for i, r in enumerate(REFS)]
    out = evaluate(["bertscore", "semantic_similarity"], EvalInputs(task="qa", test=test, predictions=PREDS))
    for name in ("bertscore", "semantic_similarity"):
        assert "not comparable" in out[name].details["note"]
        assert len(out[name].per_example) == len(PREDS)


def test_mauve_separates_same_from_different_distributions():
    from collapselab.metrics.diversity import mauve_score

    rng = np.random.default_rng(0)
    animals = [f"The {a} {v} near the {p}." for a in ("cat", "dog", "fox", "owl", "horse") for v in
               ("slept", "played", "waited", "hid") for p in ("river", "barn", "hill", "forest", "road")]
    finance = [f"The {c} reported {q} {m} in the {t} quarter." for c in ("bank", "firm", "fund", "insurer", "retailer")
               for q in ("higher", "lower", "record") for m in ("profits", "revenue", "losses", "costs")
               for t in ("first", "second")]
    a = list(rng.permutation(animals))
    same = mauve_score(a[:50], a[50:])
    different = mauve_score(finance[:50], a[50:])
    assert same > 0.8 and different < 0.3


# ---- gibberish scorer on held-out WikiText-2 and TinyStories ----------------------------
def _paragraphs(path):
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [x for x in lines if len(x.split()) >= 20 and not x.startswith("=")]


def _passages(paragraphs, words=60):
    return [" ".join(p.split()[:words]) for p in paragraphs]


def test_gibberish_score_orders_graded_corruptions_of_held_out_wikitext(shared_data):
    from collapselab.metrics.corruption import graded_sets
    from collapselab.metrics.gibberish import LEVELS, fit_gibberish_scorer

    train = _paragraphs(shared_data / "wikitext2" / "wiki.train.raw")[:8000]
    test = _passages(_paragraphs(shared_data / "wikitext2" / "wiki.test.raw"))[:400]  # never seen in fitting
    scorer = fit_gibberish_scorer(train[:-500], _passages(train[-500:]))
    sets = graded_sets(test, "abcdefghijklmnopqrstuvwxyz ", None, seed=7)  # letters and spaces: word-like lengths
    scores = {name: scorer.scores(texts) for name, texts in sets.items()}
    mean = {k: float(v.mean()) for k, v in scores.items()}
    se = {k: float(v.std(ddof=1) / np.sqrt(len(v))) for k, v in scores.items()}
    assert list(mean) == list(LEVELS)
    # human > 5 % > 15 % > 30 % misspelt > word salad > random characters, strictly
    values = list(mean.values())
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), mean
    # resolution at the top: human and 5 %-misspelt text further apart than their standard errors
    gap = mean["human"] - mean["misspelt 5 %"]
    assert gap > se["human"] + se["misspelt 5 %"], (gap, se)
    assert gap > 3 * np.hypot(se["human"], se["misspelt 5 %"]), (gap, se)
    assert mean["human"] >= 2.6 and mean["random characters"] <= 0.1


def test_quickstart_like_scratch_text_scores_visibly_below_human_tinystories(shared_data):
    from collapselab.metrics.gibberish import cached_gibberish_scorer

    text = (shared_data / "tinystories" / "tinystories_valid_prefix.txt").read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.split("\n\n") if len(p.split()) >= 20]
    scorer = cached_gibberish_scorer(paragraphs[:1200])
    human = scorer.scores(paragraphs[1200:1500])
    # A generation-0 continuation of the quickstart's scratch model, quoted in issue 12 (the
    # knowledge-collapse framework's classifier grades it "mild gibberish").
    scratch = scorer.score("When they'm unely the mean. The stoo had gold car and found a fewat dog")
    assert human.mean() >= 2.6
    assert scratch <= 2.1 and scratch < np.percentile(human, 10)


def _continuations(model, tokenizer, prompts):
    from collapselab.config import DecodingBlock
    from collapselab.generation import generate

    ids = [tokenizer(p, add_special_tokens=False)["input_ids"][:32] for p in prompts]
    out = generate(model, tokenizer, ids, DecodingBlock(method="sample", top_p=0.9), max_new_tokens=64, seed=1, progress=False)
    return [tokenizer.decode(o, skip_special_tokens=True) for o in out]


def test_gibberish_score_orders_real_model_output_by_quality_on_tinystories(shared_data, catalogue_model, monkeypatch):
    # Issue 12: model output of known quality, scored as a quickstart run scores it (its human
    # text plus the default WikiText-2 background): human > the pretrained SmolLM2 > a
    # quickstart-sized scratch model after 500 steps, visibly > the same after 50 steps.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from collapselab.config import ScratchArchitecture, TrainingBlock
    from collapselab.metrics.gibberish import cached_gibberish_scorer
    from collapselab.metrics.sanity import read_background
    from collapselab.models.loading import build_scratch_model, train_tokenizer
    from collapselab.training.loop import train_lm

    monkeypatch.setenv("COLLAPSELAB_DATA", str(shared_data))
    text = (shared_data / "tinystories" / "tinystories_valid_prefix.txt").read_text(encoding="utf-8")
    stories = [p.strip() for p in text.split("\n\n") if len(p.split()) >= 20]
    fit, prompts = stories[:1200], stories[1600:1660]
    scorer = cached_gibberish_scorer(fit, heldout_texts=stories[1200:1500], background_texts=read_background("wikitext2"))
    scores = {"human": scorer.scores(stories[1500:1600])}
    tok = train_tokenizer(fit, 2048)
    stream = [t for ids in tok(fit, add_special_tokens=False)["input_ids"] for t in ids]
    for steps in (50, 500):
        model = build_scratch_model(ScratchArchitecture(architecture="llama", vocab_size=2048, d_model=128, n_layers=4, n_heads=4,
                                                        max_positions=256), tok, 0)
        train_lm(model, [stream], TrainingBlock(max_steps=steps, lr=2e-3, batch_tokens=512, seq_len=128), eos_id=tok.eos_token_id,
                 seed=0, progress=False)
        scores[f"scratch {steps}"] = scorer.scores(_continuations(model.eval(), tok, prompts))
    folder = catalogue_model("smollm2-135m-instruct")
    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    scores["smollm2"] = scorer.scores(_continuations(lm, AutoTokenizer.from_pretrained(folder), prompts))
    mean = {k: float(v.mean()) for k, v in scores.items()}
    se = {k: float(v.std(ddof=1) / np.sqrt(len(v))) for k, v in scores.items()}
    assert mean["human"] > mean["smollm2"] > mean["scratch 500"] > mean["scratch 50"], mean
    # scratch-model text like the quickstart's is visibly below human text
    assert mean["human"] - mean["scratch 500"] > 3 * np.hypot(se["human"], se["scratch 500"]), (mean, se)
    assert mean["scratch 50"] < 1.5, mean  # word salad or worse early in training


# ---- the gibberish scorer on every dataset the lab ships ---------------------------------
@functools.cache
def _wikitext_background() -> tuple[str, ...]:
    """The runs' default evaluation.gibberish_background, read once (from $COLLAPSELAB_DATA)."""
    from collapselab.metrics.sanity import read_background

    return tuple(read_background("wikitext2"))


def _scored_records(records):
    """The records a run scores, as `scored_text` reads them: QA and MMLU records as they are,
    LM documents as passages of their first 60 words (paragraphs of at least 20)."""
    out = []
    for r in records:
        if r.text is None:
            out.append(r)
            continue
        for p in r.text.split("\n"):
            if len(p.split()) >= 20 and not p.strip().startswith("="):
                out.append(Record(id=f"{r.id}-{len(out)}", text=" ".join(p.split()[:60])))
    return out


@pytest.mark.parametrize("dataset", ["squad_v2", "squad_v1.1", "cosmosqa", "wikitext2", "tinystories", "mmlu"])
def test_gibberish_scorer_calibrates_on_every_shipped_dataset_and_orders_graded_corruptions(shared_data, monkeypatch, dataset):
    # refinery-squad and squad-selfplag could not calibrate on SQuAD's one- or two-word
    # answers; a run's scorer (fitted and calibrated as the engine does, on records as the
    # metric scores them) must calibrate on every dataset and order graded corruptions of
    # held-out text it has never seen.
    from collapselab.datasets import load_splits
    from collapselab.metrics.corruption import graded_sets
    from collapselab.metrics.gibberish import LEVELS
    from collapselab.metrics.sanity import run_gibberish_scorer, scored_text

    monkeypatch.setenv("COLLAPSELAB_DATA", str(shared_data))
    splits = load_splits(dataset)
    train, test = _scored_records(splits.train), _scored_records(splits.test)
    held = min(300, len(test) // 2)
    scorer = run_gibberish_scorer(train[:1000], test[:held], _wikitext_background())
    unseen = [t for t in (scored_text(r) for r in test[held:held + 300]) if t.strip()]
    assert len(unseen) >= 50
    sets = graded_sets(unseen, "abcdefghijklmnopqrstuvwxyz ", None, seed=7)
    mean = {name: float(scorer.scores(texts).mean()) for name, texts in sets.items()}
    assert list(mean) == list(LEVELS)
    values = list(mean.values())
    assert all(a > b for a, b in zip(values, values[1:], strict=False)), mean
    assert mean["human"] >= 2.4 and mean["misspelt 15 %"] < 2.2 and mean["random characters"] <= 0.2, mean


# ---- MMLU: a tiny random model is at chance ---------------------------------------------
def _tiny_llama(texts):
    from tiny import bpe_tokenizer, llama

    tokenizer = bpe_tokenizer(texts, 1000, ["<eos>"], full_alphabet=True)
    model = llama(len(tokenizer), num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512,
                  tie_word_embeddings=False, eos_token_id=tokenizer.eos_token_id)
    return model.eval(), tokenizer


def test_mmlu_tiny_random_model_is_at_chance(shared_data):
    from collapselab.metrics.mmlu import SUBJECT_GROUP, build_prompt, evaluate_mmlu, load_mmlu

    root = shared_data / "mmlu"
    records = load_mmlu(root, "test", per_subject=20)
    dev = load_mmlu(root, "dev")
    assert len(records) >= 1000 and {r.subject for r in records} == set(SUBJECT_GROUP)
    model, tokenizer = _tiny_llama([build_prompt(r, "zero_shot") for r in dev])
    res = evaluate_mmlu(model, tokenizer, records, fmt="zero_shot", scoring="loglik", greedy_check=False,
                        max_length=512, batch_tokens=8192)
    # A random model has no knowledge: whatever letter it prefers, accuracy is the share of
    # that letter, near 0.25. Far from it means a scoring, label or letter-mapping bug.
    assert abs(res.accuracy - 0.25) <= 0.05, res.details
    assert set(res.per_group) == {"STEM", "humanities", "social sciences", "other"}
    assert sum(res.details["chosen_counts"].values()) == len(records)
