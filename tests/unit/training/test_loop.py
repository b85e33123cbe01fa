"""Training lowers the loss, touches exactly the trainable parameters, and masks prompts."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from tiny import EOS, PAD
from tiny import id_docs as _docs
from tiny import id_llama as _llama
from tiny import id_pairs as _pairs
from tiny import id_t5 as _t5

from collapselab.config import TrainingBlock
from collapselab.training.loop import IGNORE, _collate_causal, train_lm, train_supervised


def test_train_lm_lowers_loss_and_changes_every_parameter():
    model = _llama()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainingBlock(max_steps=30, lr=1e-2, warmup_ratio=0.1, seq_len=16, batch_tokens=64)
    res = train_lm(model, _docs(), cfg, eos_id=EOS, seed=0, progress=False)
    assert res.steps == 30 and len(res.losses) == 30
    assert sum(res.losses[-5:]) / 5 < 0.5 * sum(res.losses[:5]) / 5
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []
    assert not model.training
    # Up to 4 blocks of 16 tokens per step; the ragged tail block is shorter.
    assert 0.8 * 30 * 64 < res.tokens <= 30 * 64
    assert res.seconds > 0


def test_train_lm_is_deterministic_given_seed():
    cfg = TrainingBlock(max_steps=4, seq_len=16, batch_tokens=32)
    a, b, c = _llama(), _llama(), _llama()
    ra = train_lm(a, _docs(), cfg, eos_id=EOS, seed=5, progress=False)
    rb = train_lm(b, _docs(), cfg, eos_id=EOS, seed=5, progress=False)
    rc = train_lm(c, _docs(), cfg, eos_id=EOS, seed=6, progress=False)
    assert ra.losses == rb.losses
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert ra.losses != rc.losses  # the seed picks the data order


def test_grad_accumulation_equals_one_big_batch():
    docs = [list(range(2, 2 + 15))] * 4 + [[3, 4, 5]]  # 4 full blocks of 16 tokens + a ragged tail
    big, small = _llama(), _llama()
    r1 = train_lm(
        big,
        docs,
        TrainingBlock(max_steps=1, seq_len=16, batch_tokens=80),
        eos_id=EOS,
        seed=0,
        progress=False,
    )
    r2 = train_lm(
        small,
        docs,
        TrainingBlock(max_steps=1, seq_len=16, batch_tokens=16, grad_accum=5),
        eos_id=EOS,
        seed=0,
        progress=False,
    )
    assert r1.losses[0] == pytest.approx(r2.losses[0], rel=1e-5)
    for p, q in zip(big.parameters(), small.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


def test_lm_loss_covers_every_token_of_the_stream_but_the_first():
    # First-step loss (before any update) must be the mean next-token loss over the packed
    # stream: each block predicts its tokens shifted by one, across block boundaries, and
    # the ragged tail's padding carries no loss.
    docs = _docs(7)
    stream = [t for d in docs for t in (*d, EOS)]
    model = _llama()
    ref = copy.deepcopy(model).eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(stream) - 1, 16):
            block, targets = stream[s : s + 16], stream[s + 1 : s + 17]
            logits = ref(torch.tensor([block])).logits[0, : len(targets)]
            total += F.cross_entropy(logits, torch.tensor(targets), reduction="sum").item()
            n += len(targets)
    assert n == len(stream) - 1 and len(stream) % 16 != 0  # a ragged tail is part of the check
    cfg = TrainingBlock(max_steps=1, seq_len=16, batch_tokens=16 * 64)
    res = train_lm(model, docs, cfg, eos_id=EOS, seed=0, progress=False)
    assert res.losses[0] == pytest.approx(total / n, rel=1e-4)
    assert res.tokens == len(stream)


def test_causal_labels_cover_exactly_the_targets():
    pairs = [([5, 6, 7], [8, 9, EOS]), ([10], [11, EOS])]
    batch = _collate_causal(pairs, PAD)
    ids, labels = batch.inputs["input_ids"], batch.labels
    assert ids.tolist() == [[5, 6, 7, 8, 9, EOS], [10, 11, EOS, PAD, PAD, PAD]]
    # Position k predicts token k+1: only positions whose next token is a target carry a label.
    assert labels.tolist() == [
        [IGNORE, IGNORE, 8, 9, EOS, IGNORE],
        [11, EOS, IGNORE, IGNORE, IGNORE, IGNORE],
    ]


def _target_loss_causal(model, pairs) -> float:
    total, n = 0.0, 0
    with torch.no_grad():
        for p, t in pairs:
            logits = model(torch.tensor([p + t])).logits[0]  # (T, V), no padding at all
            total += F.cross_entropy(
                logits[len(p) - 1 : -1], torch.tensor(t), reduction="sum"
            ).item()
            n += len(t)
    return total / n


def _target_loss_seq2seq(model, pairs) -> float:
    total, n = 0.0, 0
    with torch.no_grad():
        for p, t in pairs:
            out = model(input_ids=torch.tensor([p]), labels=torch.tensor([t]))
            total += out.loss.item() * len(t)
            n += len(t)
    return total / n


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_supervised_loss_is_the_target_token_loss(arch):
    # The first step's loss is computed before any update: it must equal the mean loss over
    # target tokens only, computed one unpadded example at a time. Prompt tokens, padding
    # and batching (4 length-grouped micro-batches, accumulated) must not enter it.
    make, reference = (
        (_llama, _target_loss_causal) if arch == "llama" else (_t5, _target_loss_seq2seq)
    )
    pairs = _pairs()
    model = make()
    expected = reference(copy.deepcopy(model).eval(), pairs)
    cfg = TrainingBlock(
        max_steps=1, batch_tokens=40, grad_accum=_n_batches(pairs, 40, arch), lr=1e-3
    )
    res = train_supervised(model, pairs, cfg, pad_id=PAD, seed=0, progress=False)
    assert res.losses[0] == pytest.approx(expected, rel=1e-4)


def _n_batches(pairs, budget, arch) -> int:
    from collapselab.batching import token_budget_batches

    lengths = [len(p) + len(t) if arch == "llama" else max(len(p), len(t)) for p, t in pairs]
    n = len(token_budget_batches(lengths, budget))
    assert n > 1
    return n


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_supervised_learns_the_targets(arch):
    model = _llama() if arch == "llama" else _t5()
    pairs = _pairs()
    cfg = TrainingBlock(max_steps=40, lr=5e-3, warmup_ratio=0.0, batch_tokens=256)
    res = train_supervised(model, pairs, cfg, pad_id=PAD, seed=0, progress=False)
    assert res.losses[-1] < 0.5 * res.losses[0]
    assert not model.training


def test_lora_trains_only_adapters():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        _llama(), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0)
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    cfg = TrainingBlock(max_steps=5, lr=1e-2, warmup_ratio=0.0, seq_len=16, batch_tokens=64)
    train_lm(model, _docs(), cfg, eos_id=EOS, seed=0, progress=False)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    # lora_B starts at zero and gets a gradient on the first step; lora_A only once B is non-zero.
    assert changed == trainable


def test_bf16_on_cpu_is_refused():
    with pytest.raises(ValueError, match="precision"):
        train_lm(
            _llama(),
            _docs(),
            TrainingBlock(max_steps=1, precision="bf16"),
            eos_id=EOS,
            seed=0,
            progress=False,
        )
