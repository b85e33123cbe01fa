"""SelfPlagAI's training extras: per-example loss weights, early stopping on a validation split."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny import PAD
from tiny import id_llama as _llama
from tiny import id_pairs as _pairs

import collapselab.training.loop as training
from collapselab.config import TrainingBlock
from collapselab.errors import ConfigError
from collapselab.training.early_stopping import validation_split
from collapselab.training.loop import train_lm, train_supervised

ONE_BATCH = dict(max_steps=1, batch_tokens=10_000, warmup_ratio=0.0, lr=1e-2)


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_a_weight_of_two_is_the_example_twice():
    # The weighted loss is a weighted mean over target tokens: weight 2 on an example is the
    # same step as that example appearing twice, weight 0 as it being absent.
    pairs = _pairs(6)
    weighted, repeated = _llama(), _llama()
    cfg = TrainingBlock(**ONE_BATCH)
    w = [2.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    r1 = train_supervised(weighted, pairs, cfg, pad_id=PAD, seed=0, weights=w, progress=False)
    same = [pairs[0], pairs[0], pairs[1], pairs[3], pairs[4], pairs[5]]
    r2 = train_supervised(repeated, same, cfg, pad_id=PAD, seed=0, progress=False)
    assert r1.losses[0] == pytest.approx(r2.losses[0], rel=1e-5)
    # Adam's first step is about lr * sign(grad): a 1e-7 gradient difference where the
    # gradient is near 0 moves a weight by ~1e-6, against steps of lr = 1e-2.
    for p, q in zip(weighted.parameters(), repeated.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_uniform_weights_are_no_weights():
    pairs = _pairs(6)
    a, b = _llama(), _llama()
    cfg = TrainingBlock(**{**ONE_BATCH, "max_steps": 3, "batch_tokens": 40})
    ra = train_supervised(a, pairs, cfg, pad_id=PAD, seed=0, weights=[0.3] * 6, progress=False)
    rb = train_supervised(b, pairs, cfg, pad_id=PAD, seed=0, progress=False)
    assert ra.losses == pytest.approx(rb.losses, rel=1e-5)


@pytest.mark.parametrize("bad", [[1.0] * 5, [0.0] * 6, [1.0, -1.0, 1, 1, 1, 1]])
def test_bad_weights_are_refused(bad):
    with pytest.raises(ValueError, match="weights"):
        train_supervised(
            _llama(),
            _pairs(6),
            TrainingBlock(**ONE_BATCH),
            pad_id=PAD,
            seed=0,
            weights=bad,
            progress=False,
        )


def test_early_stopping_by_score_stops_on_patience_and_restores_the_best_weights():
    model = _llama()
    head = model.get_output_embeddings()
    values = iter([0.50, 0.70, 0.705, 0.65, 0.69, 0.99])  # the best is step 2 (min_delta 0.01)
    seen: dict[int, list[torch.Tensor]] = {}

    def score(m) -> float:
        # The callback sees the whole model (its head attached, for generation), in eval mode.
        assert m is model and m.get_output_embeddings() is head and not m.training
        seen[len(seen) + 1] = _params(m)
        return next(values)

    cfg = TrainingBlock(
        max_steps=10,
        eval_every=1,
        early_stopping_patience=3,
        early_stopping_min_delta=0.01,
        batch_tokens=40,
        lr=1e-2,
    )
    res = train_supervised(model, _pairs(), cfg, pad_id=PAD, seed=0, score=score, progress=False)
    assert res.stopped_early and res.steps == 5 and res.best_step == 2
    assert [s for s, _ in res.validation] == [1, 2, 3, 4, 5]
    assert [v for _, v in res.validation] == [0.50, 0.70, 0.705, 0.65, 0.69]
    assert not any(torch.equal(a, b) for a, b in zip(seen[2], seen[5], strict=True))
    for p, best in zip(model.parameters(), seen[2], strict=True):
        assert torch.equal(p, best)
    assert model.get_output_embeddings() is head


def test_early_stopping_by_validation_loss_keeps_the_lowest(monkeypatch):
    losses = iter([3.0, 2.0, 2.5, 2.1, 1.0])
    monkeypatch.setattr(training, "_validation_loss", lambda model, head, batches: next(losses))
    cfg = TrainingBlock(max_steps=10, eval_every=2, early_stopping_patience=2, batch_tokens=40)
    res = train_supervised(
        _llama(), _pairs(12), cfg, pad_id=PAD, seed=0, validation=_pairs(4), progress=False
    )
    assert res.validation == [(2, 3.0), (4, 2.0), (6, 2.5), (8, 2.1)]
    assert res.best_step == 4 and res.stopped_early


def test_validation_loss_is_the_held_out_target_token_loss():
    model = _llama()
    train, held = _pairs(16)[:12], _pairs(16)[12:]
    cfg = TrainingBlock(max_steps=2, eval_every=1, batch_tokens=40, lr=1e-2)
    res = train_supervised(model, train, cfg, pad_id=PAD, seed=0, validation=held, progress=False)
    assert [s for s, _ in res.validation] == [1, 2] and res.best_step is None
    total, n = 0.0, 0
    with torch.no_grad():
        for p, t in held:
            logits = model(torch.tensor([p + t])).logits[0]  # (T, V)
            total += F.cross_entropy(
                logits[len(p) - 1 : -1], torch.tensor(t), reduction="sum"
            ).item()
            n += len(t)
    assert res.validation[-1][1] == pytest.approx(total / n, rel=1e-5)


def test_a_sampling_score_does_not_change_training():
    # The callback's random draws (e.g. sampled answers) must not shift LoRA dropout's stream.
    from peft import LoraConfig, get_peft_model

    def lora():
        return get_peft_model(
            _llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.3)
        )

    cfg = TrainingBlock(max_steps=4, eval_every=1, batch_tokens=40, lr=1e-2)
    quiet, noisy = lora(), lora()
    train_supervised(quiet, _pairs(), cfg, pad_id=PAD, seed=0, score=lambda m: 0.0, progress=False)
    train_supervised(
        noisy,
        _pairs(),
        cfg,
        pad_id=PAD,
        seed=0,
        score=lambda m: float(torch.rand(1000).sum()),
        progress=False,
    )
    for p, q in zip(quiet.parameters(), noisy.parameters(), strict=True):
        assert torch.equal(p, q)


def test_early_stopping_needs_something_to_validate_on():
    cfg = TrainingBlock(max_steps=1, early_stopping_patience=2)
    with pytest.raises(ConfigError, match="early_stopping_patience"):
        train_supervised(_llama(), _pairs(), cfg, pad_id=PAD, seed=0, progress=False)


@pytest.mark.parametrize(
    "setting",
    [
        {"validation_share": 0.1},
        {"early_stopping_metric": "bertscore"},
        {"loss_weights": "bertscore_f1"},
    ],
)
def test_a_setting_the_call_was_given_nothing_for_is_refused_by_its_key(setting):
    # The task supplies the split, the score and the weights; a recipe asking for one it did
    # not supply must not train as if the key were unset.
    (key,) = setting
    cfg = TrainingBlock(max_steps=1, **setting)
    with pytest.raises(ConfigError, match=f"training.{key}"):
        train_supervised(_llama(), _pairs(), cfg, pad_id=PAD, seed=0, progress=False)
    with pytest.raises(ConfigError, match=f"training.{key}"):
        train_lm(
            _llama(),
            [[5, 6, 7, 8]],
            TrainingBlock(max_steps=1, seq_len=8, **setting),
            eos_id=2,
            seed=0,
            progress=False,
        )


def test_validation_split_is_seeded_disjoint_and_complete():
    train, held = validation_split(50, 0.1, seed=3)
    assert len(held) == 5 and sorted(train + held) == list(range(50))
    assert validation_split(50, 0.1, seed=3) == (train, held)
    assert validation_split(50, 0.1, seed=4)[1] != held
    assert validation_split(50, 0.0, seed=3) == (list(range(50)), [])
    assert len(validation_split(3, 0.01, seed=0)[1]) == 1  # a positive share holds out one
